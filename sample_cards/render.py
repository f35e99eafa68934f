"""Drawing of one card from its template: printed form, red serial number and written values.

Every value is drawn into a mask the size of its template value box, so
written text never leaves the box. Printed text (form, labels, title,
printer-filled values) uses upright fonts. Handwriting uses AR PL UKai with
per-character jitter of position, size and rotation, a wandering baseline and
varying pen pressure.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from models.template import Box, Template
from sample_cards.fonts import FontSet

__all__ = ["INK_COLOURS", "PAPER_COLOURS", "card_size_px", "render_card"]

MM_PER_INCH = 25.4
# Long side of the card: A5 is 210 x 148 mm.
CARD_LONG_SIDE_MM = 210.0

PAPER_COLOURS = {
    "white": (251, 251, 248),
    "yellow": (248, 237, 172),
    "pink": (247, 212, 219),
}
INK_COLOURS = {
    "blue": (24, 44, 150),
    "black": (28, 28, 34),
}
FORM_COLOUR = (38, 38, 42)
# Enlargement of Latin letters and digits in handwriting, relative to CJK characters.
LATIN_SCALE = 1.15
# Maximum em size of printed labels, in mm: Chinese line, English line.
LABEL_MAX_MM = (4.2, 2.8)
SERIAL_RED = (206, 32, 38)

# Fields of a foreign-guest card that the front desk fills in, not the guest.
CLERK_KEYS = frozenset({"arrival_date", "departure_date", "room_number", "received_by", "receptionist"})

# The copy a sheet of a carbonless set is, printed at the foot of the card.
COPY_FOOTERS = {
    "white": "第一联 交公安机关",
    "yellow": "第二联 酒店留存",
    "pink": "第三联 客人留存",
}


@dataclass(frozen=True)
class RenderOptions:
    """Settings for writing the values of one card."""

    style: str  # "printed" or "handwriting"
    ink: str  # "blue" or "black"
    paper: str  # "white", "yellow" or "pink"
    dpi: int
    # A carbon copy: fainter, slightly blurred writing on tinted paper.
    carbon_copy: bool
    paper_texture: bool


def card_size_px(template: Template, dpi: int) -> tuple[int, int]:
    """Return (width, height) in pixels of a card of ``template`` at ``dpi``; the long side is 210 mm."""
    long_side = round(CARD_LONG_SIDE_MM / MM_PER_INCH * dpi)
    if template.aspect_ratio >= 1.0:
        return long_side, round(long_side / template.aspect_ratio)
    return round(long_side * template.aspect_ratio), long_side


def render_card(
    template: Template, written: dict[str, str], fonts: FontSet, options: RenderOptions, rng: random.Random
) -> Image.Image:
    """Draw the card of ``template`` with the ``written`` values and return it as an RGB image."""
    width, height = card_size_px(template, options.dpi)
    paper = tuple(min(255, max(0, c + rng.randint(-3, 3))) for c in PAPER_COLOURS[options.paper])
    card = Image.new("RGB", (width, height), paper)

    _draw_form(card, template, fonts, options)
    _draw_serial(card, template, written.get("card_serial", ""), fonts)

    ink_mask = _value_mask(template, written, fonts, options, rng, (width, height))
    opacity = 1.0
    if options.carbon_copy:
        opacity = rng.uniform(0.5, 0.7)
        ink_mask = ink_mask.filter(ImageFilter.GaussianBlur(0.6 * options.dpi / 200))
    alpha = ink_mask.point(lambda v: round(v * opacity))
    card.paste(Image.new("RGB", card.size, INK_COLOURS[options.ink]), (0, 0), alpha)

    if options.paper_texture:
        card = _add_paper_texture(card, rng)
    return card


def _px(box: Box, size: tuple[int, int]) -> tuple[int, int, int, int]:
    return box.to_pixels(*size)


def _is_cjk(char: str) -> bool:
    return ord(char) >= 0x2E80


def _runs(text: str) -> list[tuple[bool, str]]:
    """Split text into runs of CJK and non-CJK characters: [(is_cjk, run), ...]."""
    runs: list[tuple[bool, str]] = []
    for char in text:
        cjk = _is_cjk(char)
        if runs and runs[-1][0] == cjk:
            runs[-1] = (cjk, runs[-1][1] + char)
        else:
            runs.append((cjk, char))
    return runs


def _text_width(text: str, fonts: FontSet, cjk_role: str, latin_role: str, size: int) -> float:
    return sum(fonts.font(cjk_role if cjk else latin_role, size).getlength(run) for cjk, run in _runs(text))


def _fit_size(text: str, fonts: FontSet, cjk_role: str, latin_role: str, max_size: int, max_width: float) -> int:
    """Return the largest size up to ``max_size`` at which ``text`` is at most ``max_width`` wide."""
    size = max(4, int(max_size))
    width = _text_width(text, fonts, cjk_role, latin_role, size)
    if width > max_width:
        size = max(4, int(size * max_width / width))
    return size


def _draw_mixed(
    draw: ImageDraw.ImageDraw,
    origin: tuple[float, float],
    text: str,
    fonts: FontSet,
    cjk_role: str,
    latin_role: str,
    size: int,
    fill,
    stroke: int = 0,
) -> None:
    """Draw text with its left end of the baseline at ``origin``, switching fonts between CJK and Latin runs."""
    x, baseline = origin
    for cjk, run in _runs(text):
        font = fonts.font(cjk_role if cjk else latin_role, size)
        draw.text((x, baseline), run, font=font, fill=fill, anchor="ls", stroke_width=stroke, stroke_fill=fill)
        x += font.getlength(run)


def _draw_centered_lines(
    draw: ImageDraw.ImageDraw,
    box_px: tuple[int, int, int, int],
    lines: tuple[str, ...],
    fonts: FontSet,
    roles: tuple[str, str],
    max_sizes: tuple[float, float],
    fill,
    bold_first: bool = False,
) -> None:
    """Draw lines as a block centred in a box: the first line in ``max_sizes[0]``, the others smaller.

    Each line shrinks further when it is wider than the box.
    """
    x0, y0, x1, y1 = box_px
    box_w, box_h = x1 - x0, y1 - y0
    if not lines:
        return
    sizes = [
        _fit_size(line, fonts, roles[0], roles[1], max_sizes[0 if index == 0 else 1], box_w * 0.94)
        for index, line in enumerate(lines)
    ]
    line_gap = 0.25
    block_height = sum(sizes) * (1 + line_gap) - sizes[-1] * line_gap
    top = y0 + (box_h - block_height) / 2
    for index, (line, size) in enumerate(zip(lines, sizes, strict=True)):
        width = _text_width(line, fonts, roles[0], roles[1], size)
        # Glyphs rise about 0.85 em above the baseline.
        baseline = top + size * 0.88
        stroke = 1 if bold_first and index == 0 else 0
        _draw_mixed(draw, (x0 + (box_w - width) / 2, baseline), line, fonts, roles[0], roles[1], size, fill, stroke)
        top += size * (1 + line_gap)


def _line_sizes(
    box: Box,
    card_size: tuple[int, int],
    line_count: int,
    height_shares: tuple[float, float],
    max_mm: tuple[float, float],
    dpi: int,
) -> tuple[float, float]:
    """Return the maximum em sizes in pixels of the first and the other lines of a printed text block.

    A size is a share of the box height, and at most ``max_mm`` millimetres.
    A single line may take 1.25 times the first-line share.
    """
    box_h = box.to_pixels(*card_size)[3] - box.to_pixels(*card_size)[1]
    px_per_mm = dpi / MM_PER_INCH
    first_share = height_shares[0] * (1.25 if line_count == 1 else 1.0)
    return (
        min(box_h * first_share, max_mm[0] * px_per_mm),
        min(box_h * height_shares[1], max_mm[1] * px_per_mm),
    )


def _draw_form(card: Image.Image, template: Template, fonts: FontSet, options: RenderOptions) -> None:
    """Draw the printed table, the labels, the title and the footer."""
    draw = ImageDraw.Draw(card)
    size = card.size
    line_width = max(1, round(options.dpi / 110))
    for rule in template.rules:
        draw.rectangle(_px(rule, size), outline=FORM_COLOUR, width=line_width)

    _draw_centered_lines(
        draw,
        _px(template.title_box, size),
        template.title_text,
        fonts,
        ("cjk_label", "latin_title"),
        _line_sizes(template.title_box, size, len(template.title_text), (0.5, 0.28), (9.0, 4.5), options.dpi),
        FORM_COLOUR,
        bold_first=True,
    )
    for spec in template.fields:
        if spec.label_box is None or not spec.label_text:
            continue
        _draw_centered_lines(
            draw,
            _px(spec.label_box, size),
            spec.label_text,
            fonts,
            ("cjk_label", "latin_label"),
            _line_sizes(spec.label_box, size, len(spec.label_text), (0.34, 0.26), LABEL_MAX_MM, options.dpi),
            FORM_COLOUR,
        )

    footer = COPY_FOOTERS[options.paper]
    footer_size = round(card.height * 0.022)
    footer_width = _text_width(footer, fonts, "cjk_label", "latin_label", footer_size)
    baseline = card.height * 0.985
    _draw_mixed(
        draw, (card.width * 0.97 - footer_width, baseline), footer, fonts, "cjk_label", "latin_label", footer_size,
        FORM_COLOUR,
    )
    if template.card_type == "foreign_guest":
        note = "请用正楷填写 Please write in block letters"
        _draw_mixed(draw, (card.width * 0.03, baseline), note, fonts, "cjk_label", "latin_label", footer_size,
                    FORM_COLOUR)


def _draw_serial(card: Image.Image, template: Template, serial: str, fonts: FontSet) -> None:
    """Print the pre-printed serial number in red, left-aligned in its value box."""
    if not serial or "card_serial" not in {f.key for f in template.fields}:
        return
    x0, y0, x1, y1 = _px(template.field("card_serial").value_box, card.size)
    box_h = y1 - y0
    size = _fit_size(serial, fonts, "serial", "serial", box_h * 0.62, (x1 - x0) * 0.9)
    draw = ImageDraw.Draw(card)
    baseline = (y0 + y1) / 2 + size * 0.36
    _draw_mixed(draw, (x0 + (x1 - x0) * 0.04, baseline), serial, fonts, "serial", "serial", size, SERIAL_RED)


@dataclass(frozen=True)
class Hand:
    """Habits of one writer, kept for every field that writer fills in."""

    size_mm: float  # em size of CJK characters
    letter_spacing: float  # multiple of the font's advance
    slant: float  # horizontal shear of Latin letters, positive leans right
    stroke: int  # extra stroke width in pixels: a heavy hand or a broad ballpoint
    pressure: float  # ink density at the start of a field, 0-1

    @classmethod
    def draw(cls, rng: random.Random) -> "Hand":
        return cls(
            size_mm=rng.uniform(5.0, 6.5),
            letter_spacing=rng.uniform(0.98, 1.1),
            slant=rng.uniform(-0.05, 0.2),
            stroke=1 if rng.random() < 0.3 else 0,
            pressure=rng.uniform(0.85, 1.0),
        )


def _value_mask(
    template: Template,
    written: dict[str, str],
    fonts: FontSet,
    options: RenderOptions,
    rng: random.Random,
    size: tuple[int, int],
) -> Image.Image:
    """Return an L mask of the card with every written value except the serial number."""
    mask = Image.new("L", size, 0)
    px_per_mm = options.dpi / MM_PER_INCH
    # A printer feeds the form with one offset for the whole card.
    feed_offset = (rng.uniform(-0.01, 0.02), rng.uniform(-0.1, 0.1))
    guest_hand = Hand.draw(rng)
    # Domestic cards are filled in by the front desk alone.
    clerk_hand = Hand.draw(rng) if template.card_type == "foreign_guest" else guest_hand
    for spec in template.fields:
        text = written.get(spec.key, "")
        if spec.key == "card_serial" or not text:
            continue
        x0, y0, x1, y1 = _px(spec.value_box, size)
        box_size = (x1 - x0, y1 - y0)
        if options.style == "handwriting":
            hand = clerk_hand if spec.key in CLERK_KEYS else guest_hand
            field_mask = _handwriting_mask(text, box_size, fonts, px_per_mm, hand, rng)
        else:
            field_mask = _printed_mask(text, box_size, fonts, px_per_mm, feed_offset)
        mask.paste(field_mask, (x0, y0))
    return mask


def _printed_mask(
    text: str, box_size: tuple[int, int], fonts: FontSet, px_per_mm: float, feed_offset: tuple[float, float]
) -> Image.Image:
    box_w, box_h = box_size
    mask = Image.new("L", box_size, 0)
    margin = box_w * 0.04
    # About 10.5 pt type: 3.7 mm em size.
    size = _fit_size(text, fonts, "cjk_print", "latin_print", min(3.7 * px_per_mm, box_h * 0.55), box_w - 2 * margin)
    x = margin + feed_offset[0] * box_w
    baseline = box_h / 2 + size * 0.36 + feed_offset[1] * box_h
    _draw_mixed(ImageDraw.Draw(mask), (x, baseline), text, fonts, "cjk_print", "latin_print", size, 255)
    return mask


def _handwriting_mask(
    text: str, box_size: tuple[int, int], fonts: FontSet, px_per_mm: float, hand: Hand, rng: random.Random
) -> Image.Image:
    """Write ``text`` by hand into a box-sized mask, one jittered glyph at a time."""
    box_w, box_h = box_size
    canvas = np.zeros((box_h, box_w), dtype=np.float32)

    size = min(hand.size_mm * rng.uniform(0.95, 1.05) * px_per_mm, box_h * 0.6)
    letter_spacing = hand.letter_spacing * rng.uniform(0.97, 1.03)
    margin_left = box_w * rng.uniform(0.03, 0.12)
    available = box_w * 0.95 - margin_left
    natural = _handwriting_advance_total(text, fonts, size, letter_spacing)
    if natural > available:
        shrink = available / natural
        if shrink < 0.75:
            # Writers squeeze long entries by writing closer before writing smaller.
            letter_spacing *= 0.92
            natural = _handwriting_advance_total(text, fonts, size, letter_spacing)
            shrink = min(1.0, available / natural)
        size *= shrink

    slant = hand.slant + rng.gauss(0, 0.02)
    stroke = hand.stroke if size > 24 else 0
    slope = rng.uniform(-0.025, 0.025)  # baseline rise per pixel
    wave_amplitude = size * rng.uniform(0.0, 0.06)
    wave_period = box_w * rng.uniform(0.4, 1.2)
    wave_phase = rng.uniform(0, 2 * math.pi)
    base = box_h / 2 + size * 0.36 + rng.uniform(-0.05, 0.05) * box_h
    pressure = hand.pressure

    x = margin_left
    for char in text:
        advance = _handwriting_advance(char, fonts, size, letter_spacing)
        if char == " ":
            x += advance * rng.uniform(0.9, 1.2)
            continue
        # UKai digits and Latin letters are small next to its CJK glyphs, so they are enlarged.
        char_size = size * rng.uniform(0.93, 1.07) * (1.0 if _is_cjk(char) else LATIN_SCALE)
        baseline = (
            base
            + slope * (x - margin_left)
            + wave_amplitude * math.sin(2 * math.pi * x / wave_period + wave_phase)
            + rng.gauss(0, size * 0.025)
        )
        pressure = min(1.0, max(0.75, pressure + rng.gauss(0, 0.03)))
        glyph, (origin_x, origin_y) = _glyph_mask(
            char,
            fonts.font("handwriting", char_size),
            rotation=rng.gauss(0, 3.0),
            shear=0.0 if _is_cjk(char) else slant,
            stroke=stroke,
        )
        left = round(x + rng.gauss(0, size * 0.02) - origin_x)
        top = round(baseline - origin_y)
        _max_paste(canvas, glyph * pressure, left, top)
        x += advance + rng.gauss(0, size * 0.015)

    # Ballpoint ink lays down unevenly along a stroke.
    grain_rng = np.random.default_rng(rng.getrandbits(63))
    canvas *= grain_rng.uniform(0.8, 1.0, canvas.shape).astype(np.float32)
    return Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), mode="L")


def _handwriting_advance(char: str, fonts: FontSet, size: float, letter_spacing: float) -> float:
    """Return the pen advance after ``char``: CJK characters are written closer than the font spaces them."""
    if _is_cjk(char):
        return fonts.font("handwriting", size).getlength(char) * letter_spacing * 0.92
    return fonts.font("handwriting", size * LATIN_SCALE).getlength(char) * letter_spacing


def _handwriting_advance_total(text: str, fonts: FontSet, size: float, letter_spacing: float) -> float:
    # Spaces get up to 1.2 times their advance when written.
    return sum(
        _handwriting_advance(char, fonts, size, letter_spacing) * (1.2 if char == " " else 1.0) for char in text
    )


def _glyph_mask(
    char: str, font: ImageFont.FreeTypeFont, *, rotation: float, shear: float, stroke: int
) -> tuple[np.ndarray, tuple[float, float]]:
    """Return one glyph as a float mask (0-255) and the pixel of its baseline origin in that mask."""
    em = font.size
    side = int(em * 2)
    origin = (em * 0.5, em * 1.3)
    glyph = Image.new("L", (side, side), 0)
    ImageDraw.Draw(glyph).text(origin, char, font=font, fill=255, anchor="ls", stroke_width=stroke, stroke_fill=255)
    if shear:
        # x_source = x + shear * (y - origin_y): leans the glyph right for positive shear.
        glyph = glyph.transform(
            glyph.size, Image.Transform.AFFINE, (1, shear, -shear * origin[1], 0, 1, 0), resample=Image.Resampling.BILINEAR
        )
    if rotation:
        glyph = glyph.rotate(rotation, resample=Image.Resampling.BICUBIC, center=origin)
    return np.asarray(glyph, dtype=np.float32), origin


def _max_paste(canvas: np.ndarray, glyph: np.ndarray, left: int, top: int) -> None:
    """Combine ``glyph`` into ``canvas`` at (left, top) by maximum, clipping at the canvas edges."""
    height, width = canvas.shape
    g_height, g_width = glyph.shape
    x0, y0 = max(0, left), max(0, top)
    x1, y1 = min(width, left + g_width), min(height, top + g_height)
    if x0 >= x1 or y0 >= y1:
        return
    region = canvas[y0:y1, x0:x1]
    np.maximum(region, glyph[y0 - top : y1 - top, x0 - left : x1 - left], out=region)


def _add_paper_texture(card: Image.Image, rng: random.Random) -> Image.Image:
    """Multiply the card by slow brightness variation and fine fibre noise, both within a few percent."""
    width, height = card.size
    noise_rng = np.random.default_rng(rng.getrandbits(63))
    coarse = noise_rng.normal(0.0, 1.0, (8, 12)).astype(np.float32)
    coarse_img = Image.fromarray(((coarse * 20) + 128).clip(0, 255).astype(np.uint8), mode="L")
    slow = np.asarray(coarse_img.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    shading = 1.0 + (slow - 128.0) / 128.0 * 0.025
    fibres = 1.0 + noise_rng.normal(0.0, 0.008, (height, width)).astype(np.float32)
    pixels = np.asarray(card, dtype=np.float32) * (shading * fibres)[:, :, np.newaxis]
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8), mode="RGB")
