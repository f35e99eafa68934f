"""Calibration of field confidence: fit the evidence weights and per-field thresholds on generated cards.

``python -m ocr bench calibrate --cards N --seed S`` generates N cards (the mix
of :func:`ocr.bench_accuracy.plan_cards`: both card types, printed and
handwriting-like, plain scans, carbon-copy paper, red seals, phone photos and
ink blots over a character),
runs the pipeline with rapidocr and lets Tesseract read every zone too. From
these reads it fits two logistic regressions with scikit-learn (without and
with the Tesseract read) and chooses each field's threshold, then writes one
``<template>.calibration.json`` per template beside the templates.

Thresholds are chosen on out-of-fold probabilities: the cards are split into
folds, and each fold's probabilities come from weights fitted on the others,
so that a threshold is not set on reads the weights have already seen. Each
field starts at the lowest threshold, from 1 − MARGINAL_FACTOR × target up,
at which the mean of (1 − confidence) over its accepted values is within the
target. Field thresholds are then raised one at a time, cheapest first, until
the counted share of wrong values among all accepted fields is within the
target. The pipeline's decision, including when Tesseract reads a zone, is
simulated throughout.

Accuracy must be measured on other cards: ``python -m ocr bench accuracy``
uses seeds from 3000 by default, and this command from 100000.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from models.card_type import FieldKind
from models.template import Calibration, FieldCalibration, LogisticModel
from ocr.bench import command_line, machine_description
from ocr.confidence import FieldEvidence, ask_second_engine, evidence_features
from ocr.engines import get_engine
from ocr.ingest import Page, iter_pages
from ocr.registry import BUILTIN_DIR, CALIBRATION_SUFFIX, Registry, load_registry, reload_registry

__all__ = [
    "FittingRow",
    "MARGINAL_FACTOR",
    "PAIRED_FEATURES",
    "SINGLE_FEATURES",
    "bench_calibrate_command",
    "choose_threshold",
    "collect_rows",
    "raise_for_counted_error",
    "fit_calibrations",
    "fit_model",
    "write_calibrations",
]

log = logging.getLogger(__name__)

SINGLE_FEATURES = ("score_logit", "low_score", "blank", "blank_ink_log", "rule_failed", "free_text", "history_logit")
PAIRED_FEATURES = SINGLE_FEATURES + ("agree", "disagree")
DEFAULT_SEED = 100_000
DEFAULT_TARGET = 0.002
FOLDS = 5
# Pseudo-count of the overall error rate when a field key's own rate is estimated.
RATE_SMOOTHING = 20.0
# Inverse regularisation strength of the logistic regressions (scikit-learn's C).
REGULARISATION_C = 1.0
# No threshold is set below 1 - MARGINAL_FACTOR x target (0.996 for a 0.2% target). A field's mean
# error may meet the target while single values far below it pass, and the weights are least certain
# far from the bulk of the fitting data.
MARGINAL_FACTOR = 2.0


@dataclass
class FittingRow:
    """One field of one generated card: the evidence of the pipeline's reads and whether the value was right."""

    # Generator seed of the card.
    card: int
    card_type: str
    template: str
    key: str
    kind: str
    style: str
    condition: str
    score: float
    blank: bool
    unreadable: bool
    ink: float
    rule_failed: bool
    # Whether the second engine's clean value equals the first one's; None when the second did not read the zone.
    agree: bool | None
    correct: bool
    # Score of the second engine's read (0 when it did not read the zone or read nothing).
    second_score: float = 0.0

    def evidence(self, history: float) -> FieldEvidence:
        return FieldEvidence(
            key=self.key, kind=FieldKind(self.kind), score=self.score, blank=self.blank, unreadable=self.unreadable,
            ink=self.ink, rule_failed=self.rule_failed, history=history,
        )


# --------------------------------------------------------------------------
# Collecting reads
# --------------------------------------------------------------------------


