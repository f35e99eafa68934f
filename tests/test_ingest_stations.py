"""Ingest under stress: racing stations, a full disk, a killed command, a rejected queue, skipped files.

The store tests run on a real SQLite file and on PostgreSQL (``store_url``).
The command tests run ``python -m ocr`` as a subprocess on the sample scans.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from models.card import Extraction, FieldResult
from ocr.errors import DuplicateScanError, ExitCode, StoreError
from ocr.store import Store
from sample_cards import SAMPLES_DIR
from test_worker import _children

COMMAND_TIMEOUT_S = 60


def _extraction() -> Extraction:
    return Extraction(
        source="scan.jpg",
        page=1,
        card_type="foreign_guest",
        fields={"surname": FieldResult(key="surname", raw_text="SMITH", value="SMITH", confidence=0.9)},
    )


def _race(calls: list) -> list[object]:
    """Run the calls in threads released together; return each call's result or raised exception."""
    start = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = calls[index]()
        except Exception as exc:  # noqa: BLE001 - the test inspects every outcome
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a station thread of the race is still running after 60 s"
    return outcomes


def _stations(store_url: str, data_dir: Path, count: int) -> list[Store]:
    """Open one store per station on the same database and data folder."""
    first = Store(url=store_url, data_dir=data_dir)
    # The first write marks the data folder; the race is about the page, not the folder.
    first.ensure_data_folder()
    return [first] + [Store(url=store_url, data_dir=data_dir) for _ in range(count - 1)]


def test_card_race_gives_duplicate(store_url: str, tmp_path: Path):
    stations = _stations(store_url, tmp_path / "data", 2)
    calls = [
        lambda store=store: store.add_card(
            batch=f"b{index}", content_key="race:1", extraction=_extraction(), original_png=b"o", straight_png=b"s"
        )
        for index, store in enumerate(stations)
    ]
    try:
        outcomes = _race(calls)

        card_ids = [outcome for outcome in outcomes if isinstance(outcome, int)]
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        assert len(card_ids) == 1, outcomes
        assert len(errors) == 1, outcomes
        assert isinstance(errors[0], DuplicateScanError), repr(errors[0])
        assert errors[0].card_id == card_ids[0]
        assert errors[0].scan_id == stations[0].find_scan_id("race:1")
        assert len(stations[0].list_cards()) == 1
        # Both stations wrote the page's images under the same names, and no temporary file stays.
        assert sorted(path.name for path in (tmp_path / "data" / "images").iterdir()) == [
            "race_p1_original.png",
            "race_p1_straight.png",
        ]
    finally:
        for store in stations:
            store.close()


def test_scan_race_gives_duplicate(store_url: str, tmp_path: Path):
    stations = _stations(store_url, tmp_path / "data", 3)
    calls = [
        lambda store=store: store.add_scan(content_key="race:2", source="scan.jpg", page=2, original_png=b"o")
        for store in stations
    ]
    try:
        outcomes = _race(calls)

        scan_ids = [outcome for outcome in outcomes if isinstance(outcome, int)]
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        assert len(scan_ids) == 1, outcomes
        assert len(errors) == 2, outcomes
        for error in errors:
            assert isinstance(error, DuplicateScanError), repr(error)
            assert error.scan_id == scan_ids[0]
            assert error.card_id is None
    finally:
        for store in stations:
            store.close()


def _full_disk_fsync(_fd: int) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_names_folder(store_url: str, tmp_path: Path, monkeypatch):
    store = Store(url=store_url, data_dir=tmp_path / "data")
    store.ensure_data_folder()
    monkeypatch.setattr("ocr.store.os.fsync", _full_disk_fsync)
    try:
        with pytest.raises(StoreError) as raised:
            store.add_card(batch="b", content_key="full:1", extraction=_extraction(), original_png=b"o", straight_png=b"s")

        assert raised.value.exit_code == ExitCode.STORE_FAILED
        assert "磁盘已满" in raised.value.message_zh
        assert str(tmp_path / "data" / "images") in raised.value.message_zh
        assert "重新运行" in raised.value.message_zh
        assert "disk is full" in raised.value.message_en
        assert store.find_scan_id("full:1") is None
        assert list((tmp_path / "data" / "images").iterdir()) == []
    finally:
        store.close()


def test_quota_exceeded_is_disk_full(tmp_path: Path, monkeypatch):
    store = Store(data_dir=tmp_path / "data")
    store.ensure_data_folder()

    def quota_fsync(_fd: int) -> None:
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr("ocr.store.os.fsync", quota_fsync)
    try:
        with pytest.raises(StoreError) as raised:
            store.add_scan(content_key="quota:1", source="scan.jpg", page=1, original_png=b"o")
        assert "磁盘已满" in raised.value.message_zh
    finally:
        store.close()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HUKA_DATA_DIR", "HUKA_DB_URL", "HUKA_LANG")}
    env["HUKA_OCR_THREADS"] = "1"
    return env


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ocr", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=COMMAND_TIMEOUT_S,
    )


