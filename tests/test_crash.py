"""Crash safety: processes killed with SIGKILL at random points, then restarted.

Each test kills a real process (and its children, as a power cut would) at
seeded random moments during ingest, OCR by a queue worker, review saves and
transmission. After every kill the store must pass ``check_store`` (SQLite's
integrity check, or the same relations by query on PostgreSQL), and what the
killed process reported as done must be in the store. After the last, complete
run no scan, field, correction or approval is lost or stored twice.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from models.card import CardStatus
from ocr.check import check_store
from ocr.queue import QueuedScanRow
from ocr.registry import load_registry
from ocr.store import AuditRow, CardRow, FieldRow, OutboxRow, ScanRow, Store
from ocr.worker import QueueSettings
from sample_cards import SAMPLES_DIR
from test_transmit_support import Cards, ReceiverServer, Receiver, foreign_values, sample_png, write_config
from test_worker import pg_url  # noqa: F401 - the fixture of a new PostgreSQL schema, dropped after the test

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEED = 20261204
SUBPROCESS_TIMEOUT_S = 300
INGEST_SAMPLES = [
    "card_01_foreign_printed.jpg",
    "card_03_domestic_printed.jpg",
    "card_04_domestic_handwriting.jpg",
    "card_06_foreign_printed.jpg",
]


def child_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), HUKA_LANG="zh", HUKA_OCR_THREADS="1", NO_PROXY="127.0.0.1")


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    """Start a command in its own process group, so a kill reaches its pool or worker children too."""
    return subprocess.Popen(
        args, cwd=cwd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process and every process of its group, and wait for it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate(timeout=SUBPROCESS_TIMEOUT_S)


def run_to_end(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S)


def assert_consistent(store: Store) -> None:
    report = check_store(store)
    assert report.problems == []


def file_key(path: Path) -> str:
    return f"{hashlib.sha256(path.read_bytes()).hexdigest()}:1"


def test_ingest_killed_at_random_points(tmp_path: Path):
    rng = random.Random(SEED)
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in INGEST_SAMPLES:
        shutil.copy(SAMPLES_DIR / name, folder / name)
    expected_keys = {file_key(folder / name) for name in INGEST_SAMPLES}
    data = tmp_path / "data"
    # Two OCR processes: the kill also hits the pool, and the parent's store writes.
    command = [sys.executable, "-m", "ocr", "ingest", str(folder), "--batch", "b1", "--data-dir", str(data), "--workers", "2"]
    registry = load_registry()

    for _round in range(3):
        process = start(command, tmp_path)
        time.sleep(rng.uniform(2.0, 14.0))
        kill_group(process)
        if not (data / "cards.db").exists():
            continue
        store = Store(data_dir=data)
        assert_consistent(store)
        with store.session() as session:
            keys = session.scalars(select(ScanRow.content_key)).all()
        assert len(keys) == len(set(keys))
        assert set(keys) <= expected_keys
        store.close()

    final = run_to_end(command, tmp_path)

    assert final.returncode == 0, final.stderr
    store = Store(data_dir=data)
    assert_consistent(store)
    with store.session() as session:
        keys = session.scalars(select(ScanRow.content_key)).all()
        cards = session.execute(select(CardRow.id, CardRow.card_type)).all()
        field_counts = dict(
            session.execute(select(FieldRow.card_id, func.count(FieldRow.id)).group_by(FieldRow.card_id)).all()
        )
    assert sorted(keys) == sorted(expected_keys)
    assert len(cards) == len(INGEST_SAMPLES)
    for card_id, card_type in cards:
        assert field_counts[card_id] == len(registry.card_type(card_type).fields)


def job_states(url: str) -> list[str]:
    schema = QueueSettings.from_db_url(url).schema
    engine = create_engine(make_url(url).set(query={}))
    with engine.connect() as connection:
        states = connection.execute(text(f'SELECT status FROM "{schema}".procrastinate_jobs')).scalars().all()
    engine.dispose()
    return list(states)


def test_worker_killed_during_ocr(pg_url: str, tmp_path: Path):
    rng = random.Random(SEED + 1)
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in INGEST_SAMPLES[:3]:
        shutil.copy(SAMPLES_DIR / name, folder / name)
    data = str(tmp_path / "data")
    where = ["--db", pg_url, "--data-dir", data]
    queued = run_to_end([sys.executable, "-m", "ocr", "ingest", str(folder), "--queue", *where], tmp_path)
    assert queued.returncode == 0, queued.stderr
    worker = [sys.executable, "-m", "ocr", "worker", "--processes", "1", "--stall-timeout", "2", *where]
    store = Store(url=pg_url, data_dir=data)

    for _round in range(2):
        process = start(worker, tmp_path)
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
        while "doing" not in job_states(pg_url) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        # Somewhere inside the card: reading the image, OCR, or the store transaction.
        time.sleep(rng.uniform(0.0, 3.0))
        kill_group(process)
        assert_consistent(store)
        # Wait until the dead worker's heartbeat is older than the stall timeout.
        time.sleep(2.5)

    final = run_to_end([*worker, "--once"], tmp_path)

    assert final.returncode == 0, final.stderr
    assert_consistent(store)
    with store.session() as session:
        cards = session.scalars(select(CardRow.scan_id)).all()
        states = session.scalars(select(QueuedScanRow.state)).all()
        extracted = session.scalar(select(func.count(AuditRow.id)).where(AuditRow.action == "extracted"))
    assert sorted(cards) == sorted(set(cards))
    assert len(cards) == 3
    assert states == ["done"] * 3
    assert extracted == 3
    assert "doing" not in job_states(pg_url)
    assert "todo" not in job_states(pg_url)


REVIEW_CHILD = """
import sys
from models.card import CardStatus
from ocr.review import approve_card, correct_fields
from ocr.store import Store

