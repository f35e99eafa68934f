"""Tests for the accuracy benchmark: the threshold sweep, the report, the plot and one tiny real run."""

from __future__ import annotations

import importlib.util

import pytest
import typer
from typer.testing import CliRunner

from ocr.bench_accuracy import (
    CALIBRATED,
    CONDITIONS,
    STYLES,
    AccuracyResult,
    FieldRead,
    bench_accuracy_command,
    format_accuracy_report,
    has_rule_problem,
    held_out_note,
    lowest_threshold,
    plan_cards,
    plot_sweep,
    run_accuracy_bench,
    sweep,
    wilson_upper,
)


def _read(confidence: float, correct: bool, rule_failed: bool = False, style: str = "printed", auto: bool = False) -> FieldRead:
    return FieldRead(
        key="surname", style=style, condition="plain scan", confidence=confidence, correct=correct,
        rule_failed=rule_failed, auto=auto,
    )


# Ten reads whose sweep counts are worked out by hand:
#   confidence 0.99 x4 right, 0.95 x2 right, 0.90 right, 0.90 wrong, 0.60 wrong, 0.99 right with a failed rule.
SYNTHETIC = [
    _read(0.99, True), _read(0.99, True), _read(0.99, True), _read(0.99, True),
    _read(0.95, True), _read(0.95, True),
    _read(0.90, True), _read(0.90, False),
    _read(0.60, False),
    _read(0.99, True, rule_failed=True),
]


def test_sweep_known_counts():
    points = {point.threshold: point for point in sweep(SYNTHETIC, (0.0, 0.6, 0.61, 0.9, 0.91, 0.99, 1.0))}

    assert all(point.fields == 10 for point in points.values())
    assert (points[0.0].auto, points[0.0].auto_wrong) == (9, 2)
    assert (points[0.6].auto, points[0.6].auto_wrong) == (9, 2)
    assert (points[0.61].auto, points[0.61].auto_wrong) == (8, 1)
    assert (points[0.9].auto, points[0.9].auto_wrong) == (8, 1)
    assert (points[0.91].auto, points[0.91].auto_wrong) == (6, 0)
    assert (points[0.99].auto, points[0.99].auto_wrong) == (4, 0)
    assert points[0.91].automation == pytest.approx(0.6)
    assert points[0.9].auto_error == pytest.approx(1 / 8)


def test_sweep_empty_acceptance_has_no_error():
    point = sweep(SYNTHETIC, (1.0,))[0]

    assert point.auto == 0
    assert point.automation == 0.0
    assert point.auto_error is None


def test_sweep_rule_failure_never_accepted():
    points = sweep([_read(1.0, True, rule_failed=True)], (0.0, 0.5, 1.0))

    assert [point.auto for point in points] == [0, 0, 0]


def test_sweep_filters_by_style():
    reads = [_read(0.99, True, style="printed"), _read(0.5, False, style="handwriting"), _read(0.99, False, style="handwriting")]

    printed = sweep(reads, (0.9,), style="printed")[0]
    handwriting = sweep(reads, (0.9,), style="handwriting")[0]

    assert (printed.fields, printed.auto, printed.auto_wrong) == (1, 1, 0)
    assert (handwriting.fields, handwriting.auto, handwriting.auto_wrong) == (2, 1, 1)


def test_lowest_threshold_meets_target():
    points = sweep(SYNTHETIC, tuple(step / 100 for step in range(101)))

    strict = lowest_threshold(points, 0.0)
    loose = lowest_threshold(points, 0.15)

    assert strict is not None and strict.threshold == pytest.approx(0.91)
    assert loose is not None and loose.threshold == pytest.approx(0.61)
    assert lowest_threshold(sweep([_read(0.9, False)], (0.0, 0.5, 1.0)), 0.002) is None


def test_rule_problem_ignores_machine_codes():
    assert not has_rule_problem([])
    assert not has_rule_problem(["low_confidence", "unreadable", "no_zone"])
    assert has_rule_problem(["low_confidence", "invalid_date"])


def test_wilson_upper_zero_errors():
    assert wilson_upper(0, 0) is None
    assert wilson_upper(0, 1000) == pytest.approx(0.00383, abs=1e-5)
    assert wilson_upper(5, 100) > 0.05


def test_plan_mixes_types_styles_conditions():
    plans = plan_cards(24, seed=7)

    assert [plan.card_type for plan in plans[:4]] == ["foreign_guest", "domestic_guest"] * 2
    assert sorted({plan.style for plan in plans}) == sorted(STYLES)
    assert all(sum(plan.condition == name for plan in plans) == 4 for name in CONDITIONS)
    assert plan_cards(24, seed=7) == plans
    assert [plan.seed for plan in plans] == list(range(7, 31))


def test_plan_limited_conditions():
    plans = plan_cards(6, seed=7, conditions=("ink blot", "stamp"))

    assert sorted(plan.condition for plan in plans) == ["ink blot"] * 3 + ["stamp"] * 3
    with pytest.raises(ValueError, match="conditions must be among"):
        plan_cards(6, seed=7, conditions=("fog",))


def test_blot_changes_one_number_zone(tmp_path):
    from ocr.bench_accuracy import blot_character
    from ocr.registry import load_registry
    import random

    import numpy as np
    from sample_cards import generate_card

    image, truth = generate_card(3001, "foreign_guest", "printed", dpi=150)
    template = next(t for t in load_registry().templates.values() if t.name == truth["template"])

    blotted = blot_character(image, truth, template, random.Random(1))

    difference = np.abs(np.asarray(blotted, dtype=int) - np.asarray(image.convert("RGB"), dtype=int)).sum(axis=2) > 60
    assert truth["blot_field"] in ("card_serial", "document_number", "visa_number", "date_of_birth", "valid_until",
                                   "entry_date", "arrival_date", "departure_date", "room_number")
    # One character's worth of pixels: more than a speck, far less than a zone.
    assert 30 < difference.sum() < 0.002 * difference.size


