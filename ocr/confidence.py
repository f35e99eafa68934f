"""Confidence: decide for each field whether a person must look at it, and record why.

A field needs review when its confidence is under the field's threshold, when
a validation rule fails, or when the zone has ink that no engine could read.
A blank zone is trusted as blank only when the field may be empty.

With a calibration for the template (``<template>.calibration.json``, fitted by
``python -m ocr bench calibrate``), the confidence is a calibrated probability
that the clean value is right. A logistic model weighs the evidence: the
PP-OCR score of the zone, whether the value passes its rules and has a format
at all, the field's error history (reviewer corrections in the store, starting
from the error rate measured when fitting), and whether Tesseract reads the same
zone to the same clean value. Tesseract is slow (0.2–0.6 s per zone), so it
reads a zone only when its read can change the decision: the field is under
its threshold without it, and would be over it if Tesseract agreed.

Without a calibration, or for an engine the calibration was not fitted for,
the confidence is the engine's own score against the card type's threshold.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select

from models.card import CardStatus, FieldResult, join_reasons
from models.card_type import CardTypeSpec, FieldKind, FieldSpec
from models.template import Calibration, LogisticModel
from ocr.engines import OcrEngine, get_engine
from ocr.errors import EngineUnavailableError
from ocr.normalize import normalize_value
from ocr.recognize import BLANK_INK_RATIO, ZoneRead, reread_zone
from ocr.store import PIPELINE_ACTOR, AuditRow, CardRow, FieldRow, Store
from ocr.validate import Problem

__all__ = [
    "BLANK_CONFIDENCE",
    "CardDecision",
    "FieldEvidence",
    "FieldHistory",
    "MACHINE_CODES",
    "ask_second_engine",
    "decide",
    "decide_card",
    "evidence_features",
    "field_history",
    "history_rate",
    "machine_reason",
    "probability",
]

log = logging.getLogger(__name__)

# Confidence given to "this zone is blank" when it has almost no ink.
BLANK_CONFIDENCE = 0.99

# Doubts of the machine itself, as opposed to rule problems: a person clears them by touching the field.
MACHINE_CODES = ("no_zone", "unreadable", "low_confidence", "engines_disagree", "ink_blot")

# Kinds whose value has no format rule beyond "some text", so that passing validation is weak evidence.
FREE_TEXT_KINDS = frozenset({FieldKind.TEXT, FieldKind.LATIN_NAME})
# Numbers and dates: one misread digit usually leaves a value that still passes every rule, so the
# second engine checks each of their reads scored under LOW_SCORE, even when the field would pass alone.
CODE_KINDS = frozenset(
    {FieldKind.SERIAL, FieldKind.DATE, FieldKind.DOCUMENT_NUMBER, FieldKind.VISA_NUMBER, FieldKind.ROOM, FieldKind.RESIDENT_ID}
)
# Engine scores are clipped to this distance from 0 and 1 before the logit.
SCORE_EPSILON = 1e-4
# PP-OCR scores below this mark a read as less sure (the "low_score" feature). On 180 generated fitting
# cards no rule-passing value scored at or above it was wrong, and 0.6% of those scored 0.99 to 0.999
# were, which the logit of the score alone spreads too thinly.
LOW_SCORE = 0.999


def machine_reason(code: str, confidence: float, threshold: float) -> str:
    """Return the Chinese reason a reviewer reads for one of :data:`MACHINE_CODES`."""
    if code == "no_zone":
        return "模板中没有此字段的位置，请人工填写。"
    if code == "unreadable":
        return "此处有笔迹，但未能识别，请对照原图填写。"
    if code == "engines_disagree":
        return "两个识别引擎对此处的读数不一致，请对照原图核对。"
    if code == "ink_blot":
        return "此处有一块浓墨（污渍或涂改），可能遮住了某个字符，请对照原图核对。"
    if confidence >= threshold:
        # The caller knows only the card type's threshold, not the higher one the calibration set.
        return f"识别置信度 {confidence:.4f} 未达到此字段的自动通过阈值，请核对。"
    # Calibrated thresholds sit between 0.99 and 1, where two decimals would print 0.99 < 1.00 for 0.994 < 0.996.
    digits = 2 if threshold <= 0.95 else 4
    return f"识别置信度 {confidence:.{digits}f} 低于阈值 {threshold:.{digits}f}，请核对。"


def decide(
    spec: FieldSpec,
    read: ZoneRead | None,
    value: str,
    problems: Sequence[Problem],
    *,
    confidence: float | None = None,
    threshold: float | None = None,
    disagree: bool = False,
) -> FieldResult:
    """Combine an OCR read, its clean value and its rule problems into one field result.

    ``confidence`` and ``threshold`` replace the engine score and the card
    type's threshold when a calibration gives them. ``disagree`` adds the
    ``engines_disagree`` doubt.
    """
    codes = [p.code for p in problems]
    reasons = [p.message_zh for p in problems]
    threshold = spec.threshold if threshold is None else threshold

    machine: str | None = None
    if read is None:
        score = 0.0
        machine = "no_zone"
    elif not read.raw_text.strip():
        blank = read.ink < BLANK_INK_RATIO
        score = BLANK_CONFIDENCE if blank else 0.0
        machine = None if blank else "unreadable"
    else:
        score = read.score
    if confidence is not None and machine is None:
        score = confidence
    if machine is None and score < threshold:
        machine = "low_confidence"
    if machine is not None:
        codes.insert(0, machine)
        reasons.insert(0, machine_reason(machine, score, threshold))
    if disagree and machine in (None, "low_confidence"):
        codes.append("engines_disagree")
        reasons.append(machine_reason("engines_disagree", score, threshold))
    # A blot can turn one character of a code into another that passes every rule, and both
    # engines then tend to read the same wrong character: no score shows it, so a person looks.
    if read is not None and read.blot and read.raw_text.strip():
        codes.append("ink_blot")
        reasons.append(machine_reason("ink_blot", score, threshold))

    return FieldResult(
        key=spec.key,
        raw_text=read.raw_text if read else "",
        value=value,
        confidence=max(0.0, min(1.0, score)),
        engine=read.engine if read else "",
        box=read.box if read else None,
        needs_review=bool(codes),
        reason=join_reasons(reasons),
        reason_codes=list(dict.fromkeys(codes)),
    )


# --------------------------------------------------------------------------
# Evidence and the calibrated probability
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldHistory:
    """Reviewer corrections of one field key in the store, and how many such fields were stored."""

    corrections: int
    fields: int


@dataclass
class FieldEvidence:
    """Evidence about one field's value, gathered before the decision."""

    key: str
    kind: FieldKind
    # Score of the first engine's read, 0 for a blank zone.
    score: float
    blank: bool
    # Ink in the zone but no text read.
    unreadable: bool
    ink: float
    rule_failed: bool
    # Estimated share of wrong values of this field key, from the error history.
    history: float
    # Clean value of the second engine's read of the same zone, None when it did not read it.
    second_value: str | None = None
    second_raw: str = ""
    second_score: float = 0.0
    # Seconds the second engine took on this zone.
    second_seconds: float = 0.0
    probability_single: float | None = None
    probability: float | None = None