url, data, log_path, ids = sys.argv[1], sys.argv[2], sys.argv[3], [int(x) for x in sys.argv[4].split(",")]
store = Store(url=url, data_dir=data)
with open(log_path, "a", encoding="utf-8") as log:
    for card_id in ids:
        target = str(8000 + card_id)
        card = store.get_card(card_id)
        if card.status == CardStatus.APPROVED:
            continue
        if card.fields["room_number"].value != target:
            correct_fields(store, card_id, {"room_number": target}, actor="crash-test", expected_version=card.version)
            log.write(f"correct {card_id}\\n")
            log.flush()
        card = store.get_card(card_id)
        approve_card(store, card_id, actor="crash-test", expected_version=card.version)
        log.write(f"approve {card_id}\\n")
        log.flush()
"""


def logged(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [(line.split()[0], int(line.split()[1])) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def assert_logged_work_kept(store: Store, log_path: Path) -> None:
    """Every correction and approval the child reported as done is in the store."""
    for action, card_id in logged(log_path):
        card = store.get_card(card_id)
        if action == "correct":
            assert card.fields["room_number"].value == str(8000 + card_id)
        else:
            assert card.status == CardStatus.APPROVED


def test_review_save_killed_at_random_points(store_url: str, tmp_path: Path):
    rng = random.Random(SEED + 2)
    data = tmp_path / "data"
    store = Store(url=store_url, data_dir=data)
    cards = Cards(store, sample_png())
    ids = [cards.add(foreign_values(f"00{5000 + n}", "2025-12-15"), approve=False) for n in range(30)]
    log_path = tmp_path / "done.log"
    command = [sys.executable, "-c", REVIEW_CHILD, store_url, str(data), str(log_path), ",".join(map(str, ids))]

    for _round in range(4):
        process = start(command, tmp_path)
        time.sleep(rng.uniform(1.0, 4.0))
        kill_group(process)
        assert_consistent(store)
        assert_logged_work_kept(store, log_path)

    final = run_to_end(command, tmp_path)

    assert final.returncode == 0, final.stderr
    assert_consistent(store)
    assert_logged_work_kept(store, log_path)
    with store.session() as session:
        corrections = dict(
            session.execute(
                select(AuditRow.card_id, func.count(AuditRow.id))
                .where(AuditRow.action == "correct", AuditRow.field_key == "room_number")
                .group_by(AuditRow.card_id)
            ).all()
        )
        approvals = dict(
            session.execute(
                select(AuditRow.card_id, func.count(AuditRow.id))
                .where(AuditRow.action == "status", AuditRow.new_value == str(CardStatus.APPROVED))
                .group_by(AuditRow.card_id)
            ).all()
        )
        outbox = dict(
            session.execute(select(OutboxRow.card_id, func.count(OutboxRow.id)).group_by(OutboxRow.card_id)).all()
        )
    assert corrections == {card_id: 1 for card_id in ids}
    assert approvals == {card_id: 1 for card_id in ids}
    assert outbox == {card_id: 1 for card_id in ids}
    for card_id in ids:
        card = store.get_card(card_id)
        assert card.status == CardStatus.APPROVED
        assert card.fields["room_number"].value == str(8000 + card_id)


def test_transmission_killed_at_random_points(store_url: str, tmp_path: Path, monkeypatch):
    rng = random.Random(SEED + 3)
    monkeypatch.setenv("HUKA_TRANSMIT_TOKEN", "test-token-123")
    data = tmp_path / "data"
    store = Store(url=store_url, data_dir=data)
    cards = Cards(store, sample_png())
    # One batch per arrival date, so a run sends several requests one after another.
    for day in range(4):
        cards.add(foreign_values(f"00{7000 + day}", f"2025-12-{10 + day:02d}"))
    receiver = Receiver(script=["delay:0.6"] * 8)

    with ReceiverServer(receiver) as server:
        config = write_config(
            tmp_path / "hukacapture.toml", adapter="https", url=server.url, timeout=10.0, retries=2, backoff=0.01, hotel_id="H001"
        )
        command = [sys.executable, "-m", "ocr", "transmit", "--config", str(config), "--db", store_url, "--data-dir", str(data)]
        for _round in range(3):
            process = start(command, tmp_path)
            time.sleep(rng.uniform(1.5, 4.5))
            kill_group(process)
            assert_consistent(store)
        final = run_to_end(command, tmp_path)

    assert final.returncode == 0, final.stderr
    assert_consistent(store)
    with store.session() as session:
        states = session.execute(select(OutboxRow.id, OutboxRow.state)).all()
    assert {state for _, state in states} == {"acknowledged"}
    assert receiver.count_by_record() == {entry_id: 1 for entry_id, _ in states}
