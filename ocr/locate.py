"""Layout stage, page reading: find which way up a page is and which template it fits, reading few lines.

Text detection finds every line of the page. Recognition, the costly half of
page OCR, then runs on few of them:

1. the first line of every third row, then of the rows in between, a third
   at a time, until a template fits: on a printed form the first line of a
   row is mostly a label;
2. once a template fits those, the lines where each fitting template expects
   its other labels and its title. The fit shows which way up the page is, so
   these lines skip the direction classifier. Every label is read, although a
   detected line at its place would confirm the fit: only its text shows a
   form whose fields sit in another order (:func:`misplaced_labels`).

The value lines are left to the zone OCR of :mod:`ocr.recognize`, which reads
them from cleaned crops anyway. A page that no template fits this way is read
whole, line by line, as the unknown-layout path needs. Engines without
separate detection (Tesseract, paddleocr) read the whole page at once.

Detection runs on a copy at most :data:`PAGE_DETECT_MAX_SIDE` pixels long;
each line is recognised from the full-size image.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from models.card_type import UNKNOWN_CARD_TYPE
from ocr.engines import OcrEngine, TextLine
from ocr.layout import (
    MIN_LABEL_SIMILARITY,
    LayoutMatch,
    anchor_points,
    anchors,
    clean_text,
    fit_templates,
    label_similarity,
    match_layout,
    zone_rect,
)
from ocr.prepare import apply_quarter_turn
from ocr.registry import Registry

__all__ = [
    "PAGE_DETECT_MAX_SIDE",
    "PAGE_OCR_MAX_SIDE",
    "Located",
    "PageLines",
    "locate",
    "misplaced_labels",
    "read_page_scaled",
    "row_starts",
]

log = logging.getLogger(__name__)

# Whole-page OCR by an engine without separate detection runs on a copy this long at most: on a
# 200-dpi A5 card this cut the page read from about 3.4 s to 2.6 s with every label still found.
PAGE_OCR_MAX_SIDE = 1280
# Detection only has to find the lines, so it runs on a smaller copy still. Labels on a 200-dpi card
# are about 13 px high at this size, well above what the PP-OCR detector finds. At 736 px, on 48
# generated cards (seed 3000, every capture condition), detection took 7% less CPU per card, but 6 of
# 744 fields fewer were accepted without review: the zone lines it finds are the calibration's input.
PAGE_DETECT_MAX_SIDE = 960
# A fitted label is looked for among detected lines whose centre lies this far from where the fit
# puts it, as a share of the card height the fit implies.
ANCHOR_SEARCH_RADIUS = 0.03
# Fewer fitting labels than this after the first rows are read, and the page is read whole.
MIN_FIRST_ANCHORS = 3
# A fit from the staged read is taken at this share of its labels and title or more. Below it,
# another template might fit better on lines not read, so the page is read whole.
MIN_STAGED_SCORE = 0.6
# The first round reads the first line of every this many rows. On the bundled forms a Chinese
# label row and its English row alternate, so this still finds four or more labels.
FIRST_ROW_STEP = 3
# A line carries a label, for finding labels at another label's place, when the label makes up at
# least this share of its characters.
MISPLACED_MIN_FILL = 0.6


@dataclass
class PageLines:
    """The detected lines of one upright candidate of a page, and those read so far."""

    # The page turned to this candidate, H x W x 3 BGR.
    image: np.ndarray
    # 4 x 2 corner arrays in pixels of ``image``, clockwise from the text's top-left.
    boxes: list[np.ndarray]
    # Index into ``boxes`` -> the line as read.
    read: dict[int, TextLine] = field(default_factory=dict)

    def lines(self) -> list[TextLine]:
        """Return the lines read so far that hold text, in detection order."""
        return [self.read[i] for i in sorted(self.read) if self.read[i].text.strip()]

    @property
    def whole(self) -> bool:
        """True when every detected line has been read."""
        return len(self.read) == len(self.boxes)

    def centres(self) -> np.ndarray:
        """Return the centre of each box: N x 2 pixels (x, y)."""
        if not self.boxes:
            return np.zeros((0, 2))
        return np.array([box.mean(axis=0) for box in self.boxes])


@dataclass
class Located:
    """Result of the layout stage: the upright page and the template it fits."""

    # The page turned upright, H x W x 3 BGR.
    image: np.ndarray
    # The lines read (labels and title when a template fitted early, every line otherwise).
    lines: list[TextLine]
    match: LayoutMatch
    # Clockwise quarter turn, in degrees, applied to the prepared image.
    quarter: int
    # Every line detected on the upright page: 4 x 2 corner arrays in pixels of ``image``.
    boxes: list[np.ndarray]
    # Lines recognised on the page, for the log.
    recognised: int
    # (label read, label whose place it lies at) for each printed label read at another label's
    # place of the fitted template (see :func:`misplaced_labels`).
    misplaced: list[tuple[str, str]] = field(default_factory=list)

    @property
    def detected(self) -> int:
        """Number of lines detected on the page."""
        return len(self.boxes)


def read_page_scaled(engine: OcrEngine, image: np.ndarray) -> list[TextLine]:
    """OCR a page at most :data:`PAGE_OCR_MAX_SIDE` pixels long; return lines in the image's own pixels."""
    scale = min(1.0, PAGE_OCR_MAX_SIDE / max(image.shape[:2]))
    if scale >= 1.0:
        return engine.read_page(image)
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return [TextLine(line.text, line.score, line.points / scale) for line in engine.read_page(small)]


