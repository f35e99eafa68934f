"""Card type and layout: which template a page is, and where its zones sit on the scan.

The printed title and field labels found by page OCR are matched to each
template's label text. A similarity transform (scale, rotation, shift), fitted
with RANSAC from the template's label centres to the found ones, maps every
field zone onto the scan. The template whose labels fit best names the card
type; a page that fits no template well enough is ``unknown``.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache

import cv2
import numpy as np

from models.card_type import UNKNOWN_CARD_TYPE
from models.template import Box, Template
from ocr.engines import TextLine
from ocr.registry import Registry

__all__ = [
    "GENERIC_LABELS",
    "LabelledValue",
    "LayoutMatch",
    "TEMPLATE_HEIGHT",
    "anchor_points",
    "anchors",
    "clean_text",
    "fit_templates",
    "match_layout",
    "read_labelled_values",
    "zone_rect",
]

log = logging.getLogger(__name__)

# Template coordinates are scaled to this many "template pixels" in height before fitting.
TEMPLATE_HEIGHT = 1000.0
# A label counts as found when its text matches an OCR line at least this well.
MIN_LABEL_SIMILARITY = 0.8
# Share of a template's anchors that must fit for the page to be that card type.
MIN_ANCHOR_SHARE = 0.35
MIN_ANCHORS = 4
# The rest of a line is a number joined to the label when at least this share of it is digits.
NUMBER_SHARE = 0.6

_PUNCTUATION = re.compile(r"[\s:：()（）/.,，。、·_\-]+")


@dataclass
class LayoutMatch:
    """Result of matching a page to the templates."""

    card_type: str
    template: Template | None
    # 2 x 3 affine matrix from template pixels to image pixels (None when unknown).
    transform: np.ndarray | None
    # Share of the template's anchors found and fitting, in [0, 1]: the classification confidence.
    score: float
    # Median distance of fitted anchors from where the transform puts them, as a share of card height.
    residual: float
    # Rotation of the fitted transform in degrees, in image coordinates (y down), so positive is
    # clockwise on screen. Near 180 or -180 means the page is upside down.
    rotation_deg: float
    # Labels that fit by their text.
    anchors_found: int
    anchors_total: int
    reasons: list[str] = field(default_factory=list)


def clean_text(text: str) -> str:
    """Return ``text`` lower-cased without spaces and punctuation, as labels are compared."""
    return _PUNCTUATION.sub("", text).lower()


@lru_cache(maxsize=8192)
def label_similarity(label: str, line: str) -> float:
    """Return how well ``label`` matches some part of ``line``, in [0, 1].

    Results are cached: a page's lines are compared with every template's labels several times.
    """
    label, line = clean_text(label), clean_text(line)
    if not label or not line:
        return 0.0
    if label in line:
        return 1.0
    best = 0.0
    width = len(label)
    for start in range(0, max(1, len(line) - width + 1)):
        window = line[start : start + width]
        best = max(best, SequenceMatcher(None, label, window).ratio())
    return best


def anchors(template: Template) -> list[tuple[str, Box]]:
    """Return (label text, label box) pairs: the printed features used for alignment."""
    anchors = []
    for spec in template.fields:
        if spec.label_box is not None and spec.label_text:
            anchors.append((spec.label_text[0], spec.label_box))
    return anchors


def _template_size(template: Template) -> tuple[float, float]:
    return TEMPLATE_HEIGHT * template.aspect_ratio, TEMPLATE_HEIGHT


def _match_anchors(
    template: Template, lines: list[TextLine]
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Pair the centres of the template's label boxes with the centres of OCR lines that carry the label."""
    width, height = _template_size(template)
    candidates = []
    for anchor_index, (label, box) in enumerate(anchors(template)):
        for line_index, line in enumerate(lines):
            similarity = label_similarity(label, line.text)
            if similarity >= MIN_LABEL_SIMILARITY:
                # Among equally similar lines, the one the label fills most wins: "No." takes
                # the line "No." rather than "Room No.".
                fill = len(clean_text(label)) / max(1, len(clean_text(line.text)))
                candidates.append((similarity, fill, anchor_index, line_index, label, box))

    # Greedy one-to-one assignment, best similarity first: two labels never share a line.
    candidates.sort(key=lambda c: (-c[0], -c[1]))
    used_anchors: set[int] = set()
    used_lines: set[int] = set()
    template_points, image_points = [], []
    for _similarity, _fill, anchor_index, line_index, label, box in candidates:
        if anchor_index in used_anchors or line_index in used_lines:
            continue
        used_anchors.add(anchor_index)
        used_lines.add(line_index)
        # Centres, not corners: labels may be centred or left-aligned in their box, and the offset of
        # the Chinese line from the box centre is the same for every label, so the fit absorbs it.
        center_x, center_y = box.center
        template_points.append((center_x * width, center_y * height))
        image_points.append(_label_centre(lines[line_index], label))
    return template_points, image_points


