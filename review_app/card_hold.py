"""The hold a browser session has on the card it shows (see :mod:`ocr.holds`).

A page that shows a card for editing calls :func:`hold_card` on every run, which
takes or renews the hold. After the page is drawn, :func:`release_unused_hold`
ends the hold of a card this run did not show, so leaving a card (another card,
another page, the queue) releases it. A run cut short by ``st.rerun`` does not
reach that step and releases nothing, so a hold never lapses between the run
that asked for a rerun and the run that follows.
"""

from __future__ import annotations

import logging

import streamlit as st

from ocr.accounts import Account
from ocr.holds import CardHeldError, release_hold, take_hold
from ocr.store import Store
from review_app.session import PageContext

__all__ = ["begin_run", "drop_hold", "hold_card", "release_unused_hold"]

log = logging.getLogger(__name__)

# Card id this browser session holds.
HELD_KEY = "held_card"
# Card id a page held during the current run.
SHOWN_KEY = "held_card_shown"


def begin_run() -> None:
    """Forget which card the previous run showed; call before the page is drawn."""
    st.session_state[SHOWN_KEY] = None


def hold_card(context: PageContext, card_id: int) -> CardHeldError | None:
    """Take or renew this user's hold on ``card_id``; return the error naming the other holder when that fails."""
    held = st.session_state.get(HELD_KEY)
    if held is not None and held != card_id:
        release_hold(context.store, held, holder=context.user.name)
        st.session_state[HELD_KEY] = None
    try:
        take_hold(context.store, card_id, context.user.name)
    except CardHeldError as exc:
        return exc
    st.session_state[HELD_KEY] = card_id
    st.session_state[SHOWN_KEY] = card_id
    return None


def drop_hold(context: PageContext, card_id: int) -> None:
    """End this user's hold on ``card_id`` (after approving or rejecting it)."""
    release_hold(context.store, card_id, holder=context.user.name)
    if st.session_state.get(HELD_KEY) == card_id:
        st.session_state[HELD_KEY] = None


def release_unused_hold(store: Store, user: Account) -> None:
    """End the hold on the card this session held before, when the run that just ended did not show it."""
    held = st.session_state.get(HELD_KEY)
    if held is None or held == st.session_state.get(SHOWN_KEY):
        return
    release_hold(store, held, holder=user.name)
    st.session_state[HELD_KEY] = None
    log.info("card %s hold released on leaving by=%s", held, user.name)
