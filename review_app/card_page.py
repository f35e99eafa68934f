"""Card page: the scan with its field boxes, the flagged fields to correct, and the review actions.

The form shows the card as it was loaded (kept in session state). Every save
sends that version as ``expected_version``, so a card that someone else saved
in the meantime raises :class:`StaleVersionError` and nothing is overwritten.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

import streamlit as st
from PIL import Image

from models.batch import CardDetail
from models.card import CardStatus
from models.card_type import CardTypeSpec, FieldSpec
from ocr.errors import CardCaptureError, StaleVersionError, StoreError
from ocr.registry import Registry
from ocr.review import REJECT_REASONS, approve_card, correct_fields, reject_card
from ocr.store import Store
from review_app.scan_images import crop_field, draw_field_boxes, load_scan
from review_app.session import (
    LOADED_KEY,
    OPENED_FLAGS_KEY,
    lang,
    open_card,
    open_queue,
    push_flash,
    reviewer_or_warn,
    show_flash,
    tr,
)
from review_app.texts import status_label

__all__ = ["EDITABLE_STATUSES", "entries_to_send", "field_widget_key", "render_card"]

# States in which a reviewer may change a card. approve_card accepts the same states.
EDITABLE_STATUSES = (CardStatus.NEEDS_REVIEW, CardStatus.AUTO_ACCEPTED, CardStatus.EXTRACTED)

log = logging.getLogger(__name__)

REJECT_TEXT_IDS = {"rescan": "reject_rescan", "front_desk": "reject_front_desk"}


def field_widget_key(key: str) -> str:
    """Return the session-state key of the text input for field ``key``."""
    return f"field_{key}"


# Loading and navigation.


def _load_into_form(card: CardDetail) -> CardDetail:
    """Put the card's stored values into the field inputs and remember the card as loaded."""
    for key, result in card.fields.items():
        st.session_state[field_widget_key(key)] = result.value
    st.session_state[LOADED_KEY] = card
    opened = st.session_state.get(OPENED_FLAGS_KEY)
    if opened is None or opened[0] != card.id:
        st.session_state[OPENED_FLAGS_KEY] = (card.id, tuple(card.flagged_keys))
    return card


def _review_keys(card: CardDetail, spec: CardTypeSpec) -> list[str]:
    """Return the fields to show one by one: flagged now, or flagged when the reviewer opened the card.

    A field stays in this list after its correction passes, so the reviewer still
    sees what they changed.
    """
    opened_id, opened_keys = st.session_state.get(OPENED_FLAGS_KEY, (card.id, ()))
    earlier = set(opened_keys) if opened_id == card.id else set()
    return [key for key in card.fields if key in spec.keys and (card.fields[key].needs_review or key in earlier)]


def _form_keys(card: CardDetail, registry: Registry) -> list[str]:
    """Return the keys of the fields that get a text input: those its card type defines."""
    spec = registry.card_types.get(card.card_type)
    if spec is None:
        return []
    return [key for key in card.fields if key in spec.keys]


def _loaded_card(store: Store, registry: Registry, card_id: int) -> CardDetail | None:
    """Return the card the form is based on, loaded from the store when needed, or None when the card is gone.

    Streamlit drops the state of inputs that were not drawn in the last run
    (for example while the queue was shown), so missing inputs mean a reload.
    """
    loaded: CardDetail | None = st.session_state.get(LOADED_KEY)
    if loaded is not None and loaded.id == card_id:
        if all(field_widget_key(key) in st.session_state for key in _form_keys(loaded, registry)):
            return loaded
    try:
        return _load_into_form(store.get_card(card_id))
    except StoreError:
        return None


def _forget_loaded() -> None:
    """Make the next run reload the card from the store (used as a button callback)."""
    st.session_state.pop(LOADED_KEY, None)


def _go_to_next_card(store: Store, card: CardDetail) -> None:
    """Open the oldest card of the same batch that still needs review, or the queue when none is left."""
    remaining = [
        summary
        for summary in store.list_cards(batch=card.batch, statuses=[CardStatus.NEEDS_REVIEW])
        if summary.id != card.id
    ]
    if remaining:
        open_card(remaining[0].id)
    else:
        open_queue()


# Display helpers.


def _labels(spec: FieldSpec) -> tuple[str, str]:
    """Return (label in the chosen language, label in the other one)."""
    if lang() == "en":
        return spec.label_en, spec.label_zh
    return spec.label_zh, spec.label_en


