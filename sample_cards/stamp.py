"""A red round seal (公章, a company chop) stamped partly over one value zone of a card.

The seal is a ring with the unit's name along the upper arc, a five-pointed
star in the middle and the seal's use below it, in semi-transparent red ink
with uneven density. The ink multiplies with the paper, so writing under the
seal stays visible.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from models.template import Template
from sample_cards import data
from sample_cards.fonts import FontSet
from sample_cards.render import MM_PER_INCH

__all__ = ["StampPlacement", "place_stamp", "stamp_card"]

# A company chop is 38-42 mm across.
DIAMETER_MM = (38.0, 42.0)
SEAL_USES = ("前台专用章", "业务专用章", "接待专用章", "财务专用章")
HOTEL_WORDS = ("锦江", "华天", "金陵", "东方", "海景", "明珠", "开元", "白云")
HOTEL_KINDS = ("大酒店有限公司", "宾馆有限责任公司", "国际酒店管理有限公司", "饭店有限公司")


@dataclass(frozen=True)
class StampPlacement:
    """Position of the seal on the flat card, in card pixels, and its text and ink."""

    field: str
    centre: tuple[float, float]
    radius: float
    rotation_deg: float
    name: str
    use: str
    colour: tuple[int, int, int]
    opacity: float

    def truth(self, card_size: tuple[int, int], field_box) -> dict[str, Any]:
        """Return the truth record: positions in flat-card pixels and relative card coordinates."""
        width, height = card_size
        x, y = self.centre
        return {
            "field": self.field,
            "field_box": [field_box.x0, field_box.y0, field_box.x1, field_box.y1],
            "centre_px": [round(x, 2), round(y, 2)],
            "radius_px": round(self.radius, 2),
            # Bounding box of the ring in relative card coordinates (x0, y0, x1, y1), like template boxes.
            "box": [
                round(max(0.0, (x - self.radius) / width), 4),
                round(max(0.0, (y - self.radius) / height), 4),
                round(min(1.0, (x + self.radius) / width), 4),
                round(min(1.0, (y + self.radius) / height), 4),
            ],
            "rotation_deg": self.rotation_deg,
            "text": [self.name, self.use],
            "colour": list(self.colour),
            "opacity": self.opacity,
        }


def place_stamp(
    template: Template, written: dict[str, str], card_size: tuple[int, int], dpi: int, rng: random.Random
) -> StampPlacement:
    """Choose a value zone and a seal position that covers part of it, clear of the red serial number.

    Zones with a written value are preferred, so a reader can be tested on
    the value under the seal. Raises ValueError when the template has no
    value zone but the serial number.
    """
    width, height = card_size
    zones = [spec for spec in template.fields if spec.key != "card_serial" and spec.ink != "red"]
    if not zones:
        raise ValueError(f"template {template.name!r} has no value zone to stamp")
    filled = [spec for spec in zones if written.get(spec.key)]
    radius = rng.uniform(*DIAMETER_MM) / 2 * dpi / MM_PER_INCH
    serial = [spec.value_box.to_pixels(width, height) for spec in template.fields if spec not in zones]

    # NOTE: when every try touches the serial number (a template with few zones), the last try is kept.
    for _ in range(50):
        spec = rng.choice(filled or zones)
        x0, y0, x1, y1 = spec.value_box.to_pixels(width, height)
        centre_x = rng.uniform(x0 + (x1 - x0) * 0.3, x1)
        # The ring crosses the zone, or the middle of the seal lies on it.
        centre_y = (y0 + y1) / 2 + rng.uniform(-0.7, 0.7) * radius
        centre_x = min(max(centre_x, radius + 2), width - radius - 2)
        centre_y = min(max(centre_y, radius + 2), height - radius - 2)
        if not any(_circle_meets_box((centre_x, centre_y), radius, box) for box in serial):
            break

    red = (rng.randint(190, 220), rng.randint(20, 45), rng.randint(30, 55))
    return StampPlacement(
        field=spec.key,
        centre=(centre_x, centre_y),
        radius=radius,
        rotation_deg=round(rng.uniform(-35.0, 35.0), 2),
        name=rng.choice(HOTEL_WORDS) + rng.choice(HOTEL_KINDS) if rng.random() < 0.7 else rng.choice(data.RECEIVING_UNITS),
        use=rng.choice(SEAL_USES),
        colour=red,
        opacity=round(rng.uniform(0.65, 0.85), 3),
    )


def _circle_meets_box(centre: tuple[float, float], radius: float, box: tuple[int, int, int, int]) -> bool:
    x, y = centre
    nearest_x = min(max(x, box[0]), box[2])
    nearest_y = min(max(y, box[1]), box[3])
    return math.hypot(x - nearest_x, y - nearest_y) < radius


def stamp_card(card: Image.Image, placement: StampPlacement, fonts: FontSet, rng: random.Random) -> Image.Image:
    """Return ``card`` with the seal of ``placement`` multiplied onto it."""
    seal = _seal_mask(placement, fonts)
    seal = seal.rotate(placement.rotation_deg, resample=Image.Resampling.BICUBIC)

    # Stamp-pad ink: dense in patches, thin in others, with a little grain.
    side = seal.size[0]
    noise_rng = np.random.default_rng(rng.getrandbits(63))
    patches = Image.fromarray(noise_rng.uniform(0.55, 1.0, (6, 6)).astype(np.float32), mode="F")
    density = np.asarray(patches.resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32)
    grain = noise_rng.uniform(0.8, 1.0, (side, side)).astype(np.float32)
    alpha = np.asarray(seal, dtype=np.float32) / 255.0 * np.clip(density, 0, 1) * grain * placement.opacity

    layer = np.zeros((card.height, card.width), dtype=np.float32)
    left = round(placement.centre[0] - side / 2)
    top = round(placement.centre[1] - side / 2)
    x0, y0 = max(0, left), max(0, top)
    x1, y1 = min(card.width, left + side), min(card.height, top + side)
    layer[y0:y1, x0:x1] = alpha[y0 - top : y1 - top, x0 - left : x1 - left]

    ink = np.array(placement.colour, dtype=np.float32) / 255.0
    factor = 1.0 - layer[:, :, np.newaxis] * (1.0 - ink)
    pixels = np.asarray(card, dtype=np.float32) * factor
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8), mode="RGB")


def _seal_mask(placement: StampPlacement, fonts: FontSet) -> Image.Image:
    """Draw the upright seal as an L mask, a square of side 2 * radius plus a margin."""
    radius = placement.radius
    side = int(radius * 2 + 8)
    centre = side / 2
    mask = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(mask)

    ring = max(2, round(radius * 0.065))
    draw.ellipse(
        (centre - radius, centre - radius, centre + radius, centre + radius), outline=255, width=ring
    )
    _draw_star(draw, (centre, centre - radius * 0.05), radius * 0.3)

    # The name runs clockwise along the upper arc, each character upright towards the rim.
    name = placement.name
    size = max(6, round(radius * 0.27))
    font = fonts.font("cjk_label", size)
    span = min(250.0, 22.0 * len(name))
    text_radius = radius - ring - size * 0.62
    for index, char in enumerate(name):
        angle = -span / 2 + span * (index + 0.5) / len(name)  # degrees clockwise from the top
        glyph = Image.new("L", (size * 2, size * 2), 0)
        ImageDraw.Draw(glyph).text((size, size), char, font=font, fill=255, anchor="mm")
        glyph = glyph.rotate(-angle, resample=Image.Resampling.BICUBIC)
        x = centre + text_radius * math.sin(math.radians(angle)) - size
        y = centre - text_radius * math.cos(math.radians(angle)) - size
        mask.paste(255, (round(x), round(y)), glyph)

    use_size = max(6, round(radius * 0.2))
    draw.text(
        (centre, centre + radius * 0.55), placement.use, font=fonts.font("cjk_label", use_size), fill=255, anchor="mm"
    )
    return mask.filter(ImageFilter.GaussianBlur(0.5))


def _draw_star(draw: ImageDraw.ImageDraw, centre: tuple[float, float], radius: float) -> None:
    points = []
    for index in range(10):
        length = radius if index % 2 == 0 else radius * 0.38
        angle = math.radians(-90 + index * 36)
        points.append((centre[0] + length * math.cos(angle), centre[1] + length * math.sin(angle)))
    draw.polygon(points, fill=255)
