"""Review: a person corrects, confirms, approves or rejects a card, or marks a field illegible.

Every change goes through the store, so it carries the card version it was
based on and leaves an audit event with the signed-in user as actor. A
corrected value is normalised and the whole card is validated again, because
one field's fix can clear (or raise) a cross-field problem on another. While
another reviewer holds a card (see :mod:`ocr.holds`), every action here raises
:class:`ocr.holds.CardHeldError`.

A field marked illegible keeps the card out of approval until someone types its
value, and lists the card for return to the front desk.

A rule problem that describes a real situation (:data:`ocr.validate.CONFIRMABLE_CODES`,
and a card serial shared with another card) can be confirmed as true with a
written reason (:func:`confirm_values`); the field then keeps a ``confirmed:``
code and no longer blocks approval.

An exported card can still be corrected or rejected. A correction moves it back
to ``approved`` (or to ``needs_review`` when a rule fails), so the next export
writes it again as a correction. A rejection makes the next export write a
cancellation (see :mod:`ocr.export`). The store queues the matching correction
or cancellation for transmission when the card was sent already.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from models.batch import CardDetail
from models.card import CardStatus, FieldResult, join_reasons, split_reasons
from ocr.confidence import MACHINE_CODES, machine_reason
from ocr.errors import CardCaptureError, ExitCode, StaleVersionError
from ocr.holds import check_hold
from ocr.normalize import normalize_value
from ocr.registry import Registry, load_registry
from ocr.store import AuditRow, CardRow, FieldRow, Store
from ocr.validate import CONFIRMABLE_CODES, Problem, validate_card

__all__ = [
    "CONFIRMED_PREFIX",
    "CONFIRM_NOTE_ACTION",
    "DUPLICATE_SERIAL_CODE",
    "ILLEGIBLE_CODE",
    "QueuedField",
    "ReviewError",
    "approve_card",
    "confirm_values",
    "confirmable_codes",
    "correct_fields",
    "duplicate_serial_cards",
    "hold_duplicate_serials",
    "flagged_fields",
    "illegible_keys",
    "mark_illegible",
    "needs_card_view",
    "preview_answer",
    "preview_correction",
    "reject_card",
    "revalidate",
]

log = logging.getLogger(__name__)

# Confidence of a value a person typed or confirmed.
HUMAN_CONFIDENCE = 1.0

# Reason code of a field a reviewer could not read on the scan; the front desk has to fill it in.
ILLEGIBLE_CODE = "illegible"
ILLEGIBLE_REASON = "审核人无法辨认，需退回前台核实补填。"

# Field holding the pre-printed serial number, the same key on every card type.
SERIAL_KEY = "card_serial"
# Problem code of a card serial that another card, not rejected, of the same type also has.
DUPLICATE_SERIAL_CODE = "duplicate_serial"
# A rule problem that a reviewer confirmed as true keeps the code "confirmed:<problem code>".
CONFIRMED_PREFIX = "confirmed:"
# Audit action of the reviewer's written reason for confirming rule problems as true.
CONFIRM_NOTE_ACTION = "confirm_note"
# Audit note written when a correction sends an exported card back to be exported again.
EXPORTED_CORRECTION_NOTE = "导出后更正：下次导出将作为更正记录写出 / corrected after export: the next export writes it as a correction"

REJECT_REASONS = {
    "rescan": ("重新扫描", "rescan"),
    "front_desk": ("退回前台补填", "return to front desk to fill blanks"),
}


class ReviewError(CardCaptureError):
    """A review action that the card's state or values do not allow."""

    exit_code = ExitCode.CONFLICT


def _duplicate_problem(duplicates: list[int]) -> Problem:
    ids = "、".join(str(card_id) for card_id in duplicates)
    return Problem(
        DUPLICATE_SERIAL_CODE,
        SERIAL_KEY,
        f"编号与卡片 {ids} 相同：同一张卡可能扫描或拍照后入库了两次，请退回其中一张；"
        "如确为两张不同的卡片，请勾选“原卡无误，确认属实”并写明原因",
        f"card serial is the same as on card {', '.join(map(str, duplicates))}: the card may be stored twice; "
        "reject one of them, or confirm that both are distinct cards with a reason",
    )


def _confirmed(result: FieldResult) -> set[str]:
    return {code.removeprefix(CONFIRMED_PREFIX) for code in result.reason_codes if code.startswith(CONFIRMED_PREFIX)}


