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
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from models.card_type import CardTypeSpec, FieldKind
from ocr.dropout import card_layers
from ocr.engines import OcrEngine, TextLine, _rect_points
from ocr.layout import LayoutMatch, zone_rect
from ocr.prepare import remove_rules
from ocr.vocab import ZONE_CHARSETS

__all__ = ["ZoneRead", "has_blot", "ink_ratio", "read_fields", "reread_zone"]

log = logging.getLogger(__name__)

# Share of pixels that must be ink for a zone to count as written on.
BLANK_INK_RATIO = 0.002
# Ink this many times deeper than the median stroke (distance transform) is a blot, not writing.
# On 48 generated cards a blot over a digit measured 5.7-6.5, and printed or handwritten codes and
# dates at most 5.0. Chinese handwriting reaches 6.5, so only the kinds in BLOT_KINDS are checked.
# NOTE: the ratio is fitted on generated blots only. A real smear or a correction may measure lower.
BLOT_THICKNESS_RATIO = 5.5
# Codes and dates, where one changed character gives another valid value.
BLOT_KINDS = frozenset(
    {
        FieldKind.SERIAL,
        FieldKind.DATE,
        FieldKind.DOCUMENT_NUMBER,
        FieldKind.VISA_NUMBER,
        FieldKind.ROOM,
        FieldKind.RESIDENT_ID,
    }
)
# A zone with more red print than this share of its pixels (a stamp over the value) is read on its
# own, from its cleaned crop, instead of from the lines the page detection found.
MAX_BATCH_RED_SHARE = 0.002


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
    # A solid blot of ink lies among the characters of a code or date (see :func:`has_blot`).
    blot: bool = False


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


def has_blot(gray: np.ndarray, strokes: np.ndarray | None = None) -> bool:
    """Return True when a zone (H x W uint8) contains ink much thicker than its strokes: a blot or a smear.

    The thickness is the distance transform of the ink: the deepest point of a blot lies
    :data:`BLOT_THICKNESS_RATIO` times deeper than the median ink pixel of the strokes. The
    strokes are measured in ``strokes`` (same shape) when given, else in ``gray`` itself.
    """
    depth = _ink_depth(gray)
    stroke_depth = depth if strokes is None else _ink_depth(strokes)
    if depth is None or stroke_depth is None:
        return False
    stroke = max(1.0, float(np.median(stroke_depth[stroke_depth > 0])))
    return float(depth.max()) >= BLOT_THICKNESS_RATIO * stroke


def _ink_depth(gray: np.ndarray) -> np.ndarray | None:
    """Return each ink pixel's distance to the paper (0 on paper), or None when the zone contains almost no ink."""
    if gray.size == 0:
        return None
    paper = float(np.percentile(gray, 75))
    ink = (gray < paper - 30).astype(np.uint8)
    ink = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    if int(ink.sum()) < 20:
        return None
    return cv2.distanceTransform(ink, cv2.DIST_L2, 3)


def _blotted(without_red: np.ndarray, box: tuple[int, int, int, int], gray: np.ndarray, red_zone: bool) -> bool:
    """Return True when a zone contains a blot.

    A red zone's crop keeps the red print only, so a dark blot over it is looked for in the card
    without red print and measured against the red print's strokes.
    """
    if not red_zone:
        return has_blot(gray)
    x0, y0, x1, y1 = box
    return has_blot(remove_rules(without_red[y0:y1, x0:x1]), strokes=gray)


def _join(lines: list[TextLine]) -> str:
    """Join zone lines in reading order: top to bottom, then left to right."""
    if not lines:
        return ""
    heights = [line.bbox[3] - line.bbox[1] for line in lines]
    row_height = max(1.0, float(np.median(heights)))
    ordered = sorted(lines, key=lambda line: (round(line.center[1] / row_height), line.bbox[0]))
    return " ".join(line.text.strip() for line in ordered if line.text.strip())


