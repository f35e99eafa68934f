"""Straighten a scanned card page before layout analysis and OCR.

Input and output images are H x W x 3 ``uint8`` BGR arrays, as ``ocr.ingest``
produces them. Grey images are H x W ``uint8``.

Angle conventions, used in every function here:

* An angle is counter-clockwise (CCW) as the image appears on screen, in
  degrees, the same sense as ``cv2.getRotationMatrix2D``.
* ``skew_deg`` is how far the card content is turned CCW in the scan, in
  (-45, 45]. Rotating the image by ``-skew_deg`` removes it. After a
  perspective correction it is the average tilt of the card outline plus the
  content's residual skew, which can exceed 45 by up to 3 degrees.
* A quarter turn ``q`` in ``Prepared.quarter_turn_candidates`` is the CCW turn
  to *apply* to the deskewed image to make it upright
  (``apply_quarter_turn(prepared.image, q)``).
* ``rotation_deg``, which the pipeline reports, is how far the card content in
  the original scan was turned CCW from upright, in (-180, 180]. For the chosen
  quarter turn it is ``Prepared.content_rotation_deg(q)`` = ``skew_deg - q``,
  normalised into that range.

Skew is estimated over the whole (-45, 45] range from table and text lines,
and any quarter turn is reduced to two candidates by the text axis. Whether
a page is upside down cannot be decided from lines alone, so ``prepare``
returns both candidates and the layout stage picks between them with OCR;
the red serial number only orders them.
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
    "card_dpi",
    "crop_to_card",
    "estimate_skew",
    "find_card_quad",
    "normalize_angle",
    "prepare",
    "quad_skew_deg",
    "quality_problems",
    "remove_rules",
    "rotate_image",
    "sharpness",
    "text_axis",
    "warp_card",
]

log = logging.getLogger(__name__)

# Skew and axis estimation work on a copy scaled to at most this many pixels on
# the long side. Angles do not depend on scale, and at 1600 px a 3 px table
# line of a 300 dpi A4 scan (3508 px long) stays over one pixel wide.
_ANALYSIS_LONG_SIDE = 1600
# The coarse skew search (Hough lines, or a full-range profile search) runs on
# a copy at most this long, which has four times fewer pixels. The profile
# refinement at _ANALYSIS_LONG_SIDE recovers the precision.
_COARSE_LONG_SIDE = 800

# Hough segments must be at least this fraction of the shorter image side.
_MIN_LINE_FRACTION = 0.15
# With fewer agreeing line segments the skew comes from the projection profile.
_MIN_LINES = 3
# Line angles within this many degrees of the median count as agreeing.
_LINE_AGREEMENT_DEG = 2.0

# The card outline is searched on a copy at most this long.
_QUAD_LONG_SIDE = 1000
# (low, high) Canny thresholds on the Sobel gradient of the blurred copy. The
# second pair still finds a paper edge 10 grey levels brighter than a white
# scanner lid. With both, 26 of 40 generated scans gave an outline, each
# within 3 px of the truth. The other 14 had no border or a lid as light as
# the paper, and fall back to the crop.
_CANNY_THRESHOLDS = ((20, 60), (8, 24))
# Corners of a card photographed at a slant stay within this of 90 degrees.
_QUAD_MAX_CORNER_DEVIATION_DEG = 40.0
# Grey-level difference needed between bands just inside and outside each side.
_QUAD_MIN_SIDE_CONTRAST = 8.0
# Smallest card outline, as a share of the image: an A5 card on an A3 scanner bed covers 25%.
_QUAD_MIN_AREA = 0.04
# Outlines with at least this share of the largest outline's area compete on edge support.
_QUAD_SIZE_GROUP = 0.85
# Registration cards are A5, 210 x 148 mm.
CARD_WIDTH_MM = 210.0
CARD_ASPECT = 210.0 / 148.0
# A warped outline whose side ratio is within this share of CARD_ASPECT is given exactly that ratio.
_ASPECT_SNAP_TOLERANCE = 0.30
# Opposite sides differing by less than this share of the long side mean the outline has no perspective.
_FLAT_SIDE_TOLERANCE = 0.02

# Residual content skew inside a card outline above which the outline is not trusted.
_MAX_OUTLINE_RESIDUAL_DEG = 3.0
# The serial number prior needs a row of this many red marks, this many times longer than high.
_MIN_SERIAL_GLYPHS = 4
_SERIAL_MIN_ELONGATION = 3.0

# Quality thresholds: estimates checked on synthetic cards and on eight real
# form scans, whose ink covers 7-11% of the page.

# 120 dpi leaves a margin under the 150 dpi bundled samples; at 120 dpi a
# 3.7 mm printed Chinese label is about 17 px high.
_MIN_DPI = 120
# sharpness() is measured at this long side (an A5 card at 150 dpi).
_SHARPNESS_LONG_SIDE = 1240
# Field accuracy of the pipeline (rapidocr) on three generated 200 dpi cards
# was 96% under a Gaussian blur of 0.4 mm, 22% under 0.5 mm and 18% under
# 0.6 mm. The threshold sits between the sharpness values of 0.4 and 0.5 mm.
_MIN_SHARPNESS = 0.38
# A page of text has at least this many glyph-size marks.
_MIN_TEXT_GLYPHS = 30
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
    # True when ``image`` was warped from the card outline ``card_quad`` (TL, TR, BR, BL corners,
    # x and y in input pixels, as find_card_quad returns them); False and None after a plain crop.
    perspective_corrected: bool = False
    card_quad: np.ndarray | None = field(default=None, repr=False)

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
        # Each point is split between its two nearest bins (linear binning). Rounding to one bin
        # would pile a square pixel grid projected at 45 degrees into evenly filled bins and
        # make a false peak there.
        shifted = projected - projected.min()
        lower = np.floor(shifted)
        upper_share = shifted - lower
        bins = lower.astype(np.int64)
        counts = np.bincount(bins, weights=1.0 - upper_share, minlength=int(bins.max()) + 2)
        counts += np.bincount(bins + 1, weights=upper_share, minlength=int(bins.max()) + 2)
        score += float(np.dot(counts, counts))
    return score


def _profile_scores(points: np.ndarray, angles: np.ndarray) -> np.ndarray:
    return np.array([_profile_score(points, float(angle)) for angle in angles])


def _best_profile_angle(points: np.ndarray, angles: np.ndarray) -> float:
    return float(angles[int(np.argmax(_profile_scores(points, angles)))])


def _refine_profile_angle(points: np.ndarray, start: float) -> float:
    """Refine ``start`` within +-1.2 degrees, ending with a parabola through the best 0.05 degree step.

    The parabola puts the peak between grid steps, which brings the error
    well under the 0.05 degree step on ruled cards.
    """
    medium = _best_profile_angle(points, start + np.arange(-1.0, 1.01, 0.2))
    step = 0.05
    angles = medium + np.arange(-0.2, 0.201, step)
    scores = _profile_scores(points, angles)
    best = int(np.argmax(scores))
    if 0 < best < len(angles) - 1:
        left, middle, right = scores[best - 1], scores[best], scores[best + 1]
        curvature = left - 2.0 * middle + right
        if curvature < 0:
            offset = 0.5 * (left - right) / curvature
            return float(angles[best] + step * float(np.clip(offset, -0.5, 0.5)))
    return float(angles[best])


def _skew_from_profile(ink: np.ndarray, around: float | None = None) -> float:
    """Search the skew that makes the row and column profiles sharpest.

    Without a starting estimate the search covers (-45, 45] in 1 degree steps
    and then refines. With ``around`` it only refines near that angle.
    """
    points = _ink_points(ink)
    if points.shape[0] < 50:
        return 0.0 if around is None else around
    if around is None:
        around = _best_profile_angle(points, np.arange(-44.0, 45.5, 1.0))
    return normalize_angle(_refine_profile_angle(points, around))


def estimate_skew(gray: np.ndarray) -> float:
    """Estimate how far the page content is turned CCW, in degrees in (-45, 45].

    The coarse estimate comes from a copy at most 800 px long. Long printed
    table lines (Hough transform) give it as the length-weighted median of
    their angles modulo 90, so a page turned by a quarter turn still gives
    its skew, and any skew in (-45, 45] is found. When fewer than three
    lines agree (text-only or handwritten pages), a projection-profile search
    over (-45, 45] in 1 degree steps gives it instead. A profile search over
    all ink of a copy at most 1600 px long then refines it within +-1.2
    degrees. A page with almost no ink returns 0.
    """
    fine = _downscale(_to_gray(gray))
    coarse = _downscale(fine, _COARSE_LONG_SIDE)
    coarse_ink = _ink_mask(coarse)
    start = _skew_from_lines(coarse_ink)
    if start is None:
        coarse_points = _ink_points(coarse_ink)
        if coarse_points.shape[0] < 50:
            return 0.0
        start = _best_profile_angle(coarse_points, np.arange(-44.0, 45.5, 1.0))
    skew = _skew_from_profile(_ink_mask(fine), around=start)
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
    matrix, (new_width, new_height) = _rotation_matrix(width, height, angle_deg_ccw)

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
# Card outline and perspective
# --------------------------------------------------------------------------


def _edge_skews(quad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each edge's CCW skew (its direction minus its direction on an upright card) and its length."""
    edges = np.roll(quad, -1, axis=0) - quad
    directions = np.degrees(np.arctan2(-edges[:, 1], edges[:, 0]))
    upright = np.array([0.0, -90.0, 180.0, 90.0])
    return directions - upright, np.hypot(edges[:, 0], edges[:, 1])


