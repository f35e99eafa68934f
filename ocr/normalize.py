"""Normalisation of raw field text into the clean values of the card specification.

Each field kind has one normaliser. A normaliser only reformats what the card shows
(full-width to half-width, capitals, ISO dates, codes for names). When it does not
recognise the input it returns the cleaned text unchanged, so validation flags the
field for review. It never guesses a missing part and never swaps OCR look-alike
characters (O/0, I/1, S/5, B/8, Z/2), because a silent correction of a document
number is worse than a flagged one.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Callable

from dateutil import parser as date_parser

from models.card_type import CardTypeSpec, FieldKind
from ocr.countries import country_code

__all__ = [
    "DOCUMENT_TYPES",
    "ID_TYPES",
    "VISA_TYPES",
    "normalize_fields",
    "normalize_value",
    "to_half_width",
]

log = logging.getLogger(__name__)

DOCUMENT_TYPES = ("passport", "hk_macao_permit", "taiwan_permit", "permanent_residence_id", "other")
ID_TYPES = ("resident_id", "other")
VISA_TYPES = (
    "C", "D", "F", "G", "J1", "J2", "L", "M", "Q1", "Q2", "R", "S1", "S2", "X1", "X2", "Z",
    "VISA_FREE", "RESIDENCE", "GROUP",
)  # fmt: skip

_FULL_WIDTH_OFFSET = 0xFEE0
_IDEOGRAPHIC_SPACE = "\u3000"
_SPACES = re.compile(r"\s+")


def to_half_width(text: str) -> str:
    """Convert full-width ASCII (U+FF01–U+FF5E) and the ideographic space to half-width.

    Chinese characters and full-width CJK punctuation outside that range (、。「」) are kept.
    """
    chars = []
    for char in text:
        point = ord(char)
        if 0xFF01 <= point <= 0xFF5E:
            chars.append(chr(point - _FULL_WIDTH_OFFSET))
        elif char == _IDEOGRAPHIC_SPACE:
            chars.append(" ")
        else:
            chars.append(char)
    return "".join(chars)


def _clean(raw: str) -> str:
    """Return ``raw`` half-width, trimmed, with runs of whitespace collapsed to one space."""
    return _SPACES.sub(" ", to_half_width(raw)).strip()


# --- serial, names, numbers -------------------------------------------------------

_SERIAL_PREFIX = re.compile(r"^(?:NO\.?|№|N°|#|编号[:：]?)\s*", re.IGNORECASE)
_NUMBER_SEPARATORS = re.compile(r"[\s\-‐‑–—]+")
_DIGITS = re.compile(r"[0-9]+")


def _normalize_serial(text: str) -> str:
    body = _SERIAL_PREFIX.sub("", text)
    compact = _NUMBER_SEPARATORS.sub("", body)
    # Letters stay in place (no look-alike swaps), so validation flags them.
    return compact if _DIGITS.fullmatch(compact) else body


def _normalize_latin_name(text: str) -> str:
    return text.replace("’", "'").replace("‘", "'").upper()


def _normalize_number(text: str) -> str:
    return _NUMBER_SEPARATORS.sub("", text).upper()


def _normalize_room(text: str) -> str:
    return text.replace(" ", "").upper()


def _normalize_resident_id(text: str) -> str:
    return text.replace(" ", "").upper()


def _normalize_ethnicity(text: str) -> str:
    if len(text) > 1 and text.endswith("族"):
        return text[:-1]
    return text


# --- sex ----------------------------------------------------------------------------

_CHECKED_MARKS = "☑☒✓✔√■●◉▣✗✘"
_UNCHECKED_MARKS = "□☐○◯"
_BRACKETED_CHECK = re.compile(r"[\[(（【]\s*[X×✓✔√]\s*[\])）】]", re.IGNORECASE)
_BRACKETED_EMPTY = re.compile(r"[\[(（【]\s*[\])）】]")
# FEMALE before MALE and 女性 before 女, so the longer option wins at each position.
_SEX_OPTION = re.compile(r"FEMALE|MALE|女性|男性|女|男|(?<![A-Z])[MF](?![A-Z])")
_SEX_OF_OPTION = {"FEMALE": "F", "MALE": "M", "女性": "F", "男性": "M", "女": "F", "男": "M", "F": "F", "M": "M"}


def _normalize_sex(text: str) -> str:
    """Read the sex from a written option (男, M, Male) or from the ticked one of printed options."""
    marked = _BRACKETED_CHECK.sub("☑", text.upper())
    marked = _BRACKETED_EMPTY.sub("□", marked)
    options = list(_SEX_OPTION.finditer(marked))
    if not options:
        return text

    has_marks = any(char in _CHECKED_MARKS + _UNCHECKED_MARKS for char in marked)
    if not has_marks:
        sexes = {_SEX_OF_OPTION[option.group()] for option in options}
        # "男 女" without a tick is the printed pair of options, not a selection.
        return sexes.pop() if len(sexes) == 1 else text

    # A tick may be written before its option ("☑男 □女") or after it ("男√ 女□").
    # Which side applies is read from the first non-space character of the text.
    squeezed = marked.replace(" ", "")
    mark_first = squeezed[0] in _CHECKED_MARKS + _UNCHECKED_MARKS
    ticked = set()
    for option in options:
        if mark_first:
            neighbour = marked[: option.start()].rstrip()[-1:]
        else:
            neighbour = marked[option.end() :].lstrip()[:1]
        if neighbour and neighbour in _CHECKED_MARKS:
            ticked.add(_SEX_OF_OPTION[option.group()])
    return ticked.pop() if len(ticked) == 1 else text


# --- dates --------------------------------------------------------------------------

_DATE_SEPARATOR = r"\s*[-./。·–—]\s*|\s+"
_YEAR_FIRST = re.compile(rf"^(\d{{4}})(?:{_DATE_SEPARATOR})(\d{{1,2}})(?:{_DATE_SEPARATOR})(\d{{1,2}})$")
_YEAR_LAST = re.compile(rf"^(\d{{1,2}})(?:{_DATE_SEPARATOR})(\d{{1,2}})(?:{_DATE_SEPARATOR})(\d{{4}})$")
_CHINESE_DATE = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
# A clock time after a full date (printed arrival stamps carry one) is dropped.
_TRAILING_TIME = re.compile(r"\s*(?:T|\s)\d{1,2}[:：]\d{2}(?:[:：]\d{2})?$")
# Bilingual month labels such as "MAR/MARS" keep only the first spelling.
_BILINGUAL_MONTH = re.compile(r"([A-Za-z]{3,})/[A-Za-z]+")
_MONTH_WORD = re.compile(r"[A-Za-z]{3,}")
_FOUR_DIGIT_YEAR = re.compile(r"(?<!\d)\d{4}(?!\d)")


def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return datetime.date(year, month, day).isoformat()
    except ValueError:
        return None


def _parse_numeric_date(text: str, day_first: bool) -> str | None:
    for pattern in (_YEAR_FIRST, _CHINESE_DATE, _COMPACT_DATE):
        match = pattern.match(text)
        if match:
            year, month, day = (int(part) for part in match.groups())
            return _iso(year, month, day)

    match = _YEAR_LAST.match(text)
    if match:
        first, second, year = (int(part) for part in match.groups())
        day, month = (first, second) if day_first else (second, first)
        return _iso(year, month, day)
    return None


def _parse_month_name_date(text: str) -> str | None:
    """Parse dates that spell the month ("12 MAR 1985", "March 12, 1985") with dateutil.

    dateutil fills a missing day or year from its ``default``, so the text is parsed
    against two different defaults: when the results differ, a part was missing.
    """
    text = _BILINGUAL_MONTH.sub(r"\1", text)
    if not _MONTH_WORD.search(text) or not _FOUR_DIGIT_YEAR.search(text):
        return None
    try:
        first = date_parser.parse(text, default=datetime.datetime(2001, 1, 1))
        second = date_parser.parse(text, default=datetime.datetime(2002, 2, 2))
    except (ValueError, OverflowError):
        return None
    if first.date() != second.date():
        return None
    return first.date().isoformat()


def _normalize_date(text: str, day_first: bool) -> str:
    candidate = _TRAILING_TIME.sub("", text)
    parsed = _parse_numeric_date(candidate, day_first) or _parse_month_name_date(candidate)
    return parsed if parsed is not None else text


# --- codes --------------------------------------------------------------------------

_DOCUMENT_TYPE_WORDS: tuple[tuple[str, str], ...] = (
    # Checked in order: 外国人永久居留身份证 must not fall through to a generic match.
    ("永久居留", "permanent_residence_id"),
    ("PERMANENTRESIDENCE", "permanent_residence_id"),
    ("港澳居民来往内地通行证", "hk_macao_permit"),
    ("来往内地通行证", "hk_macao_permit"),
    ("回乡证", "hk_macao_permit"),
    ("HOMERETURNPERMIT", "hk_macao_permit"),
    ("HONGKONGANDMACAO", "hk_macao_permit"),
    ("台湾居民来往大陆通行证", "taiwan_permit"),
    ("来往大陆通行证", "taiwan_permit"),
    ("台胞证", "taiwan_permit"),
    ("TAIWANRESIDENTS", "taiwan_permit"),
    ("护照", "passport"),
    ("PASSPORT", "passport"),
)
# Text naming some other document (海员证, 居住证, "ID card") maps to "other";
# text without any of these words is returned unchanged so validation flags it.
_OTHER_DOCUMENT_WORDS = ("其他", "其它", "证", "照", "OTHER", "PERMIT", "CARD", "CERTIFICATE", "DOCUMENT", "ID")


def _normalize_document_type(text: str) -> str:
    key = text.replace(" ", "").upper()
    if key.lower() in DOCUMENT_TYPES:
        return key.lower()
    for word, document_type in _DOCUMENT_TYPE_WORDS:
        if word in key:
            return document_type
    # A bare 港澳通行证 or 台湾通行证 may also be a mainland resident's permit for travel
    # the other way, so the reviewer decides.
    if "通行证" in key:
        return text
    if any(word in key for word in _OTHER_DOCUMENT_WORDS):
        return "other"
    return text


def _normalize_id_type(text: str) -> str:
    key = text.replace(" ", "").upper()
    if key.lower() in ID_TYPES:
        return key.lower()
    # 外国人永久居留身份证 and 港澳台居民居住证 are documents of their own, not the resident ID.
    if "永久居留" in key or "居住证" in key:
        return "other"
    if "身份证" in key or key in ("RESIDENTID", "RESIDENTIDCARD"):
        return "resident_id"
    if any(word in key for word in _OTHER_DOCUMENT_WORDS):
        return "other"
    return text


_VISA_WORDS: dict[str, str] = {
    "免签": "VISA_FREE",
    "免签证": "VISA_FREE",
    "免办签证": "VISA_FREE",
    "VISAFREE": "VISA_FREE",
    "VISAEXEMPT": "VISA_FREE",
    "VISAEXEMPTION": "VISA_FREE",
    "居留许可": "RESIDENCE",
    "居留证": "RESIDENCE",
    "RESIDENCEPERMIT": "RESIDENCE",
    "团体签证": "GROUP",
    "团签": "GROUP",
    "团体旅游签证": "GROUP",
    "GROUPVISA": "GROUP",
    # Chinese names of categories that map to exactly one code.
    "旅游签证": "L",
    "过境签证": "G",
    "乘务签证": "C",
    "工作签证": "Z",
    "人才签证": "R",
    "定居签证": "D",
}
_VISA_CODE_SUFFIX = re.compile(r"(?:字签证|签证|字|签|VISA)$")


def _normalize_visa_type(text: str) -> str:
    key = re.sub(r"[\s\-_]+", "", text).upper()
    if key in VISA_TYPES:
        return key
    if key in _VISA_WORDS:
        return _VISA_WORDS[key]
    # "L字", "Q2签证", "Z VISA"
    code = _VISA_CODE_SUFFIX.sub("", key)
    if code in VISA_TYPES:
        return code
    return text


def _normalize_nationality(text: str) -> str:
    code = country_code(text)
    return code if code is not None else text


# --- dispatch -----------------------------------------------------------------------

_NORMALIZERS: dict[FieldKind, Callable[[str], str]] = {
    FieldKind.SERIAL: _normalize_serial,
    FieldKind.LATIN_NAME: _normalize_latin_name,
    FieldKind.TEXT: lambda text: text,
    FieldKind.SEX: _normalize_sex,
    FieldKind.NATIONALITY: _normalize_nationality,
    FieldKind.DOCUMENT_TYPE: _normalize_document_type,
    FieldKind.DOCUMENT_NUMBER: _normalize_number,
    FieldKind.VISA_TYPE: _normalize_visa_type,
    FieldKind.VISA_NUMBER: _normalize_number,
    FieldKind.ROOM: _normalize_room,
    FieldKind.ETHNICITY: _normalize_ethnicity,
    FieldKind.ID_TYPE: _normalize_id_type,
    FieldKind.RESIDENT_ID: _normalize_resident_id,
}


def normalize_value(kind: FieldKind, raw: str, *, day_first: bool = True) -> str:
    """Normalise one raw field text to the clean value of its kind.

    Every kind first converts full-width ASCII to half-width, trims the text and
    collapses runs of whitespace. Text the kind does not recognise comes back in
    that cleaned form, and an empty field comes back empty. ``day_first`` decides
    how ``12/03/1985`` is read: 12 March when true, 3 December when false.
    """
    text = _clean(raw)
    if not text:
        return ""
    if kind == FieldKind.DATE:
        return _normalize_date(text, day_first)
    return _NORMALIZERS[kind](text)


def normalize_fields(card_type: CardTypeSpec, raw: dict[str, str], *, day_first: bool = True) -> dict[str, str]:
    """Normalise the raw texts of one card into a dict with every field key of ``card_type``.

    A key missing from ``raw`` comes back as an empty value. Keys of ``raw`` that
    ``card_type`` does not define are dropped.
    """
    unknown = set(raw) - set(card_type.keys)
    if unknown:
        log.warning("card type %s: ignoring %d unknown field keys: %s", card_type.card_type, len(unknown), sorted(unknown))

    clean: dict[str, str] = {}
    for spec in card_type.fields:
        value = normalize_value(spec.kind, raw.get(spec.key, ""), day_first=day_first)
        clean[spec.key] = value
    return clean
