"""Learning a template from one scan of a blank card.

A site whose cards are printed in a layout the product does not know scans one
blank card, and :func:`learn_template` turns that scan into a
:class:`~models.template.Template`:

1. The scan is straightened by ``ocr.prepare`` and read by page OCR. The
   quarter turn with the most printed labels wins, and a few label crops are
   read again without the direction classifier to tell upright from upside
   down, because page OCR reads both.
2. Each field's printed label (``label_zh`` and ``label_en`` of the card type)
   is found with ``ocr.layout.label_similarity``. Its OCR line box becomes the
   template's ``label_box``, which is what the layout stage aligns on.
3. Long printed lines are found by morphology. A field's ``value_box`` is the
   table cell right of its label, bounded by those lines. When the label sits
   in its own cell, the zone is the next cell. When label and value share a
   cell, the zone is the rest of that cell. On a card without lines it is the
   space right of the label up to the next label on the row, or the underline
   the value is written on.
4. The title, and the red pre-printed serial number when the blank carries
   one, complete the template.

Every doubtful step adds a :class:`Check`, which names the field and what a
person should look at. :func:`learn_from_lines` runs steps 2 to 4 on OCR lines
already read, without an OCR engine.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from models.card_type import CardTypeSpec, FieldKind, FieldSpec
from models.template import Box, Template, TemplateField
from ocr.engines import OcrEngine, TextLine, get_engine
from ocr.errors import InputFileError, TemplateError, os_error_reason
from ocr.ingest import IngestFailure, iter_pages
from ocr.layout import MIN_ANCHORS, MIN_LABEL_SIMILARITY, clean_text, label_similarity, match_layout
from ocr.locate import PAGE_OCR_MAX_SIDE, read_page_scaled
from ocr.prepare import apply_quarter_turn, prepare
from ocr.registry import Registry, load_registry, reload_registry
from ocr.validate import CROSS_RULES

__all__ = [
    "Check",
    "LearnResult",
    "LearnedField",
    "TableLines",
    "find_table_lines",
    "learn_from_lines",
    "learn_template",
    "write_template",
]

log = logging.getLogger(__name__)

# A label found less similar than this is reported for a person to check.
CHECK_SIMILARITY = 0.95
# A zone narrower than this many label text heights is reported as too narrow.
MIN_ZONE_WIDTH_HEIGHTS = 2.0
# Two zones overlapping by more than this share of the smaller one are reported.
MAX_ZONE_OVERLAP = 0.05
# Label crops read twice, upright and turned by 180 degrees, to find which way is up.
ORIENTATION_CROPS = 4
# Red ink of a pre-printed serial number, in OpenCV HSV (hue 0-179).
RED_HUE_MAX = 10
RED_HUE_MIN_WRAPPED = 170
RED_MIN_SATURATION = 90
RED_MIN_VALUE = 70


@dataclass(frozen=True)
class Check:
    """Something a person should look at in the learned template; ``key`` is empty for the card as a whole."""

    key: str
    code: str
    message_zh: str
    message_en: str


@dataclass
class LearnedField:
    """Position of one field of the card type on the blank, in pixels of the upright blank."""

    spec: FieldSpec
    found: bool
    # Similarity of the best label line found, 0 when none was found.
    similarity: float = 0.0
    label_text: tuple[str, ...] = ()
    # Indices of the OCR lines that carry the label.
    line_indices: tuple[int, ...] = ()
    # OCR line box of label_text[0]: the anchor the layout stage aligns on.
    anchor_px: tuple[float, float, float, float] | None = None
    # Union of the Chinese and English label lines.
    label_px: tuple[float, float, float, float] | None = None
    value_px: tuple[float, float, float, float] | None = None
    # How the value zone was found: "next_cell", "same_cell", "underline", "row_space" or "red_ink".
    method: str = ""
    ink: str = "any"


@dataclass
class LearnResult:
    """A learned template with what was found, what was not, and what to check."""

    template: Template | None
    fields: list[LearnedField]
    checks: list[Check] = field(default_factory=list)
    # CCW quarter turn applied to the straightened blank to make it upright.
    quarter_turn: int = 0
    skew_deg: float = 0.0
    # The upright blank the coordinates refer to (H x W x 3 BGR) and its OCR lines.
    image: np.ndarray | None = field(default=None, repr=False)
    lines: list[TextLine] = field(default_factory=list, repr=False)

    @property
    def found(self) -> list[LearnedField]:
        return [f for f in self.fields if f.found]

    @property
    def missing(self) -> list[LearnedField]:
        return [f for f in self.fields if not f.found]

    @property
    def missing_required(self) -> list[LearnedField]:
        return [f for f in self.fields if not f.found and f.spec.required]


# --------------------------------------------------------------------------
# Reading the blank
# --------------------------------------------------------------------------


def _read_first_page(path: Path, pdf_dpi: int) -> np.ndarray:
    """Return the first page of a scan file as a BGR image; raise InputFileError when it cannot be read."""
    for item in iter_pages([path], pdf_dpi=pdf_dpi):
        if isinstance(item, IngestFailure):
            raise item.to_error()
        if item.page_count > 1:
            log.warning("blank card file %s has %d pages; only page 1 is learned", path, item.page_count)
        return item.image
    raise InputFileError(
        str(path),
        "不是可读取的扫描文件（支持 JPEG、PNG、TIFF、PDF、BMP、WebP）",
        "not a readable scan file (JPEG, PNG, TIFF, PDF, BMP, WebP are read)",
    )


def _turn_lines_180(lines: list[TextLine], width: int, height: int) -> list[TextLine]:
    """Return the lines as they sit after the image is turned by 180 degrees."""
    turned = []
    for line in lines:
        points = np.stack([width - 1 - line.points[:, 0], height - 1 - line.points[:, 1]], axis=1)
        turned.append(TextLine(line.text, line.score, np.roll(points, 2, axis=0).astype(np.float32)))
    return turned


def _upright_votes(image: np.ndarray, pairs: list[tuple[str, TextLine]], engine: OcrEngine) -> tuple[float, float]:
    """Read label crops as they are and turned by 180 degrees; return the summed label similarity of each.

    Page OCR turns upside-down lines before reading them, so it finds every
    label on a page turned by 180 degrees too. Zone reading has no direction
    classifier, so only crops that are upright read as their label.
    """
    upright = turned = 0.0
    height, width = image.shape[:2]
    for label, line in pairs:
        x0, y0, x1, y1 = line.bbox
        pad = 0.25 * (y1 - y0)
        crop = image[
            int(max(0, y0 - pad)) : int(min(height, y1 + pad)),
            int(max(0, x0 - pad)) : int(min(width, x1 + pad)),
        ]
        if crop.size == 0:
            continue
        upright += max((label_similarity(label, t.text) for t in engine.read_zone(crop)), default=0.0)
        turned += max(
            (label_similarity(label, t.text) for t in engine.read_zone(cv2.rotate(crop, cv2.ROTATE_180))),
            default=0.0,
        )
    return upright, turned


def _orient(
    image: np.ndarray, candidates: list[int], spec: CardTypeSpec, engine: OcrEngine
) -> tuple[np.ndarray, list[TextLine], int]:
    """Return (upright image, its OCR lines, CCW quarter turn applied) for the turn with the most labels."""
    enough = max(MIN_ANCHORS, (len(spec.fields) + 1) // 2)
    # The other axis is tried too, because a wrong text-axis guess by ``prepare`` would otherwise lose the card.
    order = list(dict.fromkeys([*candidates, *((c + 90) % 360 for c in candidates)]))
    best: tuple[int, np.ndarray, list[TextLine], int] | None = None
    for quarter in order:
        turned = apply_quarter_turn(image, quarter)
        lines = read_page_scaled(engine, turned)
        found = _found_label_lines(lines, spec)
        log.info("blank read at quarter turn %d: %d lines, %d labels", quarter, len(lines), len(found))
        if best is None or len(found) > best[0]:
            best = (len(found), turned, lines, quarter)
        if len(found) >= enough:
            break
    assert best is not None
    _count, turned, lines, quarter = best

    # Decide between this turn and the half turn from a few label crops.
    found = sorted(_found_label_lines(lines, spec), key=lambda pair: -len(clean_text(pair[0])))[:ORIENTATION_CROPS]
    upright, upside_down = _upright_votes(turned, found, engine)
    log.info("orientation votes upright=%.2f turned=%.2f", upright, upside_down)
    if upside_down > upright:
        height, width = turned.shape[:2]
        turned = cv2.rotate(turned, cv2.ROTATE_180)
        lines = _turn_lines_180(lines, width, height)
        quarter = (quarter + 180) % 360
    return turned, lines, quarter


def _missing_label_lines(
    image: np.ndarray, lines: list[TextLine], spec: CardTypeSpec, engine: OcrEngine
) -> list[TextLine]:
    """Read the page again at full size and return new lines that carry a label not found yet.

    Page OCR on the reduced copy can miss a small label, and learning is worth a second read.
    """
    found = {key for key, _language in _assign_labels(lines, spec)[0]}
    missing = [f for f in spec.fields if f.key not in found]
    if not missing or max(image.shape[:2]) <= PAGE_OCR_MAX_SIDE:
        return []
    extra = []
    for line in engine.read_page(image):
        if any(_intersection(line.bbox, old.bbox) > 0.3 * _area(line.bbox) for old in lines):
            continue
        if any(label_similarity(label, line.text) >= MIN_LABEL_SIMILARITY for f in missing for _lang, label in _label_texts(f)):
            extra.append(line)
    log.info("full-size read found %d more label lines for %d missing fields", len(extra), len(missing))
    return extra


# --------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------


def _coverage(label: str, text: str) -> float:
    """Return the share of the line's text that the label takes up, in [0, 1]."""
    line = clean_text(text)
    return min(1.0, len(clean_text(label)) / len(line)) if line else 0.0