def _is_confirmable(code: str) -> bool:
    return code in CONFIRMABLE_CODES or code == DUPLICATE_SERIAL_CODE


def revalidate(
    card: CardDetail,
    values: dict[str, str],
    touched: set[str],
    registry: Registry,
    *,
    duplicates: list[int] | None = None,
    confirm: set[str] | frozenset[str] = frozenset(),
) -> dict[str, FieldResult]:
    """Return the card's field results after ``values`` were set by a person on the ``touched`` keys.

    A touched field gets the person's confidence; every field keeps or loses its
    rule problems according to the new values. ``duplicates`` are the ids of other
    cards with the same card serial (None: the check is left out). A confirmable
    problem confirmed before stays confirmed until a value of a field it involves
    changes; the codes in ``confirm`` become confirmed now.
    """
    spec = registry.card_type(card.card_type)
    problems = validate_card(spec, values)
    if duplicates and SERIAL_KEY in problems:
        problems[SERIAL_KEY].append(_duplicate_problem(duplicates))

    # A confirmation holds for the values it was given on: a changed value of any field that
    # has the problem (or had it confirmed) voids it on every field.
    confirmed: set[str] = set()
    for key in spec.keys:
        old = card.fields.get(key)
        if old is not None:
            confirmed |= _confirmed(old)
    for key in touched:
        old = card.fields.get(key)
        if old is not None and values.get(key, "") != old.value:
            confirmed -= _confirmed(old) | {p.code for p in problems.get(key, [])}
    confirmed |= set(confirm)

    results: dict[str, FieldResult] = {}
    for field_spec in spec.fields:
        key = field_spec.key
        old = card.fields.get(key) or FieldResult(key=key)
        open_problems = [p for p in problems.get(key, []) if not (_is_confirmable(p.code) and p.code in confirmed)]
        accepted = [p for p in problems.get(key, []) if p not in open_problems]
        rule_codes = [p.code for p in open_problems]
        rule_reasons = [p.message_zh for p in open_problems]
        if key in touched:
            codes, reasons, confidence = rule_codes, rule_reasons, HUMAN_CONFIDENCE
        else:
            # Keep the machine's own doubts (low confidence, unreadable) and a reviewer's
            # "illegible" mark until a person touches the field.
            machine = [c for c in old.reason_codes if c in MACHINE_CODES]
            illegible = [ILLEGIBLE_CODE] if ILLEGIBLE_CODE in old.reason_codes else []
            codes = illegible + machine + rule_codes
            reasons = (
                [ILLEGIBLE_REASON] * len(illegible)
                + [machine_reason(c, old.confidence, field_spec.threshold) for c in machine]
                + rule_reasons
            )
            confidence = old.confidence
        confirmed_codes = [CONFIRMED_PREFIX + p.code for p in accepted]
        confirmed_reasons = [f"审核人已确认原卡无误：{p.message_zh}" for p in accepted]
        results[key] = old.model_copy(
            update={
                "value": values.get(key, ""),
                "confidence": confidence,
                "needs_review": bool(codes),
                "reason": join_reasons(reasons + confirmed_reasons),
                "reason_codes": list(dict.fromkeys(codes + confirmed_codes)),
            }
        )
    return results


def duplicate_serial_cards(store: Store, card: CardDetail) -> list[int]:
    """Return the ids of the other cards of the same type, not rejected, whose card serial equals ``card``'s.

    The values are compared after loading, because an encrypted store cannot
    compare them in SQL. Returns [] for a card without a serial.
    """
    serial = card.fields[SERIAL_KEY].value if SERIAL_KEY in card.fields else ""
    if not serial:
        return []
    query = _serials_query().where(CardRow.card_type == card.card_type, CardRow.id != card.id)
    with store.session() as session:
        return [card_id for card_id, _card_type, value in session.execute(query) if value == serial]


def _serials_query():
    """Select (card id, card type, serial) of every card that is not rejected, by card id."""
    return (
        select(FieldRow.card_id, CardRow.card_type, FieldRow.value)
        .join(CardRow, FieldRow.card_id == CardRow.id)
        .where(FieldRow.key == SERIAL_KEY, CardRow.status != str(CardStatus.REJECTED))
        .order_by(FieldRow.card_id)
    )


