"""Review: a person corrects, confirms, approves or rejects a card, or marks a field illegible.

Every change goes through the store, so it carries the card version it was
based on and leaves an audit event with the signed-in user as actor. A
corrected value is normalised and the whole card is validated again, because
one field's fix can clear (or raise) a cross-field problem on another. While
another reviewer holds a card (see :mod:`ocr.holds`), every action here raises
:class:`ocr.holds.CardHeldError`.

A field marked illegible keeps the card out of approval until someone types its
value, and lists the card for return to the front desk.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from models.batch import CardDetail
from models.card import CardStatus, FieldResult
from ocr.confidence import MACHINE_CODES, machine_reason
from ocr.errors import CardCaptureError, ExitCode
from ocr.holds import check_hold
from ocr.normalize import normalize_value
from ocr.registry import Registry, load_registry
from ocr.store import Store
from ocr.validate import validate_card

__all__ = [
    "ILLEGIBLE_CODE",
    "QueuedField",
    "ReviewError",
    "approve_card",
    "correct_fields",
    "flagged_fields",
    "illegible_keys",
    "mark_illegible",
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

REJECT_REASONS = {
    "rescan": ("重新扫描", "rescan"),
    "front_desk": ("退回前台补填", "return to front desk to fill blanks"),
}


class ReviewError(CardCaptureError):
    """A review action that the card's state or values do not allow."""

    exit_code = ExitCode.CONFLICT


def revalidate(card: CardDetail, values: dict[str, str], touched: set[str], registry: Registry) -> dict[str, FieldResult]:
    """Return the card's field results after ``values`` were set by a person on the ``touched`` keys.

    A touched field gets the person's confidence; every field keeps or loses its
    rule problems according to the new values.
    """
    spec = registry.card_type(card.card_type)
    problems = validate_card(spec, values)
    results: dict[str, FieldResult] = {}
    for field_spec in spec.fields:
        key = field_spec.key
        old = card.fields.get(key) or FieldResult(key=key)
        field_problems = problems.get(key, [])
        rule_codes = [p.code for p in field_problems]
        rule_reasons = [p.message_zh for p in field_problems]
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
        results[key] = old.model_copy(
            update={
                "value": values.get(key, ""),
                "confidence": confidence,
                "needs_review": bool(codes),
                "reason": "；".join(dict.fromkeys(reasons)),
                "reason_codes": list(dict.fromkeys(codes)),
            }
        )
    return results


def _check_editable(card: CardDetail, keys: set[str], registry: Registry) -> None:
    """Raise :class:`ReviewError` unless a person may change fields ``keys`` of ``card``."""
    if card.status == CardStatus.EXPORTED:
        raise ReviewError(
            f"卡片 {card.id} 已导出，不能再修改。如需更正，请联系主管。",
            f"card {card.id} is exported already and cannot be changed",
        )
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


def preview_correction(card: CardDetail, entries: dict[str, str], registry: Registry) -> dict[str, FieldResult]:
    """Return every field of ``card`` as it would be after ``entries`` were typed, without saving anything.

    Lets the field queue tell a reviewer that a typed value still breaks a rule
    before it writes a new card version.
    """
    spec = registry.card_type(card.card_type)
    values = card.values()
    for key, text in entries.items():
        values[key] = normalize_value(spec.field(key).kind, text)
    return revalidate(card, values, set(entries), registry)


def correct_fields(
    store: Store,
    card_id: int,
    entries: dict[str, str],
    *,
    actor: str,
    expected_version: int,
    registry: Registry | None = None,
) -> int:
    """Set the fields in ``entries`` to what a person typed (or confirmed); returns the new card version."""
    registry = registry or load_registry()
    check_hold(store, card_id, actor)
    card = store.get_card(card_id)
    _check_editable(card, set(entries), registry)
    results = preview_correction(card, entries, registry)
    version = store.save_fields(card_id, results, actor=actor, expected_version=expected_version)

    # A change that breaks a rule sends an accepted card back to review, so it cannot be exported as is.
    if card.status in (CardStatus.AUTO_ACCEPTED, CardStatus.APPROVED) and any(r.needs_review for r in results.values()):
        version = store.set_status(card_id, CardStatus.NEEDS_REVIEW, actor=actor, expected_version=version)
    log.info("card %s corrected fields=%d by=%s", card_id, len(entries), actor)
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
    results = revalidate(card, card.values(), set(card.fields), registry)
    failing = [key for key, result in results.items() if result.needs_review]
    if failing:
        labels = "、".join(registry.card_type(card.card_type).field(k).label_zh for k in failing)
        raise ReviewError(
            f"以下字段仍未通过校验，不能通过：{labels}。请先更正，或退回前台补填。",
            f"fields still fail their rules: {', '.join(failing)}; correct them or reject the card",
        )
    version = store.save_fields(card_id, results, actor=actor, expected_version=expected_version, action="approve")
    return store.set_status(card_id, CardStatus.APPROVED, actor=actor, expected_version=version)


def reject_card(
    store: Store, card_id: int, *, actor: str, expected_version: int, kind: str, note: str = ""
) -> int:
    """Reject a card for a rescan or for the front desk to fill blanks; returns the new version."""
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
    approved or auto-accepted card goes back to review.
    """
    registry = registry or load_registry()
    check_hold(store, card_id, actor)
    card = store.get_card(card_id)
    _check_editable(card, set(keys), registry)
    results = revalidate(card, card.values(), set(), registry)
    for key in keys:
        result = results[key]
        codes = [ILLEGIBLE_CODE] + [code for code in result.reason_codes if code != ILLEGIBLE_CODE]
        reasons = [ILLEGIBLE_REASON] + [reason for reason in result.reason.split("；") if reason and reason != ILLEGIBLE_REASON]
        results[key] = result.model_copy(
            update={"needs_review": True, "reason_codes": codes, "reason": "；".join(reasons)}
        )
    version = store.save_fields(
        card_id, results, actor=actor, expected_version=expected_version, action="illegible", audit_keys=set(keys)
    )
    if card.status in (CardStatus.AUTO_ACCEPTED, CardStatus.APPROVED):
        version = store.set_status(card_id, CardStatus.NEEDS_REVIEW, actor=actor, expected_version=version)
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