def quad_skew_deg(quad: np.ndarray) -> float:
    """Return the CCW rotation that maps the card outline (TL, TR, BR, BL) onto an upright rectangle.

    Each edge gives it as its direction minus the direction it has on an
    upright card (0, -90, 180 and 90 degrees). The result is their circular
    mean weighted by edge length, in (-180, 180]. Under perspective the
    edges disagree and this is their average tilt.
    """
    skews, lengths = _edge_skews(np.asarray(quad, dtype=np.float64).reshape(4, 2))
    radians = np.radians(skews)
    mean = math.degrees(math.atan2(float(np.sum(lengths * np.sin(radians))), float(np.sum(lengths * np.cos(radians)))))
    return normalize_angle(mean, half_range=180.0)


def _order_corners(points: np.ndarray) -> np.ndarray:
    """Order four corners clockwise on screen, starting where the outline's skew is in (-45, 45].

    Of the four clockwise orders, the one whose ``quad_skew_deg`` is smallest
    wins, so warping it straight turns the card by at most 45 degrees and
    leaves any quarter turn for the text axis to find. Choosing by the mean
    of all four edges, not by the top edge alone, keeps the warp and the
    reported skew consistent near 45 degrees under perspective.
    """
    points = np.asarray(points, dtype=np.float64).reshape(4, 2)
    centre = points.mean(axis=0)
    # Image y grows downwards, so increasing atan2(dy, dx) runs clockwise on screen.
    clockwise = points[np.argsort(np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0]))]
    orders = [np.roll(clockwise, -start, axis=0) for start in range(4)]
    return min(orders, key=lambda order: abs(quad_skew_deg(order)))