def confirmable_codes(results: dict[str, FieldResult]) -> list[str]:
    """Return the open problem codes of ``results`` that a reviewer may confirm as true, in field order."""
    codes = [code for result in results.values() for code in result.reason_codes if _is_confirmable(code)]
    return list(dict.fromkeys(codes))


def _check_editable(card: CardDetail, keys: set[str], registry: Registry) -> None:
    """Raise :class:`ReviewError` unless a person may change fields ``keys`` of ``card``."""
    if card.card_type not in registry.card_types:
        raise ReviewError(
            f"卡片 {card.id} 的类型未能识别，不能逐项更正。请退回重新扫描。",
            f"card {card.id} has an unknown card type; reject it for a rescan",
        )
    spec = registry.card_type(card.card_type)
    unknown = sorted(keys - set(spec.keys))
    if unknown:
        raise ReviewError(
            f"卡片类型 {spec.card_type} 没有字段：{', '.join(unknown)}。",
            f"card type {spec.card_type} has no fields {', '.join(unknown)}",
        )


def preview_correction(
    card: CardDetail, entries: dict[str, str], registry: Registry, *, duplicates: list[int] | None = None
) -> dict[str, FieldResult]:
    """Return every field of ``card`` as it would be after ``entries`` were typed, without saving anything.

    Lets the field queue tell a reviewer that a typed value still breaks a rule
    before it writes a new card version. ``duplicates`` is as in :func:`revalidate`.
    """
    spec = registry.card_type(card.card_type)
    values = card.values()
    for key, text in entries.items():
        values[key] = normalize_value(spec.field(key).kind, text)
    return revalidate(card, values, set(entries), registry, duplicates=duplicates)


def preview_answer(store: Store, card: CardDetail, entries: dict[str, str], registry: Registry) -> dict[str, FieldResult]:
    """Return :func:`preview_correction` of ``entries`` with the duplicate serial check that :func:`correct_fields` runs."""
    duplicates = duplicate_serial_cards(store, _values_with_serial(card, entries, registry))
    return preview_correction(card, entries, registry, duplicates=duplicates)


def needs_card_view(result: FieldResult) -> bool:
    """Return whether every open problem of ``result`` is one to confirm as true or to settle by rejecting a duplicate.

    The field queue cannot settle such a field, because only the card view has
    the confirmation with a reason and the reject action. A field that also has
    a problem a typed value can fix (a misread, a low confidence) returns False.
    """
    open_codes = [code for code in result.reason_codes if not code.startswith(CONFIRMED_PREFIX)]
    return result.needs_review and bool(open_codes) and all(_is_confirmable(code) for code in open_codes)


def _values_with_serial(card: CardDetail, entries: dict[str, str], registry: Registry) -> CardDetail:
    """Return ``card`` with the typed card serial, so that the duplicate check looks for the new number."""
    if SERIAL_KEY not in entries or SERIAL_KEY not in card.fields:
        return card
    kind = registry.card_type(card.card_type).field(SERIAL_KEY).kind
    serial = card.fields[SERIAL_KEY].model_copy(update={"value": normalize_value(kind, entries[SERIAL_KEY])})
    return card.model_copy(update={"fields": {**card.fields, SERIAL_KEY: serial}})


def correct_fields(
    store: Store,
    card_id: int,
    entries: dict[str, str],
    *,
    actor: str,
    expected_version: int,
    registry: Registry | None = None,
) -> int:
    """Set the fields in ``entries`` to what a person typed (or confirmed); returns the new card version.

    A changed value of an exported card moves it back to ``approved`` (or to
    ``needs_review`` when a rule fails), with an audit note, so the next export
    writes it again as a correction.
    """
    registry = registry or load_registry()
    check_hold(store, card_id, actor)
    card = store.get_card(card_id)
    _check_editable(card, set(entries), registry)
    results = preview_answer(store, card, entries, registry)
    changed = any(results[key].value != card.fields[key].value for key in entries if key in card.fields)
    flagged = any(r.needs_review for r in results.values())
    version = store.save_fields(card_id, results, actor=actor, expected_version=expected_version)

    # A change that breaks a rule sends an accepted card back to review, so it cannot be exported as is.
    if card.status in (CardStatus.AUTO_ACCEPTED, CardStatus.APPROVED) and flagged:
        version = store.set_status(card_id, CardStatus.NEEDS_REVIEW, actor=actor, expected_version=version)
    elif card.status == CardStatus.EXPORTED and (changed or flagged):
        status = CardStatus.NEEDS_REVIEW if flagged else CardStatus.APPROVED
        version = store.set_status(
            card_id, status, actor=actor, expected_version=version, note=EXPORTED_CORRECTION_NOTE
        )
        log.info("exported card %s corrected, back to %s for a new export", card_id, status)
    log.info("card %s corrected fields=%d by=%s", card_id, len(entries), actor)
    return version