def _staged(engine: OcrEngine) -> bool:
    """True when the engine can detect lines and read chosen ones apart (rapidocr)."""
    return hasattr(engine, "detect_lines") and hasattr(engine, "read_lines")


def _detect(engine: OcrEngine, image: np.ndarray) -> PageLines:
    """Detect the lines of a page; an engine without separate detection reads it whole instead."""
    if not _staged(engine):
        lines = read_page_scaled(engine, image)
        return PageLines(image, [line.points for line in lines], dict(enumerate(lines)))

    scale = min(1.0, PAGE_DETECT_MAX_SIDE / max(image.shape[:2]))
    small = image if scale >= 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    boxes = [box / scale for box in engine.detect_lines(small)]  # type: ignore[attr-defined]
    return PageLines(image, boxes)


def _read(engine: OcrEngine, page: PageLines, indices: list[int], *, upright: bool = False) -> None:
    """Recognise the given lines of ``page`` that are not read yet; ``upright`` when the page is known to be upright."""
    todo = sorted({i for i in indices if i not in page.read})
    if not todo:
        return
    lines = engine.read_lines(page.image, [page.boxes[i] for i in todo], upright=upright)  # type: ignore[attr-defined]
    page.read.update(zip(todo, lines))


def row_starts(boxes: list[np.ndarray]) -> list[int]:
    """Return the index of the leftmost box of each row of text, top row first.

    Boxes share a row when their centres lie within 0.6 of the median box height of each other
    vertically. On a printed form the first line of a row is mostly a label.
    """
    if not boxes:
        return []
    centres = np.array([box.mean(axis=0) for box in boxes])
    heights = np.array([np.ptp(box[:, 1]) for box in boxes])
    tolerance = 0.6 * max(1.0, float(np.median(heights)))

    starts: list[int] = []
    row: list[int] = []
    for index in np.argsort(centres[:, 1]):
        if row and centres[index, 1] - centres[row[0], 1] > tolerance:
            starts.append(min(row, key=lambda i: boxes[i][:, 0].min()))
            row = []
        row.append(int(index))
    starts.append(min(row, key=lambda i: boxes[i][:, 0].min()))
    return starts


