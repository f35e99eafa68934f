"""Card view: the scan with every field's box coloured by state, the whole record to edit, approve or reject.

The form shows the card as it was loaded (kept in session state). Every save
sends that version as ``expected_version``, so a card that someone else saved
in the meantime raises :class:`StaleVersionError` and nothing is overwritten.
Showing an editable card holds it for the signed-in user (see
:mod:`review_app.card_hold`); while someone else holds it, the card is shown
read-only with the holder's name, and a supervisor may release the hold.

An exported (or approved) card can still be corrected or rejected, but not
approved again: the next export writes the correction or the cancellation. A
rule problem that describes a real situation (a visa that ends before
departure, a serial shared with another card) can be confirmed as true with a
written reason, which lets the card be approved.

Keys: Enter in a field saves, Alt+A approves, Alt+N and Alt+P move to the next
and previous field that needs attention, Alt+Q goes back. A click on a box in
the scan jumps to that field's input.
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
from ocr.accounts import Role, role_allows
from ocr.errors import CardCaptureError, StaleVersionError, StoreError
from ocr.holds import CardHeldError, release_hold
from ocr.review import (
    REJECT_REASONS,
    approve_card,
    confirm_values,
    confirmable_codes,
    correct_fields,
    duplicate_serial_cards,
    illegible_keys,
    reject_card,
    revalidate,
)
from ocr.store import PIPELINE_ACTOR
from review_app.card_hold import drop_hold, hold_card
from review_app.keys import Shortcut, keyboard_bridge
from review_app.navigation import GOTO_KEY, go_to_page
from review_app.scan_images import (
    STATE_COLORS,
    FieldState,
    OverlayBox,
    crop_field,
    field_state,
    load_scan,
    scan_overlay_html,
)
from review_app.session import (
    LOADED_KEY,
    OPENED_FLAGS_KEY,
    PageContext,
    lang,
    open_card,
    open_queue,
    push_flash,
    show_flash,
    tr,
)
from review_app.texts import status_label

__all__ = ["CORRECTABLE_STATUSES", "EDITABLE_STATUSES", "RETURN_KEY", "entries_to_send", "field_widget_key", "open_card_from", "render_card"]

# States in which a reviewer may change a card. approve_card accepts the same states.
EDITABLE_STATUSES = (CardStatus.NEEDS_REVIEW, CardStatus.AUTO_ACCEPTED, CardStatus.EXTRACTED)
# States in which a reviewer may correct or reject a card. Only those of EDITABLE_STATUSES can be approved.
CORRECTABLE_STATUSES = (*EDITABLE_STATUSES, CardStatus.APPROVED, CardStatus.EXPORTED)

log = logging.getLogger(__name__)

REJECT_TEXT_IDS = {"rescan": "reject_rescan", "front_desk": "reject_front_desk"}
REJECT_KIND_KEY = "reject_kind"
REJECT_NOTE_KEY = "reject_note"
CONFIRM_KEY = "confirm_true"
CONFIRM_NOTE_KEY = "confirm_note"
# URL path of the page to go back to after approving or rejecting, when the card was opened from another page.
RETURN_KEY = "card_return_page"
# Audit actions by which a person set or confirmed a field's value, or confirmed its rule problem as true.
PERSON_ACTIONS = ("correct", "confirm", "approve", "confirm_rule")


def field_widget_key(key: str) -> str:
    """Return the session-state key of the text input for field ``key``."""
    return f"field_{key}"


def open_card_from(card_id: int, return_page: str | None) -> None:
    """Show card ``card_id`` on the cards page; after approve or reject, go back to ``return_page`` (None: next card)."""
    open_card(card_id)
    st.session_state[RETURN_KEY] = return_page
    go_to_page("cards")


# Loading and navigation.


def _load_into_form(card: CardDetail) -> CardDetail:
    """Put the card's stored values into the field inputs and remember the card as loaded."""
    for key, result in card.fields.items():
        st.session_state[field_widget_key(key)] = result.value
    st.session_state[LOADED_KEY] = card
    opened = st.session_state.get(OPENED_FLAGS_KEY)
    if opened is None or opened[0] != card.id:
        st.session_state[OPENED_FLAGS_KEY] = (card.id, tuple(card.flagged_keys))
        _preset_reject(card)
    return card