def confirm_values(
    store: Store,
    card_id: int,
    *,
    note: str,
    actor: str,
    expected_version: int,
    registry: Registry | None = None,
) -> int:
    """Confirm the card's open confirmable problems as true, with the reviewer's reason; returns the new version.

    Confirmable problems are those of :data:`ocr.validate.CONFIRMABLE_CODES` (a
    visa or stay that ends before departure) and a card serial shared with
    another card. The reason is written to the audit log first, then each
    confirmed field gets a ``confirm_rule`` event. Raises :class:`ReviewError`
    for an empty reason or a card without such a problem. Other problems (an
    invalid number, a misread date) still have to be corrected.
    """
    registry = registry or load_registry()
    text = note.strip()
    if not text:
        raise ReviewError(
            "请填写确认原因：说明为何原卡的值无误（如“客人签证在离店前到期，已告知前台”）。",
            "the reason for the confirmation is missing; write why the values on the card are right",
        )
    check_hold(store, card_id, actor)
    card = store.get_card(card_id)
    if card.version != expected_version:
        # Checked before the reason is written, so a stale confirmation leaves nothing in the log.
        raise StaleVersionError(
            f"卡片 {card_id} 已被他人修改（您的版本 {expected_version}，当前版本 {card.version}）。"
            "您的确认未保存，请重新打开该卡片后再确认。",
            f"card {card_id} was changed by someone else (your version {expected_version}, "
            f"current {card.version}); reload the card and confirm again",
        )
    _check_editable(card, set(), registry)
    duplicates = duplicate_serial_cards(store, card)
    current = revalidate(card, card.values(), set(), registry, duplicates=duplicates)
    codes = confirmable_codes(current)
    if not codes:
        raise ReviewError(
            f"卡片 {card_id} 没有可确认属实的问题：只有签证（停留）有效期早于离店日期、编号与其他卡片相同这类问题"
            "可以确认；其他问题请更正字段。",
            f"card {card_id} has no problem that can be confirmed as true; only a visa or stay that ends "
            "before departure and a card serial shared with another card can be; correct the other fields",
        )

    # NOTE: the reason and the field changes are two transactions, reason first, so a confirmation
    # never exists without its reason. A crash between them leaves only the reason in the log.
    with store.session() as session:
        session.add(
            AuditRow(card_id=card_id, actor=actor, action=CONFIRM_NOTE_ACTION, old_value=",".join(codes), new_value=text)
        )
    results = revalidate(card, card.values(), set(), registry, duplicates=duplicates, confirm=set(codes))
    keys = {key for key, result in results.items() if _confirmed(result) - _confirmed(card.fields[key])}
    version = store.save_fields(
        card_id, results, actor=actor, expected_version=expected_version, action="confirm_rule", audit_keys=keys
    )
    log.info("card %s problems confirmed as true codes=%s by=%s", card_id, ",".join(codes), actor)
    return version