def _logit(p: float) -> float:
    p = min(max(p, SCORE_EPSILON), 1.0 - SCORE_EPSILON)
    return math.log(p / (1.0 - p))


# Cards whose field values are final: a person or the export has passed them.
SETTLED_STATUSES = (CardStatus.APPROVED, CardStatus.REJECTED, CardStatus.EXPORTED)


def field_history(store: Store) -> dict[str, dict[str, FieldHistory]]:
    """Return, by card type and field key, how many settled fields the store contains and how many a person corrected.

    A correction is a "correct" audit event by someone other than the pipeline,
    counted once per card and field.
    """
    settled = [str(status) for status in SETTLED_STATUSES]
    with store.session() as session:
        totals = session.execute(
            select(CardRow.card_type, FieldRow.key, func.count())
            .join(CardRow, FieldRow.card_id == CardRow.id)
            .where(CardRow.status.in_(settled))
            .group_by(CardRow.card_type, FieldRow.key)
        ).all()
        corrected = session.execute(
            select(CardRow.card_type, AuditRow.field_key, func.count(func.distinct(AuditRow.card_id)))
            .join(CardRow, AuditRow.card_id == CardRow.id)
            .where(AuditRow.action == "correct", AuditRow.actor != PIPELINE_ACTOR, AuditRow.field_key.is_not(None))
            .where(CardRow.status.in_(settled))
            .group_by(CardRow.card_type, AuditRow.field_key)
        ).all()
    corrections = {(card_type, key): count for card_type, key, count in corrected}
    history: dict[str, dict[str, FieldHistory]] = {}
    for card_type, key, count in totals:
        history.setdefault(card_type, {})[key] = FieldHistory(corrections.get((card_type, key), 0), count)
    log.info("field history read card_types=%d keys=%d corrections=%d", len(history), len(totals), sum(corrections.values()))
    return history


