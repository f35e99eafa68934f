"""Benchmark of image preparation: skew, quarter turns and card outlines on generated cards.

Scans come from ``sample_cards.generate_card`` with quarter turns and skew up
to 45 degrees, some with a red seal or a dark lid border and edge shadow.
Phone photos come from its photo mode (perspective, desk background, uneven
light, a red seal). The skew of our
``prepare`` is compared with the PyPI packages ``deskew`` (``determine_skew``)
and ``jdeskew`` (``get_angle`` with ``angle_max=45``) on the same images, and
the result is appended to docs/benchmarks.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Callable, Optional

import cv2
import numpy as np
import typer

from ocr.prepare import find_card_quad, normalize_angle, prepare

__all__ = [
    "PrepBenchResult",
    "bench_prep_command",
    "format_prep_report",
    "quad_corner_error",
    "run_prep_bench",
]

log = logging.getLogger(__name__)

# A quarter turn counts as right when the reported rotation is within this of the truth.
ORIENTATION_TOLERANCE_DEG = 10.0


# --------------------------------------------------------------------------
# Synthetic phone photos
# --------------------------------------------------------------------------


def quad_corner_error(found: np.ndarray, truth: np.ndarray) -> float:
    """Return the largest corner distance in pixels, over the best cyclic match of the two corner lists.

    ``find_card_quad`` starts at the top-left of the card as it lies, and the
    truth at the top-left of the upright card, so they differ by the quarter turn.
    """
    found = np.asarray(found, dtype=np.float64).reshape(4, 2)
    truth = np.asarray(truth, dtype=np.float64).reshape(4, 2)
    return min(float(np.max(np.linalg.norm(np.roll(found, shift, axis=0) - truth, axis=1))) for shift in range(4))


# --------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------


@dataclass
class MethodTally:
    """Skew errors (degrees, modulo 90) and seconds per card of one method."""

    errors: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def add(self, error: float, seconds: float) -> None:
        self.errors.append(abs(error))
        self.seconds.append(seconds)


@dataclass
class PrepBenchResult:
    """Counts and errors of one preparation benchmark run."""

    scans: int = 0
    photos: int = 0
    dpi: int = 200
    skew: dict[str, MethodTally] = field(default_factory=dict)
    axis_right: int = 0  # the upright quarter turn is among prepare's two candidates
    prior_right: int = 0  # it is the first candidate
    pipeline_cards: int = 0
    pipeline_right: int = 0  # process_page's rotation_deg within ORIENTATION_TOLERANCE_DEG of the truth
    pipeline_errors: list[float] = field(default_factory=list)  # |rotation_deg - truth| of those right
    photo_quads: int = 0
    photo_corner_errors: list[float] = field(default_factory=list)  # px, of photos whose outline was found
    photo_card_widths: list[float] = field(default_factory=list)
    photo_axis_right: int = 0
    photo_prior_right: int = 0
    photo_pipeline_right: int = 0
    failures: list[str] = field(default_factory=list)


def _peer_methods() -> dict[str, Callable[[np.ndarray], float]]:
    """Return the peer skew estimators that are installed, as CCW skew in degrees.

    Both packages return the correction to apply (the negative of the skew).
    """
    methods: dict[str, Callable[[np.ndarray], float]] = {}
    try:
        from jdeskew.estimator import get_angle
    except ImportError:
        log.warning("jdeskew not found, so it is left out; install it with pip install -e '.[bench]'")
    else:
        methods["jdeskew 0.4 get_angle(angle_max=45)"] = lambda gray: -float(get_angle(gray, angle_max=45))
    try:
        from deskew import determine_skew
    except ImportError:
        log.warning("deskew not found, so it is left out; install it with pip install -e '.[bench]'")
    else:

        def deskew_angle(gray: np.ndarray) -> float:
            angle = determine_skew(gray)
            return 0.0 if angle is None else -float(angle)

        methods["deskew 1.6 determine_skew"] = deskew_angle
    return methods


def _upright_turn(truth_rotation: float, skew: float) -> int:
    """Return the quarter turn that makes a card upright, given its content rotation and measured skew."""
    return int(round(normalize_angle(skew - truth_rotation, 180.0) / 90.0)) % 4 * 90


def _run_pipeline(image: np.ndarray, name: str, engine, registry) -> float:
    from ocr.ingest import Page
    from ocr.pipeline import process_page

    page = Page(source=Path(name), page=1, page_count=1, file_sha256="0" * 64, image=image, dpi=None)
    return process_page(page, engine=engine, registry=registry).extraction.rotation_deg


def run_prep_bench(
    scans: int = 20,
    photos: int = 8,
    seed: int = 2000,
    dpi: int = 200,
    pipeline: bool = True,
    engine_name: str = "rapidocr",
) -> PrepBenchResult:
    """Measure skew, quarter turns and card outlines of ``prepare`` on generated scans and photos.

    With ``pipeline`` each image also goes through ``process_page``, whose
    ``rotation_deg`` includes the layout stage's choice between the two
    candidates, at about 3 s per card.
    """
    from sample_cards import generate_card

    result = PrepBenchResult(scans=scans, photos=photos, dpi=dpi)
    peers = _peer_methods()
    methods = ["ours: prepare()", "ours: estimate_skew()"] + list(peers)
    result.skew = {name: MethodTally() for name in methods}

    engine = registry = None
    if pipeline:
        from ocr.engines import get_engine
        from ocr.registry import load_registry

        engine = get_engine(engine_name)
        registry = load_registry()
        engine.read_zone(np.full((48, 160, 3), 255, dtype=np.uint8))  # load the models before timing

    from ocr.prepare import estimate_skew

    card_types = ("foreign_guest", "domestic_guest")
    for index in range(scans):
        card_seed = seed + index
        image, truth = generate_card(
            card_seed, card_types[index % 2], dpi=dpi, max_skew_deg=45.0, quarter_turns=True,
            stamp=index % 2 == 0, border_shadow=index % 3 == 0,
        )
        scan = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)
        gray = cv2.cvtColor(scan, cv2.COLOR_BGR2GRAY)
        true_skew = float(truth["skew_deg"])

        started = time.perf_counter()
        prepared = prepare(scan)
        result.skew["ours: prepare()"].add(normalize_angle(prepared.skew_deg - true_skew), time.perf_counter() - started)
        started = time.perf_counter()
        alone = estimate_skew(gray)
        result.skew["ours: estimate_skew()"].add(normalize_angle(alone - true_skew), time.perf_counter() - started)
        for name, method in peers.items():
            started = time.perf_counter()
            angle = method(gray)
            result.skew[name].add(normalize_angle(angle - true_skew), time.perf_counter() - started)

        upright = _upright_turn(float(truth["rotation_deg"]), prepared.skew_deg)
        result.axis_right += int(upright in prepared.quarter_turn_candidates)
        result.prior_right += int(prepared.quarter_turn_candidates[0] == upright)
        if upright not in prepared.quarter_turn_candidates:
            result.failures.append(f"scan seed {card_seed}: candidates {prepared.quarter_turn_candidates}, upright turn {upright}")
        if pipeline:
            rotation = _run_pipeline(scan, f"scan_{card_seed}.png", engine, registry)
            _tally_pipeline(result, rotation, float(truth["rotation_deg"]), f"scan seed {card_seed}")

    for index in range(photos):
        card_seed = seed + 10_000 + index
        turn = (0, 90, 180, 270)[index % 4]
        image, truth = generate_card(
            card_seed, card_types[index % 2], dpi=dpi, capture="photo", max_skew_deg=45.0, quarter_turn=turn, stamp=True
        )
        photo = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)
        quad = find_card_quad(photo)
        truth_corners = np.asarray(truth["card_corners_px"], dtype=np.float64)
        if quad is not None:
            result.photo_quads += 1
            result.photo_corner_errors.append(quad_corner_error(quad, truth_corners))
            result.photo_card_widths.append(float(np.linalg.norm(truth_corners[1] - truth_corners[0])))
        else:
            result.failures.append(f"photo seed {card_seed}: no card outline found")
        prepared = prepare(photo)
        upright = _upright_turn(float(truth["rotation_deg"]), prepared.skew_deg)
        result.photo_axis_right += int(upright in prepared.quarter_turn_candidates)
        result.photo_prior_right += int(prepared.quarter_turn_candidates[0] == upright)
        if pipeline:
            rotation = _run_pipeline(photo, f"photo_{card_seed}.png", engine, registry)
            right = abs(normalize_angle(rotation - float(truth["rotation_deg"]), 180.0)) <= ORIENTATION_TOLERANCE_DEG
            result.photo_pipeline_right += int(right)
            if not right:
                result.failures.append(f"photo seed {card_seed}: rotation {rotation:.1f}, truth {truth['rotation_deg']:.1f}")
    return result


def _tally_pipeline(result: PrepBenchResult, rotation: float, truth: float, label: str) -> None:
    result.pipeline_cards += 1
    error = abs(normalize_angle(rotation - truth, 180.0))
    if error <= ORIENTATION_TOLERANCE_DEG:
        result.pipeline_right += 1
        result.pipeline_errors.append(error)
    else:
        result.failures.append(f"{label}: pipeline rotation {rotation:.1f}, truth {truth:.1f}")


def _stats(values: list[float]) -> str:
    if not values:
        return "- | - | -"
    array = np.asarray(values)
    return f"{np.median(array):.3f} | {np.percentile(array, 95):.3f} | {array.max():.3f}"


def format_prep_report(result: PrepBenchResult, command: str) -> str:
    """Return the Markdown section for one preparation benchmark run."""
    from ocr.bench import machine_description

    lines = [
        f"## Image preparation, {result.scans} scans and {result.photos} photos ({datetime.now().strftime('%Y-%m-%d %H:%M')})",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine_description()}",
        f"- Scans: `sample_cards.generate_card` at {result.dpi} dpi, random quarter turn, skew uniform in ±45° "
        "(80% of cards; the others straight), scanner effects by chance, a red seal on every second card and a "
        "dark lid border with edge shadow on every third. Photos: its `capture=\"photo\"` mode with a red seal, "
        "the four quarter turns in turn, rotation uniform in ±45°, corners moved by up to 10% in perspective.",
        "- Skew error is |estimate − truth| modulo 90°, in degrees. The peers return the correction, so their "
        "angle is negated; they do not decide quarter turns. Time is per card, one process, on the same grey "
        "image; `prepare()` also finds the outline, warps or crops the card and decides the text axis.",
        "",
        "| method | skew error median | 95th percentile | max | seconds per card (median) |",
        "|---|---|---|---|---|",
    ]
    for name, tally in result.skew.items():
        seconds = float(np.median(tally.seconds)) if tally.seconds else 0.0
        lines.append(f"| {name} | {_stats(tally.errors)} | {seconds:.3f} |")
    lines += [
        "",
        f"- Scans, text axis right (upright turn among the two candidates): {result.axis_right}/{result.scans}; "
        f"red serial prior puts it first: {result.prior_right}/{result.scans}",
    ]
    if result.pipeline_cards:
        lines.append(
            f"- Scans through `process_page` (layout stage picks 0 or 180 by OCR), quarter turn right: "
            f"{result.pipeline_right}/{result.pipeline_cards}; rotation_deg error of those median / 95th / max: "
            f"{_stats(result.pipeline_errors).replace(' |', ' /')} degrees"
        )
    if result.photos:
        relative = [error / width for error, width in zip(result.photo_corner_errors, result.photo_card_widths)]
        worst_share = f"{max(relative):.2%}" if relative else "-"
        lines += [
            f"- Photos, card outline found: {result.photo_quads}/{result.photos}; largest corner error median / "
            f"95th / max: {_stats(result.photo_corner_errors).replace(' |', ' /')} px (worst {worst_share} of the card width)",
            f"- Photos, text axis right: {result.photo_axis_right}/{result.photos}; prior first: "
            f"{result.photo_prior_right}/{result.photos}"
            + (f"; quarter turn right through `process_page`: {result.photo_pipeline_right}/{result.photos}" if result.pipeline_cards else ""),
        ]
    if result.failures:
        lines += ["", "Failures:", ""] + [f"- {failure}" for failure in result.failures]
    return "\n".join(lines) + "\n"


def bench_prep_command(
    scans: Annotated[int, typer.Option("--scans", help="生成的扫描件数 / number of generated scans")] = 20,
    photos: Annotated[int, typer.Option("--photos", help="生成的手机照片数 / number of generated phone photos")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="随机种子 / generator seed")] = 2000,
    pipeline: Annotated[
        bool, typer.Option("--pipeline/--no-pipeline", help="也运行整条流程以检验 0/180 判断（约 3 秒每张） / also run process_page to check the 0/180 choice (about 3 s per card)")
    ] = True,
    report: Annotated[
        Optional[Path], typer.Option("--report", help="结果追加到此文件 / Markdown file to append to")
    ] = Path("docs/benchmarks.md"),
) -> None:
    """在生成的卡片上测量纠偏、方向与卡片轮廓，并与 deskew、jdeskew 比较。 / Measure deskew, orientation and card outlines on generated cards, against deskew and jdeskew."""
    from ocr.bench import command_line, write_report

    result = run_prep_bench(scans=scans, photos=photos, seed=seed, pipeline=pipeline)
    section = format_prep_report(result, command_line())
    typer.echo(section)
    if report is not None:
        path = write_report(section, report)
        typer.echo(f"结果已追加到 {path} / results appended to {path}")