def _label_centre(line: TextLine, label: str) -> tuple[float, float]:
    """Return where ``label`` lies in ``line``: the line's centre, or the label's share of a numbered line.

    The detector sometimes joins a label with the number printed after it ("No. 0082036"). The
    label then lies at its characters' share of the line's length, counted along the text's top
    edge (``points`` start at the text's top-left and run clockwise), so a turned line works too.
    Any other line counts as the label's own: a template's label box may span a Chinese label and
    its English one on one line.
    """
    text, label_text = clean_text(line.text), clean_text(label)
    start = text.find(label_text)
    if start < 0 or len(label_text) >= len(text):
        return line.center
    rest = text[:start] + text[start + len(label_text) :]
    if sum(char.isdigit() for char in rest) < NUMBER_SHARE * len(rest):
        return line.center

    middle = (start + len(label_text) / 2) / len(text)
    top_left, top_right, _bottom_right, bottom_left = np.asarray(line.points, dtype=np.float64)
    point = top_left + middle * (top_right - top_left) + (bottom_left - top_left) / 2
    return float(point[0]), float(point[1])


def _title_found(template: Template, lines: list[TextLine]) -> bool:
    return any(label_similarity(template.title_text[0], line.text) >= MIN_LABEL_SIMILARITY for line in lines)


def _fit(template: Template, lines: list[TextLine]) -> LayoutMatch:
    anchors_total = len(anchors(template))
    template_points, image_points = _match_anchors(template, lines)
    title = _title_found(template, lines)
    no_fit = LayoutMatch(
        card_type=template.card_type,
        template=template,
        transform=None,
        score=0.0,
        residual=1.0,
        rotation_deg=0.0,
        anchors_found=len(template_points),
        anchors_total=anchors_total,
    )
    if len(template_points) < 3:
        return no_fit

    source = np.asarray(template_points, dtype=np.float32)
    target = np.asarray(image_points, dtype=np.float32)
    # Reprojection tolerance: 2% of how far the found labels spread vertically (at least 3 px).
    spread = float(np.ptp(target[:, 1])) or float(np.ptp(target[:, 0])) or 1.0
    transform, inliers = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=max(3.0, 0.02 * spread), maxIters=4000
    )
    if transform is None or inliers is None:
        return no_fit

    mask = inliers.ravel().astype(bool)
    projected = source @ transform[:, :2].T + transform[:, 2]
    errors = np.linalg.norm(projected - target, axis=1)[mask]
    scale = math.hypot(transform[0, 0], transform[1, 0])
    card_height = TEMPLATE_HEIGHT * scale
    residual = float(np.median(errors) / card_height) if errors.size else 1.0
    rotation = math.degrees(math.atan2(transform[1, 0], transform[0, 0]))

    found = int(mask.sum())
    score = (found + (1 if title else 0)) / (anchors_total + 1)
    return LayoutMatch(
        card_type=template.card_type,
        template=template,
        transform=transform,
        score=score,
        residual=residual,
        rotation_deg=rotation,
        anchors_found=found,
        anchors_total=anchors_total,
    )


def fit_templates(lines: list[TextLine], registry: Registry) -> list[LayoutMatch]:
    """Fit every template to a page's OCR lines; one match per template, in the registry's order.

    A template that found fewer than three of its labels has ``transform`` None.
    """
    return [_fit(template, lines) for template in registry.templates.values()]


def match_layout(lines: list[TextLine], registry: Registry) -> LayoutMatch:
    """Return the best-fitting template for a page's OCR lines, or an ``unknown`` match with the reason."""
    best: LayoutMatch | None = None
    for candidate in fit_templates(lines, registry):
        template = candidate.template
        assert template is not None
        log.debug(
            "template %s anchors=%d/%d score=%.2f residual=%.4f",
            template.name,
            candidate.anchors_found,
            candidate.anchors_total,
            candidate.score,
            candidate.residual,
        )
        if best is None or candidate.score > best.score:
            best = candidate

    if best is None or best.transform is None or best.score < MIN_ANCHOR_SHARE or best.anchors_found < MIN_ANCHORS:
        found = best.anchors_found if best else 0
        total = best.anchors_total if best else 0
        reason = (
            f"未能识别卡片类型：没有模板与本页的印刷标签相符（最接近的模板找到 {found}/{total} 个标签）。"
            "请人工查看全文，或为此版式制作模板。"
        )
        return LayoutMatch(
            card_type=UNKNOWN_CARD_TYPE,
            template=None,
            transform=None,
            score=best.score if best else 0.0,
            residual=best.residual if best else 1.0,
            rotation_deg=best.rotation_deg if best and best.transform is not None else 0.0,
            anchors_found=found,
            anchors_total=total,
            reasons=[reason],
        )
    return best


def anchor_points(match: LayoutMatch) -> np.ndarray:
    """Return where a fitted match expects each label's text line: N x 2 image pixels (x, y), one row per anchor."""
    assert match.template is not None and match.transform is not None
    width, height = _template_size(match.template)
    centres = np.array([(box.center[0] * width, box.center[1] * height) for _label, box in anchors(match.template)])
    if centres.size == 0:
        return np.zeros((0, 2))
    return centres @ match.transform[:, :2].T + match.transform[:, 2]


