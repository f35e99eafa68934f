"""Review actions (correct, approve, reject) on a real SQLite store and on PostgreSQL.

The cards are built from the truth of the committed sample cards, with the
misreads a reviewer meets, and run through the real validation and confidence
decision before Store.add_card, so no OCR engine runs here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.card import CardStatus
from ocr.errors import StaleVersionError
from ocr.review import ReviewError, approve_card, correct_fields, reject_card
from ocr.store import Store
from card_builders import REGISTRY, card_adder, sample_scan_png, truth_values

BATCH = "2025-12-15"
REVIEWER = "王芳"
CJK = re.compile(r"[\u4e00-\u9fff]")


# GB 11643-1999 weights of the 17 body digits of a resident ID.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_check_char(body: str) -> str:
    """Compute the resident ID check character, as the card specification defines it."""
    check = (12 - sum(int(d) * w for d, w in zip(body, ID_WEIGHTS)) % 11) % 11
    return "X" if check == 10 else str(check)


FOREIGN = truth_values("card_01_foreign_printed")
DOMESTIC = truth_values("card_03_domestic_printed")


@pytest.fixture(scope="module")
def scan_png() -> bytes:
    return sample_scan_png()


@pytest.fixture()
def store(tmp_path: Path, store_url: str) -> Iterator[Store]:
    store = Store(url=store_url, data_dir=tmp_path / "data")
    yield store
    store.close()


@pytest.fixture()
def add_card(store: Store, scan_png: bytes):
    """Return a function that stores a built card and returns its id."""
    return card_adder(store, scan_png, BATCH, "review")


def label_zh(card_type: str, key: str) -> str:
    return REGISTRY.card_type(card_type).field(key).label_zh


def snapshot(store: Store, card_id: int) -> tuple:
    """Return what a failed action must leave unchanged: status, version, fields and audit trail."""
    card = store.get_card(card_id)
    return card.status, card.version, card.fields, store.audit_events(card_id)


# correct_fields


@pytest.mark.parametrize(
    ("key", "typed", "expected"),
    [
        ("date_of_birth", "1983年10月13日", "1983-10-13"),
        ("date_of_birth", "１９８３－１０－１３", "1983-10-13"),
        ("document_number", "ＣＷ４６４５７６５", "CW4645765"),
        ("room_number", "ｂ１６３２", "B1632"),
    ],
)
def test_correct_normalises_typed_value(store, add_card, key, typed, expected):
    assert FOREIGN[key] == expected
    # An OCR misread of the same field: a zero for the O of OCT, an S for a 5, an 8 for a B.
    misread = {"date_of_birth": "13 0CT 1983", "document_number": "CW464S765", "room_number": "81632"}[key]
    card_id = add_card("foreign_guest", dict(FOREIGN, **{key: misread}), low_confidence=(key,))
    card = store.get_card(card_id)
    assert card.fields[key].needs_review

    correct_fields(store, card_id, {key: typed}, actor=REVIEWER, expected_version=card.version)

    field = store.get_card(card_id).fields[key]
    assert field.value == expected
    assert not field.needs_review
    assert field.reason == ""
    assert field.confidence == 1.0


def test_correct_writes_audit_event(store, add_card):
    card_id = add_card("foreign_guest", dict(FOREIGN, date_of_birth="13 0CT 1983"))
    card = store.get_card(card_id)
    events_before = len(store.audit_events(card_id))

    new_version = correct_fields(
        store, card_id, {"date_of_birth": "1983年10月13日"}, actor=REVIEWER, expected_version=card.version
    )

    new_events = store.audit_events(card_id)[events_before:]
    assert len(new_events) == 1
    event = new_events[0]
    assert event.actor == REVIEWER
    assert event.action == "correct"
    assert event.field_key == "date_of_birth"
    assert event.old_value == "13 0CT 1983"
    assert event.new_value == "1983-10-13"
    assert new_version == store.get_card(card_id).version
    assert new_version > card.version


def test_correct_invalid_value_stays_flagged(store, add_card):
    card_id = add_card("foreign_guest", dict(FOREIGN, date_of_birth="13 0CT 1983"))
    card = store.get_card(card_id)

    # 30 February is not a calendar date.
    correct_fields(store, card_id, {"date_of_birth": "1983年2月30日"}, actor=REVIEWER, expected_version=card.version)

    field = store.get_card(card_id).fields["date_of_birth"]
    assert field.needs_review
    assert CJK.search(field.reason)
    assert label_zh("foreign_guest", "date_of_birth") in field.reason
    assert field.reason_codes == ["invalid_date"]
    events = [e for e in store.audit_events(card_id) if e.action == "correct"]
    assert [(e.old_value, e.new_value) for e in events] == [("13 0CT 1983", field.value)]


def test_arrival_fix_clears_departure(store, add_card):
    # A misread arrival five days after the true departure breaks departure_date >= arrival_date.
    misread_arrival = "2025-12-25"
    assert FOREIGN["departure_date"] < misread_arrival
    card_id = add_card("foreign_guest", dict(FOREIGN, arrival_date=misread_arrival))
    card = store.get_card(card_id)
    assert card.fields["departure_date"].needs_review
    assert "departure_before_arrival" in card.fields["departure_date"].reason_codes

    correct_fields(
        store, card_id, {"arrival_date": FOREIGN["arrival_date"]}, actor=REVIEWER, expected_version=card.version
    )

    fields = store.get_card(card_id).fields
    assert not fields["arrival_date"].needs_review
    assert not fields["departure_date"].needs_review
    assert fields["departure_date"].reason == ""
    assert fields["departure_date"].value == FOREIGN["departure_date"]


def test_wrong_check_char_stays_flagged(store, add_card):
    """A reviewer's resident ID with the right format, birth date and sex digit but the wrong check character."""
    true_id = DOMESTIC["id_number"]
    assert id_check_char(true_id[:17]) == true_id[17]
    wrong_id = true_id[:17] + ("0" if true_id[17] != "0" else "1")
    card_id = add_card("domestic_guest", dict(DOMESTIC, id_number=true_id[:16] + "?" + true_id[17]))
    card = store.get_card(card_id)
    assert card.fields["id_number"].needs_review

    version = correct_fields(store, card_id, {"id_number": wrong_id}, actor=REVIEWER, expected_version=card.version)

    field = store.get_card(card_id).fields["id_number"]
    assert field.value == wrong_id
    assert field.needs_review
    assert "check_char_mismatch" in field.reason_codes
    assert CJK.search(field.reason)
    with pytest.raises(ReviewError) as raised:
        approve_card(store, card_id, actor=REVIEWER, expected_version=version)
    assert label_zh("domestic_guest", "id_number") in raised.value.message_zh


