"""Data folder marker: a station whose data folder is not the database's stores no scan."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import delete, func, select

from ocr.datafolder import MARKER_NAME, StoreIdentityRow, read_marker
from ocr.errors import StoreError
from ocr.store import ScanRow, Store
from sample_cards import SAMPLES_DIR

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _png() -> bytes:
    ok, data = cv2.imencode(".png", np.full((20, 30, 3), 255, dtype=np.uint8))
    assert ok
    return data.tobytes()


def _add_scan(store: Store, key: str) -> int:
    return store.add_scan(content_key=f"{key}:1", source=f"{key}.png", page=1, original_png=_png())


def _scan_count(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count(ScanRow.id)))


def _identity(store: Store) -> str | None:
    with store.session() as session:
        return session.scalar(select(StoreIdentityRow.identity))


def test_first_write_marks_folder(store_url: str, tmp_path: Path):
    store = Store(url=store_url, data_dir=tmp_path / "data")

    _add_scan(store, "a")

    marker = tmp_path / "data" / MARKER_NAME
    assert marker.is_file()
    assert stat.S_IMODE(marker.stat().st_mode) == 0o600
    assert read_marker(tmp_path / "data") == _identity(store)
    _add_scan(store, "b")
    assert _scan_count(store) == 2


def test_other_folder_rejected(store_url: str, tmp_path: Path):
    shared = Store(url=store_url, data_dir=tmp_path / "data")
    _add_scan(shared, "a")
    local = Store(url=store_url, data_dir=tmp_path / "local")

    with pytest.raises(StoreError) as raised:
        _add_scan(local, "b")

    assert str(tmp_path / "local") in raised.value.message_zh
    assert "不是此数据库的数据目录" in raised.value.message_zh
    assert "mount the shared data folder" in raised.value.message_en
    # Nothing was stored: no row, no image in either folder, no marker in the local one.
    assert _scan_count(shared) == 1
    assert list((tmp_path / "local" / "images").iterdir()) == []
    assert not (tmp_path / "local" / MARKER_NAME).exists()


def test_reading_needs_no_folder(store_url: str, tmp_path: Path):
    shared = Store(url=store_url, data_dir=tmp_path / "data")
    _add_scan(shared, "a")

    elsewhere = Store(url=store_url, data_dir=tmp_path / "elsewhere")

    assert elsewhere.list_cards() == []
    assert elsewhere.find_scan_id("a:1") is not None


def test_marker_of_other_store_rejected(new_store_url, tmp_path: Path):
    first = Store(url=new_store_url("first"), data_dir=tmp_path / "first")
    _add_scan(first, "a")
    second_url = new_store_url("second")
    second = Store(url=second_url, data_dir=tmp_path / "second")
    _add_scan(second, "b")
    shutil.copy(tmp_path / "first" / MARKER_NAME, tmp_path / "second" / MARKER_NAME)
    reopened = Store(url=second_url, data_dir=tmp_path / "second")

    with pytest.raises(StoreError) as raised:
        _add_scan(reopened, "c")

    assert "属于另一个数据库" in raised.value.message_zh
    assert _scan_count(reopened) == 1


def test_new_database_adopts_empty_folder(new_store_url, tmp_path: Path):
    old = Store(url=new_store_url("old"), data_dir=tmp_path / "folder")
    _add_scan(old, "a")
    identity = read_marker(tmp_path / "folder")
    for image in (tmp_path / "folder" / "images").iterdir():
        image.unlink()

    fresh = Store(url=new_store_url("fresh"), data_dir=tmp_path / "folder")
    _add_scan(fresh, "b")

    assert _identity(fresh) == identity
    assert read_marker(tmp_path / "folder") == identity


def test_new_database_keeps_off_scans(new_store_url, tmp_path: Path):
    # A new or recreated database must not take over a folder with another database's scans:
    # the same page would be written over under the same name.
    old = Store(url=new_store_url("old"), data_dir=tmp_path / "folder")
    _add_scan(old, "a")
    images = {path.name: path.read_bytes() for path in (tmp_path / "folder" / "images").iterdir()}
    fresh = Store(url=new_store_url("fresh"), data_dir=tmp_path / "folder")

    with pytest.raises(StoreError) as raised:
        _add_scan(fresh, "a")

    assert "属于另一个数据库" in raised.value.message_zh
    assert _identity(fresh) is None
    assert {path.name: path.read_bytes() for path in (tmp_path / "folder" / "images").iterdir()} == images


def test_sqlite_lost_marker_written_again(tmp_path: Path):
    store = Store(data_dir=tmp_path / "data")
    _add_scan(store, "a")
    (tmp_path / "data" / MARKER_NAME).unlink()
    reopened = Store(data_dir=tmp_path / "data")

    _add_scan(reopened, "b")

    assert read_marker(tmp_path / "data") == _identity(reopened)


def test_queue_with_wrong_folder_raises(store_url: str, tmp_path: Path):
    from ocr.queue import enqueue_paths

    shared = Store(url=store_url, data_dir=tmp_path / "data")
    _add_scan(shared, "a")
    local = Store(url=store_url, data_dir=tmp_path / "local")

    with pytest.raises(StoreError) as raised:
        enqueue_paths([SAMPLES_DIR / "card_01_foreign_printed.jpg"], local, batch="b")

    assert "不是此数据库的数据目录" in raised.value.message_zh
    assert _scan_count(shared) == 1


def test_check_reports_wrong_folder(store_url: str, tmp_path: Path):
    from ocr.check import check_store

    shared = Store(url=store_url, data_dir=tmp_path / "data")
    _add_scan(shared, "a")
    elsewhere = Store(url=store_url, data_dir=tmp_path / "elsewhere")

    report = check_store(elsewhere)

    assert not report.ok
    assert any("不是此数据库的数据目录" in zh for zh, _en in report.problems)
    # The bare scan has no queue entry, which check reports too; the shared folder itself passes.
    assert not any("数据目录" in zh for zh, _en in check_store(shared).problems)
    assert not (tmp_path / "elsewhere" / MARKER_NAME).exists()


def test_key_command_refuses_wrong_folder(store_url: str, tmp_path: Path, monkeypatch):
    from ocr.crypto import KEY_ENV, generate_key
    from ocr.keys import encrypt_existing

    shared = Store(url=store_url, data_dir=tmp_path / "data")
    _add_scan(shared, "a")
    images = {path.name: path.read_bytes() for path in (tmp_path / "data" / "images").iterdir()}
    monkeypatch.setenv(KEY_ENV, generate_key())
    # The share is not mounted, so the command finds an empty folder and must change nothing.
    unmounted = Store(url=store_url, data_dir=tmp_path / "unmounted", check_key=False)

    with pytest.raises(StoreError):
        encrypt_existing(unmounted)

    assert {path.name: path.read_bytes() for path in (tmp_path / "data" / "images").iterdir()} == images
    monkeypatch.delenv(KEY_ENV)
    assert Store(url=store_url, data_dir=tmp_path / "data").find_scan_id("a:1") is not None


def _store_from_before_marker(store_url: str, data_dir: Path) -> Store:
    """Return a store as a version without the check wrote it: a scan, but no identity and no marker."""
    store = Store(url=store_url, data_dir=data_dir)
    _add_scan(store, "a")
    with store.session() as session:
        session.execute(delete(StoreIdentityRow))
    (data_dir / MARKER_NAME).unlink()
    return store


def test_store_from_before_marker_upgraded(store_url: str, tmp_path: Path):
    _store_from_before_marker(store_url, tmp_path / "data")
    upgraded = Store(url=store_url, data_dir=tmp_path / "data")

    _add_scan(upgraded, "b")

    assert _scan_count(upgraded) == 2
    assert read_marker(tmp_path / "data") == _identity(upgraded)


def test_store_from_before_marker_other_folder(store_url: str, tmp_path: Path):
    # The first writer after the upgrade gives a local folder: it must not become the store's.
    store = _store_from_before_marker(store_url, tmp_path / "data")
    station = Store(url=store_url, data_dir=tmp_path / "local")

    with pytest.raises(StoreError) as raised:
        _add_scan(station, "b")

    assert "没有此数据库已有扫描件的图像" in raised.value.message_zh
    assert str(tmp_path / "local") in raised.value.message_zh
    assert not (tmp_path / "local" / MARKER_NAME).exists()
    assert _identity(station) is None
    assert _scan_count(station) == 1
    # The original folder is still accepted and marked by its next write.
    _add_scan(Store(url=store_url, data_dir=tmp_path / "data"), "c")
    assert read_marker(tmp_path / "data") == _identity(store)


def test_damaged_marker_named(store_url: str, tmp_path: Path):
    store = Store(url=store_url, data_dir=tmp_path / "data")
    _add_scan(store, "a")
    marker = tmp_path / "data" / MARKER_NAME
    marker.write_text(json.dumps({"other": 1}), encoding="utf-8")
    reopened = Store(url=store_url, data_dir=tmp_path / "data")

    with pytest.raises(StoreError) as raised:
        _add_scan(reopened, "b")

    assert str(marker) in raised.value.message_zh
    assert "内容无效" in raised.value.message_zh


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe not UTF-8"], ids=["json", "encoding"])
def test_marker_not_json_named_in_chinese(store_url: str, tmp_path: Path, content: bytes):
    store = Store(url=store_url, data_dir=tmp_path / "data")
    _add_scan(store, "a")
    marker = tmp_path / "data" / MARKER_NAME
    marker.write_bytes(content)
    reopened = Store(url=store_url, data_dir=tmp_path / "data")

    with pytest.raises(StoreError) as raised:
        _add_scan(reopened, "b")

    message_zh = raised.value.message_zh
    assert str(marker) in message_zh
    assert "不是有效的 JSON" in message_zh
    assert "从备份中恢复" in message_zh
    # The parser's English text stays out of the Chinese message; the English one keeps it.
    assert not re.search(r"[A-Za-z]{3,}", message_zh.replace(str(marker), "").replace("JSON", "").replace("ingest", ""))
    assert "invalid JSON" in raised.value.message_en
    assert len(raised.value.message_en) > len("invalid JSON") + len(str(marker)) + 40


def test_damaged_marker_deleted_sqlite(tmp_path: Path):
    store = Store(data_dir=tmp_path / "data")
    _add_scan(store, "a")
    marker = tmp_path / "data" / MARKER_NAME
    marker.write_text("{not json", encoding="utf-8")
    reopened = Store(data_dir=tmp_path / "data")

    with pytest.raises(StoreError) as raised:
        _add_scan(reopened, "b")

    # The database lies inside the folder, so deleting the marker is offered, and it works.
    assert "删除此文件" in raised.value.message_zh
    marker.unlink()
    _add_scan(Store(data_dir=tmp_path / "data"), "b")
    assert read_marker(tmp_path / "data") == _identity(reopened)


def test_unreadable_marker_named_in_chinese(store_url: str, tmp_path: Path):
    store = Store(url=store_url, data_dir=tmp_path / "data")
    _add_scan(store, "a")
    marker = tmp_path / "data" / MARKER_NAME
    marker.unlink()
    marker.mkdir()
    reopened = Store(url=store_url, data_dir=tmp_path / "data")

    with pytest.raises(StoreError) as raised:
        _add_scan(reopened, "b")

    assert str(marker) in raised.value.message_zh
    assert "无法读取" in raised.value.message_zh
    assert "Is a directory" not in raised.value.message_zh
    assert "Is a directory" in raised.value.message_en


def test_ingest_with_wrong_folder_exits(store_url: str, tmp_path: Path):
    shared = Store(url=store_url, data_dir=tmp_path / "data")
    _add_scan(shared, "a")
    shared.close()
    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(SAMPLES_DIR / "card_01_foreign_printed.jpg", scans / "card.jpg")
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), HUKA_LANG="zh", HUKA_OCR_THREADS="1")

    done = subprocess.run(
        [sys.executable, "-m", "ocr", "ingest", str(scans), "--workers", "1", "--db", store_url, "--data-dir", str(tmp_path / "local")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )

    assert done.returncode == 6, done.stdout + done.stderr
    assert "不是此数据库的数据目录" in done.stderr
    assert _scan_count(Store(url=store_url, data_dir=tmp_path / "data")) == 1
    # The rejected folder did not exist before, and it is not left behind.
    assert not (tmp_path / "local").exists()


def _race(store_url: str, folders: list[Path]) -> list[BaseException | None]:
    """Open the store from each folder in its own thread and write a scan, all at once; return each outcome."""
    start = threading.Barrier(len(folders))
    outcomes: list[BaseException | None] = [None] * len(folders)

    def write(index: int) -> None:
        store = None
        try:
            store = Store(url=store_url, data_dir=folders[index])
            # A thread that failed to open breaks the barrier for the others instead of leaving them waiting.
            start.wait(timeout=60)
            _add_scan(store, f"k{index}")
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            outcomes[index] = exc
            start.abort()
        finally:
            if store is not None:
                store.close()

    threads = [threading.Thread(target=write, args=(index,)) for index in range(len(folders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a store thread of the race is still running after 120 s"
    return outcomes


def test_new_store_shared_folder_race(store_url: str, tmp_path: Path):
    outcomes = _race(store_url, [tmp_path / "data"] * 4)

    assert outcomes == [None] * 4
    store = Store(url=store_url, data_dir=tmp_path / "data")
    assert _scan_count(store) == 4
    assert read_marker(tmp_path / "data") == _identity(store)
    assert [path.name for path in (tmp_path / "data").iterdir() if path.name.startswith(MARKER_NAME)] == [MARKER_NAME]


def test_new_store_two_folders_race(store_url: str, tmp_path: Path):
    # Neither folder contains the SQLite database, which would make it the store's folder.
    folders = [tmp_path / "one", tmp_path / "two"]

    outcomes = _race(store_url, folders)

    # One folder became the store's; the other was rejected and keeps no marker.
    assert sum(outcome is None for outcome in outcomes) == 1
    loser = outcomes.index(next(outcome for outcome in outcomes if outcome is not None))
    assert isinstance(outcomes[loser], StoreError)
    assert "不是此数据库的数据目录" in outcomes[loser].message_zh
    assert not (folders[loser] / MARKER_NAME).exists()
    store = Store(url=store_url, data_dir=folders[1 - loser])
    assert read_marker(folders[1 - loser]) == _identity(store)
    assert _scan_count(store) == 1


def test_sqlite_lost_marker_passes_check(tmp_path: Path):
    from ocr.check import check_store
    from ocr.datafolder import check_data_folder

    store = Store(data_dir=tmp_path / "data")
    _add_scan(store, "a")
    store.close()
    (tmp_path / "data" / MARKER_NAME).unlink()
    reader = Store(data_dir=tmp_path / "data", create=False)

    check_data_folder(reader, create=False)
    report = check_store(reader)

    assert not any("数据目录" in message_zh for message_zh, _message_en in report.problems)
    # Opened with create off, nothing is written: the next ingest writes the marker again.
    assert not (tmp_path / "data" / MARKER_NAME).exists()


def test_marker_fifo_rejected(tmp_path: Path):
    folder = tmp_path / "data"
    folder.mkdir()
    os.mkfifo(folder / MARKER_NAME)

    with pytest.raises(StoreError) as raised:
        read_marker(folder)

    assert "不是普通文件" in raised.value.message_zh


def test_marker_with_bom_read(tmp_path: Path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / MARKER_NAME).write_bytes(b"\xef\xbb\xbf" + json.dumps({"store": "abc123"}).encode())

    assert read_marker(folder) == "abc123"