def _anchor_lines(page: PageLines, fit: LayoutMatch) -> dict[int, int]:
    """Return, for each label of a fitted template, the detected line where the fit expects it.

    Keys index the template's anchors (:func:`ocr.layout.anchor_points`), values ``page.boxes``.
    A label with no detected line within :data:`ANCHOR_SEARCH_RADIUS` of its place is left out.
    """
    assert fit.template is not None and fit.transform is not None
    centres = page.centres()
    if centres.size == 0:
        return {}
    card_height = 1000.0 * float(np.hypot(fit.transform[0, 0], fit.transform[1, 0]))
    radius = ANCHOR_SEARCH_RADIUS * card_height

    # Distance from a projected label to each line's box, 0 inside it: a label the detector joined
    # with its value ("No. 0082036") has its centre inside the joined line but far from that line's
    # centre. Among boxes at the same distance the nearest centre wins.
    lows = np.array([box.min(axis=0) for box in page.boxes])
    highs = np.array([box.max(axis=0) for box in page.boxes])
    found: dict[int, int] = {}
    for anchor, point in enumerate(anchor_points(fit)):
        outside = np.linalg.norm(np.maximum(0.0, np.maximum(lows - point, point - highs)), axis=1)
        centre_distances = np.linalg.norm(centres - point, axis=1)
        nearest = int(np.argmin(outside + 1e-3 * centre_distances))
        if outside[nearest] <= radius:
            found[anchor] = nearest
    return found


def _title_lines(page: PageLines, fit: LayoutMatch) -> list[int]:
    """Return the detected lines centred in a fitted template's title box (Chinese and English may be two)."""
    assert fit.template is not None and fit.transform is not None
    centres = page.centres()
    if centres.size == 0:
        return []
    x0, y0, x1, y1 = zone_rect(fit, fit.template.title_box, page.image.shape)
    inside = (centres[:, 0] >= x0) & (centres[:, 0] <= x1) & (centres[:, 1] >= y0) & (centres[:, 1] <= y1)
    return [int(i) for i in np.flatnonzero(inside)]


def _expected_lines(page: PageLines, fit: LayoutMatch) -> list[int]:
    """Return the detected lines where a fitted template expects its labels and its title."""
    return list(_anchor_lines(page, fit).values()) + _title_lines(page, fit)


def _rotate_box_180(points: np.ndarray, width: int, height: int) -> np.ndarray:
    turned = np.stack([width - 1 - points[:, 0], height - 1 - points[:, 1]], axis=1)
    # Keep the first corner the text's top-left: after the turn it is the old bottom-right.
    return np.roll(turned, 2, axis=0).astype(np.float32)


def _turn_page_180(page: PageLines) -> PageLines:
    """Return the page turned by 180 degrees, with its boxes and the lines read so far turned along."""
    height, width = page.image.shape[:2]
    read = {
        index: TextLine(line.text, line.score, _rotate_box_180(line.points, width, height))
        for index, line in page.read.items()
    }
    boxes = [_rotate_box_180(box, width, height) for box in page.boxes]
    return PageLines(cv2.rotate(page.image, cv2.ROTATE_180), boxes, read)


def _upright(page: PageLines, match: LayoutMatch, quarter: int, registry: Registry):
    """Turn the page by 180 degrees when the fit shows it upside down; return (page, match, quarter).

    Line-direction models read an upside-down page too, and the fitted layout then shows a half turn.
    """
    if match.transform is not None and abs(match.rotation_deg) > 135:
        page = _turn_page_180(page)
        match = match_layout(page.lines(), registry)
        quarter = (quarter + 180) % 360
    return page, match, quarter


def _best_fit(page: PageLines, registry: Registry) -> LayoutMatch | None:
    """Return the template fit with the most fitting labels, if any has at least :data:`MIN_FIRST_ANCHORS`."""
    fits = [fit for fit in fit_templates(page.lines(), registry) if fit.transform is not None]
    fits = [fit for fit in fits if fit.anchors_found >= MIN_FIRST_ANCHORS]
    return max(fits, key=lambda fit: (fit.score, fit.anchors_found), default=None)