def _preset_reject(card: CardDetail) -> None:
    """Preset the reject form of a newly opened card: "front desk" with the illegible fields named, else nothing."""
    illegible = illegible_keys(card)
    st.session_state[REJECT_KIND_KEY] = "front_desk" if illegible else None
    st.session_state[REJECT_NOTE_KEY] = tr("illegible_note", fields="、".join(illegible)) if illegible else ""


def _review_keys(card: CardDetail, spec: CardTypeSpec, corrected: set[str]) -> list[str]:
    """Return the fields to show one by one with their crops: flagged now, flagged when the reviewer opened the card, or set by a person.

    A field stays in this list after its correction passes, so the reviewer still
    sees what they changed. Fields answered in the field queue are here too, so
    the approval starts from the values a person typed.
    """
    opened_id, opened_keys = st.session_state.get(OPENED_FLAGS_KEY, (card.id, ()))
    earlier = set(opened_keys) if opened_id == card.id else set()
    return [
        key
        for key in card.fields
        if key in spec.keys and (card.fields[key].needs_review or key in earlier or key in corrected)
    ]


def _form_keys(card: CardDetail, context: PageContext) -> list[str]:
    """Return the keys of the fields that get a text input: those its card type defines."""
    spec = context.registry.card_types.get(card.card_type)
    if spec is None:
        return []
    return [key for key in card.fields if key in spec.keys]


def _loaded_card(context: PageContext, card_id: int) -> CardDetail | None:
    """Return the card the form is based on, loaded from the store when needed, or None when the card is gone.

    Streamlit drops the state of inputs that were not drawn in the last run
    (for example while the queue was shown), so missing inputs mean a reload.
    """
    loaded: CardDetail | None = st.session_state.get(LOADED_KEY)
    if loaded is not None and loaded.id == card_id:
        if all(field_widget_key(key) in st.session_state for key in _form_keys(loaded, context)):
            return loaded
    try:
        return _load_into_form(context.store.get_card(card_id))
    except StoreError:
        return None


def _forget_loaded() -> None:
    """Make the next run reload the card from the store (used as a button callback)."""
    st.session_state.pop(LOADED_KEY, None)


def _back() -> None:
    """Leave the card for the page it was opened from, or the card list (used as a button callback)."""
    target = st.session_state.pop(RETURN_KEY, None)
    open_queue()
    if target is not None:
        st.session_state[GOTO_KEY] = target


def _leave_card(context: PageContext, card: CardDetail) -> None:
    """After approve or reject: go back to the page the card was opened from, else open the batch's next card."""
    drop_hold(context, card.id)
    target = st.session_state.pop(RETURN_KEY, None)
    if target is not None:
        open_queue()
        go_to_page(target)
    remaining = [
        summary
        for summary in context.store.list_cards(batch=card.batch, statuses=[CardStatus.NEEDS_REVIEW])
        if summary.id != card.id
    ]
    if remaining:
        open_card(remaining[0].id)
    else:
        open_queue()
    st.rerun()


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


def _show_card_reasons(card: CardDetail, duplicates: list[int]) -> None:
    reasons = list(card.card_reasons)
    if duplicates:
        reasons.append(tr("duplicate_serial", card_ids="、".join(map(str, duplicates))))
    if not reasons:
        return
    items = "\n".join(f"- {reason}" for reason in reasons)
    st.warning(f"**{tr('card_reasons')}**\n\n{items}")


def _card_duplicates(context: PageContext, card: CardDetail) -> list[int]:
    """Return the other cards, not rejected, with this card's serial; [] for a rejected card."""
    if card.status == CardStatus.REJECTED:
        return []
    return duplicate_serial_cards(context.store, card)


