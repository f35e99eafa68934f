"""Users page (admins only): the accounts, adding one, and changing a role, a password or whether it is enabled.

The same changes are on the command line as ``python -m ocr user …``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ocr.accounts import Account, AccountError, Role, add_user, list_users, role_label, set_active, set_password, set_role
from review_app.session import PageContext, lang, push_flash, show_flash, tr

__all__ = ["render"]


def _when(account: Account) -> str:
    if account.last_sign_in_at is None:
        return "—"
    return account.last_sign_in_at.strftime("%Y-%m-%d %H:%M UTC")


def _show_users(accounts: list[Account]) -> None:
    table = pd.DataFrame(
        [
            {
                tr("user_name"): account.name,
                tr("role"): role_label(account.role, lang()),
                tr("user_state"): tr("enabled") if account.active else tr("disabled"),
                tr("last_sign_in"): _when(account),
            }
            for account in accounts
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")


def _render_add(context: PageContext) -> None:
    st.subheader(tr("add_user"))
    with st.form("add_user_form", clear_on_submit=True):
        name = st.text_input(tr("user_name"), key="new_user_name")
        role = st.selectbox(
            tr("role"), options=list(Role), format_func=lambda role: role_label(role, lang()), key="new_user_role"
        )
        password = st.text_input(tr("password"), type="password", key="new_user_password", autocomplete="new-password")
        repeat = st.text_input(tr("password_repeat"), type="password", key="new_user_repeat", autocomplete="new-password")
        submitted = st.form_submit_button(tr("add_user"), key="add_user")
    if not submitted:
        return
    if password != repeat:
        st.error(tr("passwords_differ"))
        return
    try:
        account = add_user(context.store, name, role, password)
    except AccountError as exc:
        st.error(exc.message(lang()))
        return
    push_flash("success", tr("user_added", name=account.name, role=role_label(account.role, lang())))
    st.rerun()


def _render_change(context: PageContext, accounts: list[Account]) -> None:
    st.subheader(tr("change_user"))
    names = [account.name for account in accounts]
    name = st.selectbox(tr("user_name"), options=names, key="change_user_name")
    account = next(account for account in accounts if account.name == name)

    with st.form("change_role_form"):
        role = st.selectbox(
            tr("role"),
            options=list(Role),
            index=list(Role).index(account.role),
            format_func=lambda role: role_label(role, lang()),
            key=f"change_role_{name}",
        )
        change_role = st.form_submit_button(tr("change_role"), key="change_role")
    with st.form("reset_password_form", clear_on_submit=True):
        password = st.text_input(tr("new_password"), type="password", key="reset_password", autocomplete="new-password")
        repeat = st.text_input(tr("password_repeat"), type="password", key="reset_repeat", autocomplete="new-password")
        reset = st.form_submit_button(tr("reset_password"), key="reset_password_button")
    toggle_text = tr("disable_user") if account.active else tr("enable_user")
    toggle = st.button(toggle_text, key="toggle_user")

    try:
        if change_role:
            changed = set_role(context.store, name, role)
            push_flash("success", tr("role_changed", name=name, role=role_label(changed.role, lang())))
            st.rerun()
        if reset:
            if password != repeat:
                st.error(tr("passwords_differ"))
                return
            set_password(context.store, name, password)
            push_flash("success", tr("password_reset", name=name))
            st.rerun()
        if toggle:
            changed = set_active(context.store, name, not account.active)
            push_flash("success", tr("user_enabled" if changed.active else "user_disabled", name=name))
            st.rerun()
    except AccountError as exc:
        st.error(exc.message(lang()))


def render(context: PageContext) -> None:
    """Draw the users page."""
    st.header(tr("users_title"))
    show_flash()
    accounts = list_users(context.store)
    _show_users(accounts)
    left, right = st.columns(2, gap="large")
    with left:
        _render_add(context)
    with right:
        _render_change(context, accounts)