def zone_rect(
    match: LayoutMatch, box: Box, image_shape: tuple[int, ...], *, pad_x: float = 0.0, pad_y: float = 0.0
) -> tuple[int, int, int, int]:
    """Map a template box onto the image: (x0, y0, x1, y1) in pixels, clipped to the image.

    ``pad_x`` and ``pad_y`` grow the box by that share of its own width and height on each side.
    """
    assert match.template is not None and match.transform is not None
    width, height = _template_size(match.template)
    dx = (box.x1 - box.x0) * pad_x
    dy = (box.y1 - box.y0) * pad_y
    corners = np.array(
        [
            [(box.x0 - dx) * width, (box.y0 - dy) * height],
            [(box.x1 + dx) * width, (box.y0 - dy) * height],
            [(box.x1 + dx) * width, (box.y1 + dy) * height],
            [(box.x0 - dx) * width, (box.y1 + dy) * height],
        ],
        dtype=np.float64,
    )
    mapped = corners @ match.transform[:, :2].T + match.transform[:, 2]
    image_height, image_width = image_shape[:2]
    x0 = int(np.clip(mapped[:, 0].min(), 0, image_width - 1))
    x1 = int(np.clip(mapped[:, 0].max(), 1, image_width))
    y0 = int(np.clip(mapped[:, 1].min(), 0, image_height - 1))
    y1 = int(np.clip(mapped[:, 1].max(), 1, image_height))
    return x0, y0, x1, y1


# Printed labels that many forms share, for reading a page that matches no template.
# Each maps to the card specification's key; the English ones are matched without case.
GENERIC_LABELS: dict[str, str] = {
    "姓名": "name",
    "性别": "sex",
    "出生日期": "date_of_birth",
    "国籍": "nationality",
    "民族": "ethnicity",
    "身份证号码": "id_number",
    "证件号码": "id_number",
    "护照号码": "document_number",
    "住址": "address",
    "地址": "address",
    "name": "name",
    "sex": "sex",
    "date of birth": "date_of_birth",
    "nationality": "nationality",
    "passport no": "document_number",
    "address": "address",
}
# A label may follow this many other characters on its line ("邮政地址" ends with "地址").
_MAX_LABEL_PREFIX = 4


@dataclass(frozen=True)
class LabelledValue:
    """A value found beside a printed label on a page of unknown layout."""

    key: str
    label: str
    line: TextLine


def _split_label(text: str) -> tuple[str, str] | None:
    """Return (label, rest of the line) when the line carries a generic label near its start."""
    compact = re.sub(r"\s+", " ", text).strip()
    lowered = compact.lower()
    for label in sorted(GENERIC_LABELS, key=len, reverse=True):
        position = lowered.find(label)
        if position < 0 or position > _MAX_LABEL_PREFIX:
            continue
        after = compact[position + len(label) :]
        rest = after.lstrip(" :：.")
        has_colon = after.lstrip(" ").startswith((":", "："))
        if label.isascii() and rest and not has_colon:
            # "NAME OF ACCOUNT" is another label, not the name label with a value.
            continue
        if rest.startswith(("/", "(", "（", "、")):
            # The label goes on ("证件号码/护照号码"): the value is elsewhere on the row.
            rest = ""
        return label, rest
    return None


def _neighbour(label_line: TextLine, lines: list[TextLine]) -> TextLine | None:
    """Return the line just right of a label on its row, else the one just below it."""
    x0, y0, x1, y1 = label_line.bbox
    height = max(1.0, y1 - y0)
    right = [
        line
        for line in lines
        if line is not label_line
        and line.bbox[0] >= x1 - 0.5 * height
        and line.bbox[0] - x1 < 12 * height
        and abs(line.center[1] - label_line.center[1]) < 1.5 * height
    ]
    if right:
        return min(right, key=lambda line: (line.bbox[0] - x1) + 4 * abs(line.center[1] - label_line.center[1]))
    below = [
        line
        for line in lines
        if line is not label_line
        and 0 <= line.bbox[1] - y1 < 1.5 * height
        and line.bbox[0] < x1
        and line.bbox[2] > x0
    ]
    return min(below, key=lambda line: line.bbox[1]) if below else None


def read_labelled_values(lines: list[TextLine]) -> list[LabelledValue]:
    """Find values written beside generic printed labels, for a page that matches no template.

    The first value found for each key is kept; a person checks every one of them.
    """
    found: dict[str, LabelledValue] = {}
    for line in lines:
        split = _split_label(line.text)
        if split is None:
            continue
        label, rest = split
        key = GENERIC_LABELS[label]
        if key in found:
            continue
        if rest:
            value_line = TextLine(rest, line.score, line.points)
        else:
            value_line = _neighbour(line, lines)
            if value_line is None or _split_label(value_line.text) is not None:
                continue
        found[key] = LabelledValue(key=key, label=label, line=value_line)
    return list(found.values())
