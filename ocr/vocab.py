"""Constrained reading: the characters a field zone may hold, and the closed vocabularies of two fields.

Tesseract can be told which characters to read (``tessedit_char_whitelist``):
:data:`ZONE_CHARSETS` gives the set for each field kind whose values are
codes, numbers or dates. rapidocr cannot: its CTC decoder picks from the full
character list of the PP-OCR recognition model, and rapidocr 3 has no option to
mask it. Its reads are constrained after the fact instead, by normalisation,
validation and the vocabularies below.

The visa type and the nationality are closed vocabularies: the visa category
codes of the card specification and the ISO 3166-1 country table of
:mod:`ocr.countries`. A read that normalises to an entry exactly is that entry
(that is :func:`ocr.normalize.normalize_value`). A read that only comes close
is never changed: :func:`nearest_entries` returns the close entries, which the
pipeline offers to the reviewer as candidates.
"""

from __future__ import annotations

from difflib import SequenceMatcher

from models.card_type import FieldKind
from ocr.countries import _fold, _table
from ocr.normalize import _VISA_WORDS, VISA_TYPES

__all__ = ["CLOSED_VOCABULARIES", "ZONE_CHARSETS", "nearest_entries"]

DIGITS = "0123456789"
CAPITALS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Letters of the English month abbreviations (JAN ... DEC) that dates may be written with.
MONTH_LETTERS = "".join(sorted(set("JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC")))

# Characters Tesseract may read in a zone of each kind. Kinds not listed (names, free text, sex
# boxes, document and ID types, nationality) are read with the whole chi_sim+eng character set.
ZONE_CHARSETS: dict[FieldKind, str] = {
    FieldKind.SERIAL: DIGITS,
    FieldKind.RESIDENT_ID: DIGITS + "X",
    FieldKind.DOCUMENT_NUMBER: CAPITALS + DIGITS,
    FieldKind.VISA_NUMBER: CAPITALS + DIGITS,
    FieldKind.ROOM: CAPITALS + DIGITS + "-",
    FieldKind.DATE: DIGITS + MONTH_LETTERS + "-./年月日",
    FieldKind.VISA_TYPE: "".join(sorted(set("".join(VISA_TYPES) + "".join(_VISA_WORDS)) - {"_"})),
}

# Kinds whose clean value is one entry of a fixed list.
CLOSED_VOCABULARIES = (FieldKind.NATIONALITY, FieldKind.VISA_TYPE)
# Minimum difflib ratio, on the folded texts, between a read and a list entry for the entry to be offered.
MIN_SIMILARITY = 0.75


def _visa_names() -> dict[str, str]:
    """Return the folded written forms of the visa types, each with its code."""
    names = {code.replace("_", ""): code for code in VISA_TYPES}
    names.update({word: code for word, code in _VISA_WORDS.items()})
    return names


def nearest_entries(kind: FieldKind, text: str, limit: int = 3) -> list[str]:
    """Return the codes whose written forms are closest to ``text``, best first, at most ``limit``.

    Only entries at least :data:`MIN_SIMILARITY` alike are returned, and nothing
    for kinds outside :data:`CLOSED_VOCABULARIES`. The result is for review:
    the caller must not put it in place of the read.
    """
    if kind not in CLOSED_VOCABULARIES:
        return []
    folded = _fold(text).upper()
    if not folded:
        return []
    names = _visa_names() if kind == FieldKind.VISA_TYPE else {name.upper(): code for name, code in _table().items()}

    scored: list[tuple[float, str]] = []
    for name, code in names.items():
        matcher = SequenceMatcher(None, folded, name, autojunk=False)
        # quick_ratio is an upper bound of ratio and cheap: skip the full comparison when it cannot pass.
        if matcher.quick_ratio() < MIN_SIMILARITY:
            continue
        ratio = matcher.ratio()
        if ratio >= MIN_SIMILARITY:
            scored.append((ratio, code))
    scored.sort(key=lambda item: -item[0])

    codes: list[str] = []
    for _ratio, code in scored:
        if code not in codes:
            codes.append(code)
        if len(codes) >= limit:
            break
    return codes