def _has_confirmable(context: PageContext, card: CardDetail, duplicates: list[int]) -> bool:
    """Return whether the card has an open problem that a reviewer may confirm as true."""
    results = revalidate(card, card.values(), set(), context.registry, duplicates=duplicates)
    return bool(confirmable_codes(results))


def _corrected_keys(context: PageContext, card: CardDetail) -> set[str]:
    """Return the fields whose value a person typed or confirmed, from the audit log."""
    return {
        event.field_key
        for event in context.store.audit_events(card.id)
        if event.field_key and event.action in PERSON_ACTIONS and event.actor != PIPELINE_ACTOR
    }


def _legend() -> str:
    parts = []
    for state in FieldState:
        red, green, blue = STATE_COLORS[state]
        parts.append(
            f"<span style='border:3px solid rgb({red},{green},{blue});padding:0 6px;margin-right:8px'>"
            f"{html.escape(tr('state_' + state.value))}</span>"
        )
    return "".join(parts)


def _show_scan(context: PageContext, card: CardDetail, spec: CardTypeSpec | None, scan: Image.Image | None) -> None:
    """Show the scan with each field's box in its state's colour; a click on a box focuses the field's input."""
    if scan is None:
        st.warning(tr("scan_missing", path=card.straight_image))
        return
    corrected = _corrected_keys(context, card)
    boxes = []
    for key, result in card.fields.items():
        if result.box is None:
            continue
        title = spec.field(key).label_zh if spec is not None and key in spec.keys else key
        boxes.append(OverlayBox(field_widget_key(key), title, result.box, field_state(result, key in corrected)))
    st.html(scan_overlay_html(scan, boxes), unsafe_allow_javascript=True)
    st.caption(tr("scan_legend"))
    st.markdown(_legend(), unsafe_allow_html=True)


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
            shown = "　".join(f"{number}) {html.escape(value)}" for number, value in enumerate(result.candidates, 1))
            input_column.markdown(
                f"<span style='font-size:0.9em'>{html.escape(tr('candidates'))}：{shown}</span>",
                unsafe_allow_html=True,
            )
        input_column.text_input(primary, key=field_widget_key(spec.key), label_visibility="collapsed")


def _show_other_fields(keys: list[str], spec: CardTypeSpec) -> None:
    st.subheader(tr("other_fields", count=len(keys)))
    columns = st.columns(2)
    for index, key in enumerate(keys):
        primary, secondary = _labels(spec.field(key))
        columns[index % 2].text_input(f"{primary} · {secondary}", key=field_widget_key(key))


# Actions.


def _typed_values(card: CardDetail, context: PageContext) -> dict[str, str]:
    return {key: st.session_state.get(field_widget_key(key), "") for key in _form_keys(card, context)}


def entries_to_send(card: CardDetail, typed: dict[str, str]) -> dict[str, str]:
    """Return the fields to save: every changed field, and every flagged one (unchanged counts as confirmed).

    A field marked illegible is sent only when its value was changed, so
    saving does not clear the mark of a field nobody could read.
    """
    flagged = set(card.flagged_keys) - set(illegible_keys(card))
    return {key: value for key, value in typed.items() if key in flagged or value != card.fields[key].value}


def _save(context: PageContext, card: CardDetail, confirm_note: str | None = None) -> int:
    """Save the form's corrections on top of the loaded version and return the card's version afterwards.

    With ``confirm_note``, the card's confirmable problems are then confirmed as true with that reason.
    """
    entries = entries_to_send(card, _typed_values(card, context))
    version = card.version
    if entries:
        version = correct_fields(
            context.store,
            card.id,
            entries,
            actor=context.user.name,
            expected_version=version,
            registry=context.registry,
        )
    if confirm_note is not None:
        version = confirm_values(
            context.store,
            card.id,
            note=confirm_note,
            actor=context.user.name,
            expected_version=version,
            registry=context.registry,
        )
    return version


