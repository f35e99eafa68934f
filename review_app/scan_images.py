"""Drawing of field boxes on the straightened scan, coloured by field state, and crops of single fields."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from PIL import Image, ImageDraw

from models.card import FieldResult, PixelBox
from ocr.crypto import read_stored_file
from ocr.review import ILLEGIBLE_CODE

__all__ = [
    "CROP_MARGIN_PX",
    "FLAGGED_COLOR",
    "OK_COLOR",
    "STATE_COLORS",
    "FieldState",
    "OverlayBox",
    "crop_field",
    "draw_state_boxes",
    "field_state",
    "load_scan",
    "scan_overlay_html",
]

FLAGGED_COLOR = (220, 38, 38)
OK_COLOR = (22, 163, 74)


class FieldState(StrEnum):
    """How far a field is checked, as its box colour on the scan shows."""

    OK = "ok"
    FLAGGED = "flagged"
    CORRECTED = "corrected"
    ILLEGIBLE = "illegible"


STATE_COLORS: dict[FieldState, tuple[int, int, int]] = {
    FieldState.OK: OK_COLOR,
    FieldState.FLAGGED: FLAGGED_COLOR,
    FieldState.CORRECTED: (37, 99, 235),
    FieldState.ILLEGIBLE: (217, 119, 6),
}
# Width of the scan sent to the browser in the card view, in pixels.
OVERLAY_WIDTH_PX = 1100
# Pixels of scan kept around a field's box in its crop, so that strokes that
# cross the box edge stay visible.
CROP_MARGIN_PX = 12


def load_scan(path: str | Path) -> Image.Image | None:
    """Return the scan at ``path`` as an RGB image, or None when the file is missing.

    Raises :class:`ocr.crypto.EncryptionError` when the scan is encrypted and the key is missing or wrong.
    """
    try:
        data = read_stored_file(path)
    except FileNotFoundError:
        return None
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def _clamp_box(box: PixelBox, width: int, height: int, margin: int = 0) -> PixelBox | None:
    """Return ``box`` widened by ``margin`` and clipped to the image, or None when nothing is left."""
    x0, y0, x1, y1 = box
    x0, y0 = max(0, x0 - margin), max(0, y0 - margin)
    x1, y1 = min(width, x1 + margin), min(height, y1 + margin)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def crop_field(image: Image.Image, box: PixelBox | None, margin: int = CROP_MARGIN_PX) -> Image.Image | None:
    """Return the part of ``image`` inside ``box`` plus ``margin`` pixels, or None without a usable box."""
    if box is None:
        return None
    clamped = _clamp_box(box, image.width, image.height, margin)
    if clamped is None:
        return None
    return image.crop(clamped)


def field_state(result: FieldResult, corrected: bool) -> FieldState:
    """Return the state of a field: illegible and flagged come first, then corrected by a person, else ok."""
    if ILLEGIBLE_CODE in result.reason_codes:
        return FieldState.ILLEGIBLE
    if result.needs_review:
        return FieldState.FLAGGED
    if corrected:
        return FieldState.CORRECTED
    return FieldState.OK


def draw_state_boxes(image: Image.Image, boxes: Mapping[str, tuple[PixelBox, FieldState]]) -> Image.Image:
    """Return a copy of ``image`` with each field's box drawn in the colour of its state."""
    annotated = image.copy()
    draw = ImageDraw.Draw(annotated)
    line_width = max(2, annotated.width // 450)
    for box, state in boxes.values():
        clamped = _clamp_box(box, annotated.width, annotated.height)
        if clamped is not None:
            draw.rectangle(clamped, outline=STATE_COLORS[state], width=line_width)
    return annotated


@dataclass(frozen=True)
class OverlayBox:
    """A clickable field box over the scan: the input it focuses, its tooltip and its place in pixels."""

    widget_key: str
    title: str
    box: PixelBox
    state: FieldState


def scan_overlay_html(image: Image.Image, boxes: Iterable[OverlayBox]) -> str:
    """Return HTML of the scan with its coloured boxes, each a link that focuses its field's input.

    The image is scaled to :data:`OVERLAY_WIDTH_PX` and sent inline as JPEG; the
    clickable areas are placed in percent of the image, so they follow its
    displayed size. Clicks call ``window.hukaFocusField``, which
    :func:`review_app.keys.keyboard_bridge` defines.
    """
    boxes = list(boxes)
    annotated = draw_state_boxes(image, {item.widget_key: (item.box, item.state) for item in boxes})
    if annotated.width > OVERLAY_WIDTH_PX:
        height = round(annotated.height * OVERLAY_WIDTH_PX / annotated.width)
        annotated = annotated.resize((OVERLAY_WIDTH_PX, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    annotated.save(buffer, format="JPEG", quality=85)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")

    links = []
    for item in boxes:
        clamped = _clamp_box(item.box, image.width, image.height)
        if clamped is None:
            continue
        x0, y0, x1, y1 = clamped
        style = (
            f"left:{100 * x0 / image.width:.2f}%;top:{100 * y0 / image.height:.2f}%;"
            f"width:{100 * (x1 - x0) / image.width:.2f}%;height:{100 * (y1 - y0) / image.height:.2f}%"
        )
        links.append(
            f'<a class="huka-box" href="#" data-field="{html.escape(item.widget_key)}" data-state="{item.state}" '
            f'title="{html.escape(item.title)}" style="{style}"></a>'
        )
    return (
        "<style>.huka-scan{position:relative;display:inline-block;width:100%}"
        ".huka-scan img{width:100%;display:block}"
        ".huka-box{position:absolute;display:block;cursor:pointer}"
        ".huka-box:hover,.huka-box:focus{background:rgba(37,99,235,0.15);outline:2px solid #1d4ed8}</style>"
        f'<div class="huka-scan"><img alt="scan" src="data:image/jpeg;base64,{data}">{"".join(links)}</div>'
        "<script>document.querySelectorAll('.huka-box').forEach(function (link) {"
        "link.addEventListener('click', function (event) { event.preventDefault();"
        " if (window.hukaFocusField) window.hukaFocusField(link.dataset.field); });});</script>"
    )
