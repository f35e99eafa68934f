"""Straighten a scanned card page before layout analysis and OCR.

Input and output images are H x W x 3 ``uint8`` BGR arrays, as ``ocr.ingest``
produces them. Grey images are H x W ``uint8``.

Angle conventions, used in every function here:

* An angle is counter-clockwise (CCW) as the image appears on screen, in
  degrees, the same sense as ``cv2.getRotationMatrix2D``.
* ``skew_deg`` is how far the card content is turned CCW in the scan, in
  (-45, 45]. Rotating the image by ``-skew_deg`` removes it.
* A quarter turn ``q`` in ``Prepared.quarter_turn_candidates`` is the CCW turn
  to *apply* to the deskewed image to make it upright
  (``apply_quarter_turn(prepared.image, q)``).
* ``rotation_deg``, which the pipeline reports, is how far the card content in
  the original scan was turned CCW from upright, in (-180, 180]. For the chosen
  quarter turn it is ``Prepared.content_rotation_deg(q)`` = ``skew_deg - q``,
  normalised into that range.

The methods here are good enough for cards skewed by up to about 10 degrees
and turned by quarter turns. Whether a page is upside down cannot be decided
from lines alone, so ``prepare`` returns both candidates and the layout stage
picks between them with OCR.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = [
    "Prepared",
    "apply_quarter_turn",
    "crop_to_card",
    "estimate_skew",
    "normalize_angle",
    "prepare",
    "quality_problems",
    "remove_rules",
    "rotate_image",
    "text_axis",
]

log = logging.getLogger(__name__)

# Skew and axis estimation work on a copy scaled to at most this many pixels on
# the long side. Angles do not depend on scale, and at 1600 px a 3 px table
# line of a 300 dpi A4 scan (3508 px long) stays over one pixel wide.
_ANALYSIS_LONG_SIDE = 1600

# Hough segments must be at least this fraction of the shorter image side.
_MIN_LINE_FRACTION = 0.15
# With fewer agreeing line segments the skew comes from the projection profile.
_MIN_LINES = 3
# Line angles within this many degrees of the median count as agreeing.
_LINE_AGREEMENT_DEG = 2.0

# Quality thresholds: estimates checked on synthetic cards and on eight real
# form scans, whose ink covers 7-11% of the page.
_MIN_SHORT_SIDE_PX = 600
_MIN_INK_FRACTION = 0.001
_DARK_PAPER_LEVEL = 90


@dataclass
class Prepared:
    """A page after border cropping and deskewing, with its possible quarter turns."""

    image: np.ndarray = field(repr=False)  # deskewed, H x W x 3 uint8 BGR
    skew_deg: float  # CCW skew of the content in the input image, removed from ``image``
    quarter_turn_candidates: list[int]  # CCW turns to apply to ``image``, most likely first
    crop_box: tuple[int, int, int, int]  # (x, y, width, height) of the crop in the input image
    text_axis: str = "horizontal"  # direction of text lines in ``image``: "horizontal" or "vertical"

    def content_rotation_deg(self, quarter_turn: int) -> float:
        """Return how far the content of the input scan was turned CCW from upright.

        ``quarter_turn`` is the candidate the layout stage chose. The result is
        in (-180, 180].
        """
        return normalize_angle(self.skew_deg - quarter_turn, half_range=180.0)


def normalize_angle(angle_deg: float, half_range: float = 45.0) -> float:
    """Map an angle into (-half_range, half_range] modulo 2 * half_range."""
    period = 2.0 * half_range
    value = math.fmod(angle_deg, period)
    if value > half_range:
        value -= period
    elif value <= -half_range:
        value += period
    return value


def _to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _downscale(gray: np.ndarray, long_side: int = _ANALYSIS_LONG_SIDE) -> np.ndarray:
    height, width = gray.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1.0:
        return gray
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def _ink_mask(gray: np.ndarray) -> np.ndarray:
    """Return a 0/255 mask of dark marks (print and handwriting) on the paper.

    A local threshold copes with uneven lighting and tinted carbon copies.
    Ink must be 15 grey levels darker than the local mean, which keeps paper
    texture and JPEG noise out of the mask on blank areas.
    """
    blurred = cv2.GaussianBlur(gray, (3, 3), 0)
    block = max(15, (min(gray.shape[:2]) // 40) | 1)
    local = cv2.adaptiveThreshold(
        blurred, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 15
    )
    return local


# --------------------------------------------------------------------------
# Skew
# --------------------------------------------------------------------------


def _line_angles(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Detect long straight segments and return their CCW angles (mod 90) and lengths."""
    height, width = ink.shape[:2]
    min_length = max(30, int(_MIN_LINE_FRACTION * min(height, width)))
    segments = cv2.HoughLinesP(
        ink,
        rho=1,
        theta=np.pi / 360,  # 0.5 degree steps; the profile search refines
        threshold=max(30, min_length // 2),
        minLineLength=min_length,
        maxLineGap=max(3, min_length // 40),
    )
    if segments is None:
        return np.empty(0), np.empty(0)
    # OpenCV 4 returns N x 1 x 4 and OpenCV 5 returns N x 4.
    segments = segments.reshape(-1, 4).astype(np.float64)
    x1, y1, x2, y2 = segments.T
    dx = x2 - x1
    dy = y2 - y1
    # Image y grows downwards, so a line rising to the right has dy < 0 and a
    # positive CCW angle.
    angles = np.degrees(np.arctan2(-dy, dx))
    angles = np.array([normalize_angle(angle) for angle in angles])
    lengths = np.hypot(dx, dy)
    return angles, lengths


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    index = int(np.searchsorted(cumulative, cumulative[-1] / 2.0))
    return float(values[order][index])


def _circular_center(angles: np.ndarray, weights: np.ndarray) -> float:
    """Return the weighted mean direction of angles taken modulo 90 degrees."""
    radians = np.radians(angles) * 4.0
    mean = math.atan2(float(np.sum(weights * np.sin(radians))), float(np.sum(weights * np.cos(radians))))
    return normalize_angle(math.degrees(mean) / 4.0)


def _skew_from_lines(ink: np.ndarray) -> float | None:
    """Return the skew from long straight lines, or None when too few lines agree."""
    angles, lengths = _line_angles(ink)
    if angles.size < _MIN_LINES:
        return None
    # Angles near +-45 wrap around, so the centre is found on the circle
    # first and the angles are re-expressed relative to it.
    center = _circular_center(angles, lengths)
    offsets = np.array([normalize_angle(angle - center) for angle in angles])
    agreeing = np.abs(offsets) <= _LINE_AGREEMENT_DEG
    if int(agreeing.sum()) < _MIN_LINES:
        return None
    median_offset = _weighted_median(offsets[agreeing], lengths[agreeing])
    return normalize_angle(center + median_offset)


def _ink_points(ink: np.ndarray, max_points: int = 150_000) -> np.ndarray:
    ys, xs = np.nonzero(ink)
    if xs.size > max_points:
        step = xs.size // max_points + 1
        xs = xs[::step]
        ys = ys[::step]
    return np.stack([xs, ys], axis=1).astype(np.float64)


def _profile_score(points: np.ndarray, angle_deg: float) -> float:
    """Score how sharply ink lines up in rows and columns after undoing ``angle_deg``.

    Each ink pixel is rotated by ``-angle_deg`` and counted into its row and
    column. Text lines and ruled lines pile into few rows or columns when the
    angle is right, which maximises the sum of squared counts.
    """
    theta = math.radians(angle_deg)
    cos_t = math.cos(theta)
    sin_t = math.sin(theta)
    xs = points[:, 0]
    ys = points[:, 1]
    rows = ys * cos_t + xs * sin_t
    columns = xs * cos_t - ys * sin_t
    score = 0.0
    for projected in (rows, columns):
        bins = np.rint(projected - projected.min()).astype(np.int64)
        counts = np.bincount(bins).astype(np.float64)
        score += float(np.dot(counts, counts))
    return score


def _best_profile_angle(points: np.ndarray, angles: np.ndarray) -> float:
    scores = [_profile_score(points, float(angle)) for angle in angles]
    return float(angles[int(np.argmax(scores))])


def _skew_from_profile(ink: np.ndarray, around: float | None = None) -> float:
    """Search the skew that makes the row and column profiles sharpest.

    Without a starting estimate the search covers (-45, 45] in 1 degree steps
    and then refines. With ``around`` it only refines near that angle.
    """
    points = _ink_points(ink)
    if points.shape[0] < 50:
        return 0.0 if around is None else around
    if around is None:
        coarse = _best_profile_angle(points, np.arange(-44.0, 45.5, 1.0))
    else:
        coarse = around
    medium = _best_profile_angle(points, coarse + np.arange(-1.0, 1.01, 0.2))
    fine = _best_profile_angle(points, medium + np.arange(-0.2, 0.201, 0.05))
    return normalize_angle(fine)


def estimate_skew(gray: np.ndarray) -> float:
    """Estimate how far the page content is turned CCW, in degrees in (-45, 45].

    Long printed table lines (Hough transform) give the first estimate as
    the length-weighted median of their angles modulo 90, so a page turned by
    a quarter turn still gives its small residual skew. A projection-profile
    search over all ink then refines it within +-1.2 degrees to a 0.05 degree
    step. When fewer than three lines agree (text-only pages) the profile
    search covers the whole range instead. A page with almost no ink returns 0.
    """
    small = _downscale(_to_gray(gray))
    ink = _ink_mask(small)
    from_lines = _skew_from_lines(ink)
    skew = _skew_from_profile(ink, around=from_lines)
    return round(skew, 2)


def rotate_image(
    image: np.ndarray,
    angle_deg_ccw: float,
    border: tuple[int, int, int] | int = (255, 255, 255),
) -> np.ndarray:
    """Rotate ``image`` CCW by ``angle_deg_ccw`` about its centre.

    The canvas grows to hold the whole rotated image, so nothing is cut, and
    the new corners are filled with ``border`` (BGR, or one grey level for a
    grey image). Exact multiples of 90 degrees use ``cv2.rotate`` and stay
    lossless.
    """
    quarter = angle_deg_ccw / 90.0
    if abs(quarter - round(quarter)) < 1e-9:
        return apply_quarter_turn(image, int(round(quarter)) * 90)

    height, width = image.shape[:2]
    center = ((width - 1) / 2.0, (height - 1) / 2.0)
    matrix = cv2.getRotationMatrix2D(center, angle_deg_ccw, 1.0)
    cos_a = abs(matrix[0, 0])
    sin_a = abs(matrix[0, 1])
    new_width = int(math.ceil(width * cos_a + height * sin_a))
    new_height = int(math.ceil(width * sin_a + height * cos_a))
    matrix[0, 2] += (new_width - 1) / 2.0 - center[0]
    matrix[1, 2] += (new_height - 1) / 2.0 - center[1]

    if image.ndim == 2 and not isinstance(border, int):
        border_value = int(np.mean(border))
    else:
        border_value = border
    return cv2.warpAffine(
        image,
        matrix,
        (new_width, new_height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border_value,
    )


def apply_quarter_turn(image: np.ndarray, deg: int) -> np.ndarray:
    """Turn ``image`` CCW by ``deg``, a multiple of 90 (negative values turn clockwise)."""
    if deg % 90 != 0:
        raise ValueError(f"quarter turn must be a multiple of 90 degrees, got {deg}")
    turn = deg % 360
    if turn == 0:
        return image.copy()
    if turn == 90:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    if turn == 180:
        return cv2.rotate(image, cv2.ROTATE_180)
    return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)


# --------------------------------------------------------------------------
# Text direction
# --------------------------------------------------------------------------


def _remove_long_lines(ink: np.ndarray) -> np.ndarray:
    """Return the ink mask without ruled lines, because tables have lines in both directions."""
    length = max(25, min(ink.shape[:2]) // 12)
    horizontal = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1)))
    vertical = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, length)))
    lines = cv2.dilate(cv2.bitwise_or(horizontal, vertical), np.ones((3, 3), np.uint8))
    return cv2.bitwise_and(ink, cv2.bitwise_not(lines))