def _show_action_error(card: CardDetail, action: str, exc: CardCaptureError) -> None:
    log.warning("card %s: %s failed: %s", card.id, action, exc.message_en)
    st.error(exc.message(lang()))
    if isinstance(exc, StaleVersionError):
        st.button(tr("reload"), key="reload_card", on_click=_forget_loaded)


def _handle_save(context: PageContext, card: CardDetail, confirm_note: str | None) -> None:
    try:
        version = _save(context, card, confirm_note)
    except CardCaptureError as exc:
        _show_action_error(card, "save", exc)
        return
    if version == card.version:
        st.info(tr("nothing_to_save"))
        return
    push_flash("success", tr("saved", card_id=card.id, version=version))
    _forget_loaded()
    st.rerun()


def _handle_approve(context: PageContext, card: CardDetail, confirm_note: str | None) -> None:
    try:
        version = _save(context, card, confirm_note)
    except CardCaptureError as exc:
        _show_action_error(card, "save before approve", exc)
        return
    try:
        approve_card(
            context.store, card.id, actor=context.user.name, expected_version=version, registry=context.registry
        )
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
    _leave_card(context, card)


def _handle_reject(context: PageContext, card: CardDetail, kind: str | None, note: str) -> None:
    if kind is None:
        st.error(tr("reject_kind_missing"))
        return
    if not note.strip():
        st.error(tr("reject_note_missing"))
        return
    try:
        reject_card(
            context.store,
            card.id,
            actor=context.user.name,
            expected_version=card.version,
            kind=kind,
            note=note.strip(),
        )
    except CardCaptureError as exc:
        _show_action_error(card, "reject", exc)
        return
    push_flash("success", tr("rejected", card_id=card.id, reason=tr(REJECT_TEXT_IDS[kind])))
    _leave_card(context, card)


# Page sections.


def _render_reject(context: PageContext, card: CardDetail) -> None:
    st.subheader(tr("reject_heading"))
    with st.form(key=f"reject_form_{card.id}", border=True):
        kind = st.radio(
            tr("reject_kind"),
            options=list(REJECT_REASONS),
            format_func=lambda option: tr(REJECT_TEXT_IDS[option]),
            key=REJECT_KIND_KEY,
            horizontal=True,
            index=None,
        )
        note = st.text_input(tr("reject_note"), key=REJECT_NOTE_KEY, placeholder=tr("reject_note_help"))
        submitted = st.form_submit_button(tr("reject"), key="reject")
    if submitted:
        _handle_reject(context, card, kind, note)


def _render_editor(
    context: PageContext,
    card: CardDetail,
    spec: CardTypeSpec,
    scan: Image.Image | None,
    duplicates: list[int],
) -> list[str]:
    """Show the form of all fields with save and approve; return the input keys that Alt+N and Alt+P visit.

    An approved or exported card gets no approve button. A card with a problem
    that may be confirmed as true gets the checkbox and reason to confirm it.
    """
    to_check = _review_keys(card, spec, _corrected_keys(context, card))
    others = [key for key in card.fields if key not in to_check and key in spec.keys]
    flagged_count = sum(1 for key in to_check if card.fields[key].needs_review)

    with st.form(key=f"card_form_{card.id}", border=False):
        st.subheader(tr("flagged_heading", count=flagged_count))
        if not flagged_count:
            st.info(tr("no_flagged"))
        for key in to_check:
            _show_flagged_field(card, spec.field(key), scan)
        _show_other_fields(others, spec)

        confirm, reason = False, ""
        if _has_confirmable(context, card, duplicates):
            confirm = st.checkbox(tr("confirm_true"), key=CONFIRM_KEY)
            reason = st.text_input(tr("confirm_reason"), key=CONFIRM_NOTE_KEY, placeholder=tr("confirm_reason_help"))

        save_column, approve_column = st.columns(2)
        # Enter in a form field clicks the form's first submit button (st.form docs,
        # Streamlit 1.67), so with Save first, Enter saves and never approves.
        save = save_column.form_submit_button(tr("save"), key="save", width="stretch")
        approve = False
        if card.status in EDITABLE_STATUSES:
            approve = approve_column.form_submit_button(tr("approve"), key="approve", type="primary", width="stretch")

    if (save or approve) and confirm and not reason.strip():
        st.error(tr("confirm_reason_missing"))
        return [field_widget_key(key) for key in to_check]
    confirm_note = reason.strip() if confirm else None
    if save:
        _handle_save(context, card, confirm_note)
    elif approve:
        _handle_approve(context, card, confirm_note)
    return [field_widget_key(key) for key in to_check]