def _bootstrap_registry(registry: Registry) -> Registry:
    """Return the registry with a neutral calibration per template, so that the pipeline records evidence."""
    neutral = LogisticModel(features=SINGLE_FEATURES, intercept=0.0, coefficients=(0.0,) * len(SINGLE_FEATURES))
    paired = LogisticModel(features=PAIRED_FEATURES, intercept=0.0, coefficients=(0.0,) * len(PAIRED_FEATURES))
    calibrations = {}
    for template in registry.templates.values():
        keys = registry.card_type(template.card_type).keys
        calibrations[template.name] = Calibration(
            template=template.name, target_error=DEFAULT_TARGET, single=neutral, paired=paired,
            fields={key: FieldCalibration(threshold=1.0, prior_error=0.01, fitted_fields=0, fitted_wrong=0) for key in keys},
        )
    return Registry(registry.card_types, registry.templates, calibrations)


def collect_rows(
    cards: int, seed: int, dpi: int = 200, conditions: tuple[str, ...] | None = None
) -> list[FittingRow]:
    """Generate ``cards`` cards from ``seed`` and return one row per field, with Tesseract reading every zone.

    ``conditions`` limits the capture conditions of :func:`ocr.bench_accuracy.plan_cards` (default: all).
    """
    from ocr.bench_accuracy import CONDITIONS, plan_cards, write_cards
    from ocr.pipeline import process_page

    plans = plan_cards(cards, seed, conditions or CONDITIONS)
    engine = get_engine("rapidocr")
    second = get_engine("tesseract")
    registry = _bootstrap_registry(load_registry())
    rows: list[FittingRow] = []
    with tempfile.TemporaryDirectory(prefix="huka-calibrate-") as tmp:
        truths = write_cards(plans, Path(tmp), dpi)
        by_name = {plan.file_name: plan for plan in plans}
        for item in iter_pages([tmp], pdf_dpi=dpi):
            if not isinstance(item, Page):
                log.warning("calibration card unreadable: %s", item.message("en"))
                continue
            name = Path(item.source).name
            plan, truth = by_name[name], truths[name]
            result = process_page(item, engine=engine, registry=registry, second_engine=second, read_all_second=True)
            extraction = result.extraction
            if extraction.card_type != truth["card_type"] or result.decision is None:
                log.warning("calibration card skipped: card type %s, expected %s", extraction.card_type, truth["card_type"])
                continue
            for key, found in result.decision.evidence.items():
                value = extraction.fields[key].value
                rows.append(
                    FittingRow(
                        card=plan.seed, card_type=extraction.card_type, template=extraction.template or "",
                        key=key, kind=found.kind.value, style=plan.style, condition=plan.condition,
                        score=found.score, blank=found.blank, unreadable=found.unreadable, ink=found.ink,
                        rule_failed=found.rule_failed,
                        agree=None if found.second_value is None else found.second_value == value,
                        correct=value == truth["fields"][key],
                        second_score=found.second_score,
                    )
                )
            log.info("calibration card done card=%d rows=%d", plan.index, len(rows))
    return rows


def save_rows(rows: list[FittingRow], path: Path) -> None:
    """Write the rows as JSON Lines, so that a refit needs no OCR."""
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(asdict(row)) + "\n")


