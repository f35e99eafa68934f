"""Batch names: new batches take only names that make safe file names, and exports of older ones stay in --out."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from ocr.batchname import MAX_BATCH_NAME_BYTES, MAX_BATCH_NAME_LENGTH, batch_file_stem, check_batch_name
from ocr.export import export_batch
from ocr.review import approve_card
from ocr.store import Store
from card_builders import build_extraction, sample_scan_png, truth_values

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["2026-12-04", "2026-12-04 早班", "前台 A 组", "团队_0412", "长" * MAX_BATCH_NAME_LENGTH])
def test_batch_name_accepted(name: str):
    assert check_batch_name(f"  {name} ") == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("2026/12/04 早班", "不能包含 '/'"),
        ("..\\escaped", "不能包含 '\\\\'"),
        ("a:b", "不能包含 ':'"),
        ("tab\there", "不能包含 '\\t'"),
        (".hidden", "不能以 . 开头"),
        ("   ", "不能为空"),
        ("长" * (MAX_BATCH_NAME_LENGTH + 1), f"最多 {MAX_BATCH_NAME_LENGTH} 个"),
        # 64 characters of 4 bytes each: within the character count, but too long as a file name.
        ("\U00020000" * MAX_BATCH_NAME_LENGTH, f"最多 {MAX_BATCH_NAME_BYTES} 字节"),
    ],
)
def test_batch_name_rejected(name: str, reason: str):
    with pytest.raises(ValueError) as raised:
        check_batch_name(name)

    chinese, _, english = str(raised.value).partition(" / ")
    assert reason in chinese
    assert english


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("2026-12-04 早班", "2026-12-04 早班"),
        ("2026/12/04 早班", "2026_12_04 早班"),
        ("../escaped", "_escaped"),
        ("..", "batch"),
        ("a\x00b", "a_b"),
    ],
)
def test_batch_file_stem(name: str, stem: str):
    assert batch_file_stem(name) == stem


def test_batch_file_stem_length():
    assert len(batch_file_stem("长" * 200)) == MAX_BATCH_NAME_LENGTH
    assert len(batch_file_stem("\U00020000" * 64).encode("utf-8")) <= MAX_BATCH_NAME_BYTES


@pytest.mark.parametrize("batch", ["2026/12/04 早班", "../escaped", "名" * 100, "\U00020000" * 64])
def test_export_old_batch_name_stays_in_out(tmp_path: Path, store_url: str, batch: str):
    # A batch stored before names were checked: its export files must land inside --out.
    store = Store(url=store_url, data_dir=tmp_path / "data")
    png = sample_scan_png()
    extraction = build_extraction("domestic_guest", truth_values("card_03_domestic_printed"), "a.png", ())
    card_id = store.add_card(
        batch=batch,
        content_key=f"{hashlib.sha256(batch.encode()).hexdigest()}:1",
        extraction=extraction,
        original_png=png,
        straight_png=png,
    )
    approve_card(store, card_id, actor="王芳", expected_version=store.get_card(card_id).version)
    out = tmp_path / "deep" / "out"

    files = export_batch(store, batch, "csv", out, actor="李娜")

    assert len(files) == 1
    assert files[0].parent == out
    assert files[0].name.startswith(batch_file_stem(batch) + "_domestic_guest_")
    assert sorted(path.name for path in (tmp_path / "deep").iterdir()) == ["out"]
    store.close()


def test_ingest_rejects_batch_with_slash(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "ocr", "ingest", str(PROJECT_ROOT / "sample_cards" / "samples"), "--batch", "2026/12/04"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )

    assert result.returncode == 2, result.stderr
    assert "批次名不能包含 '/'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "ocr-data").exists()
