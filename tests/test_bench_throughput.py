"""Throughput benchmark on a small stack: the report has every run and baseline, and cards were stored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocr.bench_throughput import format_throughput, run_throughput

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_throughput_runs_and_baselines():
    report = run_throughput(2, [1, 2], seed=5000)

    assert [run.workers for run in report.runs] == [1, 2]
    for run in report.runs:
        assert run.cards == 2
        assert run.stored == 2
        assert run.wall_s > 0
        assert run.cpu_s > 0
        assert run.peak_ocr_mib > 0
    assert [run.threads_each for run in report.runs] == [1, 1]
    assert [base.engine for base in report.baselines] == ["tesseract", "rapidocr"]
    for base in report.baselines:
        assert base.cards == 2
        assert base.lines > 0
        assert base.cpu_s > 0

    section = format_throughput(report, "python -m ocr bench throughput --cards 2 --workers 1,2")
    assert section.startswith("## Throughput, rapidocr, 2 cards")
    assert "| 1 | " in section
    assert "| 2 | " in section
    assert "| tesseract | 2 |" in section
    assert "| rapidocr | 2 |" in section
    assert "x the CPU time of plain full-page rapidocr OCR" in section


def test_throughput_command_appends_report(tmp_path: Path):
    report = tmp_path / "benchmarks.md"
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))

    done = subprocess.run(
        [sys.executable, "-m", "ocr", "bench", "throughput", "--cards", "1", "--workers", "1", "--no-baselines", "--report", str(report)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    text = report.read_text(encoding="utf-8")
    assert "## Throughput, rapidocr, 1 cards" in text
    assert "| 1 | " in text
    assert "Plain full-page OCR" not in text
