"""Search page: find a card by name, document number, room or arrival date, and open it.

Every search goes through :func:`ocr.search.search_cards`, which logs who
searched, when, the kind of query and the number of results, with the query
only masked and hashed. Supervisors see that log below the search, and can
check whether a given value was searched for without it being stored.
"""

from __future__ import annotations

import logging
from datetime import UTC
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from ocr.accounts import Role, role_allows
from ocr.search import MAX_HITS, SearchError, SearchKind, SearchResult, query_digest, search_cards, search_log
from review_app.card_page import open_card_from
from review_app.overview_page import page_config
from review_app.session import lang, tr
from review_app.texts import status_label, text

if TYPE_CHECKING:
    from review_app.session import PageContext

__all__ = ["RESULT_KEY", "SEARCH_PAGE", "render_search"]

log = logging.getLogger(__name__)

# Session-state key of the last SearchResult, kept so that the results stay while a card is opened.
RESULT_KEY = "se_result"
# URL path of this page in review_app/app.py.
SEARCH_PAGE = "search"
LOG_DAYS_KEY = "se_log_days"

KIND_TEXT_IDS = {
    SearchKind.NAME: "se_kind_name",
    SearchKind.DOCUMENT: "se_kind_document",
    SearchKind.ROOM: "se_kind_room",
    SearchKind.DATE: "se_kind_date",
}
HELP_TEXT_IDS = {
    SearchKind.NAME: "se_query_help_name",
    SearchKind.DOCUMENT: "se_query_help_document",
    SearchKind.ROOM: "se_query_help_room",
}


def _kind_label(kind: SearchKind | str, language: str | None = None) -> str:
    return text(KIND_TEXT_IDS[SearchKind(kind)], language or lang())


def _kind_labeller():
    """Return a format_func for kinds in the language of this run, so a later call outside the run agrees."""
    language = lang()
    return lambda kind: _kind_label(kind, language)


def _render_form(context: PageContext) -> None:
    kind = st.radio(
        tr("se_kind"), options=list(SearchKind), format_func=_kind_labeller(), horizontal=True, key="se_kind"
    )
    with st.form("se_form"):
        if kind == SearchKind.DATE:
            chosen = st.date_input(tr("se_date"), value=None, key="se_date")
            query = chosen.isoformat() if chosen else ""
        else:
            query = st.text_input(tr("se_query"), help=tr(HELP_TEXT_IDS[kind]), key="se_query")
        if not st.form_submit_button(tr("se_button")):
            return
    try:
        st.session_state[RESULT_KEY] = search_cards(context.store, kind, query, actor=context.user.name)
    except SearchError as exc:
        st.session_state.pop(RESULT_KEY, None)
        st.error(exc.message(lang()))


def _render_results(result: SearchResult) -> None:
    if not result.hits:
        st.info(tr("se_none"))
        return
    if result.total > len(result.hits):
        st.caption(tr("se_count_cut", count=result.total, shown=MAX_HITS))
    else:
        st.caption(tr("se_count", count=result.total))

    widths = [0.8, 3, 1, 1.4, 1.6, 1.2, 1.4, 0.9]
    header = st.columns(widths, vertical_alignment="center")
    titles = ("se_col_card", "se_col_name", "se_col_room", "se_col_arrival", "se_col_document", "se_col_status", "se_col_batch")
    for column, text_id in zip(header, titles):
        column.markdown(f"**{tr(text_id)}**")
    for hit in result.hits:
        row = st.columns(widths, vertical_alignment="center")
        row[0].write(f"#{hit.card_id}")
        row[1].write(hit.name or "—")
        row[2].write(hit.room_number or "—")
        row[3].write(hit.arrival_date or "—")
        row[4].write(hit.document_masked or "—")
        row[5].write(status_label(hit.status, lang()))
        row[6].write(hit.batch)
        if row[7].button(tr("se_open"), key=f"se_open_{hit.card_id}"):
            # After the card is approved or rejected, the reviewer comes back to these results.
            open_card_from(hit.card_id, SEARCH_PAGE)


def _render_log(context: PageContext) -> None:
    """Show the search log to supervisors, filtered by days and optionally by the hash of a value."""
    st.divider()
    st.subheader(tr("se_log_title"))
    days_column, kind_column, value_column = st.columns([1, 1.4, 3])
    days = days_column.number_input(tr("se_log_days"), min_value=1, max_value=3660, value=30, step=1, key=LOG_DAYS_KEY)
    check_kind = kind_column.selectbox(
        tr("se_kind"), options=list(SearchKind), format_func=_kind_labeller(), key="se_log_kind"
    )
    value = value_column.text_input(tr("se_log_check"), help=tr("se_log_check_help"), key="se_log_value")
    digest = query_digest(context.store, check_kind, value) if value.strip() else None

    entries = search_log(context.store, days=int(days), query_hmac=digest)
    zone = page_config().deadline.zone
    if not entries:
        st.info(tr("se_log_empty"))
        return
    frame = pd.DataFrame(
        [
            {
                tr("se_col_at"): entry.at.replace(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                tr("se_col_actor"): entry.actor,
                tr("se_col_kind"): _kind_label(entry.kind),
                tr("se_col_query"): entry.query_masked,
                tr("se_col_results"): entry.result_count,
            }
            for entry in entries
        ]
    )
    st.dataframe(frame, hide_index=True, key="se_log")


def render_search(context: PageContext) -> None:
    """Draw the search form, the last search's results and, for supervisors, the search log."""
    st.header(tr("se_title"))
    st.caption(tr("se_logged"))
    _render_form(context)
    result = st.session_state.get(RESULT_KEY)
    if result is not None:
        _render_results(result)
    if role_allows(context.user.role, Role.SUPERVISOR):
        _render_log(context)