def read_fields(
    image: np.ndarray,
    match: LayoutMatch,
    card_type: CardTypeSpec,
    engine: OcrEngine,
    page_boxes: list[np.ndarray] | None = None,
) -> dict[str, ZoneRead]:
    """Read every field zone of ``card_type`` from a straightened card image (H x W x 3 BGR).

    ``page_boxes`` are the text lines the layout stage detected on the same image (4 x 2 corner
    arrays in its pixels). With them, an engine that recognises crops apart (rapidocr) reads the
    lines found inside each zone, all zones in one batch, instead of detecting lines zone by
    zone. A zone where no page line lies, or whose lines read as nothing, is read on its own.
    """
    assert match.template is not None
    # The paper is estimated on the whole card, where every window holds bare paper, not per zone.
    layers = card_layers(image)
    batch = page_boxes is not None and hasattr(engine, "read_crops")
    zones: dict[str, tuple[tuple[int, int, int, int], np.ndarray, float]] = {}
    # Zones read on their own: page detection ran on the card with its red print, so its lines
    # in a red zone or under a stamp are the red print's, not the writing's.
    alone: set[str] = set()
    red_zones: set[str] = set()
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

        if field.ink == "red":
            layer = layers.red_only(x0, y0, x1, y1)
            alone.add(spec.key)
            red_zones.add(spec.key)
        else:
            layer = layers.without_red[y0:y1, x0:x1]
            if layers.red_share(x0, y0, x1, y1) > MAX_BATCH_RED_SHARE:
                alone.add(spec.key)
        gray = remove_rules(layer)
        zones[spec.key] = ((x0, y0, x1, y1), gray, ink_ratio(gray))

    # Lines the page detection found inside each zone, read in one batch.
    batched = {key: zone for key, zone in zones.items() if key not in alone}
    found = _batch_read(engine, batched, page_boxes) if batch else {}

    for key, (box, gray, ink) in zones.items():
        lines = found.get(key)
        if not lines:
            # Every zone is read, even one that looks blank: faint writing must not pass as an empty field.
            lines = engine.read_zone(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
        read = _zone_read(key, lines, box, engine.name, ink, gray)
        checked = card_type.field(key).kind in BLOT_KINDS
        if checked and _blotted(layers.without_red, box, gray, red_zone=key in red_zones):
            read = replace(read, blot=True)
        reads[key] = read
    return {spec.key: reads[spec.key] for spec in card_type.fields if spec.key in reads}


def _lines_in_zone(page_boxes: list[np.ndarray], box: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
    """Return the page lines centred in a zone, as (x0, y0, x1, y1) in the zone's pixels, cut to the zone."""
    x0, y0, x1, y1 = box
    inside = []
    for points in page_boxes:
        cx, cy = points.mean(axis=0)
        if not (x0 <= cx < x1 and y0 <= cy < y1):
            continue
        lx0 = int(max(x0, np.floor(points[:, 0].min()))) - x0
        ly0 = int(max(y0, np.floor(points[:, 1].min()))) - y0
        lx1 = int(min(x1, np.ceil(points[:, 0].max()))) - x0
        ly1 = int(min(y1, np.ceil(points[:, 1].max()))) - y0
        if lx1 - lx0 >= 4 and ly1 - ly0 >= 4:
            inside.append((lx0, ly0, lx1, ly1))
    return _merge_rows(inside)


def _merge_rows(rects: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Join rectangles that share a row into one, so that a value split by a gap or blot is read as one line.

    Two rectangles share a row when they overlap vertically by at least half the lower one's height.
    """
    rows: list[list[int]] = []
    for x0, y0, x1, y1 in sorted(rects, key=lambda r: (r[1] + r[3]) / 2):
        if rows:
            rx0, ry0, rx1, ry1 = rows[-1]
            overlap = min(y1, ry1) - max(y0, ry0)
            if overlap >= 0.5 * min(y1 - y0, ry1 - ry0):
                rows[-1] = [min(rx0, x0), min(ry0, y0), max(rx1, x1), max(ry1, y1)]
                continue
        rows.append([x0, y0, x1, y1])
    return [(x0, y0, x1, y1) for x0, y0, x1, y1 in rows]


def _batch_read(
    engine: OcrEngine,
    zones: dict[str, tuple[tuple[int, int, int, int], np.ndarray, float]],
    page_boxes: list[np.ndarray] | None,
) -> dict[str, list[TextLine]]:
    """Recognise the page lines inside every zone in one call; return the lines read per zone key.

    A zone whose lines all read as nothing is left out, so that it is read on its own.
    """
    owners: list[tuple[str, tuple[int, int, int, int]]] = []
    crops: list[np.ndarray] = []
    for key, (box, gray, _ink) in zones.items():
        for lx0, ly0, lx1, ly1 in _lines_in_zone(page_boxes or [], box):
            owners.append((key, (lx0, ly0, lx1, ly1)))
            crops.append(cv2.cvtColor(gray[ly0:ly1, lx0:lx1], cv2.COLOR_GRAY2BGR))

    found: dict[str, list[TextLine]] = {}
    texts = engine.read_crops(crops)  # type: ignore[attr-defined]
    for (key, (lx0, ly0, lx1, ly1)), (text, score) in zip(owners, texts):
        if text.strip():
            found.setdefault(key, []).append(TextLine(text, score, _rect_points(lx0, ly0, lx1, ly1)))
    return found


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
