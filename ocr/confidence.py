"""Confidence: decide for each field whether a person must look at it, and record why.

A field needs review when its confidence is under the field's threshold, when
a validation rule fails, or when the zone has ink that no engine could read.
A blank zone is trusted as blank only when the field may be empty.
"""

from __future__ import annotations

from collections.abc import Sequence

from models.card import FieldResult
from models.card_type import FieldSpec
from ocr.recognize import BLANK_INK_RATIO, ZoneRead
from ocr.validate import Problem

__all__ = ["BLANK_CONFIDENCE", "MACHINE_CODES", "decide", "machine_reason"]

# Confidence given to "this zone is blank" when it has almost no ink.
BLANK_CONFIDENCE = 0.99

# Doubts of the machine itself, as opposed to rule problems: a person clears them by touching the field.
MACHINE_CODES = ("no_zone", "unreadable", "low_confidence")


def machine_reason(code: str, confidence: float, threshold: float) -> str:
    """Return the Chinese reason a reviewer reads for one of :data:`MACHINE_CODES`."""
    if code == "no_zone":
        return "模板中没有此字段的位置，请人工填写。"
    if code == "unreadable":
        return "此处有笔迹，但未能识别，请对照原图填写。"
    return f"识别置信度 {confidence:.2f} 低于阈值 {threshold:.2f}，请核对。"


def decide(spec: FieldSpec, read: ZoneRead | None, value: str, problems: Sequence[Problem]) -> FieldResult:
    """Combine an OCR read, its clean value and its rule problems into one field result."""
    codes = [p.code for p in problems]
    reasons = [p.message_zh for p in problems]

    machine: str | None = None
    if read is None:
        confidence = 0.0
        machine = "no_zone"
    elif not read.raw_text.strip():
        blank = read.ink < BLANK_INK_RATIO
        confidence = BLANK_CONFIDENCE if blank else 0.0
        machine = None if blank else "unreadable"
    else:
        confidence = read.score
    if machine is None and confidence < spec.threshold:
        machine = "low_confidence"
    if machine is not None:
        codes.insert(0, machine)
        reasons.insert(0, machine_reason(machine, confidence, spec.threshold))

    return FieldResult(
        key=spec.key,
        raw_text=read.raw_text if read else "",
        value=value,
        confidence=max(0.0, min(1.0, confidence)),
        engine=read.engine if read else "",
        box=read.box if read else None,
        needs_review=bool(codes),
        reason="；".join(dict.fromkeys(reasons)),
        reason_codes=list(dict.fromkeys(codes)),
    )