def _glyph_centres(text_ink: np.ndarray) -> np.ndarray:
    """Return the centres of connected components of glyph size."""
    count, _, stats, centroids = cv2.connectedComponentsWithStats(text_ink, connectivity=8)
    if count <= 1:
        return np.empty((0, 2))
    widths = stats[1:, cv2.CC_STAT_WIDTH]
    heights = stats[1:, cv2.CC_STAT_HEIGHT]
    areas = stats[1:, cv2.CC_STAT_AREA]
    sizes = np.maximum(widths, heights)
    keep = (areas >= 6) & (sizes >= 4)
    if not keep.any():
        return np.empty((0, 2))
    typical = float(np.median(sizes[keep]))
    # Drop specks and large blobs (stamps, photos, merged handwriting).
    keep &= (sizes >= 0.4 * typical) & (sizes <= 3.0 * typical)
    return centroids[1:][keep]


def _neighbour_directions(centres: np.ndarray, max_points: int = 2500) -> tuple[int, int]:
    """Count nearest-neighbour pairs lying along x and along y.

    Glyphs are closer to their neighbours within a text line than to the
    lines above and below, so the direction to each glyph's nearest
    neighbours follows the text lines.
    """
    if centres.shape[0] > max_points:
        step = centres.shape[0] // max_points + 1
        centres = centres[::step]
    along_x = 0
    along_y = 0
    neighbours = 2
    for start in range(0, centres.shape[0], 500):
        block = centres[start : start + 500]
        dx = block[:, None, 0] - centres[None, :, 0]
        dy = block[:, None, 1] - centres[None, :, 1]
        distance = np.hypot(dx, dy)
        distance[distance < 1.0] = np.inf  # the point itself and exact duplicates
        nearest = np.argsort(distance, axis=1)[:, :neighbours]
        rows = np.arange(block.shape[0])[:, None]
        near_dx = np.abs(dx[rows, nearest])
        near_dy = np.abs(dy[rows, nearest])
        finite = np.isfinite(distance[rows, nearest])
        along_x += int(np.sum((near_dx > 1.5 * near_dy) & finite))
        along_y += int(np.sum((near_dy > 1.5 * near_dx) & finite))
    return along_x, along_y