# approve_card


def test_approve_blocked_by_failing_rule(store, add_card):
    card_id = add_card("foreign_guest", dict(FOREIGN, date_of_birth="13 0CT 1983"))
    before = snapshot(store, card_id)

    with pytest.raises(ReviewError) as raised:
        approve_card(store, card_id, actor=REVIEWER, expected_version=before[1])

    assert label_zh("foreign_guest", "date_of_birth") in raised.value.message_zh
    # Only the failing field is named.
    assert label_zh("foreign_guest", "surname") not in raised.value.message_zh
    assert snapshot(store, card_id) == before


def test_approve_allowed_after_fix(store, add_card):
    card_id = add_card("foreign_guest", dict(FOREIGN, date_of_birth="13 0CT 1983"))
    version = store.get_card(card_id).version
    version = correct_fields(
        store, card_id, {"date_of_birth": "13/10/1983"}, actor=REVIEWER, expected_version=version
    )

    final_version = approve_card(store, card_id, actor=REVIEWER, expected_version=version)

    card = store.get_card(card_id)
    assert card.status == CardStatus.APPROVED
    assert card.version == final_version
    assert card.flagged_keys == []
    statuses = [(e.actor, e.new_value) for e in store.audit_events(card_id) if e.action == "status"]
    assert statuses[-1] == (REVIEWER, CardStatus.APPROVED)