def test_queue_on_sqlite_creates_nothing(tmp_path: Path):
    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(SAMPLES_DIR / "card_01_foreign_printed.jpg", scans)
    data = tmp_path / "data"

    result = _run(["ingest", str(scans), "--queue", "--data-dir", str(data)], tmp_path)

    assert result.returncode == ExitCode.STORE_FAILED, result.stderr
    assert "任务队列需要 PostgreSQL" in result.stderr
    assert "Traceback" not in result.stderr
    assert not data.exists()
    assert not (tmp_path / "ocr-data").exists()


def test_queue_into_existing_folder_adds_nothing(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("kept")

    result = _run(["ingest", str(SAMPLES_DIR / "card_01_foreign_printed.jpg"), "--queue", "--data-dir", str(data)], tmp_path)

    assert result.returncode == ExitCode.STORE_FAILED, result.stderr
    assert sorted(path.name for path in data.iterdir()) == ["notes.txt"]


def _alive(pid: int) -> bool:
    """Return whether the process runs; a zombie (dead, not yet reaped by init) counts as gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is a Linux prctl")
@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGHUP])
def test_pool_ends_with_killed_ingest(tmp_path: Path, stop_signal: int):
    scans = tmp_path / "scans"
    scans.mkdir()
    for sample in sorted(SAMPLES_DIR.glob("card_0[1-6]_*.jpg")):
        shutil.copy(sample, scans)
    command = subprocess.Popen(
        [sys.executable, "-m", "ocr", "ingest", str(scans), "--data-dir", str(tmp_path / "data"), "--workers", "2"],
        cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    children: list[int] = []
    try:
        # Two pool processes and multiprocessing's resource tracker.
        deadline = time.monotonic() + 60
        while len(children) < 3 and time.monotonic() < deadline and command.poll() is None:
            time.sleep(0.2)
            children = _children(command.pid)
        assert len(children) >= 3, f"the pool did not start: children={children} exit={command.poll()}"
        # Let the pool processes load their engine and take pages, as in a real run.
        time.sleep(3)
        children = _children(command.pid)

        command.send_signal(stop_signal)
        command.wait(timeout=10)

        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in children if _alive(pid)] == [], "pool processes outlived the stopped ingest"
    finally:
        command.kill()
        command.wait(timeout=10)
        for child in children:
            if _alive(child):
                os.kill(child, signal.SIGKILL)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupt_reports_counts(tmp_path: Path):
    scans = tmp_path / "scans"
    scans.mkdir()
    for sample in sorted(SAMPLES_DIR.glob("card_0[1-6]_*.jpg")):
        shutil.copy(sample, scans)
    data = tmp_path / "data"
    command = subprocess.Popen(
        [sys.executable, "-m", "ocr", "ingest", str(scans), "--data-dir", str(data), "--workers", "1", "--batch", "b1"],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
        # A test run started in the background inherits SIGINT ignored, and Python then keeps it ignored.
        preexec_fn=_default_sigint,
    )
    try:
        # The command prints "[n] name pN" on stderr for each page it reads; stop it during the second page.
        seen = ""
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while "[2]" not in seen and time.monotonic() < deadline:
            line = command.stderr.readline()
            if not line:
                break
            seen += line
        assert "[2]" in seen, seen
        command.send_signal(signal.SIGINT)
        stdout, stderr = command.communicate(timeout=COMMAND_TIMEOUT_S)
    finally:
        command.kill()

    assert command.returncode == ExitCode.INTERRUPTED, stderr
    assert "Traceback" not in stderr, stderr
    store = Store(data_dir=data, create=False)
    try:
        stored = len(store.list_cards(batch="b1"))
    finally:
        store.close()
    assert f"已中断：批次 b1 本次新入库 {stored} 张" in stderr, stderr
    assert "重新运行同一命令即可继续" in stderr


def test_folder_skips_reported(tmp_path: Path):
    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(SAMPLES_DIR / "card_01_foreign_printed.jpg", scans)
    (scans / "IMG_0002.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (scans / "x.jpeg.part").write_bytes(b"\xff\xd8\xff")

    result = _run(["ingest", str(scans), "--data-dir", str(tmp_path / "data"), "--workers", "1"], tmp_path)

    assert result.returncode == ExitCode.PARTIAL, result.stderr
    assert "Traceback" not in result.stderr
    assert f"无法读取文件 {scans / 'IMG_0002.HEIC'}" in result.stderr
    assert "兼容性最佳" in result.stderr
    assert f"无法读取文件 {scans / 'x.jpeg.part'}" in result.stderr
    assert "新入库 1 张" in result.stdout
    assert "读取失败 2 个" in result.stdout