def _interior_angles(quad: np.ndarray) -> np.ndarray:
    before = np.roll(quad, 1, axis=0) - quad
    after = np.roll(quad, -1, axis=0) - quad
    cosine = np.sum(before * after, axis=1) / (np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1) + 1e-9)
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def _plausible_quad(quad: np.ndarray, shape: tuple[int, int]) -> bool:
    """Check that an ordered quadrilateral can be a card photographed from above.

    It must be convex, cover 4-99% of the image, have corners of 90 +- 40
    degrees and opposite sides within a factor of two, and not be the image
    frame itself.
    """
    height, width = shape[:2]
    if not cv2.isContourConvex(quad.astype(np.float32).reshape(-1, 1, 2)):
        return False
    area = cv2.contourArea(quad.astype(np.float32))
    if not _QUAD_MIN_AREA <= area / float(height * width) <= 0.99:
        return False
    angles = _interior_angles(quad)
    if np.any(np.abs(angles - 90.0) > _QUAD_MAX_CORNER_DEVIATION_DEG):
        return False
    sides = np.linalg.norm(np.roll(quad, -1, axis=0) - quad, axis=1)
    if min(sides[0], sides[2]) < 0.5 * max(sides[0], sides[2]):
        return False
    if min(sides[1], sides[3]) < 0.5 * max(sides[1], sides[3]):
        return False
    frame = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float64)
    tolerance = 0.01 * max(height, width)
    return not all(np.min(np.linalg.norm(frame - corner, axis=1)) <= tolerance for corner in quad)


def _quad_masks(blurred: np.ndarray) -> list[np.ndarray]:
    """Return binary images whose contours may outline the card.

    Canny edges at two sensitivities find the paper edge against any
    background, the lower one even a white scanner lid 10 grey levels darker
    than the paper. The Otsu mask of
    bright pixels finds paper on a dark desk or lid when its edge is broken
    (torn paper, a shadow touching the edge).
    """
    masks = []
    for low, high in _CANNY_THRESHOLDS:
        edges = cv2.Canny(blurred, low, high)
        masks.append(cv2.dilate(edges, np.ones((3, 3), np.uint8)))
    _, bright = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    size = max(5, (min(blurred.shape[:2]) // 60) | 1)
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, np.ones((size, size), np.uint8))
    return masks + [bright]


def _quad_candidates(mask: np.ndarray, min_area: float) -> list[np.ndarray]:
    """Return 4-corner polygons approximating the convex hulls of large contours in ``mask``."""
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    found = []
    for contour in contours:
        if cv2.contourArea(contour) < min_area:
            continue
        hull = cv2.convexHull(contour)
        perimeter = cv2.arcLength(hull, True)
        # Rounded or dog-eared corners need a coarser polygon to come out with four corners.
        for tolerance in (0.02, 0.035, 0.05):
            polygon = cv2.approxPolyDP(hull, tolerance * perimeter, True)
            if len(polygon) == 4:
                found.append(polygon.reshape(4, 2).astype(np.float64))
                break
    return found


def _line_intersection(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]) -> np.ndarray | None:
    (point_a, direction_a), (point_b, direction_b) = first, second
    matrix = np.array([direction_a, -direction_b]).T
    if abs(np.linalg.det(matrix)) < 1e-6:
        return None
    t, _ = np.linalg.solve(matrix, point_b - point_a)
    return point_a + t * direction_a


