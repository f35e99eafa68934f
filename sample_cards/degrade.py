"""Scanner effects on a rendered card: skew, border, edge shadow, quarter turns, blur, noise, exposure, JPEG.

Each effect is chosen by the seeded RNG and recorded, and the position of
the card's corners in the output image is tracked through every geometric
step.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

__all__ = ["EDGE_NAMES", "QUARTER_TURNS", "ScanResult", "edge_shadow", "normalise_rotation", "simulate_scan"]

QUARTER_TURNS = (0, 90, 180, 270)
QUARTER_TURN_WEIGHTS = (40, 20, 20, 20)

# Chance that each effect is applied when degradation is on.
SKEW_CHANCE = 0.8
BORDER_CHANCE = 0.6
BLUR_CHANCE = 0.35
NOISE_CHANCE = 0.5
EXPOSURE_CHANCE = 0.3
JPEG_CHANCE = 0.5

Point = tuple[float, float]

# Card edges by name, as pairs of indexes into the corner list (top-left, top-right, bottom-right, bottom-left).
EDGE_CORNERS = {"top": (0, 1), "right": (1, 2), "bottom": (2, 3), "left": (3, 0)}
EDGE_NAMES = tuple(EDGE_CORNERS)


@dataclass
class ScanResult:
    """A scanned card and how it was produced."""

    image: Image.Image
    degradations: list[str] = field(default_factory=list)
    # Effect name -> its parameters, e.g. {"blur": {"radius_px": 0.8}}.
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    skew_deg: float = 0.0
    quarter_turn_deg: int = 0
    # Content rotation counter-clockwise from upright, in (-180, 180].
    rotation_deg: float = 0.0
    # Corners of the upright card (top-left, top-right, bottom-right, bottom-left) in output pixels.
    card_corners: list[list[float]] = field(default_factory=list)


def normalise_rotation(angle_deg: float) -> float:
    """Map an angle in degrees into (-180, 180]."""
    angle = math.fmod(angle_deg, 360.0)
    if angle <= -180.0:
        angle += 360.0
    elif angle > 180.0:
        angle -= 360.0
    return angle


def simulate_scan(
    card: Image.Image,
    rng: random.Random,
    *,
    dpi: int,
    degrade: bool,
    max_skew_deg: float,
    quarter_turn: int,
    border_shadow_rng: random.Random | None = None,
) -> ScanResult:
    """Turn a flat rendered card into a scan. ``quarter_turn`` is applied even when ``degrade`` is off.

    With ``border_shadow_rng`` the card always gets a dark scanner-lid border
    and a shadow band along one edge, drawn from that RNG, with ``degrade`` on or off.
    """
    if quarter_turn not in QUARTER_TURNS:
        raise ValueError(f"quarter_turn must be one of {QUARTER_TURNS}, got {quarter_turn!r}")
    width, height = card.size
    corners: list[Point] = [(0.0, 0.0), (float(width), 0.0), (float(width), float(height)), (0.0, float(height))]
    result = ScanResult(image=card)
    image = card
    lid = _dark_lid(border_shadow_rng) if border_shadow_rng is not None else None

    if degrade:
        border = rng.random() < BORDER_CHANCE
        if border:
            background = _scanner_background(rng)
        else:
            # Without a visible border the scanner lid still fills skewed corners.
            background = (rng.randint(238, 248),) * 3
        if lid is not None:
            # The dark lid border added below replaces the random one.
            border = False
            background = lid
        if max_skew_deg > 0 and rng.random() < SKEW_CHANCE:
            skew = round(rng.uniform(-max_skew_deg, max_skew_deg), 3)
            if skew != 0.0:
                image, corners = _rotate_expand(image, corners, skew, background)
                result.skew_deg = skew
                _record(result, "skew", deg=skew)
        if border:
            image, corners = _add_border(image, corners, rng, background)
            _record(result, "scanner_border", colour=list(background))

    if lid is not None:
        image, corners = _add_border(image, corners, border_shadow_rng, lid, share=(0.03, 0.08))
        _record(result, "scanner_border", colour=list(lid))
        edge = border_shadow_rng.choice(EDGE_NAMES)
        band = round(border_shadow_rng.uniform(0.015, 0.05) * max(width, height), 2)
        strength = round(border_shadow_rng.uniform(0.35, 0.6), 3)
        image = edge_shadow(image, corners, edge, band, strength)
        _record(result, "scanner_shadow", edge=edge, width_px=band, strength=strength)

    if quarter_turn:
        image, corners = _quarter_turn(image, corners, quarter_turn)
        result.quarter_turn_deg = quarter_turn
        _record(result, "quarter_turn", deg=quarter_turn)

    if degrade:
        image = _pixel_effects(image, rng, dpi, result)

    result.image = image.convert("RGB")
    result.rotation_deg = round(normalise_rotation(result.quarter_turn_deg + result.skew_deg), 3)
    result.card_corners = [[round(x, 2), round(y, 2)] for x, y in corners]
    return result


def _record(result: ScanResult, name: str, **params: Any) -> None:
    result.degradations.append(name)
    if params:
        result.params[name] = params


def _scanner_background(rng: random.Random) -> tuple[int, int, int]:
    if rng.random() < 0.5:
        level = rng.randint(30, 70)  # dark lid or no lid
    else:
        level = rng.randint(225, 242)  # white lid, darker than the paper
    return (level, level, level + rng.randint(0, 6))


def _rotate_expand(
    image: Image.Image, corners: list[Point], angle_deg: float, background: tuple[int, int, int]
) -> tuple[Image.Image, list[Point]]:
    """Rotate counter-clockwise by ``angle_deg`` about the centre, growing the canvas to fit."""
    width, height = image.size
    rotated = image.rotate(
        angle_deg, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=background
    )
    new_width, new_height = rotated.size
    cos_a, sin_a = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    moved = []
    for x, y in corners:
        dx, dy = x - width / 2, y - height / 2
        # Counter-clockwise on screen is clockwise in y-down pixel coordinates.
        moved.append((cos_a * dx + sin_a * dy + new_width / 2, -sin_a * dx + cos_a * dy + new_height / 2))
    return rotated, moved


def _dark_lid(rng: random.Random) -> tuple[int, int, int]:
    level = rng.randint(15, 55)
    return (level, level, level + rng.randint(0, 6))


def _add_border(
    image: Image.Image,
    corners: list[Point],
    rng: random.Random,
    background: tuple[int, int, int],
    share: tuple[float, float] = (0.01, 0.05),
) -> tuple[Image.Image, list[Point]]:
    """Place the image on a larger scanner background with margins of ``share`` of the width per side."""
    width, height = image.size
    left, top, right, bottom = (round(width * rng.uniform(*share)) for _ in range(4))
    canvas = Image.new("RGB", (width + left + right, height + top + bottom), background)
    canvas.paste(image, (left, top))
    return canvas, [(x + left, y + top) for x, y in corners]


def edge_shadow(
    image: Image.Image, corners: list[Point], edge: str, width_px: float, strength: float
) -> Image.Image:
    """Darken a band along one card edge that fades into the card over about ``width_px``.

    ``corners`` are the card corners in ``image`` (top-left, top-right,
    bottom-right, bottom-left) and ``edge`` one of EDGE_NAMES. Beyond the edge,
    outside the card, the shadow keeps its full ``strength`` (0-1).
    """
    start, end = EDGE_CORNERS[edge]
    distance = _distance_into_card(image.size, corners, start, end)
    darkening = strength * np.exp(-np.clip(distance, 0.0, None) / max(width_px, 1e-3) * 2.0)
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) * (1.0 - darkening)[:, :, np.newaxis]
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8), mode="RGB")


def _distance_into_card(size: tuple[int, int], corners: list[Point], start: int, end: int) -> np.ndarray:
    """Return, per pixel, the signed distance to the line of the edge from corner ``start`` to ``end``.

    The distance is positive on the card's side of the line.
    """
    width, height = size
    (x0, y0), (x1, y1) = corners[start], corners[end]
    length = math.hypot(x1 - x0, y1 - y0)
    normal_x, normal_y = -(y1 - y0) / length, (x1 - x0) / length
    centre_x = sum(x for x, _ in corners) / 4
    centre_y = sum(y for _, y in corners) / 4
    if (centre_x - x0) * normal_x + (centre_y - y0) * normal_y < 0:
        normal_x, normal_y = -normal_x, -normal_y
    xs = np.arange(width, dtype=np.float32)[np.newaxis, :]
    ys = np.arange(height, dtype=np.float32)[:, np.newaxis]
    return (xs - x0) * normal_x + (ys - y0) * normal_y


def _quarter_turn(image: Image.Image, corners: list[Point], turn_deg: int) -> tuple[Image.Image, list[Point]]:
    """Turn counter-clockwise by 90, 180 or 270 degrees without resampling."""
    width, height = image.size
    if turn_deg == 90:
        return image.transpose(Image.Transpose.ROTATE_90), [(y, width - x) for x, y in corners]
    if turn_deg == 180:
        return image.transpose(Image.Transpose.ROTATE_180), [(width - x, height - y) for x, y in corners]
    return image.transpose(Image.Transpose.ROTATE_270), [(height - y, x) for x, y in corners]


def _pixel_effects(image: Image.Image, rng: random.Random, dpi: int, result: ScanResult) -> Image.Image:
    """Apply blur, exposure change, sensor noise and JPEG compression, each by chance."""
    if rng.random() < BLUR_CHANCE:
        radius = round(rng.uniform(0.4, 1.1) * dpi / 200, 3)
        image = image.filter(ImageFilter.GaussianBlur(radius))
        _record(result, "blur", radius_px=radius)

    if rng.random() < EXPOSURE_CHANCE:
        gamma = round(rng.uniform(0.85, 1.2), 3)
        lut = [round(255 * (v / 255) ** gamma) for v in range(256)]
        image = image.point(lut * 3)
        _record(result, "exposure", gamma=gamma)

    if rng.random() < NOISE_CHANCE:
        sigma = round(rng.uniform(2.0, 7.0), 3)
        noise_rng = np.random.default_rng(rng.getrandbits(63))
        pixels = np.asarray(image, dtype=np.float32)
        # Mostly grey noise with a little per-channel colour noise.
        grey = noise_rng.normal(0.0, sigma, pixels.shape[:2])[:, :, np.newaxis]
        colour = noise_rng.normal(0.0, sigma * 0.3, pixels.shape)
        image = Image.fromarray((pixels + grey + colour).clip(0, 255).astype(np.uint8), mode="RGB")
        _record(result, "noise", sigma=sigma)

    if rng.random() < JPEG_CHANCE:
        quality = rng.randint(35, 75)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as compressed:
            image = compressed.convert("RGB")
        _record(result, "jpeg", quality=quality)
    return image