def _label_texts(spec: FieldSpec) -> list[tuple[str, str]]:
    """Return (language, label) pairs of a field that are worth looking for."""
    pairs = []
    if clean_text(spec.label_zh):
        pairs.append(("zh", spec.label_zh))
    if clean_text(spec.label_en) and clean_text(spec.label_en) != clean_text(spec.label_zh):
        pairs.append(("en", spec.label_en))
    return pairs


@dataclass
class _LabelHit:
    key: str
    language: str
    label: str
    line_index: int
    similarity: float
    coverage: float


def _assign_labels(lines: list[TextLine], spec: CardTypeSpec) -> tuple[dict[tuple[str, str], _LabelHit], list[_LabelHit]]:
    """Assign OCR lines to field labels, best match first; return the assignment and the unused candidates.

    A line serves one field only, but may carry both its Chinese and English
    label ("姓名 Name"). Among equally similar lines the one the label fills
    most wins, so "No." takes the line "No." before "Room No.".
    """
    candidates: list[_LabelHit] = []
    for field_spec in spec.fields:
        for language, label in _label_texts(field_spec):
            for index, line in enumerate(lines):
                similarity = label_similarity(label, line.text)
                if similarity >= MIN_LABEL_SIMILARITY:
                    candidates.append(
                        _LabelHit(field_spec.key, language, label, index, similarity, _coverage(label, line.text))
                    )
    candidates.sort(key=lambda hit: (-hit.similarity, -hit.coverage))

    assigned: dict[tuple[str, str], _LabelHit] = {}
    line_owner: dict[int, str] = {}
    unused: list[_LabelHit] = []
    for hit in candidates:
        slot = (hit.key, hit.language)
        owner = line_owner.get(hit.line_index)
        if slot in assigned or (owner is not None and owner != hit.key):
            unused.append(hit)
            continue
        assigned[slot] = hit
        line_owner[hit.line_index] = hit.key
    return assigned, unused