def history_rate(prior: float, history: FieldHistory | None, weight: float) -> float:
    """Return the field's error rate estimate: the prior blended with the store's corrections.

    The prior counts as ``weight`` reviewed fields, so a few corrections move it
    little and a long history decides.
    """
    if history is None or history.fields <= 0:
        return prior
    corrections = min(history.corrections, history.fields)
    return (corrections + weight * prior) / (history.fields + weight)


def evidence_features(evidence: FieldEvidence, agreement: str | None) -> dict[str, float]:
    """Return every feature value of :data:`models.template.FEATURE_NAMES` for one field.

    ``agreement`` is "agree", "disagree" or None when the second engine did not read the zone.
    """
    return {
        "score_logit": 0.0 if evidence.blank else _logit(evidence.score),
        "low_score": float(not evidence.blank and evidence.score < LOW_SCORE),
        "blank": float(evidence.blank),
        "blank_ink_log": math.log10(evidence.ink + 1e-4) if evidence.blank else 0.0,
        "rule_failed": float(evidence.rule_failed),
        "free_text": float(evidence.kind in FREE_TEXT_KINDS),
        "history_logit": _logit(evidence.history),
        "agree": float(agreement == "agree"),
        "disagree": float(agreement == "disagree"),
    }


def probability(model: LogisticModel, features: Mapping[str, float]) -> float:
    """Return the model's probability that the value is right, in (0, 1)."""
    vector = np.array([features[name] for name in model.features], dtype=np.float64)
    z = model.intercept + float(np.dot(np.asarray(model.coefficients, dtype=np.float64), vector))
    return float(1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))))


def ask_second_engine(
    kind: FieldKind, score: float, rule_failed: bool, unreadable: bool, single: float, if_agree: float, threshold: float
) -> bool:
    """Return True when the second engine's read of a zone can change the field's decision.

    That is when the field passes its rules, would pass with an agreeing read
    (``if_agree``), and either is under its threshold alone (``single``) or is a
    number or date read with a score under :data:`LOW_SCORE`.
    """
    if unreadable or rule_failed or if_agree < threshold:
        return False
    return single < threshold or (kind in CODE_KINDS and score < LOW_SCORE)


def _agreement(evidence: FieldEvidence, value: str) -> str | None:
    if evidence.second_value is None:
        return None
    return "agree" if evidence.second_value == value else "disagree"


# --------------------------------------------------------------------------
# Deciding a whole card
# --------------------------------------------------------------------------


@dataclass
class CardDecision:
    """Field results of one card, the evidence behind them and the second engine's reads."""

    fields: dict[str, FieldResult]
    evidence: dict[str, FieldEvidence]
    # Seconds spent in the second engine for this card.
    second_seconds: float = 0.0
    # Zones the second engine read because its read could change the decision.
    second_reads: int = 0
    # The decision by the engine score alone against the card type's thresholds, as without a
    # calibration; the accuracy benchmark compares the two on the same reads.
    engine_only: dict[str, FieldResult] | None = None

    def other_reads(self, key: str) -> list[str]:
        """Return the second engine's raw text of the zone, as a candidate source, or nothing."""
        found = self.evidence.get(key)
        return [found.second_raw] if found is not None and found.second_raw.strip() else []


