"""Hash chain of the audit log on SQLite and PostgreSQL: events written by the store, edited with plain SQL.

Cards are built from the committed samples' truth values (no OCR). Each test
writes events through the real store, changes the database the way an
attacker with database access would, and checks that ``verify_chain`` and
``python -m ocr audit verify`` find the first changed event.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading

import pytest
from sqlalchemy import text, update
from sqlalchemy.orm import Session

from card_builders import build_extraction, sample_scan_png, truth_values
from models.card import CardStatus
from ocr.audit import GENESIS_HASH, AuditChainHeadRow, event_hash, verify_chain
from ocr.errors import ExitCode
from ocr.store import AuditRow, CardRow, Store

SAMPLE = "card_01_foreign_printed"
COMMAND_TIMEOUT_S = 60
WRITER_THREADS = 2
CARDS_PER_WRITER = 4


def add_sample_card(store: Store, key: str, batch: str = "b1") -> int:
    extraction = build_extraction("foreign_guest", truth_values(SAMPLE), f"{key}.jpg")
    png = sample_scan_png()
    return store.add_card(batch=batch, content_key=f"{key}:1", extraction=extraction, original_png=png, straight_png=png)


@pytest.fixture()
def store(store_url, tmp_path):
    opened = Store(url=store_url, data_dir=tmp_path / "data")
    yield opened
    opened.close()


@pytest.fixture()
def reviewed_store(store):
    """A store with two cards, one corrected and approved by a reviewer."""
    first = add_sample_card(store, "a" * 64)
    add_sample_card(store, "b" * 64)
    card = store.get_card(first)
    results = dict(card.fields)
    results["surname"] = results["surname"].model_copy(update={"value": "SMYTHE", "needs_review": False})
    version = store.save_fields(first, {"surname": results["surname"]}, actor="clerk", expected_version=card.version)
    store.set_status(first, CardStatus.APPROVED, actor="clerk", expected_version=version)
    return store


def event_ids(store: Store) -> list[int]:
    with store.engine.connect() as connection:
        return list(connection.execute(text("SELECT id FROM audit_events ORDER BY id")).scalars())


def run_sql(store: Store, statement: str, **params) -> None:
    with store.engine.begin() as connection:
        connection.execute(text(statement), params)


def test_chain_intact_after_writes(reviewed_store):
    report = verify_chain(reviewed_store)
    ids = event_ids(reviewed_store)

    assert report.intact, report.reason_en
    assert report.events == len(ids)
    assert report.unchained == 0
    assert report.broken_event_id is None


def test_events_linked_in_chain_order(reviewed_store):
    with reviewed_store.session() as session:
        rows = session.query(AuditRow).order_by(AuditRow.chain_seq).all()
        head = session.get(AuditChainHeadRow, 1)

    assert [row.chain_seq for row in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == GENESIS_HASH
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.prev_hash == before.hash
    assert head.last_hash == rows[-1].hash
    assert head.event_count == len(rows)
    assert len({row.value_salt for row in rows}) == len(rows)


def test_changed_value_found(reviewed_store):
    target = event_ids(reviewed_store)[5]
    run_sql(reviewed_store, "UPDATE audit_events SET new_value = 'FORGED' WHERE id = :id", id=target)

    report = verify_chain(reviewed_store)

    assert report.broken_event_id == target
    assert "值被改动" in report.reason_zh


def test_changed_actor_found(reviewed_store):
    target = event_ids(reviewed_store)[-2]
    run_sql(reviewed_store, "UPDATE audit_events SET actor = 'someone else' WHERE id = :id", id=target)

    report = verify_chain(reviewed_store)

    assert report.broken_event_id == target
    assert "被改动" in report.reason_zh


def test_rehashed_event_breaks_next(reviewed_store):
    """An attacker with the algorithm rehashes the changed event: the next event's link still breaks."""
    ids = event_ids(reviewed_store)
    target = ids[3]
    with reviewed_store.session() as session:
        row = session.get(AuditRow, target)
        row.actor = "someone else"
        new_hash = event_hash(row, row.prev_hash)
        session.rollback()
    run_sql(reviewed_store, "UPDATE audit_events SET actor = 'someone else', hash = :hash WHERE id = :id", hash=new_hash, id=target)

    report = verify_chain(reviewed_store)

    assert report.broken_event_id == ids[4]
    assert "前一哈希" in report.reason_zh


def test_deleted_event_found(reviewed_store):
    ids = event_ids(reviewed_store)
    run_sql(reviewed_store, "DELETE FROM audit_events WHERE id = :id", id=ids[7])

    report = verify_chain(reviewed_store)

    assert report.broken_event_id == ids[8]


def test_deleted_last_event_found(reviewed_store):
    ids = event_ids(reviewed_store)
    run_sql(reviewed_store, "DELETE FROM audit_events WHERE id = :id", id=ids[-1])

    report = verify_chain(reviewed_store)

    assert not report.intact
    assert report.broken_event_id == ids[-2]
    assert "链头" in report.reason_zh