def _show_card_header(card: CardDetail, spec: CardTypeSpec | None) -> None:
    st.header(tr("card_heading", card_id=card.id))
    card_type = card.card_type
    if spec is not None:
        card_type = spec.title_en if lang() == "en" else spec.title_zh
    st.caption(
        tr(
            "card_meta",
            batch=card.batch,
            source=Path(card.source).name,
            page=card.page,
            card_type=card_type,
            status=status_label(card.status, lang()),
            version=card.version,
        )
    )


def _show_card_reasons(card: CardDetail) -> None:
    if not card.card_reasons:
        return
    items = "\n".join(f"- {reason}" for reason in card.card_reasons)
    st.warning(f"**{tr('card_reasons')}**\n\n{items}")


def _show_scan(card: CardDetail, scan: Image.Image | None) -> None:
    if scan is None:
        st.warning(tr("scan_missing", path=card.straight_image))
        return
    st.image(draw_field_boxes(scan, card.fields.values()), caption=tr("scan"), width="stretch")


def _show_flagged_field(card: CardDetail, spec: FieldSpec, scan: Image.Image | None) -> None:
    """Show one field to check: its crop beside its labels, reason (or that it passes now) and text input."""
    result = card.fields[spec.key]
    primary, secondary = _labels(spec)
    with st.container(border=True):
        crop_column, input_column = st.columns([1, 1], vertical_alignment="center")
        crop = crop_field(scan, result.box) if scan is not None else None
        if crop is not None:
            crop_column.image(crop, width="stretch")
        else:
            crop_column.caption(tr("no_box"))
        input_column.markdown(
            f"**{html.escape(primary)}** <span style='font-size:0.8em;color:#6b7280'>{html.escape(secondary)}</span>",
            unsafe_allow_html=True,
        )
        if result.reason:
            # Reasons are stored in Chinese only, so English mode adds the problem codes.
            reason = html.escape(result.reason)
            if lang() == "en" and result.reason_codes:
                reason += " (" + html.escape(", ".join(result.reason_codes)) + ")"
            input_column.markdown(
                f"<span style='color:#b42318;font-size:0.9em'>{reason}</span>", unsafe_allow_html=True
            )
        elif not result.needs_review:
            input_column.markdown(
                f"<span style='color:#15803d;font-size:0.9em'>✓ {html.escape(tr('field_passes'))}</span>",
                unsafe_allow_html=True,
            )
        if result.needs_review and result.candidates:
            # Candidates are only shown; the reviewer types or pastes the one that matches the scan.
            shown = "　".join(f"{number}) {html.escape(value)}" for number, value in enumerate(result.candidates, 1))
            input_column.markdown(
                f"<span style='font-size:0.9em'>{html.escape(tr('candidates'))}：{shown}</span>",
                unsafe_allow_html=True,
            )
        input_column.text_input(primary, key=field_widget_key(spec.key), label_visibility="collapsed")


def _show_other_fields(keys: list[str], spec: CardTypeSpec) -> None:
    with st.expander(tr("other_fields", count=len(keys)), expanded=False):
        columns = st.columns(2)
        for index, key in enumerate(keys):
            primary, secondary = _labels(spec.field(key))
            columns[index % 2].text_input(f"{primary} · {secondary}", key=field_widget_key(key))


# Actions.


def _typed_values(card: CardDetail, registry: Registry) -> dict[str, str]:
    return {key: st.session_state.get(field_widget_key(key), "") for key in _form_keys(card, registry)}


def entries_to_send(card: CardDetail, typed: dict[str, str]) -> dict[str, str]:
    """Return the fields to save: every changed field, and every flagged one (unchanged counts as confirmed)."""
    flagged = set(card.flagged_keys)
    return {key: value for key, value in typed.items() if key in flagged or value != card.fields[key].value}


def _save(store: Store, registry: Registry, card: CardDetail, actor: str) -> int:
    """Save the form's corrections on top of the loaded version and return the card's version afterwards."""
    entries = entries_to_send(card, _typed_values(card, registry))
    if not entries:
        return card.version
    return correct_fields(
        store, card.id, entries, actor=actor, expected_version=card.version, registry=registry
    )


def _show_action_error(card: CardDetail, action: str, exc: CardCaptureError) -> None:
    log.warning("card %s: %s failed: %s", card.id, action, exc.message_en)
    st.error(exc.message(lang()))
    if isinstance(exc, StaleVersionError):
        st.button(tr("reload"), key="reload_card", on_click=_forget_loaded)


def _handle_save(store: Store, registry: Registry, card: CardDetail) -> None:
    actor = reviewer_or_warn()
    if actor is None:
        return
    try:
        version = _save(store, registry, card, actor)
    except CardCaptureError as exc:
        _show_action_error(card, "save", exc)
        return
    if version == card.version:
        st.info(tr("nothing_to_save"))
        return
    push_flash("success", tr("saved", card_id=card.id, version=version))
    _forget_loaded()
    st.rerun()


