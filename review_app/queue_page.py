"""Queue page: the cards of one batch that need review, oldest first."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from models.batch import BatchSummary
from models.card import CardStatus
from ocr.store import Store
from review_app.session import open_card, show_flash, tr

__all__ = ["BATCH_KEY", "render_queue"]

BATCH_KEY = "batch"


def _default_batch_index(batches: list[BatchSummary]) -> int:
    """Return the index of the oldest batch with cards to review, else of the newest batch."""
    for index, batch in enumerate(batches):
        if batch.counts.get(CardStatus.NEEDS_REVIEW, 0):
            return index
    return len(batches) - 1


def _choose_batch(batches: list[BatchSummary]) -> str:
    names = [batch.name for batch in batches]
    pending = {batch.name: batch.counts.get(CardStatus.NEEDS_REVIEW, 0) for batch in batches}
    if st.session_state.get(BATCH_KEY) not in names:
        st.session_state[BATCH_KEY] = names[_default_batch_index(batches)]
    return st.selectbox(
        tr("batch"),
        options=names,
        key=BATCH_KEY,
        format_func=lambda name: f"{name}（{pending[name]}）",
    )


def render_queue(store: Store) -> None:
    """Show the batch selector and the batch's cards in state needs_review, each with an open button."""
    st.header(tr("queue_title"))
    show_flash()

    batches = store.list_batches()
    if not batches:
        st.info(tr("no_batches"))
        return
    batch = _choose_batch(batches)

    cards = store.list_cards(batch=batch, statuses=[CardStatus.NEEDS_REVIEW])
    if not cards:
        st.success(tr("queue_empty", batch=batch))
        return
    st.caption(tr("queue_count", batch=batch, count=len(cards)))

    widths = [1, 4, 2, 3, 1.4]
    header = st.columns(widths, vertical_alignment="center")
    for column, text_id in zip(header, ("col_card", "col_source", "col_flagged", "col_created")):
        column.markdown(f"**{tr(text_id)}**")

    for card in cards:
        row = st.columns(widths, vertical_alignment="center")
        row[0].write(f"#{card.id}")
        row[1].write(f"{Path(card.source).name} · p{card.page}")
        row[2].write(tr("flagged_count", count=card.flagged_fields))
        row[3].write(card.created_at.strftime("%Y-%m-%d %H:%M UTC"))
        if row[4].button(tr("open"), key=f"open_{card.id}"):
            open_card(card.id)
            st.rerun()
