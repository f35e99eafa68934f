"""A phone photo of a rendered card: the card on a desk, seen at an angle, under uneven light.

The card is warped by a random homography (rotation plus each corner moved by
up to ``MAX_CORNER_SHIFT`` of the card size) onto a procedural background
(wood, grey scanner bed or desk, cloth). A gradient of light, a soft shadow
along one or two card edges and the card's own drop shadow follow, then a
slight blur, sensor noise and JPEG when ``degrade`` is on. The card corners
are tracked into the output image like those of a scan.
"""

from __future__ import annotations

import io
import math
import random

import numpy as np
from PIL import Image, ImageFilter

from sample_cards.degrade import (
    EDGE_NAMES,
    QUARTER_TURNS,
    Point,
    ScanResult,
    _quarter_turn,
    _record,
    edge_shadow,
    normalise_rotation,
)

__all__ = ["BACKGROUNDS", "MAX_CORNER_SHIFT", "simulate_photo"]

BACKGROUNDS = ("wood", "grey", "cloth")
# Largest move of one corner, as a share of the card width (x) and height (y).
MAX_CORNER_SHIFT = 0.10


def simulate_photo(
    card: Image.Image,
    rng: random.Random,
    *,
    dpi: int,
    degrade: bool,
    max_rotation_deg: float,
    quarter_turn: int,
) -> ScanResult:
    """Turn a flat rendered card into a phone photo; ``rotation_deg`` is measured from the card's printed top edge."""
    if quarter_turn not in QUARTER_TURNS:
        raise ValueError(f"quarter_turn must be one of {QUARTER_TURNS}, got {quarter_turn!r}")
    width, height = card.size
    result = ScanResult(image=card)

    rotation = round(rng.uniform(-max_rotation_deg, max_rotation_deg), 3) if max_rotation_deg > 0 else 0.0
    shifts = [
        (round(rng.uniform(-MAX_CORNER_SHIFT, MAX_CORNER_SHIFT) * width, 2),
         round(rng.uniform(-MAX_CORNER_SHIFT, MAX_CORNER_SHIFT) * height, 2))
        for _ in range(4)
    ]
    corners = _target_corners(width, height, rotation, shifts)
    margins = [rng.uniform(0.06, 0.16) * max(width, height) for _ in range(4)]  # left, top, right, bottom
    min_x = min(x for x, _ in corners)
    min_y = min(y for _, y in corners)
    corners = [(x - min_x + margins[0], y - min_y + margins[1]) for x, y in corners]
    canvas_size = (
        math.ceil(max(x for x, _ in corners) + margins[2]),
        math.ceil(max(y for _, y in corners) + margins[3]),
    )

    background_kind = rng.choice(BACKGROUNDS)
    background = _background(background_kind, canvas_size, random.Random(rng.getrandbits(63)))
    coefficients = _perspective_coefficients(corners, width, height)
    warped = card.transform(canvas_size, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BICUBIC)
    coverage = Image.new("L", card.size, 255).transform(
        canvas_size, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR
    )

    # The card lifts a little off the desk and casts a narrow, soft shadow.
    offset = (round(rng.uniform(-0.006, 0.006) * width), round(rng.uniform(0.002, 0.008) * width))
    drop_strength = round(rng.uniform(0.25, 0.5), 3)
    drop = coverage.transform(canvas_size, Image.Transform.AFFINE, (1, 0, -offset[0], 0, 1, -offset[1]))
    drop = np.asarray(drop.filter(ImageFilter.GaussianBlur(0.006 * width + 1)), dtype=np.float32) / 255.0
    desk = np.asarray(background, dtype=np.float32) * (1.0 - drop_strength * drop)[:, :, np.newaxis]
    alpha = (np.asarray(coverage, dtype=np.float32) / 255.0)[:, :, np.newaxis]
    pixels = np.asarray(warped, dtype=np.float32) * alpha + desk * (1.0 - alpha)
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8), mode="RGB")
    _record(
        result,
        "photo",
        background=background_kind,
        rotation_deg=rotation,
        corner_shifts_px=[list(shift) for shift in shifts],
        drop_shadow_offset_px=list(offset),
        drop_shadow_strength=drop_strength,
    )

    image = _lighting(image, rng, result)
    edges = _shadow_edges(rng)
    band = round(rng.uniform(0.05, 0.15) * min(width, height), 2)
    strength = round(rng.uniform(0.2, 0.45), 3)
    for edge in edges:
        image = edge_shadow(image, corners, edge, band, strength)
    _record(result, "edge_shadow", edges=list(edges), width_px=band, strength=strength)

    if quarter_turn:
        image, corners = _quarter_turn(image, corners, quarter_turn)
        result.quarter_turn_deg = quarter_turn
        _record(result, "quarter_turn", deg=quarter_turn)

    if degrade:
        image = _camera_effects(image, rng, dpi, result)

    result.image = image.convert("RGB")
    result.rotation_deg = round(_top_edge_angle(corners), 3)
    result.skew_deg = round(normalise_rotation(result.rotation_deg - result.quarter_turn_deg), 3)
    result.card_corners = [[round(x, 2), round(y, 2)] for x, y in corners]
    return result