def _profile_sharpness(text_ink: np.ndarray, axis: int) -> float:
    """Return the coefficient of variation of the ink profile summed along ``axis``."""
    profile = text_ink.sum(axis=axis).astype(np.float64)
    mean = profile.mean()
    if mean <= 0:
        return 0.0
    return float(profile.std() / mean)


def text_axis(gray: np.ndarray) -> str:
    """Return "horizontal" when text lines run along x, "vertical" when along y.

    ``gray`` should already be deskewed. Ruled lines are removed first, then
    the directions from each glyph to its nearest neighbours are counted. When
    that vote is close (fewer than 20 glyphs or a ratio below 1.3), the
    sharper of the row and column ink profiles decides instead. Text lines
    separated by blank space give a profile of high peaks and gaps.
    """
    small = _downscale(_to_gray(gray))
    text_ink = _remove_long_lines(_ink_mask(small))
    centres = _glyph_centres(text_ink)

    if centres.shape[0] >= 20:
        along_x, along_y = _neighbour_directions(centres)
        if along_x >= 1.3 * max(along_y, 1):
            return "horizontal"
        if along_y >= 1.3 * max(along_x, 1):
            return "vertical"

    row_sharpness = _profile_sharpness(text_ink, axis=1)
    column_sharpness = _profile_sharpness(text_ink, axis=0)
    return "vertical" if column_sharpness > row_sharpness else "horizontal"