def _found_label_lines(lines: list[TextLine], spec: CardTypeSpec) -> list[tuple[str, TextLine]]:
    """Return (label, line) for every label found, for counting and for the orientation test."""
    assigned, _unused = _assign_labels(lines, spec)
    return [(hit.label, lines[hit.line_index]) for hit in assigned.values()]


def _box_gap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Return the distance between two boxes (x0, y0, x1, y1), 0 when they touch or overlap."""
    dx = max(0.0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0.0, max(a[1], b[1]) - min(a[3], b[3]))
    return max(dx, dy)


def _union(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float, float]:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _label_part(hit: _LabelHit, line: TextLine) -> tuple[float, float, float, float]:
    """Return the part of a line's box the label takes, estimated from its character position.

    A blank may carry text after the label on the same OCR line, such as the
    pre-printed serial after "No.", which belongs to the value zone.
    """
    x0, y0, x1, y1 = line.bbox
    text = clean_text(line.text)
    label = clean_text(hit.label)
    position = text.find(label)
    if position < 0 or len(text) <= len(label) + 1:
        return x0, y0, x1, y1
    share = (position + len(label)) / len(text)
    return x0, y0, x0 + (x1 - x0) * share, y1


def _place_labels(
    lines: list[TextLine], spec: CardTypeSpec, checks: list[Check]
) -> dict[str, LearnedField]:
    """Find each field's label lines; return a LearnedField per field key, with label boxes for those found."""
    assigned, unused = _assign_labels(lines, spec)
    line_owner = {hit.line_index: hit.key for hit in assigned.values()}
    result: dict[str, LearnedField] = {}
    for field_spec in spec.fields:
        zh = assigned.get((field_spec.key, "zh"))
        en = assigned.get((field_spec.key, "en"))
        if zh is not None and en is not None:
            zh_box, en_box = lines[zh.line_index].bbox, lines[en.line_index].bbox
            height = zh_box[3] - zh_box[1]
            if _box_gap(zh_box, en_box) > 1.5 * height:
                # Two lines far apart cannot be one printed label: keep the better one.
                keep, drop = (zh, en) if (zh.similarity, zh.coverage) >= (en.similarity, en.coverage) else (en, zh)
                checks.append(
                    Check(
                        field_spec.key,
                        "label_lines_apart",
                        f"{field_spec.label_zh}：中文与英文标签相距较远，只采用“{keep.label}”，"
                        f"“{drop.label}”可能属于别的位置，请核对。",
                        f"{field_spec.label_en}: the Chinese and English labels are far apart; only "
                        f"“{keep.label}” is used and “{drop.label}” may belong elsewhere, check it",
                    )
                )
                zh, en = (keep, None) if keep is zh else (None, keep)

        hits = [hit for hit in (zh, en) if hit is not None]
        if not hits:
            result[field_spec.key] = LearnedField(field_spec, found=False)
            continue

        anchor = hits[0]
        label_px = _label_part(anchor, lines[anchor.line_index])
        for hit in hits[1:]:
            label_px = _union(label_px, _label_part(hit, lines[hit.line_index]))
        learned = LearnedField(
            field_spec,
            found=True,
            similarity=max(hit.similarity for hit in hits),
            label_text=tuple(hit.label for hit in hits),
            line_indices=tuple(dict.fromkeys(hit.line_index for hit in hits)),
            anchor_px=lines[anchor.line_index].bbox,
            label_px=label_px,
        )
        result[field_spec.key] = learned

        if anchor.similarity < CHECK_SIMILARITY:
            checks.append(
                Check(
                    field_spec.key,
                    "low_label_similarity",
                    f"{field_spec.label_zh}：标签“{anchor.label}”只以相似度 {anchor.similarity:.2f} 匹配到"
                    f"“{lines[anchor.line_index].text}”，请核对位置是否正确。",
                    f"{field_spec.label_en}: label “{anchor.label}” matched “{lines[anchor.line_index].text}” "
                    f"with similarity {anchor.similarity:.2f} only; check that the position is right",
                )
            )
        for other in unused:
            if (other.key, other.language) != (anchor.key, anchor.language):
                continue
            if line_owner.get(other.line_index, anchor.key) != anchor.key:
                # The other line carries another field's label ("Room No." for "No."), which is no ambiguity.
                continue
            if (other.similarity, other.coverage) == (anchor.similarity, anchor.coverage) and other.line_index != anchor.line_index:
                checks.append(
                    Check(
                        field_spec.key,
                        "label_twice",
                        f"{field_spec.label_zh}：标签“{anchor.label}”在卡上出现不止一次"
                        f"（另见“{lines[other.line_index].text}”），请核对所选位置。",
                        f"{field_spec.label_en}: label “{anchor.label}” appears more than once "
                        f"(also “{lines[other.line_index].text}”); check the chosen position",
                    )
                )
                break
    return result