def _edge_pixels(edges: np.ndarray, gradient: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Return the edge pixels of ``edges`` as N x 2 (x, y) and their unit gradient directions as N x 2.

    Computed once per image: every candidate outline is refined against the same pixels.
    """
    gradient_x, gradient_y = gradient
    ys, xs = np.nonzero(edges)
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    normals = np.stack([gradient_x[ys, xs], gradient_y[ys, xs]], axis=1).astype(np.float64)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-9
    return points, normals


def _refine_quad(pixels: tuple[np.ndarray, np.ndarray], shape: tuple[int, ...], quad: np.ndarray) -> np.ndarray:
    """Fit each side to the edge pixels along it and return the corners where the fitted lines meet.

    Polygon approximation puts corners on contour pixels of a dilated edge
    image. A robust line fit (Huber) moves them to sub-pixel positions. It
    uses only edge pixels within a few pixels of the side whose gradient is
    within 20 degrees of the side's normal, away from the rounded corners,
    so shadow boundaries and desk texture crossing the side do not pull it.
    A side with too few such pixels, or whose fit turns by more than 2
    degrees, keeps its polygon line. ``pixels`` comes from :func:`_edge_pixels` and ``shape``
    is the edge image's.
    """
    points, normals = pixels
    band = max(3.0, 0.006 * max(shape[:2]))
    lines = []
    for index in range(4):
        start = quad[index]
        end = quad[(index + 1) % 4]
        length = float(np.linalg.norm(end - start))
        direction = (end - start) / max(length, 1e-9)
        normal = np.array([-direction[1], direction[0]])
        relative = points - start
        along = relative @ direction
        across = relative @ normal
        aligned = np.abs(normals @ normal) >= math.cos(math.radians(20.0))
        near = aligned & (np.abs(across) <= band) & (along >= 0.08 * length) & (along <= 0.92 * length)
        line = (start, direction)
        if np.count_nonzero(near) >= 0.3 * length:
            vx, vy, x0, y0 = cv2.fitLine(points[near].astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
            fitted = np.array([vx, vy], dtype=np.float64)
            if abs(float(fitted @ direction)) >= math.cos(math.radians(2.0)):
                line = (np.array([x0, y0], dtype=np.float64), fitted)
        lines.append(line)
    corners = []
    for index in range(4):
        corner = _line_intersection(lines[index - 1], lines[index])
        if corner is None:
            return quad
        corners.append(corner)
    refined = np.array(corners)
    if np.max(np.linalg.norm(refined - quad, axis=1)) > 4.0 * band:
        return quad
    return refined


def _side_contrast(blurred: np.ndarray, quad: np.ndarray) -> list[float | None]:
    """Return, per side, the grey-level difference between bands just inside and just outside it.

    A side lying along the image frame, with most outside samples beyond
    the image, gives None: the card runs off the picture there.
    """
    height, width = blurred.shape[:2]
    offset = max(3.0, 0.008 * min(height, width))
    centre = quad.mean(axis=0)
    contrasts: list[float | None] = []
    fractions = np.linspace(0.1, 0.9, 41)
    for index in range(4):
        start = quad[index]
        end = quad[(index + 1) % 4]
        direction = (end - start) / max(float(np.linalg.norm(end - start)), 1e-9)
        normal = np.array([-direction[1], direction[0]])
        if np.dot(centre - start, normal) < 0:
            normal = -normal  # point the normal into the card
        samples = start + fractions[:, None] * (end - start)
        inside = np.rint(samples + offset * normal).astype(int)
        outside = np.rint(samples - offset * normal).astype(int)

        def within(pixels: np.ndarray) -> np.ndarray:
            return (pixels[:, 0] >= 0) & (pixels[:, 0] < width) & (pixels[:, 1] >= 0) & (pixels[:, 1] < height)

        valid = within(inside) & within(outside)
        if np.count_nonzero(valid) < 0.3 * len(fractions):
            contrasts.append(None)
            continue
        inner = np.median(blurred[inside[valid, 1], inside[valid, 0]].astype(np.float64))
        outer = np.median(blurred[outside[valid, 1], outside[valid, 0]].astype(np.float64))
        contrasts.append(abs(float(inner) - float(outer)))
    return contrasts


def _separates_card(contrasts: list[float | None]) -> bool:
    """Check from ``_side_contrast`` that every side separates the card from a different background.

    The printed table border also outlines a large rectangle, but paper lies
    on both of its sides, so its contrast stays under the threshold. At most
    two sides may run along the image frame.
    """
    on_frame = sum(1 for value in contrasts if value is None)
    if on_frame > 2:
        return False
    return all(value is None or value >= _QUAD_MIN_SIDE_CONTRAST for value in contrasts)


def _edge_support(near_edges: np.ndarray, quad: np.ndarray) -> float:
    """Return the smallest share, over the four sides, of points on a side that lie within 1 px of an edge pixel."""
    height, width = near_edges.shape[:2]
    fractions = np.linspace(0.1, 0.9, 61)[:, None]
    shares = []
    for index in range(4):
        samples = np.rint(quad[index] + fractions * (quad[(index + 1) % 4] - quad[index])).astype(int)
        inside = (samples[:, 0] >= 0) & (samples[:, 0] < width) & (samples[:, 1] >= 0) & (samples[:, 1] < height)
        if not inside.any():
            continue  # a side beyond the image frame has no edge to follow
        shares.append(float(np.mean(near_edges[samples[inside, 1], samples[inside, 0]] > 0)))
    return min(shares) if shares else 0.0


def find_card_quad(image: np.ndarray) -> np.ndarray | None:
    """Find the four corners of the card against a desk, scanner bed or lid.

    Returns a 4 x 2 float array of (x, y) pixel positions in ``image``,
    ordered top-left, top-right, bottom-right, bottom-left of the card as it
    lies, skew removed but quarter turns not: the top edge is the side
    closest to horizontal. Returns None when no outline is found that is
    convex, card-like (see ``_plausible_quad``) and darker or lighter than
    the paper on every side (the printed table inside the card fails this).
    Of the outlines within 85% of the largest one's area, the one whose
    worst side best follows edge pixels wins.
    """
    gray = _to_gray(image)
    height, width = gray.shape[:2]
    if min(height, width) < 20:
        return None
    small = _downscale(gray, _QUAD_LONG_SIDE)
    scale = small.shape[1] / float(width)
    blurred = cv2.GaussianBlur(small, (5, 5), 0)
    edges = cv2.Canny(blurred, *_CANNY_THRESHOLDS[-1])
    gradient = (cv2.Sobel(blurred, cv2.CV_32F, 1, 0), cv2.Sobel(blurred, cv2.CV_32F, 0, 1))
    pixels = _edge_pixels(edges, gradient)
    near_edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
    min_area = _QUAD_MIN_AREA * small.shape[0] * small.shape[1]

    found: list[tuple[np.ndarray, float, float]] = []  # (quad, area, weakest side contrast)
    for mask in _quad_masks(blurred):
        for polygon in _quad_candidates(mask, min_area):
            quad = _order_corners(polygon)
            if not _plausible_quad(quad, small.shape):
                continue
            quad = _order_corners(_refine_quad(pixels, edges.shape, quad))
            if not _plausible_quad(quad, small.shape):
                continue
            contrasts = _side_contrast(blurred, quad)
            if not _separates_card(contrasts):
                continue
            weakest = min(value for value in contrasts if value is not None)
            score = _edge_support(near_edges, quad) + weakest / 1000.0
            found.append((quad, cv2.contourArea(quad.astype(np.float32)), score))
    if not found:
        return None
    # An outline that takes in part of a shadow is a little larger than the card, but one of its
    # sides runs through the shadow, off the paper edge. Of the outlines near the largest size,
    # the one whose worst side follows edge pixels best is the card. Contrast breaks ties.
    largest = max(area for _, area, _ in found)
    best = max((item for item in found if item[1] >= _QUAD_SIZE_GROUP * largest), key=lambda item: item[2])[0]
    # Pixel centres: position p in the small copy is (p + 0.5) / scale - 0.5 in the image.
    return (best + 0.5) / scale - 0.5


def _card_size(quad: np.ndarray) -> tuple[int, int]:
    """Return (width, height) in pixels of the straightened card outlined by ``quad``.

    The size keeps the longer of each pair of opposite sides, so no detail
    is lost on the side nearer the camera. When the sides have a ratio
    within 30% of A5 (210 x 148 mm, the size of the registration cards) and
    the outline shows perspective, the short side is set from that ratio,
    because perspective makes the measured ratio unreliable. On generated photos whose corners move by up
    to 10%, it ranged from 1.14 to 1.7.
    """
    sides = np.linalg.norm(np.roll(quad, -1, axis=0) - quad, axis=1)
    width = float(max(sides[0], sides[2]))
    height = float(max(sides[1], sides[3]))
    long_side, short_side = max(width, height), min(width, height)
    # A flat scan keeps its measured ratio: opposite sides of equal length show there is no perspective,
    # and a card printed at another size must not be stretched to A5.
    flat = max(abs(sides[0] - sides[2]), abs(sides[1] - sides[3])) <= _FLAT_SIDE_TOLERANCE * long_side
    if not flat and abs(long_side / max(short_side, 1.0) / CARD_ASPECT - 1.0) <= _ASPECT_SNAP_TOLERANCE:
        short_side = long_side / CARD_ASPECT
        width, height = (long_side, short_side) if width >= height else (short_side, long_side)
    return max(1, round(width)), max(1, round(height))


def _rotation_matrix(width: int, height: int, angle_deg_ccw: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Return the 2 x 3 matrix turning a width x height image CCW about its centre, and the grown canvas size."""
    center = ((width - 1) / 2.0, (height - 1) / 2.0)
    matrix = cv2.getRotationMatrix2D(center, angle_deg_ccw, 1.0)
    cos_a = abs(matrix[0, 0])
    sin_a = abs(matrix[0, 1])
    new_width = int(math.ceil(width * cos_a + height * sin_a))
    new_height = int(math.ceil(width * sin_a + height * cos_a))
    matrix[0, 2] += (new_width - 1) / 2.0 - center[0]
    matrix[1, 2] += (new_height - 1) / 2.0 - center[1]
    return matrix, (new_width, new_height)


def warp_card(image: np.ndarray, quad: np.ndarray, rotate_deg: float = 0.0) -> np.ndarray:
    """Map the card outlined by ``quad`` (TL, TR, BR, BL) onto a straight rectangle.

    The output size comes from ``_card_size``. ``rotate_deg`` turns the
    result CCW in the same resampling, on a canvas grown to hold it, which
    removes a skew of the printed content relative to the paper edges.
    Pixels from outside the image repeat the nearest edge pixel.
    """
    quad = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    width, height = _card_size(quad)
    target = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float32)
    homography = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    size = (width, height)
    if rotate_deg != 0.0:
        rotation, size = _rotation_matrix(width, height, rotate_deg)
        homography = np.vstack([rotation, [0.0, 0.0, 1.0]]) @ homography
    return cv2.warpPerspective(image, homography, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


# --------------------------------------------------------------------------
# Whole preparation
# --------------------------------------------------------------------------


def _turned_position(x: float, y: float, turn: int) -> tuple[float, float]:
    """Return where the point at fractions (x, y) of an image lies after turning the image CCW by ``turn``."""
    return {0: (x, y), 90: (y, 1.0 - x), 180: (1.0 - x, 1.0 - y), 270: (1.0 - y, x)}[turn % 360]


def _serial_turn_order(image: np.ndarray, candidates: list[int]) -> list[int]:
    """Put first the candidate turn that brings the red serial number to the top right.

    Both card types print their serial number in red in the top-right corner
    (template box x 0.78-0.97, y 0.03-0.10). A serial is a row of at least
    four red marks, three times longer than high and at least 1.5% of the
    ink box's short side high, whose centre some candidate turn brings to
    x >= 0.6 and y <= 0.2 of the box around all ink. A round red seal and
    thin colour fringes are not such rows, and a seal's inner text is rarely
    at the top right. The row with the most marks decides; without one the
    order is kept.
    """
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    hue, saturation, value = hsv[:, :, 0], hsv[:, :, 1], hsv[:, :, 2]
    red = (((hue <= 8) | (hue >= 170)) & (saturation >= 90) & (value >= 80)).astype(np.uint8)
    # Colour fringes of JPEG and camera demosaicing leave red lines one pixel thin along black print.
    red = cv2.morphologyEx(red, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    height, width = red.shape
    # Positions and sizes are measured in the box of all ink, so a margin of scanner bed left
    # around an uncropped scan does not change them.
    small = _downscale(_to_gray(image), _COARSE_LONG_SIDE)
    ink_ys, ink_xs = np.nonzero(_ink_mask(small))
    if ink_xs.size < 50:
        return candidates
    scale_x, scale_y = width / small.shape[1], height / small.shape[0]
    left, right = np.percentile(ink_xs, [1, 99]) * scale_x
    top, bottom = np.percentile(ink_ys, [1, 99]) * scale_y
    content_side = max(1.0, min(right - left, bottom - top))
    min_row_height = 0.015 * content_side
    gap = max(3, int(0.02 * content_side))
    parts = cv2.connectedComponents(red, connectivity=8)[1]
    on_red = red > 0
    best_turn, best_marks = None, _MIN_SERIAL_GLYPHS - 1
    # Digits merge into one row when the gaps along the row are closed. The row runs along x, or
    # along y on a card turned by a quarter turn, and the kernel grows only along it.
    for kernel in ((gap, 1), (1, gap)):
        merged = cv2.dilate(red, cv2.getStructuringElement(cv2.MORPH_RECT, kernel))
        count, labels, stats, centroids = cv2.connectedComponentsWithStats(merged, connectivity=8)
        # Each mark of ``red`` lies in exactly one merged row; count the marks per row.
        pairs = np.unique(np.stack([labels[on_red], parts[on_red]]), axis=1)
        marks_per_row = np.bincount(pairs[0], minlength=count)
        for label in range(1, count):
            box_width, box_height = int(stats[label, cv2.CC_STAT_WIDTH]), int(stats[label, cv2.CC_STAT_HEIGHT])
            if max(box_width, box_height) < _SERIAL_MIN_ELONGATION * min(box_width, box_height):
                continue
            if min(box_width, box_height) < min_row_height or marks_per_row[label] <= best_marks:
                continue
            x = (float(centroids[label, 0]) - left) / max(right - left, 1.0)
            y = (float(centroids[label, 1]) - top) / max(bottom - top, 1.0)
            for turn in candidates:
                turned_x, turned_y = _turned_position(x, y, turn)
                if turned_x >= 0.6 and turned_y <= 0.2:
                    best_turn, best_marks = turn, int(marks_per_row[label])
    if best_turn is None:
        return candidates
    return [best_turn] + [turn for turn in candidates if turn != best_turn]


def _finish(
    straight: np.ndarray,
    skew: float,
    crop_box: tuple[int, int, int, int],
    quad: np.ndarray | None,
) -> Prepared:
    """Decide the text axis and the candidate order of a straightened card."""
    axis = text_axis(_to_gray(straight))
    candidates = _serial_turn_order(straight, [90, 270] if axis == "vertical" else [0, 180])
    log.debug("prepared page: skew=%.2f axis=%s candidates=%s quad=%s", skew, axis, candidates, quad is not None)
    return Prepared(
        image=np.ascontiguousarray(straight),
        skew_deg=skew,
        quarter_turn_candidates=candidates,
        crop_box=crop_box,
        text_axis=axis,
        perspective_corrected=quad is not None,
        card_quad=quad,
    )


def _prepare_from_quad(image: np.ndarray, quad: np.ndarray) -> Prepared | None:
    """Warp the card outlined by ``quad`` straight, then check the outline against the content.

    The skew of the printed lines in the warped card is the residual between
    the paper edges and the content. Up to _MAX_OUTLINE_RESIDUAL_DEG it is
    removed in the same warp, so the content decides the final angle. A
    larger residual means the outline is not the card, and None is returned.
    """
    warped = warp_card(image, quad)
    residual = estimate_skew(_to_gray(warped))
    if abs(residual) > _MAX_OUTLINE_RESIDUAL_DEG:
        log.info("card outline rejected: content skewed %.2f degrees against its edges", residual)
        return None
    if abs(residual) >= 0.05:
        warped = warp_card(image, quad, rotate_deg=-residual)
    # Not folded into (-45, 45]: the skew must match the rotation this warp removed.
    skew = round(normalize_angle(quad_skew_deg(quad) + residual, half_range=180.0), 2)
    height, width = image.shape[:2]
    left = max(0, int(math.floor(quad[:, 0].min())))
    top = max(0, int(math.floor(quad[:, 1].min())))
    right = min(width, int(math.ceil(quad[:, 0].max())) + 1)
    bottom = min(height, int(math.ceil(quad[:, 1].max())) + 1)
    return _finish(warped, skew, (left, top, right - left, bottom - top), quad)


def _prepare_by_crop(image: np.ndarray) -> Prepared:
    """Crop a uniform border, estimate the skew from the content over (-45, 45] and rotate it away."""
    cropped, crop_box = crop_to_card(image)
    was_cropped = crop_box != (0, 0, image.shape[1], image.shape[0])

    skew = estimate_skew(_to_gray(cropped))
    if abs(skew) >= 0.05:
        # The border colour also fills the corners of an uncropped scan, so no false edge appears there.
        fill = _border_color(cropped)
        straight = rotate_image(cropped, -skew, border=fill)
        if was_cropped:
            straight, _ = crop_to_card(straight)
    else:
        skew = 0.0
        straight = cropped
    return _finish(straight, skew, crop_box, None)


def prepare(image: np.ndarray) -> Prepared:
    """Find the card, straighten it and list its possible quarter turns.

    When ``find_card_quad`` finds the card's outline, the card is warped to
    a straight rectangle. This corrects the perspective of a phone photo and
    cuts away the desk, scanner bed and border shadows, and the content skew
    left inside the outline is removed in the same warp.
    Otherwise a uniform border is cropped and the skew, estimated from the
    content, is rotated away (corners filled with the border colour, so a
    second crop can remove them).

    Then the text axis gives the candidates: [0, 180] for horizontal text and
    [90, 270] for vertical. The red serial number, when found, puts the
    likelier candidate first. The layout stage must still check both with OCR.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 BGR image, got shape {image.shape} dtype {image.dtype}")

    quad = find_card_quad(image)
    if quad is not None:
        prepared = _prepare_from_quad(image, quad)
        if prepared is not None:
            return prepared
    return _prepare_by_crop(image)


# --------------------------------------------------------------------------
# Quality checks
# --------------------------------------------------------------------------


def card_dpi(gray: np.ndarray) -> float:
    """Return the scan resolution implied by taking the image's long side as an A5 card's 210 mm."""
    return max(gray.shape[:2]) / (CARD_WIDTH_MM / 25.4)


def sharpness(gray: np.ndarray) -> float:
    """Return the 99.5th percentile of |Laplacian| over the ink contrast, measured at 150 dpi.

    The image is first scaled down to 1240 px on the long side (an A5 card at
    150 dpi), so the value measures blur in millimetres on the card whatever
    the scan resolution. Dividing by the contrast (95th minus 1st percentile
    grey level) makes it independent of exposure and ink colour. Sharp
    generated cards give 3.9-7.2, the same cards blurred with a Gaussian of
    0.4 mm give 0.40-0.60, 0.5 mm 0.26-0.40 and 0.6 mm 0.19-0.27.

    NOTE: strong sensor noise added after the blur raises the Laplacian too,
    so a noisy blurred photo may pass. Only generated cards were measured.
    """
    long_side = max(gray.shape[:2])
    if long_side > _SHARPNESS_LONG_SIDE:
        factor = _SHARPNESS_LONG_SIDE / long_side
        gray = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    laplacian = cv2.Laplacian(gray, cv2.CV_32F, ksize=3)
    contrast = float(np.percentile(gray, 95) - np.percentile(gray, 1))
    return float(np.percentile(np.abs(laplacian), 99.5)) / max(contrast, 1.0)


def _has_card_structure(ink: np.ndarray) -> bool:
    """Check for a printed table (two long lines each way) or text in lines (glyphs whose neighbours line up)."""
    height, width = ink.shape[:2]
    horizontal = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (max(15, width // 4), 1)))
    vertical = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(15, height // 4))))
    horizontal_lines = cv2.connectedComponents(horizontal)[0] - 1
    vertical_lines = cv2.connectedComponents(vertical)[0] - 1
    if horizontal_lines >= 2 and vertical_lines >= 2:
        return True
    centres = _glyph_centres(_remove_long_lines(ink))
    if centres.shape[0] < _MIN_TEXT_GLYPHS:
        return False
    along_x, along_y = _neighbour_directions(centres)
    return max(along_x, along_y) >= 1.5 * max(min(along_x, along_y), 1)


def _problem(code: str, message_zh: str, message_en: str) -> tuple[str, str, str]:
    return code, message_zh, message_en


def quality_problems(gray: np.ndarray) -> list[tuple[str, str, str]]:
    """Check a card image for problems a person should fix by rescanning.

    Run it on the prepared card (``Prepared.image``), not the whole scan: a
    small card on a black scanner lid would read as too dark, and the
    resolution is computed from the image's long side taken as the card's
    210 mm. Returns (code, message_zh, message_en) tuples, empty when the
    card looks usable. Codes:

    * ``too_small``: under 120 dpi (under 992 px on the long side).
    * ``too_dark``: the brightest tenth, normally paper, is darker than grey
      level 90. The checks below are skipped, since they are meaningless then.
    * ``blank_page``: under 0.1% of the card is ink.
    * ``too_blurred``: ``sharpness`` under 0.38.
    * ``not_a_card``: neither a printed table nor lines of text.
    """
    gray = _to_gray(gray)
    problems: list[tuple[str, str, str]] = []
    if gray.size == 0:
        return [_problem("blank_page", "图像为空，请检查扫描件", "the image is empty; check the scan")]

    dpi = card_dpi(gray)
    if dpi < _MIN_DPI:
        long_side = max(gray.shape[:2])
        problems.append(
            _problem(
                "too_small",
                f"图像分辨率太低（卡片长边 {long_side} 像素，约 {dpi:.0f} dpi，至少需要 {_MIN_DPI} dpi），"
                "请以 200 dpi 或更高重新扫描",
                f"image resolution too low ({long_side} px on the card's long side, about {dpi:.0f} dpi; "
                f"at least {_MIN_DPI} dpi needed); scan again at 200 dpi or more",
            )
        )

    paper_level = float(np.percentile(gray, 90))
    if paper_level < _DARK_PAPER_LEVEL:
        problems.append(
            _problem(
                "too_dark",
                f"图像太暗（纸张亮度 {paper_level:.0f}/255），请检查扫描仪设置或光线后重新扫描",
                f"image too dark (paper brightness {paper_level:.0f}/255); "
                "check the scanner settings or lighting and scan again",
            )
        )
        return problems

    small = _downscale(gray)
    ink = _ink_mask(small)
    # Dark speckle from the scanner glass is not ink, so the mask is opened.
    ink = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    ink_fraction = float(np.count_nonzero(ink)) / ink.size
    if ink_fraction < _MIN_INK_FRACTION:
        problems.append(
            _problem(
                "blank_page",
                "页面几乎没有字迹，可能是空白页或卡片背面，请检查",
                "the page has almost no ink; it may be blank or the back of a card; check it",
            )
        )
        return problems

    card_sharpness = sharpness(gray)
    if card_sharpness < _MIN_SHARPNESS:
        problems.append(
            _problem(
                "too_blurred",
                f"图像太模糊（清晰度 {card_sharpness:.2f}，至少需要 {_MIN_SHARPNESS}），请对准焦点或放平卡片后重新扫描",
                f"image too blurred (sharpness {card_sharpness:.2f}, at least {_MIN_SHARPNESS} needed); "
                "focus or lay the card flat and scan again",
            )
        )
    if not _has_card_structure(ink):
        problems.append(
            _problem(
                "not_a_card",
                "图像中没有表格或成行的文字，可能不是登记卡，请检查",
                "the image shows neither a table nor lines of text; it may not be a registration card; check it",
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
