"""Seeded generator of synthetic registration-card scans with their truth.

``generate_card`` returns one image and its truth dict; ``generate_stack``
writes many as ``<stem>.jpg`` + ``<stem>.json``; ``make_samples`` rewrites
the committed examples in ``sample_cards/samples``.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any, Iterable

from PIL import Image
from tqdm import tqdm

from models.card_type import CardTypeSpec
from models.template import Template
from ocr.registry import Registry, load_registry
from sample_cards.degrade import QUARTER_TURN_WEIGHTS, QUARTER_TURNS, simulate_scan
from sample_cards.fonts import load_fonts
from sample_cards.kind_values import make_values_by_kind
from sample_cards.layouts import alternative_template
from sample_cards.photo import simulate_photo
from sample_cards.render import RenderOptions, card_size_px, render_card
from sample_cards.stamp import place_stamp, stamp_card
from sample_cards.values import SUPPORTED_CARD_TYPES, CardValues, make_values

__all__ = ["CAPTURES", "SAMPLES_DIR", "STYLES", "PAPERS", "INKS", "generate_card", "generate_stack", "make_samples"]

log = logging.getLogger(__name__)

STYLES = ("printed", "handwriting")
PAPERS = ("white", "yellow", "pink")
INKS = ("blue", "black")
IMAGE_FORMATS = ("jpg", "png")
# "scan": a flatbed scan; "photo": a phone photo of the card lying on a desk.
CAPTURES = ("scan", "photo")

SAMPLES_DIR = Path(__file__).parent / "samples"

# The committed samples: (seed, card type, style, paper, quarter turn).
SAMPLE_PLAN = (
    (101, "foreign_guest", "printed", "white", 0),
    (102, "foreign_guest", "handwriting", "white", 0),
    (103, "domestic_guest", "printed", "white", 0),
    (104, "domestic_guest", "handwriting", "yellow", 0),
    (105, "foreign_guest", "handwriting", "yellow", 0),
    (106, "foreign_guest", "printed", "pink", 0),
    (107, "domestic_guest", "handwriting", "white", 180),
    (108, "foreign_guest", "handwriting", "white", 90),
    (109, "domestic_guest", "printed", "pink", 0),
    (110, "foreign_guest", "printed", "yellow", 0),
    (111, "domestic_guest", "handwriting", "pink", 0),
    (112, "foreign_guest", "handwriting", "white", 0),
)
SAMPLE_DPI = 150
# JPEG quality starts here and drops in steps of 5 until the file fits SAMPLE_MAX_BYTES.
SAMPLE_JPEG_QUALITY = 85
SAMPLE_MIN_JPEG_QUALITY = 50
SAMPLE_MAX_BYTES = 190_000
# Sample 12 carries one injected invalid value, to show "invalid_fields".
SAMPLE_INVALID_SEEDS = (112,)


def generate_card(
    seed: int,
    card_type: str = "foreign_guest",
    style: str | None = None,
    *,
    dpi: int = 200,
    degrade: bool = True,
    max_skew_deg: float = 4.0,
    quarter_turns: bool = False,
    invalid_rate: float = 0.0,
    template: Template | None = None,
    paper: str | None = None,
    ink: str | None = None,
    quarter_turn: int | None = None,
    capture: str = "scan",
    photo: bool = False,
    stamp: bool = False,
    blank: bool = False,
    border_shadow: bool = False,
    registry: Registry | None = None,
    card_type_spec: CardTypeSpec | None = None,
    layout_seed: int | None = None,
) -> tuple[Image.Image, dict[str, Any]]:
    """Render one synthetic card scan or photo and return (RGB image, truth dict).

    The same arguments give the same truth and the same pixels on one machine.
    ``style``, ``paper`` and ``ink`` are drawn from the seed when None. With
    ``degrade`` off the card is flat, white unless ``paper`` sets another colour,
    and not skewed. ``quarter_turns`` turns the scan by a random multiple of
    90 degrees, and ``quarter_turn`` (0, 90, 180 or 270) sets the turn itself.

    ``capture="photo"`` (or ``photo=True``) makes a phone photo of the card on
    a desk, with perspective, rotation up to ``max_skew_deg`` and uneven light.
    ``border_shadow`` adds a dark scanner-lid border and a shadow band along one
    card edge to a scan. ``stamp`` puts a red round seal partly over one value
    zone. ``blank`` leaves every value empty except the pre-printed serial
    number. These options apply whether ``degrade`` is on or off.

    The card type comes from ``card_type_spec`` when given, else from
    ``registry`` (default: the built-in card types and templates). ``template``
    defaults to the first template of the card type by name, and to
    ``alternative_template(card_type, 0)`` for a card type without one;
    ``layout_seed`` picks ``alternative_template(card_type, layout_seed)``. Card
    types other than the built-in two get values by field kind, and
    ``invalid_rate`` must then be 0.
    """
    if photo:
        if capture not in ("scan", "photo"):
            raise ValueError(f"capture must be one of {', '.join(CAPTURES)}, got {capture!r}")
        capture = "photo"
    _check_arguments(seed, style, dpi, invalid_rate, paper, ink, quarter_turn, max_skew_deg, capture)
    spec = _card_type(card_type, registry, card_type_spec)
    built_in_values = card_type in SUPPORTED_CARD_TYPES and card_type_spec is None
    if invalid_rate > 0 and not built_in_values:
        raise ValueError(
            f"invalid_rate must be 0 for card type {card_type!r}: invalid values are injected "
            f"only on {', '.join(SUPPORTED_CARD_TYPES)}"
        )
    if layout_seed is not None:
        if template is not None:
            raise ValueError("pass template or layout_seed, not both")
        template = alternative_template(card_type, layout_seed, card_type_spec=spec)
    template = _template(card_type, template, registry, spec)

    # Separate streams, so changing how the card looks never changes its values.
    look_rng = random.Random(f"look:{seed}")
    values_rng = random.Random(f"values:{seed}")
    render_rng = random.Random(f"render:{seed}")
    scan_rng = random.Random(f"scan:{seed}")

    style = style or look_rng.choices(STYLES, weights=(45, 55))[0]
    if paper is None:
        paper = look_rng.choices(PAPERS, weights=(60, 25, 15))[0] if degrade else "white"
    if ink is None:
        ink = "black" if style == "printed" else look_rng.choices(INKS, weights=(65, 35))[0]
    if quarter_turn is None:
        quarter_turn = look_rng.choices(QUARTER_TURNS, weights=QUARTER_TURN_WEIGHTS)[0] if quarter_turns else 0

    if built_in_values:
        values = make_values(card_type, values_rng, style=style, invalid_rate=invalid_rate)
    else:
        values = make_values_by_kind(spec, values_rng, style=style)
    if blank:
        values = _blank_values(values)
    zoned_keys = {f.key for f in template.fields}
    fields = {key: values.fields[key] if key in zoned_keys else "" for key in spec.keys}
    written = {key: values.written[key] if key in zoned_keys else "" for key in spec.keys}

    options = RenderOptions(
        style=style, ink=ink, paper=paper, dpi=dpi, carbon_copy=paper != "white", paper_texture=degrade
    )
    fonts = load_fonts()
    card = render_card(template, written, fonts, options, render_rng)
    stamp_truth = None
    if stamp:
        stamp_rng = random.Random(f"stamp:{seed}")
        placement = place_stamp(template, written, card.size, dpi, stamp_rng)
        card = stamp_card(card, placement, fonts, stamp_rng)
        stamp_truth = placement.truth(card.size, template.field(placement.field).value_box)

    if capture == "photo":
        scan = simulate_photo(
            card, random.Random(f"photo:{seed}"), dpi=dpi, degrade=degrade, max_rotation_deg=max_skew_deg,
            quarter_turn=quarter_turn,
        )
    else:
        scan = simulate_scan(
            card, scan_rng, dpi=dpi, degrade=degrade, max_skew_deg=max_skew_deg, quarter_turn=quarter_turn,
            border_shadow_rng=random.Random(f"border:{seed}") if border_shadow else None,
        )

    degradations = list(scan.degradations)
    if options.carbon_copy:
        degradations.insert(0, "carbon_copy")
    if options.paper_texture:
        degradations.insert(0, "paper_texture")

    truth = {
        "card_type": card_type,
        "template": template.name,
        "rotation_deg": scan.rotation_deg,
        "skew_deg": scan.skew_deg,
        "quarter_turn_deg": scan.quarter_turn_deg,
        "style": style,
        "paper": paper,
        "ink": ink,
        "degradations": degradations,
        "degradation_params": scan.params,
        "seed": seed,
        "dpi": dpi,
        "card_size_px": list(card_size_px(template, dpi)),
        "image_size_px": list(scan.image.size),
        "card_corners_px": scan.card_corners,
        "fields": fields,
        "written": written,
        "invalid_fields": [key for key in values.invalid_fields if key in zoned_keys],
        "invalid_reasons": {key: rule for key, rule in values.invalid_reasons.items() if key in zoned_keys},
    }
    # Keys of the options below appear only when an option is on, so the truth of
    # a plain scan (and the committed samples) stays as it was before the options.
    if capture != "scan":
        truth["capture"] = capture
    if border_shadow:
        truth["border_shadow"] = True
    if blank:
        truth["blank"] = True
    if stamp_truth is not None:
        truth["stamp_field"] = stamp_truth["field"]
        truth["stamp"] = stamp_truth
    return scan.image, truth


def _card_type(card_type: str, registry: Registry | None, card_type_spec: CardTypeSpec | None) -> CardTypeSpec:
    """Return the spec of ``card_type``: ``card_type_spec`` when given, else the one in the registry."""
    if card_type_spec is not None:
        if card_type_spec.card_type != card_type:
            raise ValueError(
                f"card_type_spec is for card type {card_type_spec.card_type!r}, not {card_type!r}; "
                f"pass card_type={card_type_spec.card_type!r}"
            )
        return card_type_spec
    registry = registry or load_registry()
    if card_type not in registry.card_types:
        raise ValueError(f"unknown card type {card_type!r}; known: {', '.join(sorted(registry.card_types))}")
    return registry.card_type(card_type)


def _template(
    card_type: str, template: Template | None, registry: Registry | None, spec: CardTypeSpec
) -> Template:
    """Return ``template`` after checking its card type, or the default template of ``card_type``."""
    if template is not None:
        if template.card_type != card_type:
            raise ValueError(
                f"template {template.name!r} is for card type {template.card_type!r}, not {card_type!r}; "
                f"pass card_type={template.card_type!r}"
            )
        unknown = {f.key for f in template.fields} - set(spec.keys)
        if unknown:
            raise ValueError(f"template {template.name!r} has fields unknown to {card_type}: {', '.join(sorted(unknown))}")
        return template
    templates = sorted((registry or load_registry()).templates_for(card_type), key=lambda t: t.name)
    if templates:
        return templates[0]
    return alternative_template(card_type, 0, card_type_spec=spec)


def _blank_values(values: CardValues) -> CardValues:
    """Keep only the pre-printed serial number: a form before anyone writes on it."""
    serial = values.fields.get("card_serial", "")
    fields = {key: "" for key in values.fields}
    written = {key: "" for key in values.written}
    if serial:
        fields["card_serial"] = serial
        written["card_serial"] = values.written["card_serial"]
    return CardValues(fields, written)


def _check_arguments(
    seed: int,
    style: str | None,
    dpi: int,
    invalid_rate: float,
    paper: str | None,
    ink: str | None,
    quarter_turn: int | None,
    max_skew_deg: float,
    capture: str,
) -> None:
    """Raise ValueError naming the first invalid argument."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if style is not None and style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)} or None, got {style!r}")
    if not 50 <= dpi <= 600:
        raise ValueError(f"dpi must be between 50 and 600, got {dpi}")
    if not 0.0 <= invalid_rate <= 1.0:
        raise ValueError(f"invalid_rate must be between 0 and 1, got {invalid_rate}")
    if paper is not None and paper not in PAPERS:
        raise ValueError(f"paper must be one of {', '.join(PAPERS)} or None, got {paper!r}")
    if ink is not None and ink not in INKS:
        raise ValueError(f"ink must be one of {', '.join(INKS)} or None, got {ink!r}")
    if quarter_turn is not None and quarter_turn not in QUARTER_TURNS:
        raise ValueError(f"quarter_turn must be one of {QUARTER_TURNS} or None, got {quarter_turn!r}")
    if not 0.0 <= max_skew_deg <= 45.0:
        raise ValueError(f"max_skew_deg must be between 0 and 45 degrees, got {max_skew_deg}")
    if capture not in CAPTURES:
        raise ValueError(f"capture must be one of {', '.join(CAPTURES)}, got {capture!r}")