def locate(image: np.ndarray, candidates: list[int], engine: OcrEngine, registry: Registry) -> Located:
    """Try the quarter turns in order and fit the templates, recognising as few page lines as it can.

    ``image`` is the prepared page (H x W x 3 BGR); ``candidates`` are clockwise quarter turns in
    degrees, most likely first. The first turn on which a template fits wins. When none fits from
    the first rows, each turn is read whole in order, as an unknown layout needs.
    """
    tried: list[tuple[int, PageLines]] = []
    best: tuple[PageLines, LayoutMatch, int] | None = None

    for quarter in candidates:
        # Detect every line; read the first of every third row, then of the rows in between until a template fits.
        page = _detect(engine, apply_quarter_turn(image, quarter))
        starts = row_starts(page.boxes)
        first = None
        for offset in range(FIRST_ROW_STEP):
            _read(engine, page, starts[offset::FIRST_ROW_STEP])
            first = _best_fit(page, registry)
            if first is not None:
                break

        # A template that fits the first rows gives where its other labels are: read those.
        if first is not None:
            page, first, quarter = _upright(page, first, quarter, registry)
            fits = [
                fit
                for fit in fit_templates(page.lines(), registry)
                if fit.transform is not None and fit.anchors_found >= MIN_FIRST_ANCHORS
            ]
            for fit in fits:
                _read(engine, page, _expected_lines(page, fit), upright=True)
            match = match_layout(page.lines(), registry)
            if match.card_type != UNKNOWN_CARD_TYPE and match.score >= MIN_STAGED_SCORE:
                return _located(page, match, quarter)
        tried.append((quarter, page))

    # No template fits from the first rows on any turn: read each turn whole, as before.
    for quarter, page in tried:
        _read(engine, page, list(range(len(page.boxes))))
        match = match_layout(page.lines(), registry)
        page, match, quarter = _upright(page, match, quarter, registry)
        if best is None or match.score > best[1].score:
            best = (page, match, quarter)
        if match.card_type != UNKNOWN_CARD_TYPE:
            break
    assert best is not None
    return _located(*best)


def misplaced_labels(lines: list[TextLine], match: LayoutMatch) -> list[tuple[str, str]]:
    """Return (label read, label expected there) for each line that carries one label at another's place.

    A line counts when it matches a template label, lies near none of the places the fit puts that
    label's matches, and lies at the place of a label it does not match. That is the mark of a form
    whose fields sit in another order than the template's, whose values would be read into the wrong
    fields. Label text elsewhere (footnotes, values) is left alone.
    """
    if match.template is None or match.transform is None:
        return []
    labels = [label for label, _box in anchors(match.template)]
    points = anchor_points(match)
    if not labels:
        return []
    card_height = 1000.0 * float(np.hypot(match.transform[0, 0], match.transform[1, 0]))
    radius = ANCHOR_SEARCH_RADIUS * card_height

    found: list[tuple[str, str]] = []
    for line in lines:
        low, high = line.points.min(axis=0), line.points.max(axis=0)
        distances = np.linalg.norm(np.maximum(0.0, np.maximum(low - points, points - high)), axis=1)
        near = distances <= radius
        matching = [label_similarity(label, line.text) >= MIN_LABEL_SIMILARITY for label in labels]
        # The line must be the label itself, not a longer text that contains it ("Room No." contains "No.").
        text = clean_text(line.text)
        carried = [m and len(clean_text(label)) >= MISPLACED_MIN_FILL * len(text) for m, label in zip(matching, labels)]
        if not any(carried) or any(m and n for m, n in zip(matching, near)):
            continue
        places = [index for index in np.flatnonzero(near) if not matching[index]]
        if places:
            read = labels[carried.index(True)]
            found.append((read, labels[int(min(places, key=lambda index: distances[index]))]))
    return found


def _located(page: PageLines, match: LayoutMatch, quarter: int) -> Located:
    log.debug(
        "page located card_type=%s quarter=%d lines=%d recognised=%d",
        match.card_type,
        quarter,
        len(page.boxes),
        len(page.read),
    )
    lines = page.lines()
    return Located(page.image, lines, match, quarter, page.boxes, len(page.read), misplaced_labels(lines, match))