def load_rows(path: Path) -> list[FittingRow]:
    return [FittingRow(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------


def _rates(rows: list[FittingRow]) -> tuple[dict[tuple[str, str], float], float]:
    """Return the smoothed share of wrong values per (card type, key), and the overall share."""
    overall = sum(not row.correct for row in rows) / len(rows) if rows else 0.01
    overall = min(max(overall, 1e-3), 0.5)
    wrong: dict[tuple[str, str], int] = defaultdict(int)
    count: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        wrong[(row.card_type, row.key)] += int(not row.correct)
        count[(row.card_type, row.key)] += 1
    rates = {group: (wrong[group] + RATE_SMOOTHING * overall) / (count[group] + RATE_SMOOTHING) for group in count}
    return rates, overall


def _matrix(rows: list[FittingRow], histories: list[float], features: tuple[str, ...], paired: bool) -> np.ndarray:
    matrix = np.zeros((len(rows), len(features)))
    for index, (row, history) in enumerate(zip(rows, histories)):
        agreement = None
        if paired and row.agree is not None:
            agreement = "agree" if row.agree else "disagree"
        values = evidence_features(row.evidence(history), agreement)
        matrix[index] = [values[name] for name in features]
    return matrix


def fit_model(rows: list[FittingRow], histories: list[float], features: tuple[str, ...]) -> LogisticModel:
    """Fit P(value right) with scikit-learn's logistic regression on the usable rows."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise typer.BadParameter(
            "scikit-learn is needed to fit the calibration: pip install -e '.[bench]'"
        ) from exc
    paired = "agree" in features
    matrix = _matrix(rows, histories, features, paired)
    labels = np.array([row.correct for row in rows], dtype=int)
    if labels.min() == labels.max():
        raise ValueError("the fitting cards have only right (or only wrong) values; use more cards")
    # The penalty weighs standardised features alike. The weights are then folded back to the raw
    # features, because those are what the pipeline evaluates.
    mean = matrix.mean(axis=0)
    scale = matrix.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=REGULARISATION_C, max_iter=2000)
    model.fit((matrix - mean) / scale, labels)
    raw = model.coef_[0] / scale
    intercept = float(model.intercept_[0] - np.dot(raw, mean))
    coefficients = [float(value) for value in raw]
    # A better read must never be trusted less: the score weights keep their signs (never needed on generated cards).
    for name, keep in (("score_logit", max), ("low_score", min)):
        index = features.index(name)
        if keep(coefficients[index], 0.0) != coefficients[index]:
            log.warning("weight of %s came out %.3f, against the score, and is set to 0", name, coefficients[index])
            coefficients[index] = 0.0
    return LogisticModel(features=features, intercept=intercept, coefficients=tuple(coefficients))


def _probabilities(model: LogisticModel, matrix: np.ndarray) -> np.ndarray:
    z = model.intercept + matrix @ np.asarray(model.coefficients)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


@dataclass
class Scored:
    """Out-of-fold probabilities of one row: alone, with an agreeing read, and with its actual second read."""

    row: FittingRow
    single: float
    if_agree: float
    paired: float


def _out_of_fold(rows: list[FittingRow]) -> list[Scored]:
    """Return every row scored by weights and error rates fitted on the other folds of cards."""
    cards = sorted({row.card for row in rows})
    fold_of = {card: index % FOLDS for index, card in enumerate(cards)}
    scored: list[Scored] = []
    for fold in range(FOLDS):
        train = [row for row in rows if fold_of[row.card] != fold and not row.unreadable]
        test = [row for row in rows if fold_of[row.card] == fold]
        if not test:
            continue
        rates, overall = _rates(train)
        train_history = [rates[(row.card_type, row.key)] for row in train]
        test_history = [rates.get((row.card_type, row.key), overall) for row in test]
        single = fit_model(train, train_history, SINGLE_FEATURES)
        paired = fit_model([row for row in train if row.agree is not None],
                           [h for row, h in zip(train, train_history) if row.agree is not None], PAIRED_FEATURES)
        p_single = _probabilities(single, _matrix(test, test_history, SINGLE_FEATURES, False))
        agree_matrix = _matrix(test, test_history, PAIRED_FEATURES, False)
        agree_matrix[:, PAIRED_FEATURES.index("agree")] = 1.0
        p_if_agree = _probabilities(paired, agree_matrix)
        p_paired = _probabilities(paired, _matrix(test, test_history, PAIRED_FEATURES, True))
        for index, row in enumerate(test):
            scored.append(Scored(row, float(p_single[index]), float(p_if_agree[index]), float(p_paired[index])))
    return scored


def simulate(item: Scored, threshold: float) -> tuple[bool, float, bool]:
    """Return (auto-accepted, confidence, second engine ran) as ``ocr.confidence.decide_card`` decides.

    A disagreeing second read sends the field to review whatever its confidence.
    """
    row = item.row
    kind = FieldKind(row.kind)
    asked = ask_second_engine(kind, row.score, row.rule_failed, row.unreadable, item.single, item.if_agree, threshold)
    if not asked or row.agree is None:
        return not row.unreadable and not row.rule_failed and item.single >= threshold, item.single, False
    return row.agree and item.paired >= threshold, item.paired, True


def min_threshold(target: float) -> float:
    """Return the lowest threshold any field may get for ``target``: 1 - MARGINAL_FACTOR x target."""
    return max(0.5, 1.0 - MARGINAL_FACTOR * target)


def choose_threshold(items: list[Scored], target: float) -> float:
    """Return the lowest threshold, from :func:`min_threshold` up, at which the field's mean doubt is within ``target``.

    The doubt of an accepted value is 1 − its confidence, so the mean doubt is
    the error the weights expect among the field's accepted values.
    """
    floor = min_threshold(target)
    candidates = sorted({floor, 1.0} | {p for item in items for p in (item.single, item.paired) if p > floor})
    for threshold in candidates:
        accepted = [confidence for item in items for auto, confidence, _ran in [simulate(item, threshold)] if auto]
        if not accepted or sum(1.0 - confidence for confidence in accepted) / len(accepted) <= target:
            return threshold
    return 1.0


def _accepted(items: list[Scored], threshold: float) -> tuple[int, int]:
    """Return (accepted, accepted and wrong) of ``items`` at ``threshold``."""
    outcomes = [(simulate(item, threshold)[0], item.row.correct) for item in items]
    return sum(auto for auto, _ in outcomes), sum(auto and not correct for auto, correct in outcomes)


def raise_for_counted_error(
    groups: dict[tuple[str, str], list[Scored]], thresholds: dict[tuple[str, str], float], target: float
) -> dict[tuple[str, str], float]:
    """Raise field thresholds until the counted error among all accepted fields is within ``target``.

    Each step raises the one field threshold that removes a wrong accepted value
    at the least cost in right values sent to review. Pooling the count over all
    fields keeps a single wrong value among a field's few fitting reads from
    sending that whole field to review.
    """
    thresholds = dict(thresholds)
    while True:
        counts = {group: _accepted(items, thresholds[group]) for group, items in groups.items()}
        accepted = sum(auto for auto, _ in counts.values())
        wrong = sum(bad for _, bad in counts.values())
        if accepted == 0 or wrong / accepted <= target:
            return thresholds
        best: tuple[float, tuple[str, str], float] | None = None
        for group, items in groups.items():
            auto, bad = counts[group]
            if bad == 0:
                continue
            # Just above the least confident wrong value this field accepts.
            wrong_confidences = [
                confidence for item in items
                for ok, confidence, _ran in [simulate(item, thresholds[group])] if ok and not item.row.correct
            ]
            raised = min(1.0, min(wrong_confidences) + 1e-9)
            new_auto, new_bad = _accepted(items, raised)
            cost = (auto - new_auto) - (bad - new_bad)
            removed = bad - new_bad
            if removed and (best is None or cost / removed < best[0]):
                best = (cost / removed, group, raised)
        if best is None:
            return thresholds
        thresholds[best[1]] = best[2]


@dataclass
class FitSummary:
    """Figures of one fit on its own cards (out of fold), for the report."""

    rows: int
    cards: int
    fields_auto: int
    auto_wrong: int
    second_reads: int
    # Per template and key: (threshold, fields, auto, auto wrong).
    by_field: dict[tuple[str, str], tuple[float, int, int, int]]


def fit_calibrations(
    rows: list[FittingRow], target: float, fitted_with: dict[str, str]
) -> tuple[dict[str, Calibration], FitSummary]:
    """Fit the weights on all rows and the thresholds on out-of-fold probabilities; return one calibration per template."""
    usable = [row for row in rows if not row.unreadable]
    rates, _overall = _rates(usable)
    histories = [rates[(row.card_type, row.key)] for row in usable]
    single = fit_model(usable, histories, SINGLE_FEATURES)
    paired_rows = [(row, h) for row, h in zip(usable, histories) if row.agree is not None]
    paired = fit_model([row for row, _h in paired_rows], [h for _row, h in paired_rows], PAIRED_FEATURES)

    scored = _out_of_fold(rows)
    groups: dict[tuple[str, str], list[Scored]] = defaultdict(list)
    for item in scored:
        groups[(item.row.template, item.row.key)].append(item)

    thresholds = {group: choose_threshold(items, target) for group, items in groups.items()}
    thresholds = raise_for_counted_error(groups, thresholds, target)

    calibrations: dict[str, Calibration] = {}
    by_field: dict[tuple[str, str], tuple[float, int, int, int]] = {}
    total_auto = total_wrong = second_reads = 0
    for template in sorted({row.template for row in rows}):
        fields: dict[str, FieldCalibration] = {}
        for (group_template, key), items in sorted(groups.items()):
            if group_template != template:
                continue
            threshold = round(thresholds[(group_template, key)], 6)
            outcomes = [simulate(item, threshold) for item in items]
            auto = sum(outcome[0] for outcome in outcomes)
            wrong = sum(outcome[0] and not item.row.correct for outcome, item in zip(outcomes, items))
            second_reads += sum(outcome[2] for outcome in outcomes)
            total_auto += auto
            total_wrong += wrong
            card_type = items[0].row.card_type
            fields[key] = FieldCalibration(
                threshold=threshold,
                prior_error=round(rates[(card_type, key)], 6),
                fitted_fields=len(items),
                fitted_wrong=sum(not item.row.correct for item in items),
                fitted_auto=auto,
                fitted_auto_wrong=wrong,
            )
            by_field[(template, key)] = (threshold, len(items), auto, wrong)
        calibrations[template] = Calibration(
            template=template, target_error=target, single=single, paired=paired, fields=fields, fitted_with=fitted_with,
        )
    summary = FitSummary(
        rows=len(rows), cards=len({row.card for row in rows}), fields_auto=total_auto, auto_wrong=total_wrong,
        second_reads=second_reads, by_field=by_field,
    )
    return calibrations, summary


def write_calibrations(calibrations: dict[str, Calibration], folder: Path) -> list[Path]:
    """Write each calibration to ``<folder>/<template>.calibration.json``, creating ``folder`` if needed."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, calibration in calibrations.items():
        path = folder / f"{name}{CALIBRATION_SUFFIX}"
        path.write_text(calibration.model_dump_json(indent=1) + "\n", encoding="utf-8")
        paths.append(path)
    reload_registry()
    return paths


def _seed_ranges(seeds: list[int]) -> str:
    """Return sorted seeds as ranges: "100000-100079, 100200-100239"."""
    ranges: list[str] = []
    start = previous = None
    for seed in seeds + [None]:
        if seed is not None and previous is not None and seed == previous + 1:
            previous = seed
            continue
        if start is not None:
            ranges.append(f"{start}-{previous}" if previous != start else str(start))
        start = previous = seed
    return ", ".join(ranges)


def format_fit_report(summary: FitSummary, calibrations: dict[str, Calibration], command: str, seconds: float) -> str:
    """Return a Markdown summary of one fit: weights, thresholds and out-of-fold figures."""
    any_calibration = next(iter(calibrations.values()))
    lines = [
        f"## Confidence calibration fit, {summary.cards} cards ({datetime.now().strftime('%Y-%m-%d %H:%M')})",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine_description()}",
        f"- {summary.rows} fields; target error among auto-accepted {any_calibration.target_error:.2%}; {seconds:.0f} s",
        f"- Out of fold at the chosen thresholds: {summary.fields_auto}/{summary.rows} auto-accepted, "
        f"{summary.auto_wrong} of them wrong; Tesseract would read {summary.second_reads} zones",
        "",
        "| model | intercept | " + " | ".join(PAIRED_FEATURES) + " |",
        "|---|---|" + "---|" * len(PAIRED_FEATURES),
    ]
    for name, model in (("single", any_calibration.single), ("paired", any_calibration.paired)):
        weights = dict(zip(model.features, model.coefficients))
        cells = " | ".join(f"{weights[feature]:.3f}" if feature in weights else "-" for feature in PAIRED_FEATURES)
        lines.append(f"| {name} | {model.intercept:.3f} | {cells} |")
    lines += ["", "| template | field | threshold | fields | auto | auto wrong |", "|---|---|---|---|---|---|"]
    for (template, key), (threshold, fields, auto, wrong) in sorted(summary.by_field.items()):
        lines.append(f"| {template} | {key} | {threshold:.4f} | {fields} | {auto} | {wrong} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Command
# --------------------------------------------------------------------------


def bench_calibrate_command(
    cards: Annotated[int, typer.Option("--cards", min=10, help="用于拟合的生成卡片数 / number of generated cards to fit on")] = 200,
    seed: Annotated[
        int, typer.Option("--seed", help="第一张卡片的种子，须与准确率测试的种子不重叠 / seed of the first card; keep it apart from the accuracy bench's seeds")
    ] = DEFAULT_SEED,
    target: Annotated[
        float, typer.Option("--target", min=0.0001, max=0.1, help="自动通过字段的目标错误率 / target error rate among auto-accepted fields")
    ] = DEFAULT_TARGET,
    out: Annotated[
        Path, typer.Option("--out", help="校准文件写入的目录 / folder to write the calibration files to")
    ] = BUILTIN_DIR / "templates",
    rows_file: Annotated[
        Optional[Path], typer.Option("--rows", help="读取结果存为 JSON Lines，以便不再识别即可重新拟合 / save the reads as JSON Lines")
    ] = None,
    conditions: Annotated[
        Optional[str],
        typer.Option(
            "--conditions",
            help="逗号分隔的拍摄条件，默认全部 / comma-separated capture conditions of the cards, default all: "
            "plain scan, yellow paper, pink paper, stamp, phone photo, ink blot",
        ),
    ] = None,
    from_rows: Annotated[
        Optional[list[Path]],
        typer.Option("--from-rows", help="用已保存的读取结果拟合，不运行识别；可重复 / fit on saved reads without OCR; repeatable"),
    ] = None,
) -> None:
    """在生成的卡片上拟合置信度校准与各字段阈值，并写入模板旁的校准文件。 / Fit the confidence calibration and per-field thresholds on generated cards and write them beside the templates."""
    started = time.perf_counter()
    if from_rows:
        rows = [row for path in from_rows for row in load_rows(path)]
    else:
        chosen = tuple(name.strip() for name in conditions.split(",")) if conditions else None
        try:
            rows = collect_rows(cards, seed, conditions=chosen)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--conditions") from exc
        if rows_file is not None:
            save_rows(rows, rows_file)
    card_count = len({row.card for row in rows})
    fitted_with = {
        "command": command_line(),
        "cards": str(card_count),
        "seeds": _seed_ranges(sorted({row.card for row in rows})),
        "date": datetime.now().strftime("%Y-%m-%d"),
    }
    calibrations, summary = fit_calibrations(rows, target, fitted_with)
    paths = write_calibrations(calibrations, out)
    typer.echo(format_fit_report(summary, calibrations, command_line(), time.perf_counter() - started))
    for path in paths:
        typer.echo(f"校准已写入 {path} / calibration written to {path}")
    if not math.isclose(summary.fields_auto, 0) and summary.auto_wrong / summary.fields_auto > target:
        typer.echo(
            f"注意：拟合卡片上自动通过字段的错误率 {summary.auto_wrong / summary.fields_auto:.2%} 高于目标 {target:.2%}。"
            f" / note: error among auto-accepted fields on the fitting cards is above the target"
        )
