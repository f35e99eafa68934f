"""OCR workers on the PostgreSQL task queue: scans queued by ``ingest --queue``, read by ``worker``.

Every job is claimed by one worker, a scan processed twice keeps one card, a
scan left without a job is queued again, and ``status`` shows what waits.
These tests need a PostgreSQL server in ``HUKA_TEST_POSTGRES_URL``; ``.ci/run``
starts one, and without it they are skipped.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.engine import make_url

from ocr.errors import StoreError
from ocr.queue import QueuedScanRow, enqueue_paths, process_queued_scan, requeue_failed
from ocr.store import AuditRow, CardRow, ScanRow, Store
from ocr.worker import QueueSettings, ScanQueue
from sample_cards import SAMPLES_DIR

POSTGRES_URL_VARIABLE = "HUKA_TEST_POSTGRES_URL"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUBPROCESS_TIMEOUT_S = 300
SAMPLES = ["card_01_foreign_printed.jpg", "card_03_domestic_printed.jpg"]

needs_postgres = pytest.mark.skipif(
    not os.environ.get(POSTGRES_URL_VARIABLE),
    reason=f"{POSTGRES_URL_VARIABLE} is not set, so there is no PostgreSQL server for the task queue (.ci/run starts one)",
)


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """Yield the URL of a new PostgreSQL schema for the store; drop it and its queue schema afterwards."""
    if not os.environ.get(POSTGRES_URL_VARIABLE):
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set, so there is no PostgreSQL server for the task queue (.ci/run starts one)")
    server = make_url(os.environ[POSTGRES_URL_VARIABLE])
    schema = f"test_worker_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield server.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}_queue" CASCADE'))
        admin.dispose()


@pytest.fixture()
def stack(tmp_path: Path) -> Path:
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in SAMPLES:
        shutil.copy(SAMPLES_DIR / name, folder / name)
    return folder


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), HUKA_LANG="zh", HUKA_OCR_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "ocr", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S
    )


def queue_jobs(url: str) -> list[tuple[str, int]]:
    """Return (status, scan id) of every job in the store's queue schema."""
    settings = QueueSettings.from_db_url(url)
    engine = create_engine(make_url(url).set(query={}))
    with engine.connect() as connection:
        rows = connection.execute(
            text(f'SELECT status, (args->>\'scan_id\')::int FROM "{settings.schema}".procrastinate_jobs ORDER BY id')
        ).all()
    engine.dispose()
    return [(status, scan_id) for status, scan_id in rows]


def counts(store: Store) -> dict[str, int]:
    with store.session() as session:
        return {
            "scans": session.scalar(select(func.count(ScanRow.id))),
            "cards": session.scalar(select(func.count(CardRow.id))),
            "audit": session.scalar(select(func.count(AuditRow.id))),
        }


def queue_rows(store: Store) -> list[tuple[int, str, int]]:
    with store.session() as session:
        rows = session.execute(
            select(QueuedScanRow.scan_id, QueuedScanRow.state, QueuedScanRow.attempts).order_by(QueuedScanRow.scan_id)
        )
        return [tuple(row) for row in rows]


def test_queue_schema_from_search_path():
    settings = QueueSettings.from_db_url("postgresql://u:p@127.0.0.1:5432/db?options=-csearch_path%3Dhotel_a")

    assert settings.schema == "hotel_a_queue"
    assert settings.options == "-c search_path=hotel_a_queue"
    assert settings.conninfo == "postgresql://u:p@127.0.0.1:5432/db"


def test_queue_schema_default():
    assert QueueSettings.from_db_url("postgresql+psycopg://u@host/db").schema == "huka_queue"


def test_queue_needs_postgres():
    with pytest.raises(StoreError) as raised:
        QueueSettings.from_db_url("sqlite:///tmp/cards.db")

    assert "PostgreSQL" in raised.value.message_zh