# --------------------------------------------------------------------------
# Printed lines
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A printed straight line in pixels: ``position`` is y for a horizontal line and x for a vertical one."""

    position: float
    start: float
    end: float
    thickness: float


@dataclass
class TableLines:
    """The long horizontal and vertical printed lines of a card."""

    horizontal: list[Segment]
    vertical: list[Segment]


def _erase_text(ink: np.ndarray, boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
    """Remove ink blobs that lie wholly inside a text box; blobs that leave the box (table lines) stay."""
    cleaned = ink.copy()
    height, width = ink.shape
    for x0, y0, x1, y1 in boxes:
        bx0, by0 = int(max(0, x0 - 2)), int(max(0, y0 - 2))
        bx1, by1 = int(min(width, x1 + 3)), int(min(height, y1 + 3))
        crop = cleaned[by0:by1, bx0:bx1]
        if crop.size == 0:
            continue
        count, labels, stats, _centroids = cv2.connectedComponentsWithStats(crop, connectivity=8)
        crop_h, crop_w = crop.shape
        for index in range(1, count):
            left, top, w, h = stats[index, :4]
            touches_edge = left == 0 or top == 0 or left + w >= crop_w or top + h >= crop_h
            if not touches_edge:
                crop[labels == index] = 0
    return cleaned


def _segments(mask: np.ndarray, horizontal: bool, min_length: float) -> list[Segment]:
    count, _labels, stats, _centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    found = []
    for index in range(1, count):
        left, top, w, h = (float(v) for v in stats[index, :4])
        if horizontal and w >= min_length:
            found.append(Segment(top + h / 2, left, left + w, h))
        elif not horizontal and h >= min_length:
            found.append(Segment(left + w / 2, top, top + h, w))
    return _merge_collinear(found)


def _merge_collinear(segments: list[Segment]) -> list[Segment]:
    """Join pieces of one printed line that a text box or a faint spot cut apart."""
    merged: list[Segment] = []
    for segment in sorted(segments, key=lambda s: (s.position, s.start)):
        for index, other in enumerate(merged):
            same_line = abs(other.position - segment.position) <= max(other.thickness, segment.thickness) + 3
            gap = max(segment.start, other.start) - min(segment.end, other.end)
            if same_line and gap <= 3 * max(other.thickness, segment.thickness, 2.0):
                merged[index] = Segment(
                    (other.position + segment.position) / 2,
                    min(other.start, segment.start),
                    max(other.end, segment.end),
                    max(other.thickness, segment.thickness),
                )
                break
        else:
            merged.append(segment)
    return merged


def find_table_lines(image: np.ndarray, text_boxes: list[tuple[float, float, float, float]]) -> TableLines:
    """Find long horizontal and vertical printed lines on a card image (H x W x 3 BGR).

    Text found by OCR is erased first, so strokes of large characters are not
    taken for lines. A horizontal line must be at least three text heights
    long and a vertical one at least 1.2 text heights, the median height of
    the OCR lines.
    """
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    height, width = gray.shape
    heights = [box[3] - box[1] for box in text_boxes]
    text_height = float(np.median(heights)) if heights else 0.03 * height

    blurred = cv2.GaussianBlur(gray, (3, 3), 0)
    block = max(15, (min(height, width) // 40) | 1)
    ink = cv2.adaptiveThreshold(blurred, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 15)
    ink = _erase_text(ink, text_boxes)

    run = max(15, int(text_height))
    horizontal = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (run, 1)))
    vertical = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, run)))
    max_thickness = max(3.0, 0.4 * text_height)
    lines = TableLines(
        horizontal=[s for s in _segments(horizontal, True, 3 * text_height) if s.thickness <= max_thickness],
        vertical=[s for s in _segments(vertical, False, 1.2 * text_height) if s.thickness <= max_thickness],
    )
    log.info("table lines found: %d horizontal, %d vertical", len(lines.horizontal), len(lines.vertical))
    return lines


# --------------------------------------------------------------------------
# Value zones
# --------------------------------------------------------------------------


def _spans(segment: Segment, value: float, tolerance: float) -> bool:
    return segment.start - tolerance <= value <= segment.end + tolerance


Rect = tuple[float, float, float, float]


def _obstacle_inside(box: Rect, obstacles: list[Rect]) -> bool:
    """Return whether the centre of any obstacle (another label, the title) lies inside ``box``."""
    return any(box[0] < (o[0] + o[2]) / 2 < box[2] and box[1] < (o[1] + o[3]) / 2 < box[3] for o in obstacles)


def _on_row(obstacle: Rect, top: float, bottom: float) -> bool:
    return obstacle[1] < bottom and obstacle[3] > top


def _vertical_bounds(
    table: TableLines, x_center: float, y_center: float, tolerance: float
) -> tuple[float | None, float | None]:
    """Return the y of the nearest horizontal lines above and below a point that reach its x."""
    above = [s.position for s in table.horizontal if _spans(s, x_center, tolerance) and s.position < y_center]
    below = [s.position for s in table.horizontal if _spans(s, x_center, tolerance) and s.position > y_center]
    return (max(above) if above else None), (min(below) if below else None)


def _underline(label: Rect, obstacles: list[Rect], table: TableLines, text_height: float) -> Segment | None:
    """Return the line a value is written on: below the label's row, starting right of the label's centre.

    A table's row line starts at the table's left edge, left of the label, so it never counts.
    """
    lx0, ly0, lx1, ly1 = label
    cy = (ly0 + ly1) / 2
    row_end = min([o[0] for o in obstacles if o[0] > lx1 and _on_row(o, ly0, ly1)], default=float("inf"))
    below_labels = [o[1] for o in obstacles if o[1] > ly1 and o[0] < lx1 + 4 * text_height and o[2] > lx0]
    row_bottom = min(below_labels, default=ly1 + 3 * text_height)
    for line in sorted(table.horizontal, key=lambda s: s.position):
        if not cy < line.position < row_bottom:
            continue
        if (lx0 + lx1) / 2 < line.start < row_end and line.end > max(lx1, line.start) + 2 * text_height:
            return line
    return None


def _value_zone(
    learned: LearnedField,
    obstacles: list[Rect],
    table: TableLines,
    image_size: tuple[int, int],
) -> tuple[Rect, str]:
    """Return the value zone in pixels for a field's label, and how it was found.

    ``obstacles`` are the boxes of the other labels and of the title, which no zone may cover.
    """
    width, height = image_size
    assert learned.label_px is not None and learned.anchor_px is not None
    lx0, ly0, lx1, ly1 = learned.label_px
    text_height = learned.anchor_px[3] - learned.anchor_px[1]
    cy = (ly0 + ly1) / 2
    tolerance = max(4.0, 0.3 * text_height)
    margin = max(3.0, 0.006 * height)
    gap = 0.5 * text_height

    # A value written on a line of its own: from the row above (or half a line over the label) down to the line.
    line = _underline(learned.label_px, obstacles, table, text_height)
    if line is not None:
        x0 = max(lx1 + gap, line.start)
        above, _below = _vertical_bounds(table, (x0 + line.end) / 2, cy, tolerance)
        top = ly0 - 0.5 * text_height
        if above is not None:
            top = max(top, above + margin)
        return (x0, top, line.end, line.position + 0.2 * text_height), "underline"

    walls = sorted(s.position for s in table.vertical if _spans(s, cy, tolerance))
    right_walls = [x for x in walls if x >= lx1 - tolerance]
    if right_walls:
        wall = right_walls[0]
        next_walls = [x for x in right_walls if x > wall + 2 * text_height]
        if next_walls:
            # The label has its own cell when the next cell carries no label and is wider than the
            # space left beside the label.
            top, bottom = _vertical_bounds(table, (wall + next_walls[0]) / 2, cy, tolerance)
            cell = (wall, top if top is not None else ly0, next_walls[0], bottom if bottom is not None else ly1)
            if not _obstacle_inside(cell, obstacles) and wall - lx1 < next_walls[0] - wall:
                return _inset_cell(cell, top, bottom, learned.label_px, margin, text_height), "next_cell"

        # Label and value share the cell: the value is the rest of it, up to the next label on the row.
        right = min([wall] + [o[0] for o in obstacles if o[0] > lx1 and _on_row(o, ly0, ly1)])
        top, bottom = _vertical_bounds(table, (lx1 + right) / 2, cy, tolerance)
        # The left edge is set back by the margin, so that the inset leaves exactly the gap after the label.
        cell = (lx1 + gap - margin, top if top is not None else ly0, right, bottom if bottom is not None else ly1)
        return _inset_cell(cell, top, bottom, learned.label_px, margin, text_height), "same_cell"

    # No printed line: the space right of the label up to the next label on the row or the table's edge.
    row_obstacles = [o for o in obstacles if o[0] > lx1 and _on_row(o, ly0, ly1)]
    if row_obstacles:
        right = min(o[0] for o in row_obstacles) - 0.5 * text_height
    else:
        table_right = max((s.end for s in table.horizontal), default=0.0)
        right = table_right if table_right > lx1 + 2 * text_height else width * 0.97
    half = max(text_height, (ly1 - ly0) / 2 + 0.25 * text_height)
    return (lx1 + gap, cy - half, right, cy + half), "row_space"


def _inset_cell(
    cell: Rect, top: float | None, bottom: float | None, label: Rect, margin: float, text_height: float
) -> Rect:
    """Inset a cell by the margin; a side with no printed line gets the label's extent plus half a line."""
    x0, y0, x1, y1 = cell
    if top is None:
        y0 = label[1] - 0.5 * text_height
    if bottom is None:
        y1 = label[3] + 0.5 * text_height
    return x0 + margin, y0 + margin, x1 - margin, y1 - margin


