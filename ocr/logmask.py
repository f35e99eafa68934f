"""Masking of guests' personal values in every log record.

Modules log ids and counts, never a personal value, but a value can still reach
a log line: inside an exception message, a file name a clerk typed after the
guest, or a library's own debug output. :func:`install` masks every record the
process creates, before any handler receives it:

- the values of personal fields (names, birth dates, document, visa and ID
  numbers, addresses) of every field row the store has loaded or written in
  this process, and any value given to :func:`remember_fields`;
- 18- and 15-digit resident ID numbers, passport and permit numbers (one to
  three capitals then 6 to 12 digits), runs of 8 to 10 digits (Taiwan permits),
  and Chinese mobile and landline phone numbers, by pattern;
- every argument of SQLAlchemy's statement log (bound parameters and rows).

Each match becomes ``***``. The command line and the review app call
:func:`install` at start; a process started another way (a worker spawned by
multiprocessing) must call it too.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Protocol

__all__ = [
    "MASK",
    "PERSONAL_FIELD_KEYS",
    "PersonalDataFilter",
    "install",
    "is_installed",
    "mask_text",
    "remember_fields",
    "remember_values",
]

MASK = "***"

# Field keys of the card specification whose values identify a guest.
PERSONAL_FIELD_KEYS = frozenset(
    {
        "surname",
        "given_names",
        "chinese_name",
        "name",
        "date_of_birth",
        "document_number",
        "visa_number",
        "id_number",
        "address",
    }
)

# Remembered values kept at most; the oldest are forgotten first. A long-running
# review app reads a few thousand cards a day, about ten personal values each.
MAX_REMEMBERED_VALUES = 50_000

# Shorter values are not remembered: "M" or "LI" alone would mask ordinary words.
_MIN_VALUE_LENGTH = 2
_MIN_LATIN_VALUE_LENGTH = 3

_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"

_PATTERNS = [
    # Resident ID (GB 11643-1999): 17 digits and a check character, or the old 15 digits.
    re.compile(_NOT_ALNUM_BEFORE + r"(?:\d{17}[\dXx]|\d{15})" + _NOT_ALNUM_AFTER),
    # Passports (E12345678, G1234567), HK/Macao permits (H1234567890) and the 2017
    # permanent-residence ID (3 capitals and 12 digits).
    re.compile(_NOT_ALNUM_BEFORE + r"[A-Z]{1,3}\d{6,12}" + _NOT_ALNUM_AFTER),
    # Mobile numbers, with or without +86, and landlines with an area code.
    re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?![0-9])"),
    re.compile(r"(?<![0-9])0\d{2,3}-\d{7,8}(?![0-9])"),
    # Taiwan permits (8 or 10 digits) and other bare document numbers. Dates written
    # as 20250813 are masked too, which costs a log reader little.
    re.compile(_NOT_ALNUM_BEFORE + r"\d{8,10}" + _NOT_ALNUM_AFTER),
]


class _FieldLike(Protocol):
    raw_text: str
    value: str


# Letters and digits, joined by hyphens: the unit a log line is searched in for remembered Latin values.
_LATIN_WORD = re.compile(r"[0-9A-Za-z]+(?:-[0-9A-Za-z]+)*")
_LATIN_PART = re.compile(r"[0-9A-Za-z]+")


def _latin_units(value: str) -> set[str]:
    """Return the words of an ASCII value to mask: each word, and the parts of a hyphenated name."""
    units = set()
    for word in value.split():
        if len(word) >= _MIN_LATIN_VALUE_LENGTH:
            units.add(word)
        if any(character.isalpha() for character in word):
            units.update(part for part in _LATIN_PART.findall(word) if len(part) >= _MIN_LATIN_VALUE_LENGTH)
    return units


class _KnownValues:
    """A bounded, thread-safe index of personal values.

    Latin values are kept as a set of words, matched against whole words of a
    line: "LEE" must not mask "SLEEP". Other values (Chinese names, addresses)
    are kept by their first two characters and matched anywhere in a line. A
    set lookup per word keeps masking fast with tens of thousands of values,
    where one regular expression of all of them took 50 ms a line.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._values: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        # Word to the number of remembered values that contain it, so that forgetting one value keeps the others'.
        self._words: dict[str, int] = {}
        self._by_prefix: dict[str, list[str]] = {}

    def _index(self, value: str) -> None:
        if value.isascii():
            for word in _latin_units(value):
                self._words[word] = self._words.get(word, 0) + 1
            return
        candidates = self._by_prefix.setdefault(value[:2], [])
        candidates.append(value)
        # Longest first, so that a full address is masked whole before a shorter value it starts with.
        candidates.sort(key=len, reverse=True)

    def _forget(self, value: str) -> None:
        if value.isascii():
            for word in _latin_units(value):
                left = self._words[word] - 1
                if left:
                    self._words[word] = left
                else:
                    del self._words[word]
            return
        candidates = self._by_prefix[value[:2]]
        candidates.remove(value)
        if not candidates:
            del self._by_prefix[value[:2]]

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            for value in values:
                if value in self._values:
                    self._values.move_to_end(value)
                    continue
                self._values[value] = None
                self._index(value)
                if len(self._values) > self._limit:
                    oldest, _ = self._values.popitem(last=False)
                    self._forget(oldest)

    def _mask_word(self, match: re.Match[str]) -> str:
        word = match.group(0)
        if word in self._words:
            return MASK
        if "-" not in word:
            return word
        return "-".join(MASK if part in self._words else part for part in word.split("-"))

    def _mask_substrings(self, text: str) -> str:
        pieces: list[str] = []
        index = 0
        while index < len(text):
            candidates = self._by_prefix.get(text[index : index + 2])
            found = next((value for value in candidates if text.startswith(value, index)), None) if candidates else None
            if found is None:
                pieces.append(text[index])
                index += 1
                continue
            pieces.append(MASK)
            index += len(found)
        return "".join(pieces)

    def mask(self, text: str) -> str:
        with self._lock:
            if self._words:
                text = _LATIN_WORD.sub(self._mask_word, text)
            if self._by_prefix:
                text = self._mask_substrings(text)
        return text


