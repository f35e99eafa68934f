"""Integrity check (``python -m ocr check``): a sound store passes, and each kind of damage is reported."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text, update

from ocr.check import check_store
from ocr.errors import ExitCode
from ocr.store import CardRow, ScanRow, Store
from test_transmit_support import Cards, foreign_values, sample_png

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def cards(store_url: str, tmp_path: Path) -> Cards:
    store = Store(url=store_url, data_dir=tmp_path / "data")
    cards = Cards(store, sample_png())
    cards.add(foreign_values("0012345", "2025-12-15"))
    cards.add(foreign_values("0012346", "2025-12-15"), approve=False)
    return cards


def run_check(store_url: str, data: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), HUKA_LANG="zh")
    return subprocess.run(
        [sys.executable, "-m", "ocr", "check", "--db", store_url, "--data-dir", str(data), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_sound_store_passes(cards: Cards, store_url: str, tmp_path: Path):
    report = check_store(cards.store)

    assert report.problems == []
    assert report.counts["cards"] == 2
    assert report.counts["scans"] == 2
    assert report.counts["approvals"] == 1
    assert report.counts["outbox_entries"] == 1
    assert report.counts["image_files"] == 4
    result = run_check(store_url, tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert "检查通过" in result.stdout
    assert "卡片 2" in result.stdout


def test_missing_image_reported(cards: Cards, store_url: str, tmp_path: Path):
    detail = cards.store.get_card(1)
    Path(detail.straight_image).unlink()

    result = run_check(store_url, tmp_path / "data")

    assert result.returncode == ExitCode.STORE_FAILED
    assert "1 个图像文件缺失或为空" in result.stderr
    assert str(Path(detail.straight_image).name) in result.stderr


def test_approved_card_without_outbox_reported(cards: Cards):
    with cards.store.session() as session:
        session.execute(text("DELETE FROM transmit_outbox"))

    report = check_store(cards.store)

    assert len(report.problems) == 1
    assert "已审核的卡片没有进入上报队列：1 处" in report.problems[0][0]


def test_card_left_extracted_reported(cards: Cards):
    with cards.store.session() as session:
        session.execute(update(CardRow).where(CardRow.id == 2).values(status="extracted"))

    report = check_store(cards.store)

    assert [zh.split("：")[0] for zh, _en in report.problems] == ["卡片停在“已提取”状态（入库事务未完成）"]


def test_scan_without_card_reported(cards: Cards):
    with cards.store.session() as session:
        session.add(ScanRow(content_key="f" * 64 + ":1", source="/scans/x.jpg", page=1, image_path=str(cards.store.image_dir / "x.png")))

    report = check_store(cards.store)

    problems = [zh for zh, _en in report.problems]
    assert any(zh.startswith("扫描页既没有卡片也不在识别队列中：1 处") for zh in problems)
    assert any(zh.startswith("1 个图像文件缺失或为空") for zh in problems)


def test_damaged_sqlite_file_reported(tmp_path: Path):
    store = Store(data_dir=tmp_path / "data")
    Cards(store, sample_png()).add(foreign_values("0012345", "2025-12-15"))
    store.close()
    database = tmp_path / "data" / "cards.db"
    # Fold the write-ahead log into the file, then overwrite pages in the middle of it.
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = database.stat().st_size
    with open(database, "r+b") as handle:
        handle.seek(size // 2)
        handle.write(b"\xff" * 4096)

    result = run_check(f"sqlite:///{database}", tmp_path / "data")

    assert result.returncode == ExitCode.STORE_FAILED
    assert "数据库文件已损坏" in result.stderr
    assert "Traceback" not in result.stderr


def test_copied_store_checks_own_folder(tmp_path: Path):
    # A copy of an SQLite store whose rows still name the original folder's files.
    original = Store(data_dir=tmp_path / "original")
    Cards(original, sample_png()).add(foreign_values("0012345", "2025-12-15"))
    original.close()
    shutil.copytree(tmp_path / "original", tmp_path / "copy")
    copied_files = sorted((tmp_path / "copy" / "images").iterdir())
    copied_files[0].unlink()

    copy = Store(data_dir=tmp_path / "copy")
    report = check_store(copy)
    copy.close()

    assert report.problems, "the image missing from the copy's own folder must be reported"
    assert "1 个图像文件缺失或为空" in report.problems[0][0]
    assert (tmp_path / "original" / "images" / copied_files[0].name).is_file()


def test_folder_in_image_place_reported(cards: Cards, store_url: str, tmp_path: Path):
    detail = cards.store.get_card(1)
    image = Path(detail.straight_image)
    image.unlink()
    image.mkdir()

    report = check_store(cards.store)

    assert any("1 个图像文件缺失或为空" in message_zh for message_zh, _message_en in report.problems)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: b"garbage", "不是 PNG 图像"),
        (lambda data: data[:-40], "PNG 数据已损坏"),
        (lambda data: data[:60] + bytes([data[60] ^ 0xFF]) + data[61:], "PNG 数据已损坏"),
    ],
    ids=["garbage", "truncated", "flipped byte"],
)
def test_damaged_image_reported(cards: Cards, store_url: str, tmp_path: Path, damage, reason: str):
    image = Path(cards.store.get_card(1).straight_image)
    image.write_bytes(damage(image.read_bytes()))

    result = run_check(store_url, tmp_path / "data")

    assert result.returncode == ExitCode.STORE_FAILED, result.stderr
    assert "1 个图像文件已损坏或无法解密" in result.stderr
    assert f"{image}（{reason}）" in result.stderr


def test_undecryptable_image_reported(tmp_path: Path, monkeypatch):
    from ocr.crypto import KEY_ENV, generate_key

    key = generate_key()
    monkeypatch.setenv(KEY_ENV, key)
    store = Store(data_dir=tmp_path / "data")
    Cards(store, sample_png()).add(foreign_values("0012345", "2025-12-15"))
    image = Path(store.get_card(1).straight_image)
    data = bytearray(image.read_bytes())
    data[-5] ^= 0x01
    image.write_bytes(bytes(data))
    store.close()

    report = check_store(Store(data_dir=tmp_path / "data", create=False))

    assert any("1 个图像文件已损坏或无法解密" in zh and "无法用当前密钥解密" in zh for zh, _en in report.problems), report.problems
