"""Cards page: the cards of one batch that need review, oldest first, and the card view of the card opened."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from models.batch import BatchSummary
from models.card import CardStatus
from ocr.holds import active_holds
from ocr.review import illegible_keys
from review_app.card_page import RETURN_KEY, render_card
from review_app.session import PageContext, current_card_id, open_card, show_flash, tr

__all__ = ["BATCH_KEY", "choose_batch", "render", "render_queue"]

# The batch chosen on any page; each page's selector writes it.
BATCH_KEY = "batch"


def _default_batch_index(batches: list[BatchSummary]) -> int:
    """Return the index of the oldest batch with cards to review, else of the newest batch."""
    for index, batch in enumerate(batches):
        if batch.counts.get(CardStatus.NEEDS_REVIEW, 0):
            return index
    return len(batches) - 1


def _remember_batch(widget_key: str) -> None:
    st.session_state[BATCH_KEY] = st.session_state[widget_key]


def choose_batch(batches: list[BatchSummary], widget_key: str) -> str:
    """Show a batch selector (each page its own ``widget_key``) that starts at the batch chosen last on any page."""
    names = [batch.name for batch in batches]
    pending = {batch.name: batch.counts.get(CardStatus.NEEDS_REVIEW, 0) for batch in batches}
    chosen = st.session_state.get(BATCH_KEY)
    if chosen not in names:
        chosen = names[_default_batch_index(batches)]
        st.session_state[BATCH_KEY] = chosen
    # A selector not drawn in the last run loses its state, so it starts from the remembered batch.
    if st.session_state.get(widget_key) not in names:
        st.session_state[widget_key] = chosen
    return st.selectbox(
        tr("batch"),
        options=names,
        key=widget_key,
        format_func=lambda name: f"{name}（{pending[name]}）",
        on_change=_remember_batch,
        args=(widget_key,),
    )


def render_queue(context: PageContext) -> None:
    """Show the batch selector and the batch's cards in state needs_review, each with an open button."""
    store = context.store
    st.header(tr("queue_title"))
    show_flash()

    batches = store.list_batches()
    if not batches:
        st.info(tr("no_batches"))
        return
    batch = choose_batch(batches, "cards_batch")

    cards = store.list_cards(batch=batch, statuses=[CardStatus.NEEDS_REVIEW])
    if not cards:
        st.success(tr("queue_empty", batch=batch))
        return
    st.caption(tr("queue_count", batch=batch, count=len(cards)))
    holds = active_holds(store, [card.id for card in cards])

    widths = [1, 4, 2, 2, 3, 1.4]
    header = st.columns(widths, vertical_alignment="center")
    for column, text_id in zip(header, ("col_card", "col_source", "col_flagged", "col_holder", "col_created")):
        column.markdown(f"**{tr(text_id)}**")

    for card in cards:
        row = st.columns(widths, vertical_alignment="center")
        row[0].write(f"#{card.id}")
        row[1].write(f"{Path(card.source).name} · p{card.page}")
        illegible = len(illegible_keys(store.get_card(card.id))) if card.flagged_fields else 0
        flagged = tr("flagged_count", count=card.flagged_fields)
        row[2].write(flagged + (" · " + tr("illegible_count", count=illegible) if illegible else ""))
        hold = holds.get(card.id)
        row[3].write(tr("held_by_short", name=hold.holder) if hold is not None else "")
        row[4].write(card.created_at.strftime("%Y-%m-%d %H:%M UTC"))
        if row[5].button(tr("open"), key=f"open_{card.id}"):
            open_card(card.id)
            st.session_state.pop(RETURN_KEY, None)
            st.rerun()


def render(context: PageContext) -> None:
    """Draw the cards page: the card view when a card is open, else the batch's list."""
    card_id = current_card_id()
    if card_id is None:
        render_queue(context)
    else:
        render_card(context, card_id)
