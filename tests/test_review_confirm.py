"""Values confirmed as true, duplicate card serials and reason texts, on a real SQLite store and on PostgreSQL.

The cards are built from the truth of the committed sample cards and run
through the real validation and confidence decision before Store.add_card, so
no OCR engine runs here.
"""

from __future__ import annotations

import csv
import datetime
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.card import CardStatus
from ocr.errors import StaleVersionError
from ocr.export import ExportError, export_batch
from ocr.review import (
    CONFIRM_NOTE_ACTION,
    DUPLICATE_SERIAL_CODE,
    ReviewError,
    approve_card,
    confirm_values,
    correct_fields,
    mark_illegible,
    reject_card,
)
from ocr.registry import load_registry
from ocr.store import Store
from ocr.transmit.config import load_config
from ocr.transmit.outbox import approve_auto_accepted
from ocr.transmit.runner import run_transmit
from test_transmit_support import write_config
from card_builders import card_adder, sample_scan_png, truth_values

BATCH = "2025-12-15"
REVIEWER = "王芳"
EXPORTER = "李娜"
FOREIGN = truth_values("card_01_foreign_printed")
DOMESTIC = truth_values("card_03_domestic_printed")
CONFIRMED_VISA = "confirmed:valid_until_before_departure"
NOTE = "客人签证在离店前两天到期，已告知前台提醒续签"


def days_before(iso: str, days: int) -> str:
    return (datetime.date.fromisoformat(iso) - datetime.timedelta(days=days)).isoformat()


# The guest's visa really ends two days before the booked departure.
EXPIRING = dict(FOREIGN, valid_until=days_before(FOREIGN["departure_date"], 2))


@pytest.fixture()
def store(tmp_path: Path, store_url: str) -> Iterator[Store]:
    store = Store(url=store_url, data_dir=tmp_path / "data")
    yield store
    store.close()


@pytest.fixture()
def add_card(store: Store):
    """Return a function that stores a built card and returns its id."""
    return card_adder(store, sample_scan_png(), BATCH, "confirm")


def version_of(store: Store, card_id: int) -> int:
    return store.get_card(card_id).version


# Confirming a rule problem as true


def test_expiring_visa_blocks_approval(store, add_card):
    card_id = add_card("foreign_guest", dict(EXPIRING))
    version = correct_fields(
        store,
        card_id,
        {"valid_until": EXPIRING["valid_until"], "departure_date": EXPIRING["departure_date"]},
        actor=REVIEWER,
        expected_version=version_of(store, card_id),
    )

    with pytest.raises(ReviewError) as raised:
        approve_card(store, card_id, actor=REVIEWER, expected_version=version)

    assert "确认属实" in raised.value.message_zh
    assert store.get_card(card_id).status == CardStatus.NEEDS_REVIEW


def test_confirmed_visa_approves_with_audit(store, add_card):
    card_id = add_card("foreign_guest", dict(EXPIRING))

    version = confirm_values(store, card_id, note=NOTE, actor=REVIEWER, expected_version=version_of(store, card_id))
    approve_card(store, card_id, actor=REVIEWER, expected_version=version)

    card = store.get_card(card_id)
    assert card.status == CardStatus.APPROVED
    for key in ("valid_until", "departure_date"):
        field = card.fields[key]
        assert not field.needs_review, key
        assert CONFIRMED_VISA in field.reason_codes, key
        assert "审核人已确认原卡无误" in field.reason, key
        assert field.value == EXPIRING[key], key
    events = store.audit_events(card_id)
    notes = [e for e in events if e.action == CONFIRM_NOTE_ACTION]
    assert len(notes) == 1
    assert notes[0].actor == REVIEWER
    assert notes[0].new_value == NOTE
    assert notes[0].old_value == "valid_until_before_departure"
    confirmed = sorted(e.field_key for e in events if e.action == "confirm_rule")
    assert confirmed == ["departure_date", "valid_until"]


