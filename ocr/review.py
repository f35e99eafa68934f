"""Review: a person corrects, confirms, approves or rejects a card.

Every change goes through the store, so it carries the card version it was
based on and leaves an audit event. A corrected value is normalised and the
whole card is validated again, because one field's fix can clear (or raise) a
cross-field problem on another.
"""

from __future__ import annotations

import logging

from models.batch import CardDetail
from models.card import CardStatus, FieldResult
from ocr.confidence import MACHINE_CODES, machine_reason
from ocr.errors import CardCaptureError, ExitCode
from ocr.normalize import normalize_value
from ocr.registry import Registry, load_registry
from ocr.store import Store
from ocr.validate import validate_card

__all__ = ["ReviewError", "approve_card", "correct_fields", "reject_card", "revalidate"]

log = logging.getLogger(__name__)

# Confidence of a value a person typed or confirmed.
HUMAN_CONFIDENCE = 1.0

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
            # Keep the machine's own doubts (low confidence, unreadable) until a person touches the field.
            machine = [c for c in old.reason_codes if c in MACHINE_CODES]
            codes = machine + rule_codes
            reasons = [machine_reason(c, old.confidence, field_spec.threshold) for c in machine] + rule_reasons
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
    card = store.get_card(card_id)
    if card.status in (CardStatus.EXPORTED,):
        raise ReviewError(
            f"卡片 {card_id} 已导出，不能再修改。如需更正，请联系主管。",
            f"card {card_id} is exported already and cannot be changed",
        )
    if card.card_type not in registry.card_types:
        raise ReviewError(
            f"卡片 {card_id} 的类型未能识别，不能逐项更正。请退回重新扫描。",
            f"card {card_id} has an unknown card type; reject it for a rescan",
        )
    spec = registry.card_type(card.card_type)
    unknown = sorted(set(entries) - set(spec.keys))
    if unknown:
        raise ReviewError(
            f"卡片类型 {spec.card_type} 没有字段：{', '.join(unknown)}。",
            f"card type {spec.card_type} has no fields {', '.join(unknown)}",
        )
    values = card.values()
    for key, text in entries.items():
        values[key] = normalize_value(spec.field(key).kind, text)
    results = revalidate(card, values, set(entries), registry)
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
    Raises :class:`ReviewError` naming the fields that still fail a rule.
    """
    registry = registry or load_registry()
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