def _handle_approve(store: Store, registry: Registry, card: CardDetail) -> None:
    actor = reviewer_or_warn()
    if actor is None:
        return
    try:
        version = _save(store, registry, card, actor)
    except CardCaptureError as exc:
        _show_action_error(card, "save before approve", exc)
        return
    try:
        approve_card(store, card.id, actor=actor, expected_version=version, registry=registry)
    except CardCaptureError as exc:
        if version == card.version:
            _show_action_error(card, "approve", exc)
            return
        log.warning("card %s: approve failed after saving version %s: %s", card.id, version, exc.message_en)
        # The corrections are stored already: show them, reloaded, with the reason approval failed.
        push_flash("success", tr("saved", card_id=card.id, version=version))
        push_flash("error", exc.message(lang()))
        _forget_loaded()
        st.rerun()
    push_flash("success", tr("approved", card_id=card.id))
    _go_to_next_card(store, card)
    st.rerun()


def _handle_reject(store: Store, card: CardDetail, kind: str, note: str) -> None:
    actor = reviewer_or_warn()
    if actor is None:
        return
    try:
        reject_card(store, card.id, actor=actor, expected_version=card.version, kind=kind, note=note.strip())
    except CardCaptureError as exc:
        _show_action_error(card, "reject", exc)
        return
    push_flash("success", tr("rejected", card_id=card.id, reason=tr(REJECT_TEXT_IDS[kind])))
    _go_to_next_card(store, card)
    st.rerun()


# Page sections.


def _render_reject(store: Store, card: CardDetail) -> None:
    st.subheader(tr("reject_heading"))
    with st.form(key=f"reject_form_{card.id}", border=True):
        kind = st.radio(
            tr("reject_kind"),
            options=list(REJECT_REASONS),
            format_func=lambda option: tr(REJECT_TEXT_IDS[option]),
            key="reject_kind",
            horizontal=True,
        )
        note = st.text_input(tr("reject_note"), key="reject_note")
        submitted = st.form_submit_button(tr("reject"), key="reject")
    if submitted:
        _handle_reject(store, card, kind, note)


def _render_editor(
    store: Store, registry: Registry, card: CardDetail, spec: CardTypeSpec, scan: Image.Image | None
) -> None:
    to_check = _review_keys(card, spec)
    others = [key for key in card.fields if key not in to_check and key in spec.keys]
    flagged_count = sum(1 for key in to_check if card.fields[key].needs_review)

    with st.form(key=f"card_form_{card.id}", border=False):
        st.subheader(tr("flagged_heading", count=flagged_count))
        if not flagged_count:
            st.info(tr("no_flagged"))
        for key in to_check:
            _show_flagged_field(card, spec.field(key), scan)
        _show_other_fields(others, spec)

        save_column, approve_column = st.columns(2)
        # Enter in a form field clicks the form's first submit button (st.form docs,
        # Streamlit 1.67), so with Save first, Enter saves and never approves.
        save = save_column.form_submit_button(tr("save"), key="save", width="stretch")
        approve = approve_column.form_submit_button(tr("approve"), key="approve", type="primary", width="stretch")

    if save:
        _handle_save(store, registry, card)
    elif approve:
        _handle_approve(store, registry, card)


def render_card(store: Store, registry: Registry, card_id: int) -> None:
    """Show card ``card_id`` for review; return to the queue when it no longer exists."""
    st.button(tr("back_to_queue"), key="back_to_queue", on_click=open_queue)
    card = _loaded_card(store, registry, card_id)
    if card is None:
        push_flash("warning", tr("card_not_found", card_id=card_id))
        open_queue()
        st.rerun()

    spec = registry.card_types.get(card.card_type)
    _show_card_header(card, spec)
    show_flash()
    _show_card_reasons(card)

    scan = load_scan(card.straight_image)
    if card.status not in EDITABLE_STATUSES:
        st.info(tr("not_reviewable", status=status_label(card.status, lang())))
        _show_scan(card, scan)
        return

    if spec is None:
        st.error(tr("unknown_type", card_type=card.card_type))
        st.text_area(tr("full_text"), value=card.full_text, height=240, disabled=True, key="full_text")
        _show_scan(card, scan)
        _render_reject(store, card)
        return

    scan_column, form_column = st.columns([1, 1], gap="large")
    with scan_column:
        _show_scan(card, scan)
    with form_column:
        _render_editor(store, registry, card, spec, scan)
        _render_reject(store, card)