_known = _KnownValues(MAX_REMEMBERED_VALUES)


def _worth_remembering(value: str) -> bool:
    if value.isascii():
        return len(value) >= _MIN_LATIN_VALUE_LENGTH
    return len(value) >= _MIN_VALUE_LENGTH


def remember_values(values: Iterable[str]) -> None:
    """Mask these values in every later log record of this process."""
    cleaned = dict.fromkeys(value.strip() for value in values if value)
    _known.add(value for value in cleaned if _worth_remembering(value))


def remember_fields(fields: Mapping[str, _FieldLike | str]) -> None:
    """Remember the values and raw OCR text of the personal fields among ``fields`` (key to field result or value)."""
    values: list[str] = []
    for key, field in fields.items():
        if key not in PERSONAL_FIELD_KEYS:
            continue
        values.extend([field] if isinstance(field, str) else [field.value, field.raw_text])
    remember_values(values)


def mask_text(text: str) -> str:
    """Return ``text`` with every remembered personal value and every ID, document or phone number replaced by ``***``."""
    text = _known.mask(text)
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    return text


# SQLAlchemy's statement log (off unless this logger is set to INFO or DEBUG)
# passes parameters and rows as arguments of the record.
_SQL_LOGGER = "sqlalchemy.engine"


class PersonalDataFilter(logging.Filter):
    """Logging filter that masks personal values in a record's message, arguments, exception and stack text.

    The record keeps its level and logger; its ``msg`` becomes the masked,
    formatted message and its ``args`` are cleared. A record is never dropped.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and record.name.startswith(_SQL_LOGGER):
            # Bound parameters and result rows: the values were not remembered yet
            # when a row is logged on its first load, so they are hidden whole.
            record.args = tuple(MASK for _ in record.args) if isinstance(record.args, tuple) else None
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            # Logging would print the unmasked arguments in its own error report, so
            # the record carries them, masked, in its message instead.
            message = f"{record.msg} [log arguments do not match the format: {record.args!r}]"
        record.msg = mask_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


_install_lock = threading.Lock()
_installed_factory = None


def install() -> None:
    """Mask every log record this process creates from now on; calling it again changes nothing.

    The filter runs in the record factory, not on one handler or logger,
    because a logger's filter misses records of its child loggers and a handler
    added later (pytest's caplog, a worker's own handler) would have none.
    """
    global _installed_factory
    with _install_lock:
        if _installed_factory is not None and logging.getLogRecordFactory() is _installed_factory:
            return
        previous = logging.getLogRecordFactory()
        masking = PersonalDataFilter()

        def factory(*args, **kwargs) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            masking.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed_factory = factory
    _watch_store_fields()


def is_installed() -> bool:
    """Return whether :func:`install` masks the records this process creates now."""
    return _installed_factory is not None and logging.getLogRecordFactory() is _installed_factory


def _remember_row(target) -> None:
    if target.key in PERSONAL_FIELD_KEYS:
        remember_fields({target.key: target})


def _watch_store_fields() -> None:
    """Remember the personal values of every field row the store loads, inserts or updates."""
    from sqlalchemy import event

    from ocr.store import FieldRow

    if event.contains(FieldRow, "load", _on_load):
        return
    event.listen(FieldRow, "load", _on_load)
    event.listen(FieldRow, "refresh", _on_refresh)
    event.listen(FieldRow, "before_insert", _on_write)
    event.listen(FieldRow, "before_update", _on_write)


def _on_load(target, _context) -> None:
    _remember_row(target)


def _on_refresh(target, _context, _attributes) -> None:
    _remember_row(target)


def _on_write(_mapper, _connection, target) -> None:
    _remember_row(target)