def _red_ink_box(image: np.ndarray, region: tuple[float, float, float, float]) -> tuple[float, float, float, float] | None:
    """Return the box of red print inside a region of the image, or None when there is none."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = (int(max(0, region[0])), int(max(0, region[1])), int(min(width, region[2])), int(min(height, region[3])))
    if x1 <= x0 or y1 <= y0:
        return None
    hsv = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2HSV)
    hue, saturation, value = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    red = ((hue <= RED_HUE_MAX) | (hue >= RED_HUE_MIN_WRAPPED)) & (saturation >= RED_MIN_SATURATION) & (value >= RED_MIN_VALUE)
    red = cv2.morphologyEx(red.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    points = cv2.findNonZero(red)
    if points is None or len(points) < 20:
        return None
    bx, by, bw, bh = cv2.boundingRect(points)
    return float(x0 + bx), float(y0 + by), float(x0 + bx + bw), float(y0 + by + bh)


def _serial_zone(learned: LearnedField, image: np.ndarray) -> None:
    """Fit a serial-number zone to the red pre-printed number right of its label, when the blank carries one."""
    assert learned.anchor_px is not None
    assert learned.label_px is not None
    assert learned.value_px is not None
    text_height = learned.anchor_px[3] - learned.anchor_px[1]
    zone = learned.value_px
    label_right = learned.label_px[2]
    # The search starts at the label, because the number may be printed right against "No.".
    red = _red_ink_box(image, (label_right, zone[1] - text_height, zone[2], zone[3] + text_height))
    if red is None:
        return
    pad = 0.5 * text_height
    # Later cards carry other numbers, maybe longer: leave room right of this one.
    learned.value_px = (
        max(label_right, min(zone[0], red[0] - 0.5 * pad)),
        min(red[1], learned.label_px[1]) - pad,
        min(zone[2], red[2] + 3 * text_height),
        max(red[3], learned.label_px[3]) + pad,
    )
    learned.method = "red_ink"
    learned.ink = "red"


def _unlabelled_serial(image: np.ndarray, learned: LearnedField, text_height: float) -> None:
    """Place a serial-number zone on red print in the top fifth of the card when its label was not found."""
    height, width = image.shape[:2]
    red = _red_ink_box(image, (0, 0, width, height * 0.2))
    if red is None:
        return
    pad = 0.5 * text_height
    learned.value_px = (red[0] - pad, red[1] - pad, red[2] + pad, red[3] + pad)
    learned.method = "red_ink"
    learned.ink = "red"


# --------------------------------------------------------------------------
# Title
# --------------------------------------------------------------------------


def _find_title(
    lines: list[TextLine], spec: CardTypeSpec, label_lines: set[int], image_size: tuple[int, int], checks: list[Check]
) -> tuple[tuple[str, ...], tuple[float, float, float, float]]:
    """Return (title text, title box in pixels): the card type's title if printed, else the largest top line."""
    width, height = image_size
    scored = [
        (label_similarity(spec.title_zh, line.text), index)
        for index, line in enumerate(lines)
        if index not in label_lines
    ]
    best = max(scored, default=(0.0, -1))
    if best[0] >= MIN_LABEL_SIMILARITY:
        texts = [spec.title_zh]
        box = lines[best[1]].bbox
    else:
        top_lines = [(line.bbox[3] - line.bbox[1], index) for index, line in enumerate(lines) if index not in label_lines and line.center[1] < 0.3 * height and clean_text(line.text)]
        if not top_lines:
            checks.append(
                Check(
                    "",
                    "title_missing",
                    f"未找到标题“{spec.title_zh}”，顶部也没有其他文字；模板只能凭字段标签识别卡片类型。",
                    f"title “{spec.title_zh}” not found and no other text at the top; the card type is recognised "
                    "from the field labels alone",
                )
            )
            return (spec.title_zh,), (0.1 * width, 0.01 * height, 0.9 * width, 0.12 * height)
        _size, index = max(top_lines)
        texts = [lines[index].text.strip()]
        box = lines[index].bbox
        checks.append(
            Check(
                "",
                "title_not_card_type",
                f"未找到卡片类型的标题“{spec.title_zh}”，改用卡片顶部最大的文字“{texts[0]}”作为标题，请核对。",
                f"the card type's title “{spec.title_zh}” was not found; the largest text at the top, "
                f"“{texts[0]}”, is used as the title instead; check it",
            )
        )

    title_height = box[3] - box[1]
    for index, line in enumerate(lines):
        if index in label_lines or not clean_text(spec.title_en):
            continue
        if label_similarity(spec.title_en, line.text) >= MIN_LABEL_SIMILARITY and _box_gap(box, line.bbox) < 1.5 * title_height:
            texts.append(spec.title_en)
            box = _union(box, line.bbox)
            break
    pad = 0.15 * title_height
    return tuple(texts), (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad)


