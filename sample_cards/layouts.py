"""Seeded card layouts other than the built-in templates: a hotel's own print of a card type.

``alternative_template`` builds a Template from a card type's fields with a
different field order, one to three columns, uneven row heights, labels
flush left, the title in a top corner and the red serial number in the
other. It is for testing the product on layouts it has never seen, and for
card types that come without a template.

Labels are left-aligned by giving each label box the width of its text: the
renderer centres a label in its box, so a box that the text just fills puts
the text at its left edge. The widths are measured with the installed fonts,
so a layout may differ by a few thousandths between font versions.
"""

from __future__ import annotations

import math
import random

from models.card_type import CardTypeSpec
from models.template import Box, Template, TemplateField
from sample_cards.fonts import load_fonts
from sample_cards.render import (
    LABEL_MAX_MM,
    _line_sizes,
    _text_width,
    card_size_px,
)

__all__ = ["LABEL_STYLES", "RULE_STYLES", "alternative_template"]

LANDSCAPE = 1.419  # A5 landscape, 210 x 148 mm
PORTRAIT = 0.705  # A5 portrait
# Rows per column above which handwriting would get smaller than about 4 mm.
MAX_ROWS = {LANDSCAPE: 12, PORTRAIT: 17}
MAX_COLUMNS = {LANDSCAPE: 3, PORTRAIT: 2}

# "inline": Chinese and English label on one line; "zh": Chinese only. Two-line labels are
# left out because the renderer centres each line, so only one line can sit flush left.
LABEL_STYLES = ("inline", "zh")
# "grid": a table of cells; "underline": a line under each value and a frame round the card.
RULE_STYLES = ("grid", "underline")

MARGIN = 0.035
# Resolution at which label widths are measured; higher is more precise.
MEASURE_DPI = 300
# Label boxes are this much wider than their text, so the renderer never shrinks it.
LABEL_SLACK = 1.04
SERIAL_WIDTH = 0.2
# Largest share of a column that the label column may take.
MAX_LABEL_SHARE = 0.4


def alternative_template(
    card_type: str,
    seed: int,
    *,
    registry=None,
    card_type_spec: CardTypeSpec | None = None,
) -> Template:
    """Build a seeded layout of ``card_type`` that differs from the built-in template.

    The card type comes from ``card_type_spec`` when given, else from
    ``registry`` (default: the built-in card types). The same seed gives the
    same template. Raises ValueError for an unknown card type.
    """
    spec = _card_type_spec(card_type, registry, card_type_spec)
    rng = random.Random(f"layout:{card_type}:{seed}")
    serial_keys = [f.key for f in spec.fields if f.kind == "serial"][:1]
    keys = [f.key for f in spec.fields if f.key not in serial_keys]

    order = list(keys)
    rng.shuffle(order)
    if order == keys and len(keys) > 1:
        # A shuffle may return the printed order itself, which is not a different layout.
        order = order[1:] + order[:1]

    aspect, columns = _choose_grid(len(order), rng)
    label_style = rng.choice(LABEL_STYLES)
    rule_style = rng.choice(RULE_STYLES)
    title_left = rng.random() < 0.5

    serial_box = serial_label = None
    if serial_keys:
        serial_x0 = 1 - MARGIN - SERIAL_WIDTH if title_left else MARGIN
        serial_box = Box(x0=serial_x0 + 0.055, y0=0.035, x1=serial_x0 + SERIAL_WIDTH, y1=0.095)
        serial_label = Box(x0=serial_x0, y0=0.04, x1=serial_x0 + 0.05, y1=0.09)
    title_text = (spec.title_zh,) if label_style == "zh" else (spec.title_zh, spec.title_en)
    title_box = _title_box(title_text, aspect, title_left)

    top = title_box.y1 + 0.025
    bottom = 0.945  # the copy footer sits below this
    rows = math.ceil(len(order) / columns)
    weights = [rng.uniform(0.85, 1.3) for _ in range(rows)]
    row_edges = [top]
    for weight in weights:
        row_edges.append(row_edges[-1] + (bottom - top) * weight / sum(weights))

    column_width = (1 - 2 * MARGIN) / columns
    labels = {key: _label_text(spec.field(key).label_zh, spec.field(key).label_en, label_style) for key in order}
    mean_height = (bottom - top) / rows
    if max(_label_width(text, mean_height, aspect) for text in labels.values()) > column_width * MAX_LABEL_SHARE:
        # Long bilingual labels would leave too little room for values, so the print drops the English.
        label_style = "zh"
        labels = {key: _label_text(spec.field(key).label_zh, "", label_style) for key in order}
    fields: list[TemplateField] = []
    rules: list[Box] = []
    if rule_style == "underline":
        rules.append(Box(x0=MARGIN * 0.6, y0=top - 0.012, x1=1 - MARGIN * 0.6, y1=bottom + 0.008))
    for column in range(columns):
        column_keys = order[column * rows : (column + 1) * rows]
        x0 = MARGIN + column * column_width
        x1 = x0 + column_width
        heights = [row_edges[i + 1] - row_edges[i] for i in range(len(column_keys))]
        label_width = max(
            _label_width(labels[key], height, aspect) for key, height in zip(column_keys, heights, strict=True)
        )
        label_width = min(label_width, column_width * MAX_LABEL_SHARE)
        for row, key in enumerate(column_keys):
            y0, y1 = row_edges[row], row_edges[row + 1]
            pad = (y1 - y0) * 0.08
            own_width = min(_label_width(labels[key], y1 - y0, aspect), label_width)
            label_x0 = x0 + 0.006
            label_box = Box(x0=label_x0, y0=y0 + pad, x1=label_x0 + own_width, y1=y1 - pad)
            value_x0 = label_x0 + label_width + 0.012
            value_box = Box(x0=value_x0, y0=y0 + pad, x1=x1 - 0.008, y1=y1 - pad)
            fields.append(TemplateField(key=key, label_box=label_box, value_box=value_box, label_text=labels[key]))
            if rule_style == "grid":
                rules.append(Box(x0=x0, y0=y0, x1=x1, y1=y1))
                rules.append(Box(x0=x0, y0=y0, x1=value_x0 - 0.006, y1=y1))
            else:
                rules.append(Box(x0=value_x0, y0=y1 - pad * 0.6, x1=x1 - 0.008, y1=y1 - pad * 0.6 + 0.0005))

    if serial_keys:
        fields.insert(
            0,
            TemplateField(
                key=serial_keys[0], label_box=serial_label, value_box=serial_box, label_text=("No.",), ink="red"
            ),
        )
    return Template(
        name=f"{card_type}_alt{seed}",
        card_type=card_type,
        version=1,
        aspect_ratio=aspect,
        title_box=title_box,
        title_text=title_text,
        rules=tuple(rules),
        fields=tuple(fields),
    )