def test_approve_confirms_low_confidence(store, add_card):
    card_id = add_card("foreign_guest", dict(FOREIGN), low_confidence=("surname", "room_number"))
    card = store.get_card(card_id)
    assert card.status == CardStatus.NEEDS_REVIEW
    assert card.flagged_keys == ["surname", "room_number"]

    approve_card(store, card_id, actor=REVIEWER, expected_version=card.version)

    approved = store.get_card(card_id)
    assert approved.status == CardStatus.APPROVED
    assert approved.flagged_keys == []
    assert approved.values() == card.values()
    confirmations = [e for e in store.audit_events(card_id) if e.action in ("confirm", "approve")]
    assert sorted(e.field_key for e in confirmations) == ["room_number", "surname"]
    for event in confirmations:
        assert event.actor == REVIEWER
        assert event.old_value == event.new_value == FOREIGN[event.field_key]


def test_approve_rejected_card_raises(store, add_card):
    card_id = add_card("foreign_guest", dict(FOREIGN), low_confidence=("surname",))
    version = reject_card(
        store, card_id, actor=REVIEWER, expected_version=store.get_card(card_id).version, kind="rescan"
    )
    before = snapshot(store, card_id)

    with pytest.raises(ReviewError):
        approve_card(store, card_id, actor=REVIEWER, expected_version=version)

    assert snapshot(store, card_id) == before


# reject_card


@pytest.mark.parametrize("kind", ["rescan", "front_desk"])
def test_reject_records_note(store, add_card, kind):
    card_id = add_card("foreign_guest", dict(FOREIGN, room_number=""))
    note = "房号一栏空白"

    reject_card(store, card_id, actor=REVIEWER, expected_version=store.get_card(card_id).version, kind=kind, note=note)

    assert store.get_card(card_id).status == CardStatus.REJECTED
    events = store.audit_events(card_id)
    notes = [e for e in events if e.action == "note"]
    assert len(notes) == 1
    assert notes[0].actor == REVIEWER
    assert note in notes[0].new_value
    assert CJK.search(notes[0].new_value.replace(note, ""))
    statuses = [(e.actor, e.new_value) for e in events if e.action == "status"]
    assert statuses[-1] == (REVIEWER, CardStatus.REJECTED)


def test_reject_kinds_give_distinct_notes(store, add_card):
    notes = {}
    for kind in ("rescan", "front_desk"):
        card_id = add_card("foreign_guest", dict(FOREIGN, room_number=""))
        reject_card(store, card_id, actor=REVIEWER, expected_version=store.get_card(card_id).version, kind=kind)
        notes[kind] = [e.new_value for e in store.audit_events(card_id) if e.action == "note"]

    assert len(notes["rescan"]) == 1
    assert len(notes["front_desk"]) == 1
    assert notes["rescan"] != notes["front_desk"]


def test_reject_invalid_kind_raises(store, add_card):
    card_id = add_card("foreign_guest", dict(FOREIGN, room_number=""))
    before = snapshot(store, card_id)

    with pytest.raises(ReviewError) as raised:
        reject_card(store, card_id, actor=REVIEWER, expected_version=before[1], kind="lost")

    assert "lost" in raised.value.message_zh
    assert snapshot(store, card_id) == before


# Stale versions


def test_stale_version_changes_nothing(store, add_card):
    # Only low-confidence flags, so approval would pass on a current version.
    card_id = add_card("foreign_guest", dict(FOREIGN), low_confidence=("surname", "room_number"))
    stale = store.get_card(card_id).version
    # Another reviewer saves first.
    correct_fields(store, card_id, {"surname": "TANAKA"}, actor="李娜", expected_version=stale)
    before = snapshot(store, card_id)

    actions = {
        "correct": lambda: correct_fields(
            store, card_id, {"room_number": "B1632"}, actor=REVIEWER, expected_version=stale
        ),
        "approve": lambda: approve_card(store, card_id, actor=REVIEWER, expected_version=stale),
        "reject": lambda: reject_card(store, card_id, actor=REVIEWER, expected_version=stale, kind="rescan"),
    }
    for name, action in actions.items():
        with pytest.raises(StaleVersionError):
            action()
        assert snapshot(store, card_id) == before, name