def _save(image: Image.Image, truth: dict[str, Any], out_dir: Path, stem: str, image_format: str, quality: int) -> Path:
    if image_format == "jpg":
        image_path = out_dir / f"{stem}.jpg"
        image.save(image_path, format="JPEG", quality=quality)
    else:
        image_path = out_dir / f"{stem}.png"
        image.save(image_path, format="PNG", optimize=True)
    text = json.dumps(truth, ensure_ascii=False, indent=2) + "\n"
    (out_dir / f"{stem}.json").write_text(text, encoding="utf-8")
    return image_path


def generate_stack(
    out_dir: str | Path,
    count: int,
    seed: int = 0,
    card_types: Iterable[str] = ("foreign_guest", "domestic_guest"),
    *,
    image_format: str = "jpg",
    jpeg_quality: int = 90,
    progress: bool = True,
    **kwargs: Any,
) -> list[Path]:
    """Write ``count`` cards to ``out_dir`` and return the image paths.

    Card ``i`` (from 0) uses seed ``seed + i`` and the card types in turn.
    Each image ``card_0001_foreign_printed.jpg`` gets its truth in
    ``card_0001_foreign_printed.json``. Other keyword arguments go to
    ``generate_card``.
    """
    card_types = tuple(card_types)
    if count < 0:
        raise ValueError(f"count must be zero or more, got {count}")
    if not card_types:
        raise ValueError("card_types must name at least one card type")
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(count)))

    log.info("generating %d cards into %s from seed %d", count, out, seed)
    paths = []
    for index in tqdm(range(count), desc="生成卡片 / cards", unit="card", disable=not progress):
        card_type = card_types[index % len(card_types)]
        image, truth = generate_card(seed + index, card_type, **kwargs)
        stem = f"card_{index + 1:0{width}d}_{card_type.removesuffix('_guest')}_{truth['style']}"
        paths.append(_save(image, truth, out, stem, image_format, jpeg_quality))
    log.info("wrote %d cards into %s", len(paths), out)
    return paths


def make_samples(out_dir: str | Path = SAMPLES_DIR) -> list[Path]:
    """Rewrite the 12 committed sample cards (150 dpi JPEG + truth JSON) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, (seed, card_type, style, paper, turn) in enumerate(SAMPLE_PLAN, start=1):
        image, truth = generate_card(
            seed,
            card_type,
            style,
            dpi=SAMPLE_DPI,
            paper=paper,
            quarter_turn=turn,
            invalid_rate=1.0 if seed in SAMPLE_INVALID_SEEDS else 0.0,
        )
        stem = f"card_{number:02d}_{card_type.removesuffix('_guest')}_{style}"
        quality = SAMPLE_JPEG_QUALITY
        path = _save(image, truth, out, stem, "jpg", quality)
        while path.stat().st_size > SAMPLE_MAX_BYTES and quality > SAMPLE_MIN_JPEG_QUALITY:
            quality -= 5
            path = _save(image, truth, out, stem, "jpg", quality)
        paths.append(path)
    return paths
