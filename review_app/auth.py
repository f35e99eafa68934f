"""Signed-in user of a browser session: sign-in, idle timeout, sign-out.

The user is kept in ``st.session_state`` of the browser session, so a reload of
the page starts a new session that signs in again. Each script run of a
signed-in session counts as activity; a session idle for longer than
``$HUKA_SESSION_TIMEOUT_MIN`` minutes (30 by default) is signed out at its next
run, and the sidebar checks once a minute so that an unattended screen signs
itself out without a click. Every run also reloads the account, so a user
disabled or given another role by an admin is affected at once.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import timedelta

import streamlit as st

from ocr.accounts import Account, SignInResult, SignInThrottle, get_user, sign_in
from ocr.holds import minutes_from_env, release_holds_of
from ocr.store import Store
from review_app.session import push_flash, tr

__all__ = [
    "DEFAULT_TIMEOUT_MINUTES",
    "TIMEOUT_ENV",
    "USER_KEY",
    "current_user",
    "get_throttle",
    "idle_watch",
    "session_timeout_minutes",
    "sign_out",
    "try_sign_in",
    "validate_session",
]

log = logging.getLogger(__name__)

TIMEOUT_ENV = "HUKA_SESSION_TIMEOUT_MIN"
DEFAULT_TIMEOUT_MINUTES = 30.0

USER_KEY = "user"
# time.monotonic() of the last script run that counted as activity.
LAST_ACTIVE_KEY = "last_active"
# Random id of this browser session, for the sign-in throttle.
CLIENT_KEY = "client_id"
# How often the sidebar checks the idle time of an open page.
IDLE_CHECK_INTERVAL = timedelta(seconds=60)


def session_timeout_minutes() -> float:
    """Return the idle time after which a session is signed out, in minutes: ``$HUKA_SESSION_TIMEOUT_MIN`` or 30."""
    return minutes_from_env(TIMEOUT_ENV, DEFAULT_TIMEOUT_MINUTES)


@st.cache_resource(show_spinner=False)
def get_throttle() -> SignInThrottle:
    """Return the sign-in throttle shared by all sessions of this server process."""
    return SignInThrottle()


def current_user() -> Account | None:
    """Return the account signed in to this browser session, or None."""
    return st.session_state.get(USER_KEY)


def _client_key() -> str:
    if CLIENT_KEY not in st.session_state:
        st.session_state[CLIENT_KEY] = secrets.token_hex(8)
    return st.session_state[CLIENT_KEY]


def _idle_seconds() -> float:
    return time.monotonic() - st.session_state.get(LAST_ACTIVE_KEY, time.monotonic())


def try_sign_in(store: Store, name: str, password: str) -> SignInResult:
    """Check the typed name and password; on success, sign this browser session in."""
    result = sign_in(store, get_throttle(), name, password, _client_key())
    if result.account is not None:
        st.session_state[USER_KEY] = result.account
        st.session_state[LAST_ACTIVE_KEY] = time.monotonic()
    return result


def sign_out(store: Store, *, reason_text_id: str | None = None) -> None:
    """Sign this browser session out, end its user's holds, and keep ``reason_text_id`` to show on the sign-in page."""
    user = current_user()
    st.session_state.pop(USER_KEY, None)
    st.session_state.pop(LAST_ACTIVE_KEY, None)
    if user is not None:
        ended = release_holds_of(store, user.name)
        log.info("signed out name=%s holds_released=%d reason=%s", user.name, ended, reason_text_id or "user")
    if reason_text_id is not None:
        push_flash("warning", tr(reason_text_id, minutes=f"{session_timeout_minutes():g}"))


def validate_session(store: Store) -> Account | None:
    """Return the signed-in user after the idle and account checks, and count this run as activity.

    Signs the session out when it was idle too long or the account was disabled
    or removed, and returns None then.
    """
    user = current_user()
    if user is None:
        return None
    if _idle_seconds() > session_timeout_minutes() * 60:
        sign_out(store, reason_text_id="session_expired")
        return None
    fresh = get_user(store, user.name)
    if fresh is None or not fresh.active:
        sign_out(store, reason_text_id="account_disabled")
        return None
    st.session_state[USER_KEY] = fresh
    st.session_state[LAST_ACTIVE_KEY] = time.monotonic()
    return fresh


@st.fragment(run_every=IDLE_CHECK_INTERVAL)
def idle_watch() -> None:
    """Rerun the whole app once the session has been idle too long, so the page signs out without a click.

    This fragment's own periodic runs do not count as activity.
    """
    if current_user() is not None and _idle_seconds() > session_timeout_minutes() * 60:
        st.rerun(scope="app")
