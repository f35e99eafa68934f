"""Sign-in page: the only page a browser session sees until a user signs in.

A wrong name and a wrong password get the same message, so the page does not
tell which names exist. Repeated failures lock the name and the browser
session for a while (see :class:`ocr.accounts.SignInThrottle`).
"""

from __future__ import annotations

import math

import streamlit as st

from ocr.accounts import count_users
from ocr.store import Store
from review_app.auth import try_sign_in
from review_app.session import show_flash, tr

__all__ = ["render_sign_in"]


NAME_KEY = "sign_in_name"
PASSWORD_KEY = "sign_in_password"
# Text id (and minutes to wait) of the message the last failed sign-in left for this run.
OUTCOME_KEY = "sign_in_outcome"


def _submit(store: Store) -> None:
    """Check the typed name and password (a form callback, so it runs before the page is drawn again).

    The password input is emptied whatever the outcome.
    """
    name = st.session_state.get(NAME_KEY, "")
    password = st.session_state.get(PASSWORD_KEY, "")
    st.session_state[PASSWORD_KEY] = ""
    if not name.strip() or not password:
        st.session_state[OUTCOME_KEY] = ("sign_in_missing", 0)
        return
    result = try_sign_in(store, name, password)
    if result.account is not None:
        st.session_state.pop(OUTCOME_KEY, None)
    elif result.wait_s > 0:
        st.session_state[OUTCOME_KEY] = ("sign_in_locked", math.ceil(result.wait_s / 60))
    else:
        st.session_state[OUTCOME_KEY] = ("sign_in_failed", 0)


def render_sign_in(store: Store) -> None:
    """Show the sign-in form and the outcome of the last try."""
    st.title(tr("app_title"))
    show_flash()
    if count_users(store) == 0:
        st.info(tr("no_users"))

    outcome = st.session_state.pop(OUTCOME_KEY, None)
    if outcome is not None:
        text_id, minutes = outcome
        st.error(tr(text_id, minutes=minutes))

    with st.form("sign_in_form", border=True):
        st.subheader(tr("sign_in_heading"))
        st.text_input(tr("user_name"), key=NAME_KEY, autocomplete="username")
        st.text_input(tr("password"), type="password", key=PASSWORD_KEY, autocomplete="current-password")
        st.form_submit_button(tr("sign_in"), key="sign_in", type="primary", on_click=_submit, args=(store,))
