"""Accuracy benchmark: each OCR engine through the whole pipeline on the same generated cards.

The cards alternate between the two built-in card types and mix printed and
handwritten values with five capture conditions: a plain scan, yellow or pink
carbon-copy paper, a red seal over a value, a phone photo, and an ink blot over
one character of a number or date (which often turns it into another valid
value). They are written
once as JPEG files, and every engine reads the same files through
``ocr.ingest.iter_pages`` and ``ocr.pipeline.process_page``.

The rapidocr pass gives two results from the same reads: "rapidocr", its
engine score against the card type's threshold, and "calibrated", the
product's decision with the template's confidence calibration (which may ask
Tesseract to read a zone again). "tesseract" is Tesseract alone. With
``layout_seed`` the cards are drawn on an alternative layout that the product
learns from one blank card first, so the calibration meets a layout it was not
fitted on.

Per result the report gives accuracy, automation and error among auto-accepted
fields per field, writing style and condition. A threshold sweep then shows
what one global confidence threshold would trade, as a plot of error against
automation and as the lowest thresholds that keep the error within 0.5% and 0.2%.
"""

from __future__ import annotations

import logging
import math
import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from ocr.bench import Tally, command_line, machine_description, write_report
from ocr.confidence import MACHINE_CODES
from ocr.engines import ENGINE_NAMES, get_engine
from ocr.ingest import Page, iter_pages
from ocr.pipeline import process_page
from models.template import Template
from ocr.registry import Registry, load_registry

__all__ = [
    "CONDITIONS",
    "AccuracyResult",
    "CardPlan",
    "FieldRead",
    "SweepPoint",
    "bench_accuracy_command",
    "format_accuracy_report",
    "held_out_note",
    "lowest_threshold",
    "plan_cards",
    "plot_sweep",
    "run_accuracy_bench",
    "sweep",
    "write_cards",
]

log = logging.getLogger(__name__)