def _release_clicked(context: PageContext, card_id: int) -> None:
    if release_hold(context.store, card_id, released_by=context.user.name):
        push_flash("info", tr("hold_released", card_id=card_id))


def _render_held(context: PageContext, card: CardDetail, held: CardHeldError, scan: Image.Image | None) -> None:
    """Show a card someone else holds: who holds it, the scan and the values, read-only."""
    spec = context.registry.card_types.get(card.card_type)
    # The form is gone, but its buttons' state still says whether this run was a save, approve or reject.
    if any(st.session_state.get(button) for button in ("save", "approve", "reject")):
        log.warning("card %s: action rejected because another reviewer holds the card", card.id)
        st.error(held.message(lang()))
    st.warning(tr("held_by", name=held.hold.holder))
    if role_allows(context.user.role, Role.SUPERVISOR):
        st.button(
            tr("release_hold"), key="release_hold", on_click=_release_clicked, args=(context, card.id)
        )
    scan_column, values_column = st.columns([1, 1], gap="large")
    with scan_column:
        _show_scan(context, card, spec, scan)
    with values_column:
        for key, result in card.fields.items():
            label = _labels(spec.field(key))[0] if spec is not None and key in spec.keys else key
            st.text_input(label, value=result.value, disabled=True, key=f"held_{key}")


def render_card(context: PageContext, card_id: int) -> None:
    """Show card ``card_id`` for review; return to the list when it no longer exists."""
    st.button(tr("back"), key="back_to_queue", on_click=_back)
    card = _loaded_card(context, card_id)
    if card is None:
        push_flash("warning", tr("card_not_found", card_id=card_id))
        open_queue()
        st.rerun()

    spec = context.registry.card_types.get(card.card_type)
    _show_card_header(card, spec)
    show_flash()
    duplicates = _card_duplicates(context, card) if spec is not None else []
    _show_card_reasons(card, duplicates)

    scan = load_scan(card.straight_image)
    if card.status not in CORRECTABLE_STATUSES:
        st.info(tr("not_reviewable", status=status_label(card.status, lang())))
        _show_scan(context, card, spec, scan)
        return

    held = hold_card(context, card.id)
    if held is not None:
        _render_held(context, card, held, scan)
        return

    st.caption(tr("card_keys"))
    if card.status == CardStatus.EXPORTED:
        st.info(tr("exported_correction"))
    if spec is None:
        st.error(tr("unknown_type", card_type=card.card_type))
        st.text_area(tr("full_text"), value=card.full_text, height=240, disabled=True, key="full_text")
        _show_scan(context, card, spec, scan)
        _render_reject(context, card)
        keyboard_bridge({"KeyQ": Shortcut(click="back_to_queue")})
        return

    scan_column, form_column = st.columns([1, 1], gap="large")
    with scan_column:
        _show_scan(context, card, spec, scan)
    with form_column:
        attention = _render_editor(context, card, spec, scan, duplicates)
        _render_reject(context, card)
    # Without flagged fields, Alt+N and Alt+P walk through every field.
    jump_keys = attention or [field_widget_key(key) for key in _form_keys(card, context)]
    keyboard_bridge(
        {
            "KeyA": Shortcut(click="approve"),
            "KeyN": Shortcut(cycle=jump_keys),
            "KeyP": Shortcut(cycle=jump_keys, step=-1),
            "KeyQ": Shortcut(click="back_to_queue"),
        }
    )