def _synthetic_result(engine: str) -> AccuracyResult:
    result = AccuracyResult(engine=engine, cards=2, seconds=3.0, card_type_right=2)
    for index, read in enumerate(SYNTHETIC):
        style = STYLES[index % 2]
        condition = CONDITIONS[index % len(CONDITIONS)]
        result.add(FieldRead("surname", style, condition, read.confidence, read.correct, read.rule_failed, read.confidence >= 0.95))
    return result


def test_report_has_columns_and_groups():
    plans = plan_cards(10, seed=1)
    results = [_synthetic_result("rapidocr"), _synthetic_result("tesseract")]

    report = format_accuracy_report(plans, results, "python -m ocr bench accuracy --cards 10", "accuracy-threshold.png")

    assert "`python -m ocr bench accuracy --cards 10`" in report
    assert "- Machine: " in report
    assert "![Error among auto-accepted fields against automation](accuracy-threshold.png)" in report
    assert "| group | fields | accuracy | automation | error among auto-accepted |" in report
    assert "| threshold | automation | printed | handwriting | error among auto-accepted |" in report
    for engine in ("rapidocr", "tesseract"):
        assert f"### {engine}" in report
    for style in STYLES:
        assert f"| style: {style} |" in report
    for condition in CONDITIONS:
        assert f"| condition: {condition} |" in report
    assert "| field: surname |" in report
    assert "| product thresholds (as shipped) |" in report
    assert "| lowest for error ≤ 0.5%: 0.91 |" in report
    assert "| lowest for error ≤ 0.2%: 0.91 |" in report
    assert "card type right: 2/2" in report
    assert "Automation ≥ 90% on printed" in report
    assert "Automation ≥ 70% on handwriting" in report
    assert "Error among auto-accepted ≤ 0.2%" in report


@pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason="matplotlib is in the 'bench' extra, not in '.[test]'; install with pip install -e '.[bench]'",
)
def test_plot_writes_png(tmp_path):
    path = plot_sweep([_synthetic_result("rapidocr"), _synthetic_result("tesseract")], tmp_path / "plot.png", "test")

    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000


@pytest.mark.slow
def test_tiny_real_run_rapidocr():
    plans, results = run_accuracy_bench(2, seed=3000, engines=("rapidocr",))

    assert len(plans) == 2
    assert [result.engine for result in results] == ["rapidocr", CALIBRATED]
    result, calibrated = results
    for found in results:
        assert found.cards == 2
        assert not found.failures
        assert found.card_type_right == 2
        assert found.overall.fields == len(found.reads) > 20
        assert sum(tally.fields for tally in found.by_style.values()) == found.overall.fields
        assert sum(tally.fields for tally in found.by_condition.values()) == found.overall.fields
        assert sum(tally.fields for tally in found.by_field.values()) == found.overall.fields
        assert found.overall.correct <= found.overall.fields
        assert found.overall.auto_wrong <= found.overall.auto <= found.overall.fields
        assert found.overall.accuracy > 0.5
        assert all(0.0 <= read.confidence <= 1.0 for read in found.reads)
    # The same reads under two decisions: the values, and so the accuracy, are the same.
    assert calibrated.overall.correct == result.overall.correct
    assert calibrated.overall.fields == result.overall.fields
    assert calibrated.second_seconds >= 0.0
    assert calibrated.second_reads >= 0


def test_report_states_second_engine_cost():
    plans = plan_cards(10, seed=1)
    calibrated = _synthetic_result(CALIBRATED)
    calibrated.second_reads, calibrated.second_seconds = 3, 1.5

    report = format_accuracy_report(plans, [calibrated], "python -m ocr bench accuracy", held_out="held out note")

    assert "### calibrated" in report
    assert "Tesseract on 3 zones (1.50 per card)" in report
    assert "0.75 s per card added by the calibrated decision" in report
    assert "- held out note" in report
    assert "3.84/n" in report


def test_held_out_note_detects_overlap():
    from ocr.registry import load_registry

    fitted = next(iter(load_registry().calibrations.values())).fitted_with["seeds"]
    first_fitted = int(fitted.split("-")[0])

    assert "are held out" in held_out_note(plan_cards(20, seed=3000))
    assert "not held out" in held_out_note(plan_cards(5, seed=first_fitted))
    assert "alternative layout 4" in held_out_note(plan_cards(5, seed=3000), layout_seed=4)


def _command_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(bench_accuracy_command)
    return app


def test_command_rejects_unknown_engine(tmp_path):
    outcome = CliRunner().invoke(_command_app(), ["--cards", "1", "--engines", "rapidocr,easyocr", "--report", str(tmp_path / "b.md")])

    assert outcome.exit_code != 0
    assert "invalid engine list" in outcome.output
    assert not (tmp_path / "b.md").exists()


@pytest.mark.slow
def test_command_appends_report_and_plot(tmp_path):
    report = tmp_path / "docs" / "benchmarks.md"
    plot = tmp_path / "docs" / "accuracy-threshold.png"

    outcome = CliRunner().invoke(
        _command_app(), ["--cards", "1", "--engines", "rapidocr", "--report", str(report), "--plot", str(plot)]
    )

    assert outcome.exit_code == 0, outcome.output
    text = report.read_text(encoding="utf-8")
    assert "## Accuracy and threshold sweep, rapidocr, calibrated, 1 cards" in text
    assert "results appended to" in outcome.output
    if importlib.util.find_spec("matplotlib") is not None:
        assert plot.read_bytes().startswith(b"\x89PNG")
        assert "(accuracy-threshold.png)" in text