def test_inserted_event_found(reviewed_store):
    card_id = reviewed_store.list_cards()[0].id
    run_sql(
        reviewed_store,
        "INSERT INTO audit_events (card_id, at, actor, action, new_value) VALUES (:card, :at, 'x', 'status', 'approved')",
        card=card_id,
        at="2026-01-01 00:00:00",
    )

    report = verify_chain(reviewed_store)

    assert report.broken_event_id == event_ids(reviewed_store)[-1]
    assert "不在哈希链中" in report.reason_zh


def test_erased_values_still_verify(reviewed_store):
    card_id = reviewed_store.list_cards()[0].id
    run_sql(
        reviewed_store,
        "UPDATE audit_events SET old_value = NULL, new_value = NULL, value_salt = NULL WHERE card_id = :card",
        card=card_id,
    )

    intact = verify_chain(reviewed_store)
    target = event_ids(reviewed_store)[2]
    run_sql(reviewed_store, "UPDATE audit_events SET new_value = 'BACK' WHERE id = :id", id=target)
    broken = verify_chain(reviewed_store)

    assert intact.intact, intact.reason_en
    assert broken.broken_event_id == target


def test_events_before_chain_counted(store):
    # Events written before the chain existed have no hash and come first.
    run_sql(
        store,
        "INSERT INTO audit_events (card_id, at, actor, action) VALUES (1, '2026-01-01 00:00:00', 'old', 'extracted')",
    )
    add_sample_card(store, "c" * 64)

    report = verify_chain(store)

    assert report.intact, report.reason_en
    assert report.unchained == 1
    assert report.events == len(event_ids(store)) - 1


def test_concurrent_writers_one_chain(store_url, tmp_path, store):
    errors: list[BaseException] = []
    start = threading.Barrier(WRITER_THREADS)

    def write(writer: int) -> None:
        own = Store(url=store_url, data_dir=tmp_path / "data")
        try:
            start.wait()
            for number in range(CARDS_PER_WRITER):
                key = hashlib.sha256(f"{writer}-{number}".encode()).hexdigest()
                card_id = add_sample_card(own, key, batch=f"writer{writer}")
                own.set_status(card_id, CardStatus.REJECTED, actor=f"writer{writer}", expected_version=1)
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=write, args=(writer,)) for writer in range(WRITER_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    report = verify_chain(store)
    assert errors == []
    assert len(store.list_cards()) == WRITER_THREADS * CARDS_PER_WRITER
    assert report.intact, report.reason_en
    assert report.events == len(event_ids(store))


def run_verify(store: Store, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HUKA_DATA_DIR", "HUKA_DB_URL", "HUKA_LANG")}
    url = store.engine.url.render_as_string(hide_password=False)
    return subprocess.run(
        [sys.executable, "-m", "ocr", "audit", "verify", "--db", url, "--data-dir", str(tmp_path / "data")],
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=COMMAND_TIMEOUT_S,
    )


def test_verify_command_finds_edit(reviewed_store, tmp_path):
    before = run_verify(reviewed_store, tmp_path)
    target = event_ids(reviewed_store)[4]
    run_sql(reviewed_store, "UPDATE audit_events SET field_key = 'visa_number' WHERE id = :id", id=target)
    after = run_verify(reviewed_store, tmp_path)

    assert before.returncode == 0, before.stderr
    assert "审计日志完整" in before.stdout
    assert after.returncode == ExitCode.STORE_FAILED, after.stderr
    assert f"事件 {target}" in after.stderr
    assert "Traceback" not in after.stderr


def test_head_lock_taken_last(store, store_backend):
    """Two transactions lock cards in opposite order around their audit events: neither waits on the other.

    Had the first taken the chain head when it flushed its event, the second's
    commit would wait for the head while the first waits for the second's card.
    """
    if store_backend != "postgresql":
        pytest.skip("SQLite lets one writer in at a time, so two open write transactions cannot interleave")
    first_card = add_sample_card(store, "d" * 64)
    second_card = add_sample_card(store, "e" * 64)
    flushed = threading.Event()
    committed = threading.Event()
    errors: list[BaseException] = []

    def touch(session: Session, card_id: int, actor: str) -> None:
        session.execute(update(CardRow).where(CardRow.id == card_id).values(version=CardRow.version + 1))
        session.add(AuditRow(card_id=card_id, actor=actor, action="note", new_value="checked"))
        session.flush()

    def second() -> None:
        try:
            flushed.wait(COMMAND_TIMEOUT_S)
            with Session(store.engine) as session, session.begin():
                touch(session, second_card, "second")
            committed.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)
            committed.set()

    thread = threading.Thread(target=second)
    thread.start()
    with Session(store.engine) as session, session.begin():
        touch(session, first_card, "first")
        flushed.set()
        committed.wait(COMMAND_TIMEOUT_S)
        touch(session, second_card, "first")
    thread.join()

    report = verify_chain(store)
    assert errors == []
    assert report.intact, report.reason_en
    assert report.events == len(event_ids(store))