_SECOND_ENGINE_MISSING: set[str] = set()


def _second_engine(name: str) -> OcrEngine | None:
    """Return the named engine, or None (with one warning per process) when it is not installed."""
    if name in _SECOND_ENGINE_MISSING:
        return None
    try:
        return get_engine(name)
    except EngineUnavailableError as exc:
        _SECOND_ENGINE_MISSING.add(name)
        log.warning("second engine %s unavailable, fields are decided without it: %s", name, exc.message_en)
        return None


def decide_card(
    card_type: CardTypeSpec,
    reads: Mapping[str, ZoneRead],
    values: Mapping[str, str],
    problems: Mapping[str, Sequence[Problem]],
    *,
    engine_name: str,
    calibration: Calibration | None,
    history: Mapping[str, FieldHistory] | None = None,
    second_engine: OcrEngine | None = None,
    read_all: bool = False,
) -> CardDecision:
    """Decide every field of one card, with the calibrated confidence when ``calibration`` fits the engine.

    ``history`` maps field keys to their correction history in the store.
    ``second_engine`` defaults to the calibration's second engine. ``read_all``
    makes the second engine read every zone (for fitting), and the decision
    still uses its read only where it would have run anyway.
    """
    engine_only = {
        spec.key: decide(spec, reads.get(spec.key), values.get(spec.key, ""), problems.get(spec.key, []))
        for spec in card_type.fields
    }
    if calibration is None or calibration.engine != engine_name:
        return CardDecision(fields=engine_only, evidence={}, engine_only=engine_only)

    fields: dict[str, FieldResult] = {}
    evidence: dict[str, FieldEvidence] = {}
    spent = 0.0
    useful_reads = 0
    for spec in card_type.fields:
        read = reads.get(spec.key)
        value = values.get(spec.key, "")
        field_problems = list(problems.get(spec.key, []))
        field_calibration = calibration.fields.get(spec.key)
        if read is None or field_calibration is None:
            # No zone, or a field the calibration does not know: the engine score decides.
            fields[spec.key] = decide(spec, read, value, field_problems)
            continue

        no_text = not read.raw_text.strip()
        found = FieldEvidence(
            key=spec.key,
            kind=spec.kind,
            score=read.score,
            blank=no_text and read.ink < BLANK_INK_RATIO,
            unreadable=no_text and read.ink >= BLANK_INK_RATIO,
            ink=read.ink,
            rule_failed=bool(field_problems),
            history=history_rate(field_calibration.prior_error, (history or {}).get(spec.key), calibration.history_weight),
        )
        evidence[spec.key] = found
        unreadable = found.unreadable
        threshold = field_calibration.threshold

        single = probability(calibration.single, evidence_features(found, None))
        found.probability_single = single
        if_agree = probability(calibration.paired, evidence_features(found, "agree"))
        useful = ask_second_engine(spec.kind, read.score, found.rule_failed, unreadable, single, if_agree, threshold)
        if (useful or read_all) and not unreadable:
            engine = second_engine or _second_engine(calibration.second_engine)
            if engine is not None:
                spent += _read_second(engine, read, found)
                useful_reads += int(useful)

        agreement = _agreement(found, value) if useful else None
        confidence = probability(calibration.paired, evidence_features(found, agreement)) if agreement else single
        found.probability = confidence
        fields[spec.key] = decide(
            spec, read, value, field_problems, confidence=confidence, threshold=threshold,
            disagree=agreement == "disagree",
        )
    return CardDecision(
        fields=fields, evidence=evidence, second_seconds=spent, second_reads=useful_reads, engine_only=engine_only
    )


def _read_second(engine: OcrEngine, read: ZoneRead, found: FieldEvidence) -> float:
    """Read the zone with the second engine into ``found``; return the seconds it took."""
    started = time.perf_counter()
    second = reread_zone(engine, read, found.kind)
    elapsed = time.perf_counter() - started
    if second is not None:
        found.second_raw = second.raw_text
        found.second_value = normalize_value(found.kind, second.raw_text)
        found.second_score = second.score
        found.second_seconds = elapsed
    return elapsed
