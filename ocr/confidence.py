"""Confidence: decide for each field whether a person must look at it, and say why.

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

__all__ = ["BLANK_CONFIDENCE", "decide"]

# Confidence given to "this zone is blank" when it has almost no ink.
BLANK_CONFIDENCE = 0.99


def decide(spec: FieldSpec, read: ZoneRead | None, value: str, problems: Sequence[Problem]) -> FieldResult:
    """Combine an OCR read, its clean value and its rule problems into one field result."""
    codes = [p.code for p in problems]
    reasons = [p.message_zh for p in problems]

    if read is None:
        confidence = 0.0
        codes.append("no_zone")
        reasons.append("模板中没有此字段的位置，请人工填写。")
    elif not read.raw_text.strip():
        if read.ink >= BLANK_INK_RATIO:
            confidence = 0.0
            codes.append("unreadable")
            reasons.append("此处有笔迹，但未能识别，请对照原图填写。")
        else:
            confidence = BLANK_CONFIDENCE
    else:
        confidence = read.score

    if confidence < spec.threshold and "unreadable" not in codes and "no_zone" not in codes:
        codes.append("low_confidence")
        reasons.append(f"识别置信度 {confidence:.2f} 低于阈值 {spec.threshold:.2f}，请核对。")

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