def _card_type_spec(card_type: str, registry, card_type_spec: CardTypeSpec | None) -> CardTypeSpec:
    if card_type_spec is not None:
        if card_type_spec.card_type != card_type:
            raise ValueError(f"card_type_spec is for {card_type_spec.card_type!r}, not {card_type!r}")
        return card_type_spec
    if registry is None:
        from ocr.registry import load_registry

        registry = load_registry()
    if card_type not in registry.card_types:
        raise ValueError(f"unknown card type {card_type!r}; known: {', '.join(sorted(registry.card_types))}")
    return registry.card_type(card_type)


def _choose_grid(field_count: int, rng: random.Random) -> tuple[float, int]:
    """Pick (aspect ratio, columns), preferring fewer columns, so each column has at most MAX_ROWS rows."""
    options = []
    for aspect in (LANDSCAPE, PORTRAIT):
        for columns in range(1, MAX_COLUMNS[aspect] + 1):
            if math.ceil(field_count / columns) <= MAX_ROWS[aspect]:
                options.append((aspect, columns))
                break
    if not options:
        # NOTE: over 36 fields the rows get shorter than 4 mm; handwriting then shrinks to fit.
        return LANDSCAPE, MAX_COLUMNS[LANDSCAPE]
    return rng.choice(options)


def _label_text(label_zh: str, label_en: str, style: str) -> tuple[str, ...]:
    if style == "zh" or not label_en:
        return (label_zh,)
    return (f"{label_zh} {label_en}",)


def _label_width(lines: tuple[str, ...], row_height: float, aspect: float) -> float:
    """Return the width, relative to the card width, of a label box that ``lines`` just fill."""
    fonts = load_fonts()
    probe = Template(
        name="probe", card_type="probe", aspect_ratio=aspect, title_box=Box(x0=0, y0=0, x1=1, y1=1), title_text=(),
        fields=(),
    )
    size = card_size_px(probe, MEASURE_DPI)
    box = Box(x0=0.0, y0=0.0, x1=0.5, y1=row_height * 0.84)
    first, other = _line_sizes(box, size, len(lines), (0.34, 0.26), LABEL_MAX_MM, MEASURE_DPI)
    widths = [
        _text_width(line, fonts, "cjk_label", "latin_label", int(first if index == 0 else other))
        for index, line in enumerate(lines)
    ]
    # The renderer fits text into 94 % of the box width.
    return max(widths) / 0.94 * LABEL_SLACK / size[0]


def _title_box(title_text: tuple[str, ...], aspect: float, left: bool) -> Box:
    """Return a title box in the top-left or top-right corner that the title just fills."""
    fonts = load_fonts()
    height = 0.085 if aspect >= 1 else 0.06
    probe = Template(
        name="probe", card_type="probe", aspect_ratio=aspect, title_box=Box(x0=0, y0=0, x1=1, y1=1), title_text=(),
        fields=(),
    )
    size = card_size_px(probe, MEASURE_DPI)
    box = Box(x0=0.0, y0=0.0, x1=0.5, y1=height)
    first, other = _line_sizes(box, size, len(title_text), (0.5, 0.28), (9.0, 4.5), MEASURE_DPI)
    widths = [
        _text_width(line, fonts, "cjk_label", "latin_title", int(first if index == 0 else other))
        for index, line in enumerate(title_text)
    ]
    width = min(max(widths) / 0.94 * LABEL_SLACK / size[0], 1 - 2 * MARGIN - SERIAL_WIDTH - 0.02)
    x0 = MARGIN if left else 1 - MARGIN - width
    return Box(x0=x0, y0=0.025, x1=x0 + width, y1=0.025 + height)