@needs_postgres
def test_ingest_queue_then_worker(pg_url: str, stack: Path, tmp_path: Path):
    data = str(tmp_path / "data")
    shutil.copy(stack / SAMPLES[0], stack / "z_rescan.jpg")

    queued = run_cli(["ingest", str(stack), "--queue", "--batch", "b1", "--db", pg_url, "--data-dir", data], tmp_path)

    assert queued.returncode == 0, queued.stderr
    assert "已排队 2 张" in queued.stdout
    assert "重复" in queued.stderr
    # The rescan's page has no card yet, so the message names the queued scan, not a card 0.
    assert "已在队列中（扫描页" in queued.stderr
    assert "卡片 0" not in queued.stderr
    store = Store(url=pg_url, data_dir=data)
    assert counts(store) == {"scans": 2, "cards": 0, "audit": 0}
    assert [state for _, state, _ in queue_rows(store)] == ["queued", "queued"]
    assert sorted(status for status, _ in queue_jobs(pg_url)) == ["todo", "todo"]
    status = run_cli(["status", "--db", pg_url, "--data-dir", data], tmp_path)
    assert "b1：排队等待识别 2 张，识别失败 0 张" in status.stdout
    assert "b1：还没有卡片，2 张扫描页在排队等待 worker 识别" in status.stdout
    assert "没有批次" not in status.stdout

    worker = run_cli(["worker", "--once", "--processes", "1", "--db", pg_url, "--data-dir", data], tmp_path)

    assert worker.returncode == 0, worker.stderr
    assert counts(store)["cards"] == 2
    assert [(state, attempts) for _, state, attempts in queue_rows(store)] == [("done", 1), ("done", 1)]
    # Successful jobs are deleted; nothing is left to do.
    assert queue_jobs(pg_url) == []
    assert [card.batch for card in store.list_cards()] == ["b1", "b1"]
    check = run_cli(["check", "--db", pg_url, "--data-dir", data], tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr


@needs_postgres
def test_processing_twice_changes_nothing(pg_url: str, stack: Path, tmp_path: Path):
    from ocr.engines import get_engine
    from ocr.pipeline import process_page

    store = Store(url=pg_url, data_dir=tmp_path / "data")
    report = enqueue_paths([stack / SAMPLES[0]], store, batch="b1")
    scan_id = report.scan_ids[0]
    reads: list[int] = []

    def read(page, engine_name):
        reads.append(scan_id)
        return process_page(page, engine=get_engine(engine_name))

    first = process_queued_scan(store, scan_id, read)
    before = counts(store)
    second = process_queued_scan(store, scan_id, read)

    assert first.action == "stored"
    assert second.action == "had_card"
    assert second.card_id == first.card_id
    assert counts(store) == before
    assert reads == [scan_id]


@needs_postgres
def test_failing_scan_marked_failed(pg_url: str, stack: Path, tmp_path: Path):
    store = Store(url=pg_url, data_dir=tmp_path / "data")
    scan_id = enqueue_paths([stack / SAMPLES[0]], store, batch="b1").scan_ids[0]

    def broken(page, engine_name):
        raise ValueError("engine crashed")

    for _attempt in range(2):
        with pytest.raises(ValueError):
            process_queued_scan(store, scan_id, broken)
    last = process_queued_scan(store, scan_id, broken)

    assert last.action == "failed"
    assert queue_rows(store) == [(scan_id, "failed", 3)]
    with store.session() as session:
        assert session.scalar(select(QueuedScanRow.last_error)) == "ValueError: engine crashed"
    assert counts(store)["cards"] == 0


@needs_postgres
def test_failed_attempt_logs_reason(pg_url: str, stack: Path, tmp_path: Path, caplog):
    store = Store(url=pg_url, data_dir=tmp_path / "data")
    scan_id = enqueue_paths([stack / SAMPLES[0]], store, batch="b1").scan_ids[0]

    def broken(page, engine_name):
        raise StoreError("扫描图像已损坏。", "the scan image is damaged")

    with caplog.at_level(logging.ERROR, logger="ocr.queue"), pytest.raises(StoreError):
        process_queued_scan(store, scan_id, broken)

    messages = [record.getMessage() for record in caplog.records if record.name == "ocr.queue"]
    assert messages == [f"queued scan attempt 1 failed scan={scan_id}: the scan image is damaged"]


@needs_postgres
def test_failed_scan_retried(pg_url: str, stack: Path, tmp_path: Path):
    from ocr.engines import get_engine
    from ocr.pipeline import process_page

    store = Store(url=pg_url, data_dir=tmp_path / "data")
    scan_id = enqueue_paths([stack / SAMPLES[0]], store, batch="b1").scan_ids[0]
    with store.session() as session:
        session.execute(update(QueuedScanRow).values(state="failed", attempts=3))

    assert requeue_failed(store) == [scan_id]
    assert queue_rows(store) == [(scan_id, "queued", 0)]
    outcome = process_queued_scan(store, scan_id, lambda page, name: process_page(page, engine=get_engine(name)))

    assert outcome.action == "stored"
    assert queue_rows(store) == [(scan_id, "done", 1)]


@needs_postgres
def test_scan_without_job_queued_again(pg_url: str, stack: Path, tmp_path: Path):
    data = tmp_path / "data"
    store = Store(url=pg_url, data_dir=data)
    ScanQueue(pg_url).ensure_schema()
    # As if the station was killed after storing the scan and before queueing its job.
    enqueue_paths([stack / SAMPLES[0]], store, batch="b1")
    assert queue_jobs(pg_url) == []
    time.sleep(1.5)

    worker = run_cli(
        ["worker", "--once", "--processes", "1", "--stall-timeout", "1", "--db", pg_url, "--data-dir", str(data)], tmp_path
    )

    assert worker.returncode == 0, worker.stderr
    assert counts(store)["cards"] == 1
    assert [state for _, state, _ in queue_rows(store)] == ["done"]


@needs_postgres
def test_two_workers_claim_each_job_once(pg_url: str, tmp_path: Path):
    data = tmp_path / "data"
    folder = tmp_path / "four"
    folder.mkdir()
    for name in ["card_01_foreign_printed.jpg", "card_03_domestic_printed.jpg", "card_06_foreign_printed.jpg", "card_09_domestic_printed.jpg"]:
        shutil.copy(SAMPLES_DIR / name, folder / name)
    assert run_cli(["ingest", str(folder), "--queue", "--db", pg_url, "--data-dir", str(data)], tmp_path).returncode == 0

    worker = run_cli(["worker", "--once", "--processes", "2", "--db", pg_url, "--data-dir", str(data)], tmp_path)

    assert worker.returncode == 0, worker.stderr
    store = Store(url=pg_url, data_dir=data)
    assert counts(store)["cards"] == 4
    # One attempt per scan: no job was run by both workers.
    assert [(state, attempts) for _, state, attempts in queue_rows(store)] == [("done", 1)] * 4
    with store.session() as session:
        extracted = session.execute(
            select(AuditRow.card_id, func.count(AuditRow.id)).where(AuditRow.action == "extracted").group_by(AuditRow.card_id)
        ).all()
    assert sorted(count for _, count in extracted) == [1, 1, 1, 1]


@needs_postgres
def test_worker_process_replaced_after_its_jobs(pg_url: str, stack: Path, tmp_path: Path):
    data = str(tmp_path / "data")
    assert run_cli(["ingest", str(stack), "--queue", "--db", pg_url, "--data-dir", data], tmp_path).returncode == 0

    worker = run_cli(
        ["-v", "worker", "--once", "--processes", "1", "--jobs-per-process", "1", "--db", pg_url, "--data-dir", data],
        tmp_path,
    )

    assert worker.returncode == 0, worker.stderr
    # Each process read one scan and made way for the next: two processes for two scans, and a
    # third that found the queue empty.
    recycled = re.findall(r"worker stopped name=worker-0 pid=(\d+) recycled=True", worker.stderr)
    assert len(recycled) == 2, worker.stderr
    assert len(set(recycled)) == 2, worker.stderr
    store = Store(url=pg_url, data_dir=data)
    assert counts(store)["cards"] == 2
    assert [(state, attempts) for _, state, attempts in queue_rows(store)] == [("done", 1), ("done", 1)]
    assert queue_jobs(pg_url) == []


@needs_postgres
def test_worker_without_shared_folder_stops(pg_url: str, stack: Path, tmp_path: Path):
    data = str(tmp_path / "data")
    assert run_cli(["ingest", str(stack), "--queue", "--db", pg_url, "--data-dir", data], tmp_path).returncode == 0

    worker = run_cli(["worker", "--once", "--processes", "1", "--db", pg_url, "--data-dir", str(tmp_path / "local")], tmp_path)

    assert worker.returncode == 6, worker.stderr
    assert "不是此数据库的数据目录" in worker.stderr
    # The scans wait in the queue, untouched, for a worker with the shared folder.
    store = Store(url=pg_url, data_dir=data)
    assert [(state, attempts) for _, state, attempts in queue_rows(store)] == [("queued", 0), ("queued", 0)]


@needs_postgres
def test_rejected_worker_creates_no_folder(pg_url: str, stack: Path, tmp_path: Path):
    shared = tmp_path / "data"
    assert run_cli(["ingest", str(stack), "--queue", "--db", pg_url, "--data-dir", str(shared)], tmp_path).returncode == 0
    existing = tmp_path / "empty"
    existing.mkdir()
    env = {name: value for name, value in os.environ.items() if name not in ("HUKA_DATA_DIR", "HUKA_DB_URL")}
    env.update(PYTHONPATH=str(PROJECT_ROOT), HUKA_LANG="zh", HUKA_OCR_THREADS="1")
    worker = ["worker", "--once", "--processes", "1", "--db", pg_url]

    for folder_args in ([], ["--data-dir", str(tmp_path / "not" / "mounted")], ["--data-dir", str(existing)]):
        done = subprocess.run(
            [sys.executable, "-m", "ocr", *worker, *folder_args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S,
        )

        assert done.returncode == 6, done.stderr
        assert "不是此数据库的数据目录" in done.stderr
        # The start is announced only after the data folder passed.
        assert "worker 启动" not in done.stdout + done.stderr

    # Neither the default ./ocr-data nor a path with missing parents is left behind, and a folder that
    # existed before is kept as it was.
    assert not (tmp_path / "ocr-data").exists()
    assert not (tmp_path / "not").exists()
    assert existing.is_dir()
    assert list(existing.iterdir()) == []


def _children(pid: int) -> list[int]:
    """Return the ids of the processes whose parent is ``pid``, from /proc."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue
        if f"PPid:\t{pid}" in lines:
            found.append(int(status.parent.name))
    return found


@needs_postgres
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is a Linux prctl")
def test_worker_child_ends_with_parent(pg_url: str, tmp_path: Path):
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), HUKA_LANG="zh", HUKA_OCR_THREADS="1")
    data = str(tmp_path / "data")
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "ocr", "worker", "--processes", "1", "--jobs-per-process", "0", "--db", pg_url, "--data-dir", data],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    children: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not children and time.monotonic() < deadline and supervisor.poll() is None:
            time.sleep(0.2)
            children = _children(supervisor.pid)
        assert children, "the worker process did not start"

        supervisor.kill()
        supervisor.wait(timeout=10)

        deadline = time.monotonic() + 30
        while Path(f"/proc/{children[0]}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not Path(f"/proc/{children[0]}").exists(), "the worker process outlived its killed parent"
    finally:
        supervisor.kill()
        # A child that outlived the parent is no longer listed under it: end it by its id.
        for child in children:
            if Path(f"/proc/{child}").exists():
                os.kill(child, signal.SIGKILL)


@needs_postgres
def test_worker_reads_encrypted_scan(pg_url: str, stack: Path, tmp_path: Path, monkeypatch):
    from ocr.crypto import generate_key
    from ocr.engines import get_engine
    from ocr.pipeline import process_page

    monkeypatch.setenv("HUKA_ENCRYPTION_KEY", generate_key())
    store = Store(url=pg_url, data_dir=tmp_path / "data")
    report = enqueue_paths([stack / SAMPLES[0]], store, batch="b1")
    scan_id = report.scan_ids[0]
    with store.session() as session:
        stored = Path(session.get(ScanRow, scan_id).image_path).read_bytes()

    outcome = process_queued_scan(store, scan_id, lambda page, name: process_page(page, engine=get_engine(name)))

    assert not stored.startswith(b"\x89PNG"), "the queued scan should be stored encrypted"
    assert outcome.action == "stored"
    assert store.get_card(outcome.card_id).card_type == "foreign_guest"
