"""Review app (Streamlit): reviewers sign in, answer flagged fields and approve or reject cards.

Start it with ``python -m ocr review``, which sets ``$HUKA_DB_URL`` and
``$HUKA_DATA_DIR`` and runs ``streamlit run review_app/app.py``.

The pages are the lines of :data:`PAGES`. To add a page, add one line there
with its URL path, its title in Chinese and English, the ``"module:function"``
that draws it (the function takes a :class:`review_app.session.PageContext`)
and the lowest role that sees it. A page switches to another with
``review_app.navigation.go_to_page(url_path)``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

# `streamlit run` puts only this file's folder on sys.path. The project root is
# added so the app also runs from a checkout that was not pip-installed.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

import streamlit as st  # noqa: E402

from ocr.accounts import Account, Role, role_label  # noqa: E402
from ocr.errors import CardCaptureError  # noqa: E402
from ocr.logmask import install as install_log_masking  # noqa: E402
from review_app.auth import idle_watch, session_timeout_minutes, sign_out, validate_session  # noqa: E402
from review_app.card_hold import begin_run, release_unused_hold  # noqa: E402
from review_app.deadline_panel import render_deadline_panel  # noqa: E402
from review_app.navigation import AppPage, build_pages, switch_if_requested  # noqa: E402
from review_app.session import LANG_KEY, PageContext, get_registry, get_store, lang, tr  # noqa: E402
from review_app.signin_page import render_sign_in  # noqa: E402
from review_app.texts import LANGUAGES  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
# Guests' names and document numbers are masked in every log record.
install_log_masking()

PAGES: tuple[AppPage, ...] = (
    AppPage("fields", ("字段队列", "Field queue"), "review_app.field_queue_page:render", icon=":material/keyboard:", default=True),
    AppPage("cards", ("卡片", "Cards"), "review_app.queue_page:render", icon=":material/id_card:"),
    AppPage("overview", ("批次概览", "Batch overview"), "review_app.overview_page:render_overview", icon=":material/dashboard:"),
    AppPage("search", ("查找卡片", "Find a card"), "review_app.search_page:render_search", icon=":material/search:"),
    # Supervisor pages.
    AppPage("statistics", ("统计", "Statistics"), "review_app.stats_page:render_statistics", Role.SUPERVISOR, icon=":material/bar_chart:"),
    AppPage("users", ("用户管理", "Users"), "review_app.users_page:render", Role.ADMIN, icon=":material/group:"),
)


def _sign_out_clicked() -> None:
    sign_out(get_store())


def render_sidebar(user: Account | None) -> None:
    """Show the language selector and, when signed in, the user with the sign-out button."""
    st.sidebar.radio(
        tr("language"),
        options=list(LANGUAGES),
        format_func=LANGUAGES.get,
        key=LANG_KEY,
        horizontal=True,
    )
    if user is None:
        return
    st.sidebar.markdown(tr("signed_in_as", name=user.name, role=role_label(user.role, lang())))
    st.sidebar.button(tr("sign_out"), key="sign_out", on_click=_sign_out_clicked)
    with st.sidebar:
        idle_watch()


def main() -> None:
    st.set_page_config(page_title="户卡审核 / Card review", layout="wide")
    try:
        store = get_store()
    except CardCaptureError as exc:
        st.error(tr("store_failed", message=exc.message(lang())))
        st.stop()
    registry = get_registry()
    try:
        session_timeout_minutes()
    except CardCaptureError as exc:
        st.error(exc.message(lang()))
        st.stop()

    user = validate_session(store)
    render_sidebar(user)
    if user is None:
        sign_in = st.Page(lambda: render_sign_in(store), title=tr("sign_in"), url_path="sign-in")
        st.navigation([sign_in], position="hidden").run()
        return

    context = PageContext(store=store, registry=registry, user=user)
    pages = build_pages(PAGES, user.role, lambda: context)
    navigation = st.navigation(list(pages.values()))
    switch_if_requested(pages)
    render_deadline_panel(store)
    begin_run()
    navigation.run()
    release_unused_hold(store, user)


main()
