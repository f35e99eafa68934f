"""Field queue: the flagged fields of a batch one at a time, worst first, answered by keyboard alone.

Each field shows the crop of the scan beside the suggested value, the reason
it was flagged and the candidates. Keys, also listed on the page:

- Enter accepts the value in the input. The suggestion is selected when the
  field appears, so typing replaces it and Enter then saves what was typed.
- Alt+1, Alt+2, Alt+3 take candidate 1 to 3.
- Alt+X marks the field illegible: the card stays out of approval and is
  listed for return to the front desk.
- Alt+O opens the whole card.

After each answer the input of the next field has the focus. When the last
flagged field of a card is answered, the card view opens so the reviewer can
check the whole record and approve it (Alt+A), then comes back here. Taking
a field holds its card for the reviewer; cards held by someone else are
skipped.

A field whose only problems are a card serial shared with another card or a
rule to confirm as true (a visa that ends before departure) cannot be settled
here, because the queue has no reject action and no confirmation with a
reason. Answering it with a value that still has such a problem saves nothing:
the field is skipped for the rest of the session and listed below the queue
with a button that opens its card. A typed value that clears the problem is
saved as usual.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from models.batch import CardDetail
from models.card import CardStatus
from models.card_type import FieldSpec
from ocr.errors import CardCaptureError
from ocr.holds import active_holds
from ocr.review import (
    QueuedField,
    confirmable_codes,
    correct_fields,
    flagged_fields,
    illegible_keys,
    mark_illegible,
    needs_card_view,
    preview_answer,
)
from ocr.store import Store
from review_app.card_hold import hold_card
from review_app.card_page import open_card_from
from review_app.keys import Shortcut, keyboard_bridge
from review_app.queue_page import choose_batch
from review_app.scan_images import crop_field, load_scan
from review_app.session import PageContext, lang, push_flash, show_flash, tr

__all__ = ["MAX_CANDIDATES", "answer_input_key", "render"]

log = logging.getLogger(__name__)

# Candidates offered with a key each (Alt+1 … Alt+3).
MAX_CANDIDATES = 3
# Fields listed after the current one, so the reviewer sees what comes next.
UPCOMING_SHOWN = 5
# Scan pixels kept around the field's box: enough to see the printed label and the neighbours.
CONTEXT_MARGIN_PX = 40
# The last answer, shown above the next field: (card id, field label, value, or None for illegible).
LAST_ANSWER_KEY = "field_queue_last"
# Fields left for the card view in this session, as (card id, field key, card version): a new card version takes them back.
CARD_VIEW_KEY = "field_queue_card_view"


@dataclass(frozen=True)
class LastAnswer:
    card_id: int
    label: str
    value: str | None


def answer_input_key(item: QueuedField) -> str:
    """Return the widget key of the answer input of ``item``; it changes with the card version, so a new version starts fresh."""
    return f"answer_{item.card.id}_{item.key}_{item.card.version}"


def _batch_cards(store: Store, batch: str) -> list[CardDetail]:
    """Load the cards of ``batch`` that need review and have a flagged field."""
    return [
        store.get_card(summary.id)
        for summary in store.list_cards(batch=batch, statuses=[CardStatus.NEEDS_REVIEW])
        if summary.flagged_fields
    ]


def _labels(spec: FieldSpec) -> tuple[str, str]:
    if lang() == "en":
        return spec.label_en, spec.label_zh
    return spec.label_zh, spec.label_en


def _field_spec(context: PageContext, item: QueuedField) -> FieldSpec:
    return context.registry.card_type(item.card.card_type).field(item.key)


def _left_for_card_view() -> set[tuple[int, str, int]]:
    return st.session_state.setdefault(CARD_VIEW_KEY, set())


def _is_left_for_card_view(item: QueuedField) -> bool:
    return (item.card.id, item.key, item.card.version) in _left_for_card_view()


# Answers.


def _after_answer(context: PageContext, card_id: int) -> None:
    """Go on after a submitted value: the next field, or the card view when the queue has no field of the card left."""
    card = context.store.get_card(card_id)
    illegible = illegible_keys(card)
    left = {key for card_key, key, version in _left_for_card_view() if card_key == card.id and version == card.version}
    if any(key not in illegible and key not in left for key in card.flagged_keys):
        st.rerun()
    if illegible:
        push_flash("warning", tr("card_to_front_desk", card_id=card.id))
        st.rerun()
    if left & set(card.flagged_keys):
        push_flash("info", tr("card_ready_to_confirm", card_id=card.id))
    else:
        push_flash("info", tr("card_ready", card_id=card.id))
    open_card_from(card.id, "fields")


def _leave_for_card_view(item: QueuedField, label: str) -> None:
    """Skip ``item`` for this session, with a message on the next run that it waits for the card view."""
    _left_for_card_view().add((item.card.id, item.key, item.card.version))
    log.info("card %s field %s needs the card view and is skipped in the field queue", item.card.id, item.key)
    push_flash("warning", tr("field_needs_card_view", card_id=item.card.id, label=label))
    st.rerun()


def _answer(context: PageContext, item: QueuedField, value: str) -> None:
    """Save ``value`` for the field, unless it still breaks a rule; then go on."""
    spec = _field_spec(context, item)
    preview = preview_answer(context.store, item.card, {item.key: value}, context.registry)[item.key]
    if needs_card_view(preview):
        _leave_for_card_view(item, _labels(spec)[0])
    if preview.needs_review:
        st.error(tr("answer_fails", reason=preview.reason.rstrip("。")))
        return
    try:
        correct_fields(
            context.store,
            item.card.id,
            {item.key: value},
            actor=context.user.name,
            expected_version=item.card.version,
            registry=context.registry,
        )
    except CardCaptureError as exc:
        log.warning("card %s field %s: saving the answer failed: %s", item.card.id, item.key, exc.message_en)
        push_flash("error", exc.message(lang()))
        st.rerun()
    st.session_state[LAST_ANSWER_KEY] = LastAnswer(item.card.id, _labels(spec)[0], preview.value)
    _after_answer(context, item.card.id)


def _mark(context: PageContext, item: QueuedField) -> None:
    spec = _field_spec(context, item)
    try:
        mark_illegible(
            context.store,
            item.card.id,
            [item.key],
            actor=context.user.name,
            expected_version=item.card.version,
            registry=context.registry,
        )
    except CardCaptureError as exc:
        log.warning("card %s field %s: illegible mark failed: %s", item.card.id, item.key, exc.message_en)
        push_flash("error", exc.message(lang()))
        st.rerun()
    st.session_state[LAST_ANSWER_KEY] = LastAnswer(item.card.id, _labels(spec)[0], None)
    _after_answer(context, item.card.id)


# Page sections.


def _show_last_answer() -> None:
    last: LastAnswer | None = st.session_state.get(LAST_ANSWER_KEY)
    if last is None:
        return
    if last.value is None:
        st.caption(tr("last_illegible", card_id=last.card_id, label=last.label))
    else:
        st.caption(tr("last_answer", card_id=last.card_id, label=last.label, value=last.value or tr("blank")))


def _render_field(context: PageContext, item: QueuedField) -> None:
    """Show the current field and its answer form, and act on the answer."""
    card, result = item.card, item.result
    primary, secondary = _labels(_field_spec(context, item))
    candidates = result.candidates[:MAX_CANDIDATES]

    with st.container(border=True):
        crop_column, answer_column = st.columns([3, 2], gap="large", vertical_alignment="center")
        scan = load_scan(card.straight_image)
        crop = crop_field(scan, result.box, CONTEXT_MARGIN_PX) if scan is not None else None
        if crop is not None:
            crop_column.image(crop, width="stretch")
        else:
            crop_column.caption(tr("no_box"))
        crop_column.caption(tr("field_of_card", card_id=card.id, source=Path(card.source).name, page=card.page))

        answer_column.markdown(
            f"### {html.escape(primary)} <span style='font-size:0.6em;color:#6b7280'>{html.escape(secondary)}</span>",
            unsafe_allow_html=True,
        )
        reason = html.escape(result.reason)
        if lang() == "en" and result.reason_codes:
            reason += " (" + html.escape(", ".join(result.reason_codes)) + ")"
        answer_column.markdown(f"<span style='color:#b42318'>{reason}</span>", unsafe_allow_html=True)
        if confirmable_codes({item.key: result}):
            # The stored reason points to the card view's confirmation box, which this page does not have.
            answer_column.warning(tr("field_confirm_in_card"))
        answer_column.caption(tr("confidence", value=f"{result.confidence:.2f}"))

        with answer_column.form(key=f"answer_form_{card.id}_{item.key}", border=False):
            typed = st.text_input(primary, value=result.value, key=answer_input_key(item), label_visibility="collapsed")
            # Enter in the input clicks the form's first submit button, so "accept" comes first.
            accept = st.form_submit_button(tr("accept"), key="accept", type="primary")
            picks = [
                st.form_submit_button(tr("pick_candidate", number=number, value=value), key=f"pick_{number}")
                for number, value in enumerate(candidates, 1)
            ]
            illegible = st.form_submit_button(tr("mark_illegible"), key="illegible")
            open_whole = st.form_submit_button(tr("open_whole_card"), key="open_card")

    if illegible:
        _mark(context, item)
    elif open_whole:
        open_card_from(card.id, "fields")
    elif accept:
        _answer(context, item, typed)
    else:
        for number, pressed in enumerate(picks, 1):
            if pressed:
                _answer(context, item, candidates[number - 1])

    shortcuts = {f"Digit{number}": Shortcut(click=f"pick_{number}") for number in range(1, len(candidates) + 1)}
    shortcuts["KeyX"] = Shortcut(click="illegible")
    shortcuts["KeyO"] = Shortcut(click="open_card")
    keyboard_bridge(shortcuts, focus=answer_input_key(item))


def _render_upcoming(context: PageContext, items: list[QueuedField]) -> None:
    if not items:
        return
    st.markdown(f"**{tr('upcoming')}**")
    lines = []
    for item in items[:UPCOMING_SHOWN]:
        label = _labels(_field_spec(context, item))[0]
        lines.append(
            f"- #{item.card.id} · {html.escape(label)} · `{html.escape(item.result.value) or '—'}` · "
            f"<span style='color:#b42318'>{html.escape(item.result.reason)}</span>"
        )
    st.markdown("\n".join(lines), unsafe_allow_html=True)


def _render_card_view_list(context: PageContext, items: list[QueuedField]) -> None:
    """List the fields left for the card view, each with a button that opens its card."""
    if not items:
        return
    st.subheader(tr("card_view_heading", count=len(items)))
    for item in items:
        label = _labels(_field_spec(context, item))[0]
        row = st.columns([4, 1], vertical_alignment="center")
        row[0].markdown(
            f"#{item.card.id} · {html.escape(label)} · <span style='color:#b42318'>{html.escape(item.result.reason)}</span>",
            unsafe_allow_html=True,
        )
        if row[1].button(tr("open"), key=f"card_view_{item.card.id}_{item.key}"):
            open_card_from(item.card.id, "fields")


def _render_front_desk(context: PageContext, cards: list[CardDetail]) -> None:
    """List the cards with fields marked illegible, each with a button to open it for return to the front desk."""
    waiting = [(card, illegible_keys(card)) for card in cards]
    waiting = [(card, keys) for card, keys in waiting if keys]
    if not waiting:
        return
    st.subheader(tr("front_desk_heading", count=len(waiting)))
    spec_of = context.registry.card_types
    for card, keys in waiting:
        spec = spec_of.get(card.card_type)
        labels = "、".join(spec.field(key).label_zh if spec is not None else key for key in keys)
        row = st.columns([4, 1], vertical_alignment="center")
        row[0].write(tr("front_desk_row", card_id=card.id, source=Path(card.source).name, fields=labels))
        if row[1].button(tr("open"), key=f"front_desk_{card.id}"):
            open_card_from(card.id, "fields")


def render(context: PageContext) -> None:
    """Draw the field queue of the chosen batch."""
    store = context.store
    st.header(tr("fields_title"))
    show_flash()

    batches = store.list_batches()
    if not batches:
        st.info(tr("no_batches"))
        return
    batch = choose_batch(batches, "fields_batch")
    cards = _batch_cards(store, batch)
    items = flagged_fields(cards, context.registry)
    holds = active_holds(store, {item.card.id for item in items})
    free = [item for item in items if item.card.id not in holds or holds[item.card.id].holder == context.user.name]
    left = [item for item in free if _is_left_for_card_view(item)]
    free = [item for item in free if not _is_left_for_card_view(item)]

    current = None
    # Cards someone else took since the holds were read.
    taken: set[int] = set()
    for item in free:
        if item.card.id in taken:
            continue
        if hold_card(context, item.card.id) is None:
            current = item
            break
        taken.add(item.card.id)
    free = [item for item in free if item.card.id not in taken]

    held_elsewhere = len(items) - len(free) - len(left)
    _show_last_answer()
    if current is None:
        if left:
            st.success(tr("fields_done_but_card_view", batch=batch, count=len(left)))
        else:
            st.success(tr("fields_done", batch=batch))
        if held_elsewhere:
            st.info(tr("fields_held_elsewhere", count=held_elsewhere))
        _render_card_view_list(context, left)
        _render_front_desk(context, cards)
        return

    progress = tr("fields_progress", count=len(free), cards=len({item.card.id for item in free}))
    if held_elsewhere:
        progress += " " + tr("fields_held_elsewhere", count=held_elsewhere)
    st.caption(progress)
    st.info(tr("fields_keys"))
    _render_field(context, current)
    _render_upcoming(context, [item for item in free if item is not current])
    _render_card_view_list(context, left)
    _render_front_desk(context, cards)