def approve_card(
    store: Store, card_id: int, *, actor: str, expected_version: int, registry: Registry | None = None
) -> int:
    """Approve a card whose every field passes its rules; returns the new version.

    Fields still flagged only for low confidence are confirmed by the approval.
    Raises :class:`ReviewError` naming the fields that still fail a rule or are
    marked illegible.
    """
    registry = registry or load_registry()
    check_hold(store, card_id, actor)
    card = store.get_card(card_id)
    if card.status not in (CardStatus.NEEDS_REVIEW, CardStatus.AUTO_ACCEPTED, CardStatus.EXTRACTED):
        raise ReviewError(
            f"卡片 {card_id} 当前状态为 {card.status}，不能审核通过。",
            f"card {card_id} is {card.status} and cannot be approved",
        )
    if card.card_type not in registry.card_types:
        raise ReviewError(
            f"卡片 {card_id} 的类型未能识别，不能直接通过。请退回重新扫描，或为其版式制作模板。",
            f"card {card_id} has an unknown card type; reject it for a rescan or add a template",
        )

    illegible = illegible_keys(card)
    if illegible:
        labels = "、".join(registry.card_type(card.card_type).field(k).label_zh for k in illegible)
        raise ReviewError(
            f"以下字段已标记为无法辨认，不能通过：{labels}。请退回前台补填，或对照原件填写后再通过。",
            f"fields are marked illegible: {', '.join(illegible)}; return the card to the front desk "
            "or type their values before approving",
        )

    # Every value is taken as confirmed by the approver; a rule that still fails blocks approval.
    duplicates = duplicate_serial_cards(store, card)
    results = revalidate(card, card.values(), set(card.fields), registry, duplicates=duplicates)
    if SERIAL_KEY in results and DUPLICATE_SERIAL_CODE in results[SERIAL_KEY].reason_codes:
        ids = "、".join(map(str, duplicates))
        raise ReviewError(
            f"卡片 {card_id} 的编号与卡片 {ids} 相同，不能通过：请退回重复入库的一张；如确为不同的卡片，"
            "请勾选“原卡无误，确认属实”并写明原因后再通过。",
            f"card {card_id} has the same card serial as card {', '.join(map(str, duplicates))}; reject the "
            "duplicate, or confirm that both are distinct cards with a reason before approving",
        )
    failing = [key for key, result in results.items() if result.needs_review]
    if failing:
        labels = "、".join(registry.card_type(card.card_type).field(k).label_zh for k in failing)
        raise ReviewError(
            f"以下字段仍未通过校验，不能通过：{labels}。请先更正，或退回前台补填；"
            "签证（停留）有效期确实早于离店日期时，请勾选“原卡无误，确认属实”并写明原因。",
            f"fields still fail their rules: {', '.join(failing)}; correct them or reject the card; "
            "if the visa or stay really ends before departure, confirm it as true with a reason",
        )
    version = store.save_fields(card_id, results, actor=actor, expected_version=expected_version, action="approve")
    return store.set_status(card_id, CardStatus.APPROVED, actor=actor, expected_version=version)


def reject_card(
    store: Store, card_id: int, *, actor: str, expected_version: int, kind: str, note: str = ""
) -> int:
    """Reject a card for a rescan or for the front desk to fill blanks; returns the new version.

    An exported card may be rejected too: the next export writes its cancellation,
    and the store queues a cancellation when its record was sent.
    """
    if kind not in REJECT_REASONS:
        raise ReviewError(
            f"退回原因 {kind!r} 无效，可选：{', '.join(REJECT_REASONS)}。",
            f"invalid reject reason {kind!r}; choose one of {', '.join(REJECT_REASONS)}",
        )
    check_hold(store, card_id, actor)
    card = store.get_card(card_id)
    if card.status not in (
        CardStatus.EXTRACTED,
        CardStatus.NEEDS_REVIEW,
        CardStatus.AUTO_ACCEPTED,
        CardStatus.APPROVED,
        CardStatus.EXPORTED,
    ):
        raise ReviewError(
            f"卡片 {card_id} 当前状态为 {card.status}，不能退回。",
            f"card {card_id} is {card.status} and cannot be rejected",
        )
    label_zh, _label_en = REJECT_REASONS[kind]
    text = f"{label_zh}：{note}" if note else label_zh
    return store.set_status(card_id, CardStatus.REJECTED, actor=actor, expected_version=expected_version, note=text)


def illegible_keys(card: CardDetail) -> list[str]:
    """Return the keys of the fields of ``card`` that a reviewer marked illegible, in card order."""
    return [key for key, result in card.fields.items() if ILLEGIBLE_CODE in result.reason_codes]


