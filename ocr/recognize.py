"""OCR of field zones: crop each value zone of the matched template and read it.

Zones are cut from gray versions of the card made by :mod:`ocr.dropout`: the
paper flattened to white and red print removed, so that tinted carbon copies
read like white cards and a red stamp over a value is neither read nor hides
the writing under it. A zone whose template ink is "red" (the pre-printed
serial number) is cut from the red layer instead, which holds the red print
only. Printed table lines that cross a crop are painted out before reading,
so an engine does not read a cell border as "1" or "|". Each zone also gets an
ink measure, which separates a blank field from writing the engine could not
read.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from models.card_type import CardTypeSpec, FieldKind
from ocr.dropout import drop_red, red_layer
from ocr.engines import OcrEngine, TextLine
from ocr.layout import LayoutMatch, zone_rect
from ocr.prepare import remove_rules
from ocr.vocab import ZONE_CHARSETS

__all__ = ["ZoneRead", "ink_ratio", "read_fields", "reread_zone"]

log = logging.getLogger(__name__)

# Share of pixels that must be ink for a zone to count as written on.
BLANK_INK_RATIO = 0.002


@dataclass(frozen=True)
class ZoneRead:
    """Engine output for one field zone."""

    key: str
    raw_text: str
    # Engine score of the weakest line read in the zone, 0 when nothing was read.
    score: float
    # Zone on the straightened image, (x0, y0, x1, y1) pixels.
    box: tuple[int, int, int, int]
    engine: str
    # Share of the zone's pixels that are ink once the paper is flattened, red print (or, in a
    # red-ink zone, everything but red print) and the printed rules are removed.
    ink: float
    # The gray crop the engine read (H x W uint8), kept so that a second engine can read the same pixels.
    crop: np.ndarray | None = field(default=None, compare=False, repr=False)


def ink_ratio(gray: np.ndarray) -> float:
    """Return the share of pixels clearly darker than the paper, in [0, 1]."""
    if gray.size == 0:
        return 0.0
    paper = float(np.percentile(gray, 75))
    # Faint carbon-copy writing on the generated tinted cards is about 40 grey levels below the
    # paper in a plain gray conversion, and darker once ocr.dropout has flattened the paper. The
    # opening drops isolated noise pixels, so scanner grain does not count as writing.
    ink = (gray < paper - 30).astype(np.uint8)
    ink = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    return float(ink.mean())


def _join(lines: list[TextLine]) -> str:
    """Join zone lines in reading order: top to bottom, then left to right."""
    if not lines:
        return ""
    heights = [line.bbox[3] - line.bbox[1] for line in lines]
    row_height = max(1.0, float(np.median(heights)))
    ordered = sorted(lines, key=lambda line: (round(line.center[1] / row_height), line.bbox[0]))
    return " ".join(line.text.strip() for line in ordered if line.text.strip())


def read_fields(
    image: np.ndarray, match: LayoutMatch, card_type: CardTypeSpec, engine: OcrEngine
) -> dict[str, ZoneRead]:
    """Read every field zone of ``card_type`` from a straightened card image (H x W x 3 BGR)."""
    assert match.template is not None
    # The paper is estimated on the whole card, where every window holds bare paper, not per zone.
    layers = {"any": drop_red(image)}
    reads: dict[str, ZoneRead] = {}
    for spec in card_type.fields:
        try:
            field = match.template.field(spec.key)
        except KeyError:
            log.warning("template %s has no zone for field %s", match.template.name, spec.key)
            continue

        # Grow the zone a little upwards and downwards: handwriting leaves its line.
        x0, y0, x1, y1 = zone_rect(match, field.value_box, image.shape, pad_x=0.0, pad_y=0.12)
        if x1 <= x0 or y1 <= y0:
            reads[spec.key] = ZoneRead(spec.key, "", 0.0, (x0, y0, x1, y1), engine.name, 0.0)
            continue

        layer = _layer(layers, image, field.ink)
        gray = remove_rules(layer[y0:y1, x0:x1])
        ink = ink_ratio(gray)
        # Every zone is read, even one that looks blank: faint writing must not pass as an empty field.
        lines = engine.read_zone(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
        reads[spec.key] = _zone_read(spec.key, lines, (x0, y0, x1, y1), engine.name, ink, gray)
    return reads


def _zone_read(
    key: str, lines: list[TextLine], box: tuple[int, int, int, int], engine_name: str, ink: float, gray: np.ndarray
) -> ZoneRead:
    text = _join(lines)
    score = min((line.score for line in lines if line.text.strip()), default=0.0)
    return ZoneRead(key, text, score, box, engine_name, ink, gray)


def reread_zone(engine: OcrEngine, read: ZoneRead, kind: FieldKind) -> ZoneRead | None:
    """Read the crop of ``read`` again with another engine, limited to the kind's characters where it can be.

    An engine whose ``read_zone`` takes ``charset`` (Tesseract) reads only the
    characters of :data:`ocr.vocab.ZONE_CHARSETS` for the kind. Returns None
    when ``read`` kept no crop.
    """
    if read.crop is None:
        return None
    image = cv2.cvtColor(read.crop, cv2.COLOR_GRAY2BGR)
    charset = ZONE_CHARSETS.get(kind)
    if charset and "charset" in inspect.signature(engine.read_zone).parameters:
        lines = engine.read_zone(image, charset=charset)
    else:
        lines = engine.read_zone(image)
    return _zone_read(read.key, lines, read.box, engine.name, read.ink, read.crop)


def _layer(layers: dict[str, np.ndarray], image: np.ndarray, ink: str) -> np.ndarray:
    """Return the gray card image to read a zone of template ink ``ink`` from, made once per card."""
    key = "red" if ink == "red" else "any"
    if key not in layers:
        layers[key] = red_layer(image)
    return layers[key]