def test_confirmed_note_in_export(store, add_card, tmp_path):
    card_id = add_card("foreign_guest", dict(EXPIRING))
    version = confirm_values(store, card_id, note=NOTE, actor=REVIEWER, expected_version=version_of(store, card_id))
    approve_card(store, card_id, actor=REVIEWER, expected_version=version)

    (path,) = export_batch(store, BATCH, "csv", tmp_path / "out", actor=EXPORTER)

    with open(path, encoding="utf-8-sig", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["review_notes"] == f"valid_until_before_departure: {NOTE}"


def test_confirm_requires_reason(store, add_card):
    card_id = add_card("foreign_guest", dict(EXPIRING))
    before = store.audit_events(card_id)

    with pytest.raises(ReviewError) as raised:
        confirm_values(store, card_id, note="  ", actor=REVIEWER, expected_version=version_of(store, card_id))

    assert "原因" in raised.value.message_zh
    assert store.audit_events(card_id) == before


def test_format_rule_cannot_be_confirmed(store, add_card):
    true_id = DOMESTIC["id_number"]
    wrong_id = true_id[:17] + ("0" if true_id[17] != "0" else "1")
    card_id = add_card("domestic_guest", dict(DOMESTIC, id_number=wrong_id))
    version = version_of(store, card_id)

    with pytest.raises(ReviewError):
        confirm_values(store, card_id, note=NOTE, actor=REVIEWER, expected_version=version)
    with pytest.raises(ReviewError):
        approve_card(store, card_id, actor=REVIEWER, expected_version=version)

    assert not [e for e in store.audit_events(card_id) if e.action == CONFIRM_NOTE_ACTION]
    assert store.get_card(card_id).fields["id_number"].needs_review


def test_confirm_leaves_other_problems_open(store, add_card):
    # The visa problem can be confirmed, the invalid birth date cannot.
    card_id = add_card("foreign_guest", dict(EXPIRING, date_of_birth="1983-02-30"))

    version = confirm_values(store, card_id, note=NOTE, actor=REVIEWER, expected_version=version_of(store, card_id))

    card = store.get_card(card_id)
    assert not card.fields["valid_until"].needs_review
    assert card.fields["date_of_birth"].needs_review
    with pytest.raises(ReviewError) as raised:
        approve_card(store, card_id, actor=REVIEWER, expected_version=version)
    assert "出生日期" in raised.value.message_zh


def test_changed_date_voids_confirmation(store, add_card):
    card_id = add_card("foreign_guest", dict(EXPIRING))
    version = confirm_values(store, card_id, note=NOTE, actor=REVIEWER, expected_version=version_of(store, card_id))

    # A later departure still fails the rule, but the confirmation was for the other date.
    later = days_before(EXPIRING["departure_date"], -3)
    version = correct_fields(store, card_id, {"departure_date": later}, actor=REVIEWER, expected_version=version)

    card = store.get_card(card_id)
    for key in ("valid_until", "departure_date"):
        assert card.fields[key].needs_review, key
        assert CONFIRMED_VISA not in card.fields[key].reason_codes, key
    with pytest.raises(ReviewError):
        approve_card(store, card_id, actor=REVIEWER, expected_version=version)


def test_confirm_stale_version_changes_nothing(store, add_card):
    card_id = add_card("foreign_guest", dict(EXPIRING))
    stale = version_of(store, card_id)
    correct_fields(store, card_id, {"room_number": "B1633"}, actor="李娜", expected_version=stale)

    with pytest.raises(StaleVersionError):
        confirm_values(store, card_id, note=NOTE, actor=REVIEWER, expected_version=stale)

    assert store.get_card(card_id).fields["valid_until"].needs_review
    assert not [e for e in store.audit_events(card_id) if e.action == CONFIRM_NOTE_ACTION]


# Duplicate card serials


def test_duplicate_serial_blocks_approval(store, add_card):
    first = add_card("foreign_guest", dict(FOREIGN), low_confidence=("room_number",))
    second = add_card("foreign_guest", dict(FOREIGN), low_confidence=("room_number",))

    with pytest.raises(ReviewError) as raised:
        approve_card(store, second, actor=REVIEWER, expected_version=version_of(store, second))

    message = raised.value.message_zh
    assert f"卡片 {first}" in message
    assert "编号" in message
    for key in ("surname", "given_names", "document_number"):
        assert FOREIGN[key] not in message, key
    assert store.get_card(second).status == CardStatus.NEEDS_REVIEW


def test_duplicate_cleared_by_rejecting_other(store, add_card):
    first = add_card("foreign_guest", dict(FOREIGN), low_confidence=("room_number",))
    second = add_card("foreign_guest", dict(FOREIGN), low_confidence=("room_number",))

    reject_card(store, first, actor=REVIEWER, expected_version=version_of(store, first), kind="rescan", note="重复入库")
    approve_card(store, second, actor=REVIEWER, expected_version=version_of(store, second))

    assert store.get_card(second).status == CardStatus.APPROVED


def test_duplicate_confirmed_distinct_approves(store, add_card):
    first = add_card("foreign_guest", dict(FOREIGN), low_confidence=("room_number",))
    second = add_card("foreign_guest", dict(FOREIGN), low_confidence=("room_number",))

    note = "两张卡为同一编号的不同客人，前台已核实"
    version = confirm_values(store, second, note=note, actor=REVIEWER, expected_version=version_of(store, second))
    serial = store.get_card(second).fields["card_serial"]
    assert f"confirmed:{DUPLICATE_SERIAL_CODE}" in serial.reason_codes
    assert f"卡片 {first}" in serial.reason
    approve_card(store, second, actor=REVIEWER, expected_version=version)

    assert store.get_card(second).status == CardStatus.APPROVED
    notes = [e for e in store.audit_events(second) if e.action == CONFIRM_NOTE_ACTION]
    assert [(e.actor, e.old_value, e.new_value) for e in notes] == [(REVIEWER, DUPLICATE_SERIAL_CODE, note)]


def test_duplicate_flag_on_correction(store, add_card):
    first = add_card("foreign_guest", dict(FOREIGN))
    second = add_card("foreign_guest", dict(FOREIGN, card_serial="0099999"), low_confidence=("card_serial",))

    # The reviewer types the serial of the other card.
    correct_fields(
        store, second, {"card_serial": FOREIGN["card_serial"]}, actor=REVIEWER, expected_version=version_of(store, second)
    )

    serial = store.get_card(second).fields["card_serial"]
    assert serial.needs_review
    assert DUPLICATE_SERIAL_CODE in serial.reason_codes
    assert f"卡片 {first}" in serial.reason


def test_other_card_type_serial_no_duplicate(store, add_card):
    add_card("foreign_guest", dict(FOREIGN))
    domestic = add_card("domestic_guest", dict(DOMESTIC, card_serial=FOREIGN["card_serial"]), low_confidence=("room_number",))

    approve_card(store, domestic, actor=REVIEWER, expected_version=version_of(store, domestic))

    assert store.get_card(domestic).status == CardStatus.APPROVED


def test_export_holds_auto_accepted_duplicates(store, add_card, tmp_path):
    first = add_card("foreign_guest", dict(FOREIGN))
    second = add_card("foreign_guest", dict(FOREIGN))
    assert store.get_card(first).status == CardStatus.AUTO_ACCEPTED
    assert store.get_card(second).status == CardStatus.AUTO_ACCEPTED

    with pytest.raises(ExportError):
        export_batch(store, BATCH, "csv", tmp_path / "out", actor=EXPORTER)

    for card_id, other in ((first, second), (second, first)):
        card = store.get_card(card_id)
        assert card.status == CardStatus.NEEDS_REVIEW, card_id
        assert DUPLICATE_SERIAL_CODE in card.fields["card_serial"].reason_codes, card_id
        assert f"卡片 {other}" in card.fields["card_serial"].reason, card_id
        flags = [e for e in store.audit_events(card_id) if e.action == "duplicate"]
        assert [e.field_key for e in flags] == ["card_serial"], card_id


def test_transmit_approval_holds_duplicates(store, add_card):
    # transmit approves auto-accepted cards itself: a card scanned twice must not be sent twice.
    first = add_card("foreign_guest", dict(FOREIGN))
    second = add_card("foreign_guest", dict(FOREIGN))
    single = add_card("foreign_guest", dict(FOREIGN, card_serial="0038570"))

    approved = approve_auto_accepted(store, load_registry())

    assert approved == 1
    assert store.get_card(single).status == CardStatus.APPROVED
    for card_id in (first, second):
        assert store.get_card(card_id).status == CardStatus.NEEDS_REVIEW, card_id
        assert DUPLICATE_SERIAL_CODE in store.get_card(card_id).fields["card_serial"].reason_codes, card_id


def test_export_command_names_held_duplicates(tmp_path):
    cli_store = Store(data_dir=tmp_path / "cli")
    add = card_adder(cli_store, sample_scan_png(), BATCH, "cli")
    first = add("foreign_guest", dict(FOREIGN))
    second = add("foreign_guest", dict(FOREIGN))
    add("foreign_guest", dict(FOREIGN, card_serial="0038570"))
    cli_store.close()
    env = {k: v for k, v in os.environ.items() if k not in ("HUKA_LANG", "HUKA_DB_URL", "HUKA_DATA_DIR")}

    result = subprocess.run(
        [sys.executable, "-m", "ocr", "export", "--batch", BATCH, "--out", "out", "--data-dir", "cli"],
        cwd=tmp_path, env=env, capture_output=True, text=True, encoding="utf-8", timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert f"2 张自动通过的卡片与其他卡片编号相同，已退回审核，未导出或上报：卡片 {first}, {second}" in result.stdout
    assert "已导出：" in result.stdout


def test_transmit_report_names_held_duplicates(store, add_card, tmp_path):
    first = add_card("foreign_guest", dict(FOREIGN))
    second = add_card("foreign_guest", dict(FOREIGN))
    config = load_config(write_config(tmp_path / "hukacapture.toml", adapter="folder", folder=tmp_path / "drop"))

    report = run_transmit(store, config, registry=load_registry())

    assert report.held_duplicates == [first, second]
    assert report.approved == 0


# Reason texts


def test_reason_joins_without_double_stop(store, add_card):
    # A low-confidence reading of an ethnicity that is no ethnic group: a machine reason and a rule reason.
    card_id = add_card("domestic_guest", dict(DOMESTIC, ethnicity="汗"), low_confidence=("ethnicity",))
    stored = store.get_card(card_id).fields["ethnicity"].reason

    version = correct_fields(store, card_id, {"room_number": "1209"}, actor=REVIEWER, expected_version=version_of(store, card_id))
    revalidated = store.get_card(card_id).fields["ethnicity"].reason
    mark_illegible(store, card_id, ["ethnicity"], actor=REVIEWER, expected_version=version)
    illegible = store.get_card(card_id).fields["ethnicity"].reason

    for reason in (stored, revalidated, illegible):
        assert "。；" not in reason, reason
        assert "；；" not in reason, reason
        assert reason.endswith("。"), reason
        assert "请核对；" in reason, reason
        assert "民族" in reason, reason
    assert illegible.startswith("审核人无法辨认")