def mark_illegible(
    store: Store,
    card_id: int,
    keys: list[str],
    *,
    actor: str,
    expected_version: int,
    registry: Registry | None = None,
) -> int:
    """Mark fields ``keys`` as unreadable on the scan, keeping their values; returns the new card version.

    The card stays out of approval until each marked field is typed in, and an
    approved, exported or auto-accepted card goes back to review.
    """
    registry = registry or load_registry()
    check_hold(store, card_id, actor)
    card = store.get_card(card_id)
    _check_editable(card, set(keys), registry)
    results = revalidate(card, card.values(), set(), registry, duplicates=duplicate_serial_cards(store, card))
    for key in keys:
        result = results[key]
        codes = [ILLEGIBLE_CODE] + [code for code in result.reason_codes if code != ILLEGIBLE_CODE]
        reasons = [ILLEGIBLE_REASON] + split_reasons(result.reason)
        results[key] = result.model_copy(
            update={"needs_review": True, "reason_codes": codes, "reason": join_reasons(reasons)}
        )
    version = store.save_fields(
        card_id, results, actor=actor, expected_version=expected_version, action="illegible", audit_keys=set(keys)
    )
    if card.status in (CardStatus.AUTO_ACCEPTED, CardStatus.APPROVED, CardStatus.EXPORTED):
        note = EXPORTED_CORRECTION_NOTE if card.status == CardStatus.EXPORTED else None
        version = store.set_status(card_id, CardStatus.NEEDS_REVIEW, actor=actor, expected_version=version, note=note)
    log.info("card %s fields marked illegible count=%d by=%s", card_id, len(keys), actor)
    return version


@dataclass(frozen=True)
class QueuedField:
    """One flagged field of the field queue, with the card it belongs to as loaded."""

    card: CardDetail
    key: str

    @property
    def result(self) -> FieldResult:
        return self.card.fields[self.key]

    @property
    def rule_failed(self) -> bool:
        """Whether a validation rule fails, as opposed to only the machine doubting its reading."""
        return any(code not in MACHINE_CODES for code in self.result.reason_codes)


def _queue_order(item: QueuedField) -> tuple:
    # Failed rules first, then the lowest confidence, then card and field order.
    position = list(item.card.fields).index(item.key)
    return (not item.rule_failed, item.result.confidence, item.card.id, position)


def flagged_fields(cards: Iterable[CardDetail], registry: Registry) -> list[QueuedField]:
    """Return the flagged fields of ``cards`` that need review, worst first.

    Fields marked illegible are left out (they wait for the front desk), and so
    are cards of an unknown type, which can only be rejected as a whole.
    """
    items: list[QueuedField] = []
    for card in cards:
        spec = registry.card_types.get(card.card_type)
        if spec is None or card.status != CardStatus.NEEDS_REVIEW:
            continue
        for key, result in card.fields.items():
            if key in spec.keys and result.needs_review and ILLEGIBLE_CODE not in result.reason_codes:
                items.append(QueuedField(card=card, key=key))
    return sorted(items, key=_queue_order)


def hold_duplicate_serials(store: Store, registry: Registry, *, actor: str, batch: str | None = None) -> list[int]:
    """Send auto-accepted cards whose card serial another card has back to review, before they are approved.

    ``export`` runs this on its batch and ``transmit`` on every batch. The flag goes on the
    ``card_serial`` field with an audit event, and its reason names the card with the same
    number. Returns the ids of the cards that went back to review.
    """
    held: list[int] = []
    summaries = store.list_cards(batch=batch, statuses=[CardStatus.AUTO_ACCEPTED])
    if not summaries:
        return held

    # One pass over the stored serials, rather than one per card: they are decrypted in Python.
    cards_by_serial: dict[tuple[str, str], list[int]] = {}
    with store.session() as session:
        for card_id, card_type, value in session.execute(_serials_query()):
            if value:
                cards_by_serial.setdefault((card_type, value), []).append(card_id)

    for summary in summaries:
        card = store.get_card(summary.id)
        if card.card_type not in registry.card_types or SERIAL_KEY not in card.fields:
            continue
        same_serial = cards_by_serial.get((card.card_type, card.fields[SERIAL_KEY].value), [])
        duplicates = [card_id for card_id in same_serial if card_id != card.id]
        if not duplicates:
            continue
        results = revalidate(card, card.values(), set(), registry, duplicates=duplicates)
        if DUPLICATE_SERIAL_CODE not in results[SERIAL_KEY].reason_codes:
            continue  # A reviewer confirmed both cards as distinct before.
        version = store.save_fields(
            card.id, results, actor=actor, expected_version=card.version, action="duplicate", audit_keys={SERIAL_KEY}
        )
        store.set_status(card.id, CardStatus.NEEDS_REVIEW, actor=actor, expected_version=version)
        held.append(card.id)
        log.warning("auto-accepted card %s has the card serial of cards %s and goes back to review", card.id, duplicates)
    return held
