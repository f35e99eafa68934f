"""Corrections and rejections of exported cards, on a real SQLite store and on PostgreSQL.

An exported card may still be corrected or rejected. The next export writes it
again as a correction, or writes its cancellation, and a card whose record was
sent gets a correction or cancellation in the transmission outbox.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from models.card import CardStatus
from ocr.export import ExportError, export_batch
from ocr.review import EXPORTED_CORRECTION_NOTE, correct_fields, reject_card
from ocr.store import OutboxRow, Store
from ocr.transmit import outbox
from ocr.transmit.config import Config, TransmitConfig
from card_builders import REGISTRY, build_extraction, sample_scan_png, truth_values

BATCH = "2025-12-15"
REVIEWER = "王芳"
EXPORTER = "李娜"
FOREIGN = truth_values("card_01_foreign_printed")


@pytest.fixture()
def store(tmp_path: Path, store_url: str) -> Iterator[Store]:
    store = Store(url=store_url, data_dir=tmp_path / "data")
    yield store
    store.close()


def add_exported_card(store: Store, out: Path) -> int:
    """Store a clean foreign-guest card and export it, so it is in state exported."""
    extraction = build_extraction("foreign_guest", dict(FOREIGN), "/scans/exported.jpg")
    png = sample_scan_png()
    card_id = store.add_card(
        batch=BATCH,
        content_key=f"{hashlib.sha256(b'exported').hexdigest()}:1",
        extraction=extraction,
        original_png=png,
        straight_png=png,
    )
    export_batch(store, BATCH, "csv", out, actor=EXPORTER)
    assert store.get_card(card_id).status == CardStatus.EXPORTED
    return card_id


def send(store: Store) -> None:
    """Put the pending outbox entries in batches, as `transmit` does before delivery."""
    config = Config(transmit=TransmitConfig(adapter="folder", file_format="csv", hotel_id="H001"))
    outbox.form_batches(store, config, REGISTRY, "folder")


def outbox_entries(store: Store) -> list[OutboxRow]:
    with store.session() as session:
        return list(session.scalars(select(OutboxRow).order_by(OutboxRow.id)).all())


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_correct_exported_card_reexports(store, tmp_path):
    card_id = add_exported_card(store, tmp_path / "first")

    correct_fields(
        store, card_id, {"room_number": "B1633"}, actor=REVIEWER, expected_version=store.get_card(card_id).version
    )

    card = store.get_card(card_id)
    assert card.status == CardStatus.APPROVED
    assert card.fields["room_number"].value == "B1633"
    events = store.audit_events(card_id)
    statuses = [(e.actor, e.old_value, e.new_value) for e in events if e.action == "status"]
    assert statuses[-1] == (REVIEWER, CardStatus.EXPORTED, CardStatus.APPROVED)
    notes = [e.new_value for e in events if e.action == "note"]
    assert notes == [EXPORTED_CORRECTION_NOTE]

    (path,) = export_batch(store, BATCH, "csv", tmp_path / "second", actor=EXPORTER)

    assert "_correction_" in path.name
    (row,) = read_rows(path)
    assert int(row["card_id"]) == card_id
    assert row["room_number"] == "B1633"
    assert store.get_card(card_id).status == CardStatus.EXPORTED
    # Exported once, corrected, exported again: nothing is left for a third export.
    with pytest.raises(ExportError):
        export_batch(store, BATCH, "csv", tmp_path / "third", actor=EXPORTER)


def test_correct_exported_unsent_card_keeps_original(store, tmp_path):
    card_id = add_exported_card(store, tmp_path / "first")

    correct_fields(
        store, card_id, {"room_number": "B1633"}, actor=REVIEWER, expected_version=store.get_card(card_id).version
    )

    # Nothing was sent yet: the one pending original is sent with the corrected values.
    (entry,) = outbox_entries(store)
    assert entry.kind == "original"
    assert entry.state == "pending"


def test_correct_exported_sent_card_queues_correction(store, tmp_path):
    card_id = add_exported_card(store, tmp_path / "first")
    send(store)

    correct_fields(
        store, card_id, {"room_number": "B1633"}, actor=REVIEWER, expected_version=store.get_card(card_id).version
    )

    original, correction = outbox_entries(store)
    assert correction.kind == "correction"
    assert correction.corrects_id == original.id
    assert correction.state == "pending"
    assert store.get_card(card_id).status == CardStatus.APPROVED


def test_exported_card_bad_correction_needs_review(store, tmp_path):
    card_id = add_exported_card(store, tmp_path / "first")
    arrival = FOREIGN["arrival_date"]
    # Departure one year before arrival breaks departure_date >= arrival_date.
    departure = f"{int(arrival[:4]) - 1}{arrival[4:]}"

    correct_fields(
        store, card_id, {"departure_date": departure}, actor=REVIEWER, expected_version=store.get_card(card_id).version
    )

    assert store.get_card(card_id).status == CardStatus.NEEDS_REVIEW
    with pytest.raises(ExportError):
        export_batch(store, BATCH, "csv", tmp_path / "second", actor=EXPORTER)


def test_unchanged_exported_card_stays_exported(store, tmp_path):
    card_id = add_exported_card(store, tmp_path / "first")
    version = store.get_card(card_id).version

    correct_fields(store, card_id, {"room_number": FOREIGN["room_number"]}, actor=REVIEWER, expected_version=version)

    assert store.get_card(card_id).status == CardStatus.EXPORTED


def test_reject_exported_card_exports_cancellation(store, tmp_path):
    card_id = add_exported_card(store, tmp_path / "first")

    reject_card(
        store, card_id, actor=REVIEWER, expected_version=store.get_card(card_id).version, kind="rescan", note="重复入库"
    )
    (path,) = export_batch(store, BATCH, "csv", tmp_path / "second", actor=EXPORTER)

    assert store.get_card(card_id).status == CardStatus.REJECTED
    assert "_cancellation_" in path.name
    assert [int(row["card_id"]) for row in read_rows(path)] == [card_id]
    cancellations = [e for e in store.audit_events(card_id) if e.action == "export_cancellation"]
    assert len(cancellations) == 1
    assert cancellations[0].actor == EXPORTER
    assert Path(cancellations[0].new_value) == path
    # The cancellation is written once.
    with pytest.raises(ExportError):
        export_batch(store, BATCH, "csv", tmp_path / "third", actor=EXPORTER)


def test_reject_exported_sent_card_queues_cancellation(store, tmp_path):
    card_id = add_exported_card(store, tmp_path / "first")
    send(store)

    reject_card(
        store, card_id, actor=REVIEWER, expected_version=store.get_card(card_id).version, kind="front_desk", note="护照号不符"
    )

    original, cancellation = outbox_entries(store)
    assert cancellation.kind == "cancellation"
    assert cancellation.corrects_id == original.id
    assert cancellation.state == "pending"


def test_reject_unexported_card_no_cancellation(store, tmp_path):
    extraction = build_extraction("foreign_guest", dict(FOREIGN), "/scans/never.jpg", ("surname",))
    png = sample_scan_png()
    card_id = store.add_card(
        batch=BATCH, content_key=f"{'a' * 64}:1", extraction=extraction, original_png=png, straight_png=png
    )
    reject_card(store, card_id, actor=REVIEWER, expected_version=store.get_card(card_id).version, kind="rescan")

    # A card never exported has nothing to withdraw from an export file.
    with pytest.raises(ExportError):
        export_batch(store, BATCH, "csv", tmp_path / "out", actor=EXPORTER)
