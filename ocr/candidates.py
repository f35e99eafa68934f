"""Candidates for review: other plausible readings of a doubtful field, best first.

OCR confuses look-alike characters (O/0, I/1, S/5, B/8, Z/2, X/乂). When a swap
of such characters turns a read into a value that passes the field's rules (and
the cross-field rules that involve it), the swapped value is offered to the
reviewer as a candidate. Another engine's reading of the same zone is offered
too, and for the nationality and the visa type the closest entries of their
closed vocabularies (:mod:`ocr.vocab`). A candidate is only ever a suggestion:
the pipeline never applies one.
"""

from __future__ import annotations

import datetime
import itertools
import logging
from collections.abc import Iterable

from models.card_type import CardTypeSpec, FieldKind
from ocr.normalize import normalize_value
from ocr.validate import validate_card
from ocr.vocab import nearest_entries

__all__ = ["LOOKALIKES", "MAX_CANDIDATES", "candidates_for"]

log = logging.getLogger(__name__)

# Each character and the characters OCR commonly reads in its place.
LOOKALIKES: dict[str, str] = {
    "O": "0D",
    "0": "OD",
    "D": "0",
    "Q": "0",
    "I": "1",
    "1": "I7",
    "l": "1",
    "7": "1",
    "S": "5",
    "5": "S",
    "B": "8",
    "8": "B",
    "Z": "2",
    "2": "Z",
    "G": "6",
    "6": "G",
    "乂": "X",
    "x": "X",
}
MAX_CANDIDATES = 3
# Swapping more characters than this at once is a different value, not a misread.
MAX_SWAPS = 2
# Fields whose values are codes, numbers or dates, where a look-alike swap is a plausible misread.
SWAPPABLE_KINDS = frozenset(
    {
        FieldKind.SERIAL,
        FieldKind.DATE,
        FieldKind.DOCUMENT_NUMBER,
        FieldKind.VISA_NUMBER,
        FieldKind.VISA_TYPE,
        FieldKind.ROOM,
        FieldKind.RESIDENT_ID,
        FieldKind.NATIONALITY,
    }
)
# A field with more swappable positions than this gets single swaps only, to bound the work.
MAX_POSITIONS_FOR_PAIRS = 12


def _fits_context(raw: str, index: int, replacement: str) -> int:
    """Return how many neighbours of ``index`` are of the replacement's class (digit or not): 0, 1 or 2."""
    fits = 0
    for neighbour in (index - 1, index + 1):
        if 0 <= neighbour < len(raw) and raw[neighbour].isdigit() == replacement.isdigit():
            fits += 1
    return fits


def _swaps(raw: str) -> list[str]:
    """Return readings of ``raw`` with one or two look-alike swaps, most plausible first.

    Fewer swaps come first; among equals, a swap that matches its neighbours
    (a digit among digits, a letter among letters) comes first.
    """
    positions = [i for i, char in enumerate(raw) if char in LOOKALIKES]
    ranked: list[tuple[int, int, str]] = []
    for i in positions:
        for replacement in LOOKALIKES[raw[i]]:
            ranked.append((1, -_fits_context(raw, i, replacement), raw[:i] + replacement + raw[i + 1 :]))
    if MAX_SWAPS >= 2 and len(positions) <= MAX_POSITIONS_FOR_PAIRS:
        for i, j in itertools.combinations(positions, 2):
            for first, second in itertools.product(LOOKALIKES[raw[i]], LOOKALIKES[raw[j]]):
                chars = list(raw)
                chars[i], chars[j] = first, second
                fit = _fits_context(raw, i, first) + _fits_context(raw, j, second)
                ranked.append((2, -fit, "".join(chars)))
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [text for _swaps_made, _fit, text in ranked]


def _passes(card_type: CardTypeSpec, values: dict[str, str], key: str, value: str, today: datetime.date | None) -> bool:
    trial = dict(values)
    trial[key] = value
    return not validate_card(card_type, trial, today=today).get(key)


def candidates_for(
    card_type: CardTypeSpec,
    key: str,
    raw_text: str,
    values: dict[str, str],
    *,
    other_reads: Iterable[str] = (),
    today: datetime.date | None = None,
) -> list[str]:
    """Return up to :data:`MAX_CANDIDATES` clean values for a field, best first.

    ``raw_text`` is the engine's text for the field and ``values`` the card's
    current clean values. Other engines' readings that pass the rules come first,
    then look-alike swaps of ``raw_text`` that pass them, fewest swaps first.
    The field's current value is never among the candidates.
    """
    spec = card_type.field(key)
    current = values.get(key, "")
    found: list[str] = []

    def offer(value: str) -> None:
        if value and value != current and value not in found and _passes(card_type, values, key, value, today):
            found.append(value)

    # Another engine's reading of the same zone.
    for text in other_reads:
        offer(normalize_value(spec.kind, text))
        if len(found) >= MAX_CANDIDATES:
            return found

    # A near miss of a closed vocabulary: "UNTIED STATES" offers USA.
    for entry in nearest_entries(spec.kind, raw_text):
        offer(entry)
        if len(found) >= MAX_CANDIDATES:
            return found

    # Look-alike swaps, on the raw text so that "13 0CT 1983" can become "13 OCT 1983".
    if spec.kind in SWAPPABLE_KINDS and raw_text:
        for text in _swaps(raw_text.strip()):
            offer(normalize_value(spec.kind, text))
            if len(found) >= MAX_CANDIDATES:
                break
    if found:
        log.debug("field %s candidates=%d", key, len(found))
    return found
