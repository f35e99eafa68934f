"""The confirm command: missing or conflicting options are usage errors, and each failure has its own exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocr.errors import ExitCode
from ocr.store import Store
from test_transmit_support import Cards, foreign_values, sample_png, write_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DAY = "2025-12-01"


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HUKA_CONFIG", "HUKA_LANG", "HUKA_DB_URL", "HUKA_DATA_DIR")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "ocr", *args], cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8", timeout=120
    )


@pytest.fixture()
def handed_over(tmp_path: Path) -> list[str]:
    """Return the common options of a store whose one batch waits for the clerk's confirmation."""
    cards = Cards(Store(data_dir=tmp_path / "data"), sample_png())
    cards.add(foreign_values("0012345", DAY))
    cards.store.close()
    config_file = write_config(tmp_path / "hukacapture.toml", adapter="manual", manual_folder=tmp_path / "up")
    common = ["--config", str(config_file), "--data-dir", str(tmp_path / "data")]
    sent = run_cli(["transmit", *common], tmp_path)
    assert sent.returncode == 0, sent.stderr
    return common


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (["--by", "李娜", "--receipt", "R1", "--phone"], "--receipt 与 --phone 只能选一个"),
        (["--by", "李娜"], "请填写回执编号，或用 --phone 表示已电话确认"),
        (["--by", " ", "--receipt", "R1"], "确认人姓名为空"),
    ],
)
def test_confirm_options_usage_error(tmp_path: Path, handed_over: list[str], options: list[str], reason: str):
    result = run_cli(["confirm", "1", *options, *handed_over], tmp_path)
    listed = run_cli(["transmit", "--list", *handed_over], tmp_path)

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("命令用法有误：")
    assert reason in result.stderr
    assert "python -m ocr confirm --help" in result.stderr
    assert "回执 R1" not in listed.stdout


def test_confirm_unknown_batch_bad_input(tmp_path: Path, handed_over: list[str]):
    result = run_cli(["confirm", "99", "--by", "李娜", "--receipt", "R1", *handed_over], tmp_path)

    assert result.returncode == ExitCode.BAD_INPUT, result.stderr
    assert "找不到批次 99" in result.stderr