# --------------------------------------------------------------------------
# Checks on the zones
# --------------------------------------------------------------------------


def _area(box: tuple[float, float, float, float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _intersection(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def _zone_checks(fields: list[LearnedField], image_size: tuple[int, int]) -> list[Check]:
    """Report zones that overlap another zone or label, are very narrow, or were found without printed lines."""
    width, height = image_size
    checks = []
    placed = [f for f in fields if f.value_px is not None]
    for learned in placed:
        spec = learned.spec
        zone = learned.value_px
        assert zone is not None
        text_height = (learned.anchor_px[3] - learned.anchor_px[1]) if learned.anchor_px else 0.03 * height
        zone_w, zone_h = zone[2] - zone[0], zone[3] - zone[1]
        if zone_w < MIN_ZONE_WIDTH_HEIGHTS * text_height or zone_h < 0.8 * text_height:
            checks.append(
                Check(
                    spec.key,
                    "narrow_zone",
                    f"{spec.label_zh}：填写区很窄（{zone_w / width:.1%} 卡宽 × {zone_h / height:.1%} 卡高），"
                    "可能没找对表格线，请核对。",
                    f"{spec.label_en}: the value zone is very narrow ({zone_w / width:.1%} of the card width x "
                    f"{zone_h / height:.1%} of its height); the table lines may be wrong, check it",
                )
            )
        for other in placed:
            if other is learned:
                continue
            assert other.value_px is not None
            smaller = min(_area(zone), _area(other.value_px)) or 1.0
            if other.spec.key > spec.key and _intersection(zone, other.value_px) / smaller > MAX_ZONE_OVERLAP:
                checks.append(
                    Check(
                        spec.key,
                        "zones_overlap",
                        f"{spec.label_zh}的填写区与{other.spec.label_zh}的填写区重叠，请核对。",
                        f"the value zones of {spec.label_en} and {other.spec.label_en} overlap; check both",
                    )
                )
            if other.label_px is not None and _intersection(zone, other.label_px) > 0.3 * _area(other.label_px):
                checks.append(
                    Check(
                        spec.key,
                        "zone_covers_label",
                        f"{spec.label_zh}的填写区盖住了{other.spec.label_zh}的标签，请核对。",
                        f"the value zone of {spec.label_en} covers the label of {other.spec.label_en}; check it",
                    )
                )
        if learned.method == "row_space":
            # An underline gives the zone's width; without any printed line both width and height are guesses.
            checks.append(
                Check(
                    spec.key,
                    "zone_without_table",
                    f"{spec.label_zh}：右侧没有表格线或下划线，填写区按同一行到下一个标签的空白推定，请核对宽度与高度。",
                    f"{spec.label_en}: no table line or underline right of the label, so the zone was taken from "
                    "the space up to the next label on the row; check its width and height",
                )
            )
    return checks


# --------------------------------------------------------------------------
# Whole template
# --------------------------------------------------------------------------


def _relative(box: tuple[float, float, float, float], image_size: tuple[int, int]) -> Box:
    """Convert a pixel box to a Box in relative coordinates, clipped to the card."""
    width, height = image_size
    x0 = min(max(box[0] / width, 0.0), 1.0)
    y0 = min(max(box[1] / height, 0.0), 1.0)
    x1 = min(max(box[2] / width, 0.0), 1.0)
    y1 = min(max(box[3] / height, 0.0), 1.0)
    if x1 - x0 < 0.002:
        x0, x1 = max(0.0, min(x0, 0.998)), min(1.0, max(x0, 0.0) + 0.002)
    if y1 - y0 < 0.002:
        y0, y1 = max(0.0, min(y0, 0.998)), min(1.0, max(y0, 0.0) + 0.002)
    return Box(x0=round(x0, 4), y0=round(y0, 4), x1=round(x1, 4), y1=round(y1, 4))


def _rules(table: TableLines, image_size: tuple[int, int]) -> tuple[Box, ...]:
    """Return the printed lines as thin rectangles, so a renderer can draw the learned form."""
    boxes = []
    for segment in table.horizontal:
        half = max(1.0, segment.thickness / 2)
        boxes.append(_relative((segment.start, segment.position - half, segment.end, segment.position + half), image_size))
    for segment in table.vertical:
        half = max(1.0, segment.thickness / 2)
        boxes.append(_relative((segment.position - half, segment.start, segment.position + half, segment.end), image_size))
    return tuple(boxes)


def learn_from_lines(
    image: np.ndarray,
    lines: list[TextLine],
    card_type: CardTypeSpec,
    name: str,
) -> LearnResult:
    """Learn a template of ``card_type`` from an upright blank card image and its page OCR lines.

    ``result.template`` is None when fewer than ``ocr.layout.MIN_ANCHORS``
    labels were found, because the layout stage could not align such a template.
    """
    height, width = image.shape[:2]
    size = (width, height)
    checks: list[Check] = []

    placed = _place_labels(lines, card_type, checks)
    label_lines = {index for learned in placed.values() for index in learned.line_indices}
    title_text, title_px = _find_title(lines, card_type, label_lines, size, checks)
    table = find_table_lines(image, [line.bbox for line in lines])

    # Zones: each from its label, kept clear of the other labels and the title.
    label_boxes = {key: f.label_px for key, f in placed.items() if f.label_px is not None}
    text_heights = [f.anchor_px[3] - f.anchor_px[1] for f in placed.values() if f.anchor_px is not None]
    text_height = float(np.median(text_heights)) if text_heights else 0.03 * height
    for key, learned in placed.items():
        if learned.found:
            obstacles = [box for other_key, box in label_boxes.items() if other_key != key] + [title_px]
            learned.value_px, learned.method = _value_zone(learned, obstacles, table, size)
            if learned.spec.kind is FieldKind.SERIAL:
                _serial_zone(learned, image)
        elif learned.spec.kind is FieldKind.SERIAL:
            _unlabelled_serial(image, learned, text_height)
    fields = [placed[spec.key] for spec in card_type.fields]
    checks += _zone_checks(fields, size)

    anchors = [f for f in fields if f.found]
    if len(anchors) < MIN_ANCHORS:
        checks.append(
            Check(
                "",
                "too_few_labels",
                f"只找到 {len(anchors)} 个字段标签，至少需要 {MIN_ANCHORS} 个才能对齐版式，未生成模板。"
                "请检查卡片类型是否选对、扫描是否清晰。",
                f"only {len(anchors)} field labels found and at least {MIN_ANCHORS} are needed to align the layout, "
                "so no template was made; check the card type and the scan",
            )
        )
        return LearnResult(None, fields, checks, image=image, lines=lines)

    template_fields = []
    for learned in fields:
        if learned.value_px is None:
            continue
        template_fields.append(
            TemplateField(
                key=learned.spec.key,
                label_box=_relative(learned.anchor_px, size) if learned.anchor_px else None,
                value_box=_relative(learned.value_px, size),
                label_text=learned.label_text,
                ink=learned.ink,
            )
        )
    template = Template(
        name=name,
        card_type=card_type.card_type,
        version=1,
        aspect_ratio=round(width / height, 4),
        title_box=_relative(title_px, size),
        title_text=title_text,
        rules=_rules(table, size),
        fields=tuple(template_fields),
    )
    return LearnResult(template, fields, checks, image=image, lines=lines)


def _rival_checks(result: LearnResult, registry: Registry) -> list[Check]:
    """Report other templates that fit the blank's labels as well as the learned one."""
    if result.template is None:
        return []
    own = match_layout(result.lines, Registry(registry.card_types, {result.template.name: result.template}))
    checks = []
    for template in registry.templates.values():
        if template.name == result.template.name:
            continue
        rival = match_layout(result.lines, Registry(registry.card_types, {template.name: template}))
        if rival.template is not None and rival.score >= own.score:
            checks.append(
                Check(
                    "",
                    "rival_template",
                    f"已有模板 {template.name}（{template.card_type}）与这张空白卡的标签同样吻合"
                    f"（{rival.score:.2f} 对 {own.score:.2f}），此版式的卡片可能被当作该模板识别。",
                    f"existing template {template.name} ({template.card_type}) fits this blank's labels as well "
                    f"({rival.score:.2f} vs {own.score:.2f}); cards of this layout may be read with it",
                )
            )
    return checks


def learn_template(
    blank: str | Path,
    card_type: str,
    name: str,
    *,
    template_dirs: list[str] | tuple[str, ...] = (),
    engine: OcrEngine | None = None,
    pdf_dpi: int = 200,
) -> LearnResult:
    """Learn a template of ``card_type`` named ``name`` from one scan of a blank card.

    Card types come from the built-in ones plus ``template_dirs``. Raises
    TemplateError for an unknown card type or an invalid name, and
    InputFileError for a scan that cannot be read.
    """
    if not name or not all(c.isascii() and (c.isalnum() or c in "_.-") for c in name):
        raise TemplateError(
            f"模板名 {name!r} 无效：只能含英文字母、数字、下划线、点和连字符。",
            f"invalid template name {name!r}: use only letters, digits, '_', '.' and '-'",
        )
    registry = load_registry(tuple(template_dirs))
    if card_type not in registry.card_types:
        known = ", ".join(sorted(registry.card_types))
        raise TemplateError(
            f"卡片类型 {card_type} 未定义（已有：{known}）。自定义卡片类型请用 --templates 指定其所在目录。",
            f"card type {card_type} is not defined (known: {known}); pass the folder of a site's own card type "
            "with --templates",
        )
    spec = registry.card_type(card_type)
    unknown_rules = [name for name in spec.cross_rules if name not in CROSS_RULES]
    if unknown_rules:
        raise TemplateError(
            f"卡片类型 {card_type} 引用了不存在的校验规则 {', '.join(unknown_rules)}，"
            f"可用规则：{', '.join(CROSS_RULES)}。请修改卡片类型文件。",
            f"card type {card_type} names unknown cross rules {', '.join(unknown_rules)}; "
            f"known rules: {', '.join(CROSS_RULES)}",
        )
    engine = engine or get_engine("rapidocr")

    page = _read_first_page(Path(blank), pdf_dpi)
    prepared = prepare(page)
    image, lines, quarter = _orient(prepared.image, prepared.quarter_turn_candidates, spec, engine)
    lines = lines + _missing_label_lines(image, lines, spec, engine)
    result = learn_from_lines(image, lines, spec, name)
    result.quarter_turn = quarter
    result.skew_deg = prepared.skew_deg
    result.checks += _rival_checks(result, registry)
    return result


def write_template(
    template: Template, out_dir: Path, *, template_dirs: list[str] | tuple[str, ...] = (), overwrite: bool = False
) -> Path:
    """Write ``out_dir/<name>.json`` and check that the registry loads it; return the path.

    Raises TemplateError when the file exists and ``overwrite`` is off, or
    when the written folder does not load together with ``template_dirs``.
    """
    path = out_dir / f"{template.name}.json"
    if path.exists() and not overwrite:
        raise TemplateError(
            f"模板文件 {path} 已存在。请换一个 --name，或加 --force 覆盖。",
            f"template file {path} exists already; choose another --name or add --force to overwrite it",
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TemplateError(
            f"无法创建目录 {out_dir}：{os_error_reason(exc)[0]}。请换一个 --out 目录。",
            f"cannot create folder {out_dir}: {exc.strerror or exc}",
        ) from exc
    text = json.dumps(template.model_dump(mode="json"), ensure_ascii=False, indent=1) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

    # The folder must load as the pipeline loads it: with the folders that define the card type.
    # load_registry caches by folder list, so the cache is dropped first, or a folder loaded before
    # this file existed would come back without it.
    reload_registry()
    folders = tuple(dict.fromkeys([*(str(d) for d in template_dirs), str(out_dir)]))
    registry = load_registry(folders)
    loaded = registry.templates.get(template.name)
    if loaded != template:
        raise TemplateError(
            f"模板 {template.name} 写入 {path} 后未能从该目录原样载入，可能有同名模板位于其他目录。",
            f"template {template.name} was written to {path} but does not load back unchanged from that folder; "
            "another folder may hold a template of the same name",
        )
    return path
