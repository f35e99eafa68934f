"""Outbox, batches and manifests on a real SQLite store and on PostgreSQL, without any delivery."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from models.card import CardStatus
from ocr.errors import ConfigError, StaleVersionError
from ocr.review import correct_fields, reject_card
from ocr.store import OutboxRow, Store
from ocr.transmit import outbox
from ocr.transmit.batches import SCHEMA_VERSION, record_checksum
from ocr.transmit.config import Config, TransmitConfig, load_config, read_token
from ocr.transmit.runner import ensure_files
from test_transmit_support import REGISTRY, REVIEWER, Cards, domestic_values, foreign_values, sample_png, write_config

DAY = "2025-12-15"


@pytest.fixture(scope="module")
def png() -> bytes:
    return sample_png()


@pytest.fixture()
def cards(tmp_path: Path, store_url: str, png: bytes) -> Iterator[Cards]:
    store = Store(url=store_url, data_dir=tmp_path / "data")
    yield Cards(store, png)
    store.close()


def entries(store: Store) -> list[OutboxRow]:
    with store.session() as session:
        return list(session.scalars(select(OutboxRow).order_by(OutboxRow.id)).all())


def config(file_format: str = "csv") -> Config:
    return Config(transmit=TransmitConfig(adapter="folder", file_format=file_format, hotel_id="H001"))


def test_approval_queues_one_original(cards: Cards):
    card_id = cards.add(foreign_values("0012345", DAY))

    rows = entries(cards.store)
    assert len(rows) == 1
    assert rows[0].card_id == card_id
    assert rows[0].kind == "original"
    assert rows[0].state == "pending"


def test_unapproved_card_not_queued(cards: Cards):
    cards.add(foreign_values("0012345", DAY), approve=False)

    assert entries(cards.store) == []


def test_stale_approval_queues_nothing(cards: Cards):
    card_id = cards.add(foreign_values("0012345", DAY), approve=False)
    stale = cards.store.get_card(card_id).version - 1

    with pytest.raises(StaleVersionError):
        cards.store.set_status(card_id, CardStatus.APPROVED, actor=REVIEWER, expected_version=stale)

    assert entries(cards.store) == []


def test_reapproval_keeps_one_pending_entry(cards: Cards):
    card_id = cards.add(foreign_values("0012345", DAY))
    version = cards.store.get_card(card_id).version
    version = cards.store.set_status(card_id, CardStatus.NEEDS_REVIEW, actor=REVIEWER, expected_version=version)
    cards.store.set_status(card_id, CardStatus.APPROVED, actor=REVIEWER, expected_version=version)

    assert len(entries(cards.store)) == 1


def test_rejected_card_not_batched(cards: Cards):
    card_id = cards.add(foreign_values("0012345", DAY))
    reject_card(cards.store, card_id, actor=REVIEWER, expected_version=cards.store.get_card(card_id).version, kind="rescan")

    assert outbox.form_batches(cards.store, config(), REGISTRY, "folder") == []
    assert entries(cards.store)[0].state == "pending"


def test_change_before_send_is_no_correction(cards: Cards):
    card_id = cards.add(foreign_values("0012345", DAY))
    correct_fields(
        cards.store, card_id, {"room_number": "1209"}, actor=REVIEWER,
        expected_version=cards.store.get_card(card_id).version, registry=REGISTRY,
    )

    rows = entries(cards.store)
    assert [row.kind for row in rows] == ["original"]


def test_change_after_send_queues_correction(cards: Cards):
    card_id = cards.add(foreign_values("0012345", DAY))
    outbox.form_batches(cards.store, config(), REGISTRY, "folder")

    correct_fields(
        cards.store, card_id, {"room_number": "1209"}, actor=REVIEWER,
        expected_version=cards.store.get_card(card_id).version, registry=REGISTRY,
    )

    original, correction = entries(cards.store)
    assert correction.kind == "correction"
    assert correction.corrects_id == original.id
    assert correction.state == "pending"


def test_reject_after_send_queues_cancellation(cards: Cards):
    card_id = cards.add(foreign_values("0012345", DAY))
    outbox.form_batches(cards.store, config(), REGISTRY, "folder")

    reject_card(
        cards.store, card_id, actor=REVIEWER, expected_version=cards.store.get_card(card_id).version,
        kind="front_desk", note="护照号与证件不符",
    )
    original, cancellation = entries(cards.store)
    batch_ids = outbox.form_batches(cards.store, config(), REGISTRY, "folder")

    assert cancellation.kind == "cancellation"
    assert cancellation.corrects_id == original.id
    assert len(batch_ids) == 1
    batch = outbox.get_batch(cards.store, str(batch_ids[0]))
    assert batch.kind == "cancellation"
    assert batch.card_ids == [card_id]
    assert batch.records[0]["record_kind"] == "cancellation"
    assert batch.records[0]["corrects_record_id"] == original.id
    assert outbox.form_batches(cards.store, config(), REGISTRY, "folder") == []


def test_reject_replaces_unsent_correction(cards: Cards):
    card_id = cards.add(foreign_values("0012345", DAY))
    outbox.form_batches(cards.store, config(), REGISTRY, "folder")
    version = correct_fields(
        cards.store, card_id, {"room_number": "1209"}, actor=REVIEWER,
        expected_version=cards.store.get_card(card_id).version, registry=REGISTRY,
    )

    reject_card(cards.store, card_id, actor=REVIEWER, expected_version=version, kind="rescan")

    assert [row.kind for row in entries(cards.store)] == ["original", "cancellation"]


def test_reject_before_send_sends_nothing(cards: Cards):
    card_id = cards.add(foreign_values("0012345", DAY))

    reject_card(
        cards.store, card_id, actor=REVIEWER, expected_version=cards.store.get_card(card_id).version, kind="rescan"
    )

    assert [row.kind for row in entries(cards.store)] == ["original"]
    assert outbox.form_batches(cards.store, config(), REGISTRY, "folder") == []


def test_batches_per_type_date_and_kind(cards: Cards):
    cards.add(foreign_values("0012345", DAY))
    cards.add(foreign_values("0012346", DAY))
    cards.add(foreign_values("0012350", "2025-12-16"))
    cards.add(domestic_values("0000101", DAY), card_type="domestic_guest")

    batch_ids = outbox.form_batches(cards.store, config(), REGISTRY, "folder")

    batches = outbox.list_batches(cards.store)
    assert len(batch_ids) == 3
    keys = {(b.card_type, b.arrival_date, b.kind): len(b.records) for b in batches}
    assert keys == {
        ("foreign_guest", DAY, "original"): 2,
        ("foreign_guest", "2025-12-16", "original"): 1,
        ("domestic_guest", DAY, "original"): 1,
    }
    assert len({b.idempotency_key for b in batches}) == 3


def test_manifest_serials_gaps_and_checksums(cards: Cards):
    for serial in ("0012345", "0012348", "0012346"):
        cards.add(foreign_values(serial, DAY))
    outbox.form_batches(cards.store, config(), REGISTRY, "folder")
    (batch,) = outbox.list_batches(cards.store)

    manifest = batch.manifest
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["count"] == 3
    assert manifest["serial_first"] == "0012345"
    assert manifest["serial_last"] == "0012348"
    assert manifest["serial_gaps"] == ["0012347"]
    assert manifest["serial_gap_count"] == 1
    assert manifest["hotel_id"] == "H001"
    checksums = {r["record_id"]: r["sha256"] for r in manifest["records"]}
    for record in batch.records:
        assert checksums[record["record_id"]] == record_checksum(record)


def test_serial_sent_earlier_is_no_gap(cards: Cards):
    cards.add(foreign_values("0012345", DAY))
    outbox.form_batches(cards.store, config(), REGISTRY, "folder")
    cards.add(foreign_values("0012344", DAY))
    cards.add(foreign_values("0012346", DAY))

    outbox.form_batches(cards.store, config(), REGISTRY, "folder")

    second = outbox.list_batches(cards.store)[-1]
    assert second.manifest["serial_first"] == "0012344"
    assert second.manifest["serial_gaps"] == []


def test_csv_file_has_bom_and_keys(cards: Cards):
    card_id = cards.add(foreign_values("0012345", DAY))
    outbox.form_batches(cards.store, config("csv"), REGISTRY, "folder")
    (batch,) = outbox.list_batches(cards.store)

    files = ensure_files(cards.store, config("csv"), REGISTRY, batch)

    data = files.data_file.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0]["card_id"] == str(card_id)
    assert rows[0]["card_serial"] == "0012345"
    assert rows[0]["guest_category"] == "foreign"
    assert list(rows[0])[:3] == ["record_id", "record_kind", "corrects_record_id"]
    assert json.loads(files.manifest_file.read_text(encoding="utf-8"))["file"]["bytes"] == len(data)
    assert oct(files.data_file.stat().st_mode & 0o777) == "0o600"


def test_xlsx_file_has_two_header_rows(cards: Cards):
    cards.add(foreign_values("0012345", DAY, room_number="=1+1"))
    outbox.form_batches(cards.store, config("xlsx"), REGISTRY, "folder")
    (batch,) = outbox.list_batches(cards.store)

    files = ensure_files(cards.store, config("xlsx"), REGISTRY, batch)

    sheet = load_workbook(files.data_file).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "记录编号"
    assert rows[1][0] == "record_id"
    record = dict(zip(rows[1], rows[2]))
    assert record["card_serial"] == "0012345"
    assert record["room_number"] == "'=1+1"


def test_jsonl_file_matches_records(cards: Cards):
    cards.add(foreign_values("0012345", DAY))
    outbox.form_batches(cards.store, config("jsonl"), REGISTRY, "folder")
    (batch,) = outbox.list_batches(cards.store)

    files = ensure_files(cards.store, config("jsonl"), REGISTRY, batch)

    lines = files.data_file.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == batch.records


def test_acknowledgement_kept_once(cards: Cards):
    cards.add(foreign_values("0012345", DAY))
    (batch_id,) = outbox.form_batches(cards.store, config(), REGISTRY, "folder")

    first = outbox.mark_acknowledged(cards.store, batch_id, by="https", receipt="R1", acknowledgement={"n": 1})
    second = outbox.mark_acknowledged(cards.store, batch_id, by="https", receipt="R2", acknowledgement={"n": 2})

    assert first is True
    assert second is False
    batch = outbox.get_batch(cards.store, str(batch_id))
    assert batch.receipt == "R1"
    assert entries(cards.store)[0].state == "acknowledged"


# Config and credentials.


def test_config_defaults_without_file(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HUKA_CONFIG", raising=False)

    loaded = load_config()

    assert loaded.source is None
    assert loaded.transmit.adapter is None
    assert loaded.deadline.hours == 24


def test_config_from_environment(tmp_path: Path, monkeypatch):
    path = write_config(tmp_path / "hukacapture.toml", adapter="https", url="https://office.example/api", timeout=5)
    monkeypatch.setenv("HUKA_CONFIG", str(path))

    loaded = load_config()

    assert loaded.transmit.adapter == "https"
    assert loaded.transmit.timeout == 5
    assert loaded.archive.retention_days == 30


@pytest.mark.parametrize(
    "values",
    [
        {"adapter": "fax"},
        {"adapter": "https", "url": "http://office.example/api"},
        {"adapter": "https", "retries": 0},
        {"adapter": "folder", "format": "pdf"},
    ],
)
def test_config_invalid_value_rejected(tmp_path: Path, values: dict):
    path = write_config(tmp_path / "hukacapture.toml", **values)

    with pytest.raises(ConfigError) as error:
        load_config(path)

    assert "配置文件" in error.value.message_zh


def test_credentials_file_open_to_group_rejected(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("HUKA_TRANSMIT_TOKEN", raising=False)
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    os.chmod(secret, 0o640)

    with pytest.raises(ConfigError) as error:
        read_token(TransmitConfig(credentials_file=secret))

    assert "权限过宽" in error.value.message_zh
    assert "chmod 600" in error.value.message_zh
    assert "s3cret" not in error.value.message_zh


def test_credentials_file_owner_only_read(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("HUKA_TRANSMIT_TOKEN", raising=False)
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    os.chmod(secret, 0o600)

    assert read_token(TransmitConfig(credentials_file=secret)) == "s3cret"


def test_token_from_environment_first(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HUKA_TRANSMIT_TOKEN", "from-env")

    assert read_token(TransmitConfig(credentials_file=tmp_path / "missing")) == "from-env"


def test_manifest_created_at_in_utc(cards: Cards):
    cards.add(foreign_values("0012345", DAY))
    before = datetime.now(UTC).replace(microsecond=0)
    outbox.form_batches(cards.store, config(), REGISTRY, "folder")

    created = datetime.fromisoformat(outbox.list_batches(cards.store)[0].manifest["created_at"])
    assert created.tzinfo is not None
    assert created >= before