def _target_corners(width: int, height: int, rotation_deg: float, shifts: list[tuple[float, float]]) -> list[Point]:
    """Rotate the card's corners counter-clockwise about its centre, then move each by its shift."""
    cos_a, sin_a = math.cos(math.radians(rotation_deg)), math.sin(math.radians(rotation_deg))
    corners = []
    for (x, y), (shift_x, shift_y) in zip(
        ((0, 0), (width, 0), (width, height), (0, height)), shifts, strict=True
    ):
        dx, dy = x - width / 2, y - height / 2
        # Counter-clockwise on screen is clockwise in y-down pixel coordinates.
        corners.append((cos_a * dx + sin_a * dy + shift_x, -sin_a * dx + cos_a * dy + shift_y))
    return corners


def _perspective_coefficients(corners: list[Point], width: int, height: int) -> tuple[float, ...]:
    """Return PIL's eight PERSPECTIVE coefficients, which map output pixels to card pixels.

    Solves the homography that takes each of ``corners`` (in the output) to
    the card corner it shows: (0, 0), (width, 0), (width, height), (0, height).
    """
    source = ((0.0, 0.0), (float(width), 0.0), (float(width), float(height)), (0.0, float(height)))
    rows, values = [], []
    for (x, y), (u, v) in zip(corners, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        values.append(u)
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        values.append(v)
    solution = np.linalg.solve(np.array(rows, dtype=np.float64), np.array(values, dtype=np.float64))
    return tuple(float(c) for c in solution)


def _top_edge_angle(corners: list[Point]) -> float:
    """Return the counter-clockwise angle of the line from the middle of the left edge to the middle of the right."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = corners
    left = ((x0 + x3) / 2, (y0 + y3) / 2)
    right = ((x1 + x2) / 2, (y1 + y2) / 2)
    # y grows downwards, so a counter-clockwise turn makes the right side rise.
    return normalise_rotation(math.degrees(math.atan2(left[1] - right[1], right[0] - left[0])))


def _shadow_edges(rng: random.Random) -> tuple[str, ...]:
    """Pick one card edge, or two that meet at a corner, as a hand or phone shadows them."""
    first = rng.choice(EDGE_NAMES)
    if rng.random() < 0.5:
        return (first,)
    index = EDGE_NAMES.index(first)
    return (first, EDGE_NAMES[(index + 1) % len(EDGE_NAMES)])


def _lighting(image: Image.Image, rng: random.Random, result: ScanResult) -> Image.Image:
    """Multiply by a linear light gradient in a random direction and a slight warm or cool tint."""
    width, height = image.size
    angle = round(rng.uniform(0.0, 360.0), 2)
    low = round(rng.uniform(0.62, 0.85), 3)
    high = round(rng.uniform(0.98, 1.08), 3)
    tint = [round(rng.uniform(0.95, 1.03), 3) for _ in range(3)]
    xs = np.arange(width, dtype=np.float32)[np.newaxis, :]
    ys = np.arange(height, dtype=np.float32)[:, np.newaxis]
    projection = xs * math.cos(math.radians(angle)) + ys * math.sin(math.radians(angle))
    share = (projection - projection.min()) / max(float(projection.max() - projection.min()), 1.0)
    gain = low + (high - low) * share
    pixels = np.asarray(image, dtype=np.float32) * gain[:, :, np.newaxis] * np.array(tint, dtype=np.float32)
    _record(result, "lighting", gradient_angle_deg=angle, low=low, high=high, tint=tint)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8), mode="RGB")


def _camera_effects(image: Image.Image, rng: random.Random, dpi: int, result: ScanResult) -> Image.Image:
    """Apply a slight blur, sensor noise and JPEG compression, as a phone camera does."""
    radius = round(rng.uniform(0.4, 1.2) * dpi / 200, 3)
    image = image.filter(ImageFilter.GaussianBlur(radius))
    _record(result, "blur", radius_px=radius)

    sigma = round(rng.uniform(2.0, 5.0), 3)
    noise_rng = np.random.default_rng(rng.getrandbits(63))
    pixels = np.asarray(image, dtype=np.float32)
    grey = noise_rng.standard_normal(pixels.shape[:2], dtype=np.float32)[:, :, np.newaxis] * sigma
    colour = noise_rng.standard_normal(pixels.shape, dtype=np.float32) * (sigma * 0.4)
    image = Image.fromarray((pixels + grey + colour).clip(0, 255).astype(np.uint8), mode="RGB")
    _record(result, "noise", sigma=sigma)

    quality = rng.randint(55, 88)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as compressed:
        image = compressed.convert("RGB")
    _record(result, "jpeg", quality=quality)
    return image


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Return smooth noise in about [-1, 1] of ``size`` (width, height), varying over ``cells`` (columns, rows)."""
    coarse = rng.normal(0.0, 1.0, (cells[1], cells[0])).astype(np.float32)
    image = Image.fromarray(coarse, mode="F").resize(size, Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32) / 1.5


def _background(kind: str, size: tuple[int, int], rng: random.Random) -> Image.Image:
    """Draw a desk or scanner-bed texture of ``size`` (width, height) from numpy noise."""
    width, height = size
    noise = np.random.default_rng(rng.getrandbits(63))
    xs = np.arange(width, dtype=np.float32)[np.newaxis, :]
    ys = np.arange(height, dtype=np.float32)[:, np.newaxis]
    if kind == "wood":
        # Grain: stripes along x whose phase wanders slowly, in a brown that varies per plank.
        base = np.array([rng.uniform(120, 175), rng.uniform(80, 120), rng.uniform(45, 75)], dtype=np.float32)
        period = rng.uniform(0.012, 0.03) * height
        wander = _smooth_noise(noise, size, (3, 14)) * period * 2.5
        stripes = 0.5 + 0.5 * np.sin(2 * math.pi * (ys + wander) / period)
        fine = noise.normal(0.0, 1.0, (height, max(1, width // 12))).astype(np.float32)
        fine = np.asarray(Image.fromarray(fine, mode="F").resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
        shade = 0.78 + 0.2 * stripes ** 1.5 + 0.035 * fine + 0.06 * _smooth_noise(noise, size, (4, 3))
    elif kind == "grey":
        level = rng.uniform(85, 175)
        base = np.array([level, level, level * rng.uniform(0.98, 1.04)], dtype=np.float32)
        shade = 1.0 + 0.05 * _smooth_noise(noise, size, (5, 4)) + noise.normal(0.0, 0.02, (height, width))
    else:
        colours = ((60, 70, 110), (70, 95, 70), (190, 175, 150), (120, 50, 55), (90, 90, 95))
        base = np.array(rng.choice(colours), dtype=np.float32)
        period = rng.uniform(3.0, 6.0)
        weave = np.sin(2 * math.pi * xs / period) * np.sin(2 * math.pi * ys / period)
        shade = (
            0.92 + 0.07 * weave + 0.05 * _smooth_noise(noise, size, (6, 5)) + noise.normal(0.0, 0.03, (height, width))
        )
    pixels = base[np.newaxis, np.newaxis, :] * shade[:, :, np.newaxis]
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8), mode="RGB")
