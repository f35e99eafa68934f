"""Tests for the image preparation benchmark on a few generated cards, without OCR."""

from __future__ import annotations

import numpy as np
import typer
from typer.testing import CliRunner

from ocr.bench_prep import bench_prep_command, format_prep_report, quad_corner_error, run_prep_bench


def test_corner_error_ignores_quarter_turn():
    truth = np.array([[10.0, 10.0], [110.0, 10.0], [110.0, 80.0], [10.0, 80.0]])
    found = np.roll(truth, 1, axis=0) + [1.0, -2.0]

    assert quad_corner_error(found, truth) == np.hypot(1.0, 2.0)


def test_bench_counts_and_report():
    result = run_prep_bench(scans=2, photos=1, seed=5, pipeline=False)

    report = format_prep_report(result, "python -m ocr bench prep --scans 2 --photos 1 --no-pipeline")

    assert result.axis_right == 2
    assert result.photo_quads == 1
    assert len(result.skew["ours: prepare()"].errors) == 2
    assert max(result.skew["ours: prepare()"].errors) < 0.2
    assert "| ours: prepare() |" in report
    assert "`python -m ocr bench prep --scans 2 --photos 1 --no-pipeline`" in report
    assert "Failures" not in report


def test_bench_command_appends_report(tmp_path):
    app = typer.Typer()
    app.command()(bench_prep_command)
    report = tmp_path / "benchmarks.md"

    outcome = CliRunner().invoke(app, ["--scans", "1", "--photos", "0", "--no-pipeline", "--report", str(report)])

    assert outcome.exit_code == 0, outcome.output
    assert "## Image preparation, 1 scans and 0 photos" in report.read_text(encoding="utf-8")
    assert "results appended to" in outcome.output