CARD_TYPES = ("foreign_guest", "domestic_guest")
STYLES = ("printed", "handwriting")
# Capture conditions, one per card. Every scan also gets the generator's random scanner effects.
CONDITIONS = ("plain scan", "yellow paper", "pink paper", "stamp", "phone photo", "ink blot")
# Fields whose characters an "ink blot" card may have blotted: numbers and dates, where a changed
# character often leaves a value that still passes every rule.
BLOT_KEYS = (
    "card_serial", "document_number", "visa_number", "id_number", "date_of_birth", "valid_until", "entry_date",
    "arrival_date", "departure_date", "room_number",
)  # fmt: skip
# 0.00, 0.01, ..., 1.00
THRESHOLDS = tuple(round(step / 100, 2) for step in range(101))
# Error rates among auto-accepted fields for which the report gives the lowest threshold.
ERROR_TARGETS = (0.005, 0.002)
# The product's goals.
GOAL_MAX_AUTO_ERROR = 0.002
GOAL_MIN_AUTOMATION = {"printed": 0.90, "handwriting": 0.70}
# Thresholds listed in the sweep table of the report, besides the target rows.
REPORT_THRESHOLDS = (0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
# Name of the result of the product's calibrated decision on the rapidocr reads.
CALIBRATED = "calibrated"
JPEG_QUALITY = 90


@dataclass(frozen=True)
class CardPlan:
    """Generation settings of one benchmark card."""

    index: int
    seed: int
    card_type: str
    style: str
    condition: str

    @property
    def file_name(self) -> str:
        return f"card_{self.index:05d}.jpg"

    def generator_options(self) -> dict:
        """Return the keyword arguments of ``generate_card`` for this card's condition."""
        options: dict = {"style": self.style, "paper": "white"}
        if self.condition == "yellow paper":
            options["paper"] = "yellow"
        elif self.condition == "pink paper":
            options["paper"] = "pink"
        elif self.condition == "stamp":
            options["stamp"] = True
        elif self.condition == "phone photo":
            options["capture"] = "photo"
        return options


@dataclass(frozen=True)
class FieldRead:
    """One field of one card as an engine read it, compared with the truth."""

    key: str
    style: str
    condition: str
    confidence: float
    correct: bool
    # A validation rule failed, the card as a whole was flagged, or the field is missing.
    rule_failed: bool
    # Auto-accepted by the product as it is: no review needed and no card-level problem.
    auto: bool


@dataclass(frozen=True)
class SweepPoint:
    """Automation and error among auto-accepted fields at one global confidence threshold."""

    threshold: float
    fields: int
    auto: int
    auto_wrong: int

    @property
    def automation(self) -> float:
        return self.auto / self.fields if self.fields else 0.0

    @property
    def auto_error(self) -> float | None:
        """Share of auto-accepted fields that are wrong, or None when none is auto-accepted."""
        return self.auto_wrong / self.auto if self.auto else None


@dataclass
class AccuracyResult:
    """Tallies and field reads of one engine over the benchmark cards."""

    engine: str
    cards: int = 0
    seconds: float = 0.0
    card_type_right: int = 0
    overall: Tally = field(default_factory=Tally)
    by_style: dict[str, Tally] = field(default_factory=dict)
    by_condition: dict[str, Tally] = field(default_factory=dict)
    by_field: dict[str, Tally] = field(default_factory=dict)
    reads: list[FieldRead] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # Zones the second engine read, and its seconds, in the calibrated decision.
    second_reads: int = 0
    second_seconds: float = 0.0

    def add(self, read: FieldRead) -> None:
        self.reads.append(read)
        self.overall.add(read.correct, read.auto)
        self.by_style.setdefault(read.style, Tally()).add(read.correct, read.auto)
        self.by_condition.setdefault(read.condition, Tally()).add(read.correct, read.auto)
        self.by_field.setdefault(read.key, Tally()).add(read.correct, read.auto)


# --------------------------------------------------------------------------
# Card plan
# --------------------------------------------------------------------------


def _balanced(choices: tuple[str, ...], count: int, rng: random.Random) -> list[str]:
    """Return ``count`` choices, each used equally often (give or take one), in a seeded order."""
    values = [choices[index % len(choices)] for index in range(count)]
    rng.shuffle(values)
    return values


def plan_cards(cards: int, seed: int, conditions: tuple[str, ...] = CONDITIONS) -> list[CardPlan]:
    """Plan ``cards`` cards: card types alternate, styles and ``conditions`` are balanced and shuffled by ``seed``."""
    if cards < 1:
        raise ValueError(f"cards must be at least 1, got {cards}")
    unknown = [name for name in conditions if name not in CONDITIONS]
    if not conditions or unknown:
        raise ValueError(f"conditions must be among {', '.join(CONDITIONS)}, got {list(conditions)}")
    rng = random.Random(f"accuracy-plan:{seed}")
    styles = _balanced(STYLES, cards, rng)
    conditions = _balanced(conditions, cards, rng)
    return [
        CardPlan(
            index=index,
            seed=seed + index,
            card_type=CARD_TYPES[index % len(CARD_TYPES)],
            style=styles[index],
            condition=conditions[index],
        )
        for index in range(cards)
    ]


def write_cards(plans: list[CardPlan], folder: Path, dpi: int, layout_seed: int | None = None) -> dict[str, dict]:
    """Generate the planned cards as JPEG files in ``folder`` and return their truth by file name.

    ``layout_seed`` draws them on ``sample_cards.layouts.alternative_template`` of that seed.
    """
    from sample_cards import generate_card
    from sample_cards.layouts import alternative_template

    truths: dict[str, dict] = {}
    for plan in plans:
        image, truth = generate_card(
            plan.seed, plan.card_type, dpi=dpi, layout_seed=layout_seed, **plan.generator_options()
        )
        if plan.condition == "ink blot":
            if layout_seed is None:
                template = next(t for t in load_registry().templates.values() if t.name == truth["template"])
            else:
                template = alternative_template(plan.card_type, layout_seed)
            image = blot_character(image, truth, template, random.Random(f"blot:{plan.seed}"))
        image.save(folder / plan.file_name, quality=JPEG_QUALITY)
        truths[plan.file_name] = truth
    return truths


def _card_point(corners: list[list[float]], fx: float, fy: float) -> np.ndarray:
    """Return the image point at relative card position (fx, fy), from the card's four corners."""
    top_left, top_right, bottom_right, bottom_left = (np.array(point, dtype=float) for point in corners)
    top = top_left + (top_right - top_left) * fx
    bottom = bottom_left + (bottom_right - bottom_left) * fx
    return top + (bottom - top) * fy


def blot_character(image, truth: dict, template: Template, rng: random.Random):
    """Return the card image with an ink blot over the lower part of one character of a number or date.

    The field is drawn from :data:`BLOT_KEYS` among those with a value, and the
    character from the dark connected components in its zone. ``truth`` gets
    ``"blot_field"``. The image is returned unchanged when no such field has
    separate characters.
    """
    import cv2
    from PIL import Image

    keys = [key for key in BLOT_KEYS if truth["fields"].get(key) and any(f.key == key for f in template.fields)]
    rng.shuffle(keys)
    pixels = np.array(image.convert("RGB"))
    for key in keys:
        box = template.field(key).value_box
        corners = [_card_point(truth["card_corners_px"], fx, fy) for fx in (box.x0, box.x1) for fy in (box.y0, box.y1)]
        x0, y0 = np.floor(np.min(corners, axis=0)).astype(int)
        x1, y1 = np.ceil(np.max(corners, axis=0)).astype(int)
        x0, y0 = max(x0, 0), max(y0, 0)
        zone = cv2.cvtColor(pixels[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
        if zone.size == 0:
            continue
        ink = (zone < min(128, int(np.percentile(zone, 50)) - 40)).astype(np.uint8)
        count, _labels, stats, _centres = cv2.connectedComponentsWithStats(ink)
        glyphs = [tuple(stats[i][:4]) for i in range(1, count) if stats[i][4] > 15 and stats[i][3] > 0.2 * (y1 - y0)]
        if len(glyphs) < 2:
            continue
        left, top, width, height = glyphs[rng.randrange(len(glyphs))]
        centre = (int(x0 + left + width // 2), int(y0 + top + height * 0.7))
        cv2.ellipse(pixels, centre, (width // 2 + 2, max(2, int(height * 0.35))), 0, 0, 360, (40, 40, 40), -1)
        truth["blot_field"] = key
        return Image.fromarray(pixels)
    return image


# --------------------------------------------------------------------------
# Running the engines
# --------------------------------------------------------------------------


def has_rule_problem(reason_codes: list[str]) -> bool:
    """Return True when a code other than the machine's own doubts (:data:`MACHINE_CODES`) is present."""
    return any(code not in MACHINE_CODES for code in reason_codes)


def _field_read(plan: CardPlan, key: str, expected: str, got, card_flagged: bool) -> FieldRead:
    if got is None:
        return FieldRead(key, plan.style, plan.condition, 0.0, False, rule_failed=True, auto=False)
    return FieldRead(
        key=key,
        style=plan.style,
        condition=plan.condition,
        confidence=got.confidence,
        correct=got.value == expected,
        rule_failed=card_flagged or has_rule_problem(got.reason_codes),
        auto=not got.needs_review and not card_flagged,
    )


def _run_engine(
    engine_name: str, folder: Path, plans: dict[str, CardPlan], truths: dict[str, dict], dpi: int, registry: Registry
) -> list[AccuracyResult]:
    """Run the pipeline with one engine; rapidocr gives its engine-score result and the calibrated one."""
    engine = get_engine(engine_name)
    # Load the models before timing, so that the time is card time.
    engine.read_zone(np.full((48, 160, 3), 255, dtype=np.uint8))

    result = AccuracyResult(engine=engine_name)
    calibrated = AccuracyResult(engine=CALIBRATED)
    with_calibration = engine_name == "rapidocr" and bool(registry.calibrations)
    started = time.perf_counter()
    for item in iter_pages([folder], pdf_dpi=dpi):
        if not isinstance(item, Page):
            message = item.message("en")
            log.warning("benchmark card unreadable: %s", message)
            result.failures.append(message)
            calibrated.failures.append(message)
            continue
        name = Path(item.source).name
        plan, truth = plans[name], truths[name]
        page_result = process_page(item, engine=engine, registry=registry)
        extraction = page_result.extraction
        decision = page_result.decision
        card_flagged = bool(extraction.card_reasons)
        right_type = int(extraction.card_type == truth["card_type"])
        engine_only = extraction.fields
        if decision is not None and decision.engine_only is not None:
            engine_only = decision.engine_only
        result.cards += 1
        result.card_type_right += right_type
        for key, expected in truth["fields"].items():
            result.add(_field_read(plan, key, expected, engine_only.get(key), card_flagged))
        if with_calibration:
            calibrated.cards += 1
            calibrated.card_type_right += right_type
            if decision is not None:
                calibrated.second_reads += decision.second_reads
                calibrated.second_seconds += decision.second_seconds
            for key, expected in truth["fields"].items():
                calibrated.add(_field_read(plan, key, expected, extraction.fields.get(key), card_flagged))
        log.info("benchmark card done engine=%s card=%s cards=%d", engine_name, name, result.cards)
    result.seconds = time.perf_counter() - started
    # The calibrated decision shares this pass, so its own extra time is the second engine's, counted separately.
    calibrated.seconds = result.seconds
    return [result, calibrated] if with_calibration else [result]


def _learned_registry(folder: Path, layout_seed: int, dpi: int) -> Registry:
    """Learn a template of each card type from a blank card of the alternative layout; return the registry with them."""
    from ocr.template_learn import learn_template, write_template
    from sample_cards import generate_card

    for card_type in CARD_TYPES:
        image, _truth = generate_card(1, card_type, dpi=dpi, layout_seed=layout_seed, blank=True, degrade=False)
        blank = folder / f"blank_{card_type}.png"
        image.save(blank)
        learned = learn_template(blank, card_type, f"{card_type}_learned_{layout_seed}", pdf_dpi=dpi)
        if learned.template is None:
            raise RuntimeError(f"no template could be learned from the blank {card_type} card of layout {layout_seed}")
        write_template(learned.template, folder, overwrite=True)
        blank.unlink()
    return load_registry((str(folder),))


def run_accuracy_bench(
    cards: int,
    seed: int = 3000,
    engines: tuple[str, ...] = ("rapidocr", "tesseract"),
    dpi: int = 200,
    layout_seed: int | None = None,
) -> tuple[list[CardPlan], list[AccuracyResult]]:
    """Generate the planned cards once and run the whole pipeline over them with each engine.

    With ``layout_seed`` the cards are drawn on that alternative layout, and the
    registry contains templates learned from one blank card of it.
    """
    plans = plan_cards(cards, seed)
    with tempfile.TemporaryDirectory(prefix="huka-accuracy-") as tmp:
        folder = Path(tmp) / "cards"
        folder.mkdir()
        registry = load_registry()
        if layout_seed is not None:
            learned = Path(tmp) / "templates"
            learned.mkdir()
            registry = _learned_registry(learned, layout_seed, dpi)
        truths = write_cards(plans, folder, dpi, layout_seed)
        by_name = {plan.file_name: plan for plan in plans}
        results = [found for name in engines for found in _run_engine(name, folder, by_name, truths, dpi, registry)]
    return plans, results


# --------------------------------------------------------------------------
# Threshold sweep
# --------------------------------------------------------------------------


def sweep(reads: list[FieldRead], thresholds: tuple[float, ...] = THRESHOLDS, style: str | None = None) -> list[SweepPoint]:
    """Return automation and error at each threshold, of the reads of ``style`` (all when None).

    A field is auto-accepted when its confidence is at least the threshold and
    no rule failed, which is how ``ocr.confidence.decide`` uses a field's own threshold.
    """
    chosen = [read for read in reads if style is None or read.style == style]
    points = []
    for threshold in thresholds:
        accepted = [read for read in chosen if read.confidence >= threshold and not read.rule_failed]
        wrong = sum(1 for read in accepted if not read.correct)
        points.append(SweepPoint(threshold=threshold, fields=len(chosen), auto=len(accepted), auto_wrong=wrong))
    return points


def lowest_threshold(points: list[SweepPoint], max_error: float) -> SweepPoint | None:
    """Return the point of lowest threshold whose error among auto-accepted fields is at most ``max_error``.

    Points with no auto-accepted field do not count, and None means no threshold meets ``max_error``.
    """
    for point in sorted(points, key=lambda point: point.threshold):
        if point.auto_error is not None and point.auto_error <= max_error:
            return point
    return None


def wilson_upper(wrong: int, total: int, z: float = 1.96) -> float | None:
    """Return the upper end of the Wilson score interval (95% by default) of the rate ``wrong / total``."""
    if total == 0:
        return None
    rate = wrong / total
    centre = rate + z * z / (2 * total)
    spread = z * math.sqrt(rate * (1 - rate) / total + z * z / (4 * total * total))
    return (centre + spread) / (1 + z * z / total)


def operating_point(reads: list[FieldRead]) -> SweepPoint:
    """Return automation and error of the product's own per-field thresholds."""
    auto = [read for read in reads if read.auto]
    return SweepPoint(threshold=math.nan, fields=len(reads), auto=len(auto), auto_wrong=sum(1 for read in auto if not read.correct))


# --------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------


def plot_sweep(results: list[AccuracyResult], path: Path, title: str = "") -> Path:
    """Draw error among auto-accepted fields against automation, one line per engine, and save a PNG.

    The left panel shows the whole curve and the right one the 0–2% error band
    around the goals. A ring marks each engine's operating point at the product's thresholds.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.8), dpi=110)
    FigureCanvasAgg(figure)
    full, zoom = figure.subplots(1, 2)
    for index, result in enumerate(results):
        colour = f"C{index}"
        points = [point for point in sweep(result.reads) if point.auto_error is not None]
        x = [100 * point.automation for point in points]
        y = [100 * point.auto_error for point in points]
        current = operating_point(result.reads)
        for axes in (full, zoom):
            axes.plot(x, y, color=colour, marker=".", markersize=3, linewidth=1.2, label=f"{result.engine}, threshold 0–1")
            if current.auto_error is not None:
                axes.plot(
                    100 * current.automation, 100 * current.auto_error, "o", markersize=9, markerfacecolor="none",
                    markeredgecolor=colour, markeredgewidth=2, label=f"{result.engine}, product thresholds",
                )
    for axes in (full, zoom):
        for target, style in zip(ERROR_TARGETS, ("--", ":")):
            axes.axhline(100 * target, color="grey", linestyle=style, linewidth=1, label=f"error {target:.1%}")
        axes.set_xlabel("automation (% of fields auto-accepted)")
        axes.set_ylabel("error among auto-accepted fields (%)")
        axes.set_xlim(0, 101)
        axes.grid(True, alpha=0.3)
    # A little room below 0 keeps the error-free part of a curve visible above the axis.
    top = full.get_ylim()[1]
    full.set_ylim(-0.02 * top, top)
    zoom.set_ylim(-0.04, 2)
    full.set_title("whole sweep")
    zoom.set_title("error 0–2%")
    full.legend(fontsize=8, loc="upper left")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def _tally_row(name: str, tally: Tally) -> str:
    return (
        f"| {name} | {tally.fields} | {tally.accuracy:.1%} | {tally.automation:.1%} | "
        f"{tally.auto_error:.2%} ({tally.auto_wrong}/{tally.auto}) |"
    )


def _error_text(point: SweepPoint) -> str:
    if point.auto_error is None:
        return "- (0 auto-accepted)"
    upper = wilson_upper(point.auto_wrong, point.auto)
    return f"{point.auto_error:.2%} ({point.auto_wrong}/{point.auto}), 95% upper bound {upper:.2%}"


def _sweep_row(label: str, result: AccuracyResult, threshold: float | None) -> str:
    """Return one row of the sweep table: overall and per-style automation and the error at ``threshold``.

    ``threshold`` None is the operating point at the product's own thresholds.
    """
    if threshold is None:
        overall = operating_point(result.reads)
        by_style = {style: operating_point([r for r in result.reads if r.style == style]) for style in STYLES}
    else:
        overall = sweep(result.reads, (threshold,))[0]
        by_style = {style: sweep(result.reads, (threshold,), style=style)[0] for style in STYLES}
    styles = " | ".join(f"{by_style[style].automation:.1%}" for style in STYLES)
    return f"| {label} | {overall.automation:.1%} | {styles} | {_error_text(overall)} |"


def _goal_lines(result: AccuracyResult) -> list[str]:
    """Return one line per product goal at the product's thresholds, saying whether this run met it."""
    current = operating_point(result.reads)
    lines = []
    if current.auto_error is None:
        lines.append(f"- Error among auto-accepted ≤ {GOAL_MAX_AUTO_ERROR:.1%}: not measurable, no field was auto-accepted")
    else:
        counts = f"{current.auto_wrong}/{current.auto} = {current.auto_error:.2%}"
        upper = wilson_upper(current.auto_wrong, current.auto)
        if current.auto_error > GOAL_MAX_AUTO_ERROR:
            verdict = f"not met ({counts})"
        elif upper is not None and upper <= GOAL_MAX_AUTO_ERROR:
            verdict = f"met ({counts}, 95% upper bound {upper:.2%})"
        else:
            verdict = (
                f"met on this sample ({counts}), but the 95% upper bound is {upper:.2%}, "
                "so the sample is too small to show the goal"
            )
        lines.append(f"- Error among auto-accepted ≤ {GOAL_MAX_AUTO_ERROR:.1%}: {verdict}")
    for style, goal in GOAL_MIN_AUTOMATION.items():
        point = operating_point([read for read in result.reads if read.style == style])
        met = "met" if point.fields and point.automation >= goal else "not met"
        lines.append(f"- Automation ≥ {goal:.0%} on {style}: {met} ({point.auto}/{point.fields} = {point.automation:.1%})")
    return lines


def _engine_section(result: AccuracyResult) -> list[str]:
    lines = [
        f"### {result.engine}",
        "",
        f"- Cards read: {result.cards}; card type right: {result.card_type_right}/{result.cards}; "
        f"{result.seconds:.1f} s in all ({result.seconds / result.cards if result.cards else 0:.1f} s per card, one process)",
    ]
    if result.engine == CALIBRATED:
        per_card = result.second_seconds / result.cards if result.cards else 0.0
        lines[-1] = (
            f"- Cards read: {result.cards}; card type right: {result.card_type_right}/{result.cards}; the rapidocr pass "
            f"above plus Tesseract on {result.second_reads} zones ({result.second_reads / max(result.cards, 1):.2f} per card), "
            f"{result.second_seconds:.1f} s in all: {per_card:.2f} s per card added by the calibrated decision"
        )
    if result.failures:
        lines += [f"- Unreadable card: {failure}" for failure in result.failures]
    lines += [
        "",
        "| group | fields | accuracy | automation | error among auto-accepted |",
        "|---|---|---|---|---|",
        _tally_row("all", result.overall),
    ]
    lines += [_tally_row(f"style: {style}", result.by_style[style]) for style in STYLES if style in result.by_style]
    lines += [_tally_row(f"condition: {name}", result.by_condition[name]) for name in CONDITIONS if name in result.by_condition]
    lines += [_tally_row(f"field: {key}", tally) for key, tally in sorted(result.by_field.items())]

    points = sweep(result.reads)
    lines += [
        "",
        f"Threshold sweep, {result.engine}:",
        "",
        "| threshold | automation | printed | handwriting | error among auto-accepted |",
        "|---|---|---|---|---|",
        _sweep_row("product thresholds (as shipped)", result, None),
    ]
    for target in ERROR_TARGETS:
        best = lowest_threshold(points, target)
        if best is None:
            lines.append(f"| lowest for error ≤ {target:.1%}: none | - | - | - | no threshold keeps the error within {target:.1%} |")
        else:
            lines.append(_sweep_row(f"lowest for error ≤ {target:.1%}: {best.threshold:.2f}", result, best.threshold))
    lines += [_sweep_row(f"{threshold:.3f}", result, threshold) for threshold in REPORT_THRESHOLDS]
    lines += ["", f"Goals at the product thresholds, {result.engine}:", ""] + _goal_lines(result)
    return lines


def _plan_summary(plans: list[CardPlan]) -> str:
    def count(values: list[str], names: tuple[str, ...]) -> str:
        return ", ".join(f"{values.count(name)} {name}" for name in names)

    return (
        f"{count([p.card_type for p in plans], CARD_TYPES)}; {count([p.style for p in plans], STYLES)}; "
        f"{count([p.condition for p in plans], CONDITIONS)}"
    )


def held_out_note(plans: list[CardPlan], registry: Registry | None = None, layout_seed: int | None = None) -> str:
    """Return a sentence saying on which seeds the calibration was fitted and whether these cards overlap them."""
    registry = registry or load_registry()
    seeds = {plan.seed for plan in plans}
    fitted = sorted({c.fitted_with.get("seeds", "") for c in registry.calibrations.values()} - {""})
    if not fitted:
        return "No calibration file carries its fitting seeds."
    overlap = False
    for text in fitted:
        for part in text.split(","):
            low, _dash, high = part.strip().partition("-")
            if low.isdigit() and any(int(low) <= seed <= int(high or low) for seed in seeds):
                overlap = True
    verdict = "overlap them, so these figures are not held out" if overlap else "are held out: none was used for fitting"
    layout = (
        f" The cards are drawn on alternative layout {layout_seed}, which the product learned from one blank card "
        "and whose calibration is the built-in template's of the same card type (a layout not used for fitting)."
        if layout_seed is not None
        else ""
    )
    return f"Calibration fitted on generated cards of seeds {'; '.join(fitted)}; these cards' seeds {verdict}.{layout}"


def format_accuracy_report(
    plans: list[CardPlan],
    results: list[AccuracyResult],
    command: str,
    plot_link: str | None = None,
    dpi: int = 200,
    held_out: str = "",
) -> str:
    """Return the Markdown section for one accuracy benchmark run."""
    engines = ", ".join(result.engine for result in results)
    lines = [
        f"## Accuracy and threshold sweep, {engines}, {len(plans)} cards ({datetime.now().strftime('%Y-%m-%d %H:%M')})",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine_description()}",
        f"- Cards: `sample_cards.generate_card` at {dpi} dpi, seeds {plans[0].seed}–{plans[-1].seed}, "
        f"written once as JPEG (quality {JPEG_QUALITY}) and read by every engine through `iter_pages` and "
        f"`process_page`. Mix: {_plan_summary(plans)}. Scans carry the generator's random scanner effects; "
        "\"stamp\" is a red seal partly over one value; \"phone photo\" is its `capture=\"photo\"` mode; "
        "\"ink blot\" covers the lower part of one character of a number or date with a dark blot.",
        "- A field is right when its clean value equals the truth. Auto-accepted means no review needed and no "
        "card-level problem. The sweep applies one threshold t to every field: auto-accepted when confidence ≥ t "
        "and no rule failed (a reason code other than low_confidence, unreadable or no_zone, or a card-level "
        "problem). At t = 0 unreadable and missing-zone fields, whose confidence is 0, count as accepted.",
        "- The 95% upper bound is the Wilson score interval of the error among auto-accepted fields. "
        "With 0 errors among n fields it is about 3.84/n (the rule of three gives 3/n), so showing 0.2% "
        "takes about 1,900 error-free auto-accepted fields.",
        "- \"rapidocr\" is PP-OCR through rapidocr with its own score against the card type's threshold (0.90). "
        "\"calibrated\" is the product's decision on the same reads: the calibrated probability against each "
        "field's threshold from the template's calibration file, with Tesseract reading a zone again where that "
        "can change the decision. \"tesseract\" is Tesseract alone with its own score. In the sweep, the "
        "calibrated result's confidence is its final probability, so the sweep does not re-run Tesseract.",
    ]
    if held_out:
        lines.append(f"- {held_out}")
    if plot_link:
        lines += ["", f"![Error among auto-accepted fields against automation]({plot_link})"]
    for result in results:
        lines += [""] + _engine_section(result)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Command
# --------------------------------------------------------------------------


def _parse_engines(value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in ENGINE_NAMES]
    if not names or unknown:
        raise typer.BadParameter(
            f"invalid engine list {value!r}; give comma-separated names from {', '.join(ENGINE_NAMES)}"
        )
    return names


def bench_accuracy_command(
    cards: Annotated[int, typer.Option("--cards", min=1, help="生成的卡片数 / number of generated cards")] = 24,
    seed: Annotated[int, typer.Option("--seed", help="随机种子 / generator seed")] = 3000,
    engines: Annotated[
        str, typer.Option("--engines", help="逗号分隔的识别引擎 / comma-separated OCR engines, e.g. rapidocr,tesseract")
    ] = "rapidocr,tesseract",
    report: Annotated[
        Optional[Path], typer.Option("--report", help="结果追加到此文件 / Markdown file to append to")
    ] = Path("docs/benchmarks.md"),
    plot: Annotated[
        Optional[Path],
        typer.Option("--plot", help="阈值曲线 PNG（需要 matplotlib） / PNG of the threshold curve (needs matplotlib)"),
    ] = Path("docs/accuracy-threshold.png"),
    layout_seed: Annotated[
        Optional[int],
        typer.Option(
            "--layout-seed",
            help="在此种子的另一种版式上生成卡片，先从一张空白卡学出模板 / draw the cards on this alternative layout, learned from one blank card first",
        ),
    ] = None,
) -> None:
    """在生成的卡片上比较各识别引擎的准确率、自动化率与阈值。 / Compare accuracy, automation and thresholds of OCR engines on generated cards."""
    names = _parse_engines(engines)
    plans, results = run_accuracy_bench(cards, seed, names, layout_seed=layout_seed)

    plot_link = None
    if plot is not None:
        try:
            layout = f", layout {layout_seed}" if layout_seed is not None else ""
            plot_sweep(results, plot, title=f"{len(plans)} generated cards, seeds {seed}–{seed + cards - 1}{layout}")
        except ImportError:
            log.warning("matplotlib not found, so no plot is drawn; install it with pip install -e '.[bench]'")
        else:
            base = report.parent if report is not None else Path.cwd()
            plot_link = Path(os.path.relpath(plot, base)).as_posix()
            typer.echo(f"阈值曲线已保存到 {plot} / threshold plot saved to {plot}")

    held_out = held_out_note(plans, layout_seed=layout_seed)
    section = format_accuracy_report(plans, results, command_line(), plot_link, held_out=held_out)
    typer.echo(section)
    if report is not None:
        path = write_report(section, report)
        typer.echo(f"结果已追加到 {path} / results appended to {path}")