# --------------------------------------------------------------------------
# Border cropping
# --------------------------------------------------------------------------


def _border_strip(gray: np.ndarray) -> np.ndarray:
    height, width = gray.shape[:2]
    band = max(2, min(height, width) // 50)
    return np.concatenate(
        [
            gray[:band].ravel(),
            gray[-band:].ravel(),
            gray[:, :band].ravel(),
            gray[:, -band:].ravel(),
        ]
    )


def _card_box(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """Find the card as the largest bright region clearly lighter than a uniform border.

    Returns the bounding box (x, y, width, height) in ``gray`` coordinates, or
    None when the border is not uniform, the paper is not lighter than the
    border, or the region found is implausibly small or covers the whole image.
    """
    border = _border_strip(gray)
    background = float(np.median(border))
    if float(np.percentile(np.abs(border.astype(np.float64) - background), 90)) > 20:
        return None  # the border contains content or a textured surface

    paper = float(np.percentile(gray, 90))
    if paper - background < 40:
        return None  # white card on a white scanner bed: nothing to crop

    threshold = (paper + background) / 2.0
    bright = (gray > threshold).astype(np.uint8) * 255
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
    if count <= 1:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, width, height = (int(value) for value in stats[largest, :4])
    area_fraction = (width * height) / float(gray.shape[0] * gray.shape[1])
    if not 0.15 <= area_fraction <= 0.98:
        return None
    return x, y, width, height


def crop_to_card(image: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Crop a uniform scanner background away from around the card.

    The card is the largest region clearly brighter than the image border,
    and the crop is its bounding box plus a margin of 1% of the image. When
    the border is not uniform, or no such region is found (for example a
    white card on a white scanner bed), the image is returned unchanged.

    Returns the cropped image (a view of ``image``) and its box
    (x, y, width, height) in ``image`` coordinates.
    """
    height, width = image.shape[:2]
    full_box = (0, 0, width, height)
    if height < 20 or width < 20:
        return image, full_box

    gray = _to_gray(image)
    scale = min(1.0, _ANALYSIS_LONG_SIDE / max(height, width))
    small = _downscale(gray)
    box = _card_box(small)
    if box is None:
        return image, full_box

    x, y, box_width, box_height = (value / scale for value in box)
    margin = 0.01 * max(height, width)
    left = max(0, int(math.floor(x - margin)))
    top = max(0, int(math.floor(y - margin)))
    right = min(width, int(math.ceil(x + box_width + margin)))
    bottom = min(height, int(math.ceil(y + box_height + margin)))
    return image[top:bottom, left:right], (left, top, right - left, bottom - top)


def _border_color(image: np.ndarray) -> tuple[int, int, int]:
    """Return the median colour of the image border, used to fill rotated corners."""
    height, width = image.shape[:2]
    band = max(2, min(height, width) // 50)
    pixels = np.concatenate(
        [
            image[:band].reshape(-1, 3),
            image[-band:].reshape(-1, 3),
            image[:, :band].reshape(-1, 3),
            image[:, -band:].reshape(-1, 3),
        ]
    )
    median = np.median(pixels, axis=0)
    return int(median[0]), int(median[1]), int(median[2])


# --------------------------------------------------------------------------
# Whole preparation
# --------------------------------------------------------------------------


def prepare(image: np.ndarray) -> Prepared:
    """Crop the scanner border, remove the skew and find the possible quarter turns.

    Steps: crop to the card, estimate the skew on the crop, rotate it away
    (corners filled with the border colour, so a second crop can remove them),
    then decide the text axis. Horizontal text gives candidates [0, 180] and
    vertical text [90, 270]. The first candidate of each pair is only the more
    common case, so the layout stage must check both with OCR.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 BGR image, got shape {image.shape} dtype {image.dtype}")

    cropped, crop_box = crop_to_card(image)
    was_cropped = crop_box != (0, 0, image.shape[1], image.shape[0])

    skew = estimate_skew(_to_gray(cropped))
    if abs(skew) >= 0.05:
        fill = _border_color(cropped) if was_cropped else (255, 255, 255)
        straight = rotate_image(cropped, -skew, border=fill)
        if was_cropped:
            straight, _ = crop_to_card(straight)
    else:
        skew = 0.0
        straight = cropped

    axis = text_axis(_to_gray(straight))
    candidates = [90, 270] if axis == "vertical" else [0, 180]
    log.debug("prepared page: skew=%.2f axis=%s cropped=%s", skew, axis, was_cropped)
    return Prepared(
        image=np.ascontiguousarray(straight),
        skew_deg=skew,
        quarter_turn_candidates=candidates,
        crop_box=crop_box,
        text_axis=axis,
    )


# --------------------------------------------------------------------------
# Quality checks
# --------------------------------------------------------------------------


def quality_problems(gray: np.ndarray) -> list[tuple[str, str, str]]:
    """Check a page for problems a person should fix by rescanning.

    Returns (code, message_zh, message_en) tuples, empty when the page looks
    usable. Codes: ``too_small`` (short side under 600 px), ``too_dark``
    (the brightest tenth of the page, normally paper, is darker than grey
    level 90), ``blank_page`` (under 0.1% of the page is ink). Run it on the
    cropped image: a small card on a large black scanner lid reads as too dark.
    """
    gray = _to_gray(gray)
    problems: list[tuple[str, str, str]] = []
    height, width = gray.shape[:2]

    short_side = min(height, width)
    if short_side < _MIN_SHORT_SIDE_PX:
        problems.append(
            (
                "too_small",
                f"图像太小（短边 {short_side} 像素，至少需要 {_MIN_SHORT_SIDE_PX} 像素），"
                "请以 300 dpi 重新扫描",
                f"image too small ({short_side} px on the short side, at least "
                f"{_MIN_SHORT_SIDE_PX} px needed); scan again at 300 dpi",
            )
        )

    paper_level = float(np.percentile(gray, 90)) if gray.size else 0.0
    if paper_level < _DARK_PAPER_LEVEL:
        problems.append(
            (
                "too_dark",
                f"图像太暗（纸张亮度 {paper_level:.0f}/255），请检查扫描仪设置或光线后重新扫描",
                f"image too dark (paper brightness {paper_level:.0f}/255); "
                "check the scanner settings or lighting and scan again",
            )
        )
        return problems  # on a dark page the ink measure below is meaningless

    small = _downscale(gray)
    ink = _ink_mask(small)
    # Dark speckle from the scanner glass is not ink, so the mask is opened.
    ink = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    ink_fraction = float(np.count_nonzero(ink)) / ink.size if ink.size else 0.0
    if ink_fraction < _MIN_INK_FRACTION:
        problems.append(
            (
                "blank_page",
                "页面几乎没有字迹，可能是空白页或卡片背面，请检查",
                "the page has almost no ink; it may be blank or the back of a card; check it",
            )
        )
    return problems


def remove_rules(gray: np.ndarray) -> np.ndarray:
    """Return a copy of a crop (H x W uint8) with long horizontal and vertical printed lines painted white."""
    height, width = gray.shape
    binary = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)[1]
    horizontal = cv2.morphologyEx(
        binary, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (max(15, int(width * 0.5)), 1))
    )
    vertical = cv2.morphologyEx(
        binary, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(15, int(height * 0.7))))
    )
    rules = cv2.dilate(cv2.bitwise_or(horizontal, vertical), np.ones((3, 3), np.uint8))
    cleaned = gray.copy()
    cleaned[rules > 0] = int(np.median(gray))
    return cleaned
