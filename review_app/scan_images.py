"""Drawing of field boxes on the straightened scan, and crops of single fields."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PIL import Image, ImageDraw

from models.card import FieldResult, PixelBox

__all__ = ["CROP_MARGIN_PX", "FLAGGED_COLOR", "OK_COLOR", "crop_field", "draw_field_boxes", "load_scan"]

FLAGGED_COLOR = (220, 38, 38)
OK_COLOR = (22, 163, 74)
# Pixels of scan kept around a field's box in its crop, so that strokes that
# cross the box edge stay visible.
CROP_MARGIN_PX = 12


def load_scan(path: str | Path) -> Image.Image | None:
    """Return the scan at ``path`` as an RGB image, or None when the file is missing."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        return None


def _clamp_box(box: PixelBox, width: int, height: int, margin: int = 0) -> PixelBox | None:
    """Return ``box`` widened by ``margin`` and clipped to the image, or None when nothing is left."""
    x0, y0, x1, y1 = box
    x0, y0 = max(0, x0 - margin), max(0, y0 - margin)
    x1, y1 = min(width, x1 + margin), min(height, y1 + margin)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def draw_field_boxes(image: Image.Image, fields: Iterable[FieldResult]) -> Image.Image:
    """Return a copy of ``image`` with each field's box drawn: red when it needs review, green otherwise."""
    annotated = image.copy()
    draw = ImageDraw.Draw(annotated)
    # About 3 px on a 1400 px wide scan, and never thinner than 2 px.
    line_width = max(2, annotated.width // 450)
    for field in fields:
        if field.box is None:
            continue
        box = _clamp_box(field.box, annotated.width, annotated.height)
        if box is None:
            continue
        color = FLAGGED_COLOR if field.needs_review else OK_COLOR
        draw.rectangle(box, outline=color, width=line_width)
    return annotated


def crop_field(image: Image.Image, box: PixelBox | None, margin: int = CROP_MARGIN_PX) -> Image.Image | None:
    """Return the part of ``image`` inside ``box`` plus ``margin`` pixels, or None without a usable box."""
    if box is None:
        return None
    clamped = _clamp_box(box, image.width, image.height, margin)
    if clamped is None:
        return None
    return image.crop(clamped)
