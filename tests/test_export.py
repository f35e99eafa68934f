"""Export of a batch to CSV and JSON Lines, on a real SQLite store and on PostgreSQL.

The cards are built from the truth of the committed sample cards, run through
the real validation and confidence decision, and stored with Store.add_card,
so no OCR engine runs here.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.card import CardStatus
from ocr.export import ExportError, export_batch
from ocr.review import approve_card, correct_fields, reject_card
from ocr.store import Store
from card_builders import REGISTRY, build_extraction, sample_scan_png, truth_values

BATCH = "2025-12-15"
OTHER_BATCH = "2025-12-16"
META_COLUMNS = ["card_id", "batch", "card_type", "guest_category", "source", "page"]
NOTES_COLUMN = "review_notes"
UTF8_BOM = b"\xef\xbb\xbf"
REVIEWER = "王芳"
EXPORTER = "李娜"



@pytest.fixture(scope="module")
def scan_png() -> bytes:
    return sample_scan_png()


class CardBuilder:
    """Factory of built cards in one store."""

    def __init__(self, store: Store, png: bytes) -> None:
        self.store = store
        self.png = png

    def add(
        self,
        card_type: str,
        values: dict[str, str],
        source: str,
        *,
        batch: str = BATCH,
        low_confidence: tuple[str, ...] = (),
    ) -> int:
        extraction = build_extraction(card_type, values, source, low_confidence)
        content_key = f"{hashlib.sha256(source.encode()).hexdigest()}:1"
        return self.store.add_card(
            batch=batch, content_key=content_key, extraction=extraction, original_png=self.png, straight_png=self.png
        )


@pytest.fixture()
def builder(tmp_path: Path, store_url: str, scan_png: bytes) -> Iterator[CardBuilder]:
    store = Store(url=store_url, data_dir=tmp_path / "data")
    yield CardBuilder(store, scan_png)
    store.close()


def fill_batch(builder: CardBuilder) -> dict[str, int]:
    """Add one batch of cards in every state that export must tell apart, and return their ids by role."""
    store = builder.store
    japanese = truth_values("card_01_foreign_printed")
    hong_kong = truth_values("card_10_foreign_printed")
    group = dict(japanese, card_serial="0038566", document_number="CW4645766", visa_type="GROUP")
    # A comma and quotes in a free-text field check the CSV quoting.
    group["received_by"] = '华东贸易有限公司, "上海分公司"'
    macao_passport = dict(japanese, card_serial="0038567", nationality="MAC", document_number="MA1234567")
    domestic = truth_values("card_03_domestic_printed")
    domestic_flagged = truth_values("card_09_domestic_printed")
    # Same 17 digits, other check character: a valid format that fails GB 11643-1999.
    wrong_check = "0" if domestic_flagged["id_number"][17] != "0" else "1"
    domestic_flagged["id_number"] = domestic_flagged["id_number"][:17] + wrong_check

    ids = {
        "foreign_auto": builder.add("foreign_guest", japanese, "/scans/card_01.jpg"),
        "hk_permit": builder.add("foreign_guest", hong_kong, "/scans/card_10.jpg", low_confidence=("room_number",)),
        "group_visa": builder.add("foreign_guest", group, "/scans/group.jpg"),
        "macao_passport": builder.add("foreign_guest", macao_passport, "/scans/macao.jpg"),
        "domestic_auto": builder.add("domestic_guest", domestic, "/scans/card_03.jpg"),
        "domestic_flagged": builder.add("domestic_guest", domestic_flagged, "/scans/card_09.jpg"),
        "rejected": builder.add("foreign_guest", japanese, "/scans/rejected.jpg", low_confidence=("surname",)),
        # Another guest's card: a serial of its own, so it is no duplicate of foreign_auto.
        "other_batch": builder.add(
            "foreign_guest", dict(japanese, card_serial="0038570"), "/scans/other.jpg", batch=OTHER_BATCH
        ),
    }

    # A person approves the Hong Kong card, whose only flag is a low-confidence room number.
    hk_card = store.get_card(ids["hk_permit"])
    assert hk_card.status == CardStatus.NEEDS_REVIEW
    approve_card(store, ids["hk_permit"], actor=REVIEWER, expected_version=hk_card.version)

    rejected = store.get_card(ids["rejected"])
    reject_card(store, ids["rejected"], actor=REVIEWER, expected_version=rejected.version, kind="rescan")

    # Preconditions: the built cards land in the states the tests rely on.
    expected_states = {
        "foreign_auto": CardStatus.AUTO_ACCEPTED,
        "hk_permit": CardStatus.APPROVED,
        "group_visa": CardStatus.AUTO_ACCEPTED,
        "macao_passport": CardStatus.AUTO_ACCEPTED,
        "domestic_auto": CardStatus.AUTO_ACCEPTED,
        "domestic_flagged": CardStatus.NEEDS_REVIEW,
        "rejected": CardStatus.REJECTED,
        "other_batch": CardStatus.AUTO_ACCEPTED,
    }
    for role, status in expected_states.items():
        assert store.get_card(ids[role]).status == status, role
    return ids


# Cards expected in the export of BATCH, with the guest category the card specification derives.
EXPORTED_ROLES = {
    "foreign_auto": "foreign",
    "hk_permit": "hk_macao_taiwan",
    "group_visa": "group_visa",
    "macao_passport": "hk_macao_taiwan",
    "domestic_auto": None,
}


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def read_jsonl(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_csv_starts_with_bom(builder, tmp_path):
    fill_batch(builder)
    files = export_batch(builder.store, BATCH, "csv", tmp_path / "out", actor=EXPORTER)

    assert files
    for path in files:
        data = path.read_bytes()
        assert data.startswith(UTF8_BOM), path.name
        assert not data[len(UTF8_BOM) :].startswith(UTF8_BOM), path.name


def test_csv_one_file_per_card_type(builder, tmp_path):
    fill_batch(builder)
    out = tmp_path / "out"
    files = export_batch(builder.store, BATCH, "csv", out, actor=EXPORTER)

    assert len(files) == 2
    types_by_file = {}
    for path in files:
        _header, rows = read_csv(path)
        types_by_file[path.name] = {row["card_type"] for row in rows}
    assert sorted(t for types in types_by_file.values() for t in types) == ["domestic_guest", "foreign_guest"]
    for name, types in types_by_file.items():
        assert len(types) == 1, name
        assert next(iter(types)) in name, name


def test_csv_header_follows_spec_order(builder, tmp_path):
    fill_batch(builder)
    files = export_batch(builder.store, BATCH, "csv", tmp_path / "out", actor=EXPORTER)

    for path in files:
        header, rows = read_csv(path)
        card_type = rows[0]["card_type"]
        assert header == META_COLUMNS + REGISTRY.card_type(card_type).keys + [NOTES_COLUMN], path.name


def test_csv_rows_equal_stored_values(builder, tmp_path):
    ids = fill_batch(builder)
    stored = {card_id: builder.store.get_card(card_id) for card_id in ids.values()}
    files = export_batch(builder.store, BATCH, "csv", tmp_path / "out", actor=EXPORTER)

    rows = [row for path in files for row in read_csv(path)[1]]
    exported_ids = sorted(int(row["card_id"]) for row in rows)
    assert exported_ids == sorted(ids[role] for role in EXPORTED_ROLES)

    for row in rows:
        card = stored[int(row["card_id"])]
        assert row["batch"] == BATCH
        assert row["card_type"] == card.card_type
        assert row["source"] == Path(card.source).name
        assert row["page"] == str(card.page)
        for key in REGISTRY.card_type(card.card_type).keys:
            assert row[key] == card.fields[key].value, (row["card_id"], key)


def test_csv_guest_category_per_spec(builder, tmp_path):
    ids = fill_batch(builder)
    files = export_batch(builder.store, BATCH, "csv", tmp_path / "out", actor=EXPORTER)

    category_by_id = {int(row["card_id"]): row["guest_category"] for path in files for row in read_csv(path)[1]}
    for role, category in EXPORTED_ROLES.items():
        if category is not None:
            assert category_by_id[ids[role]] == category, role


def test_jsonl_matches_csv(builder, tmp_path, scan_png, new_store_url):
    fill_batch(builder)
    twin = CardBuilder(Store(url=new_store_url("twin"), data_dir=tmp_path / "twin"), scan_png)
    fill_batch(twin)
    csv_files = export_batch(builder.store, BATCH, "csv", tmp_path / "csv", actor=EXPORTER)
    jsonl_files = export_batch(twin.store, BATCH, "jsonl", tmp_path / "jsonl", actor=EXPORTER)

    # The names differ only in their time stamps, which differ when the two exports straddle a second.
    def without_stamp(path: Path) -> str:
        return path.stem.rsplit("_", 1)[0]

    jsonl_by_name = {without_stamp(path): path for path in jsonl_files}
    assert sorted(without_stamp(path) for path in csv_files) == sorted(jsonl_by_name)
    for csv_path in csv_files:
        jsonl_path = jsonl_by_name[without_stamp(csv_path)]
        header, csv_rows = read_csv(csv_path)
        objects = read_jsonl(jsonl_path)

        assert not jsonl_path.read_bytes().startswith(UTF8_BOM)
        assert len(objects) == len(csv_rows)
        for row, obj in zip(csv_rows, objects):
            assert list(obj) == header
            assert isinstance(obj["card_id"], int)
            assert isinstance(obj["page"], int)
            assert {key: str(value) for key, value in obj.items()} == row


def test_flagged_and_rejected_not_exported(builder, tmp_path):
    ids = fill_batch(builder)
    files = export_batch(builder.store, BATCH, "csv", tmp_path / "out", actor=EXPORTER)

    exported_ids = {int(row["card_id"]) for path in files for row in read_csv(path)[1]}
    for role, status in [
        ("domestic_flagged", CardStatus.NEEDS_REVIEW),
        ("rejected", CardStatus.REJECTED),
        ("other_batch", CardStatus.AUTO_ACCEPTED),
    ]:
        assert ids[role] not in exported_ids, role
        assert builder.store.get_card(ids[role]).status == status, role


def test_exported_cards_audited(builder, tmp_path):
    ids = fill_batch(builder)
    files = export_batch(builder.store, BATCH, "csv", tmp_path / "out", actor=EXPORTER)
    file_by_type = {read_csv(path)[1][0]["card_type"]: path for path in files}

    for role in EXPORTED_ROLES:
        card = builder.store.get_card(ids[role])
        assert card.status == CardStatus.EXPORTED, role
        events = builder.store.audit_events(ids[role])
        statuses = [(e.actor, e.old_value, e.new_value) for e in events if e.action == "status"]
        assert statuses[-1] == (EXPORTER, CardStatus.APPROVED, CardStatus.EXPORTED), role
        exports = [e for e in events if e.action == "export"]
        assert len(exports) == 1, role
        assert exports[0].actor == EXPORTER
        assert Path(exports[0].new_value) == file_by_type[card.card_type]


def test_auto_accepted_approved_by_auto(builder, tmp_path):
    ids = fill_batch(builder)
    export_batch(builder.store, BATCH, "csv", tmp_path / "out", actor=EXPORTER)

    for role in ("foreign_auto", "group_visa", "domestic_auto"):
        statuses = [
            (e.actor, e.old_value, e.new_value) for e in builder.store.audit_events(ids[role]) if e.action == "status"
        ]
        assert ("auto", CardStatus.AUTO_ACCEPTED, CardStatus.APPROVED) in statuses, role

    person_approved = [
        (e.actor, e.new_value) for e in builder.store.audit_events(ids["hk_permit"]) if e.action == "status"
    ]
    assert (REVIEWER, CardStatus.APPROVED) in person_approved
    assert all(actor != "auto" for actor, _status in person_approved)


def test_second_export_finds_nothing(builder, tmp_path):
    fill_batch(builder)
    out = tmp_path / "out"
    files = export_batch(builder.store, BATCH, "csv", out, actor=EXPORTER)
    first_contents = {path: path.read_bytes() for path in files}

    with pytest.raises(ExportError) as raised:
        export_batch(builder.store, BATCH, "csv", out, actor=EXPORTER)

    assert BATCH in raised.value.message_zh
    assert {path: path.read_bytes() for path in files} == first_contents
    assert sorted(out.iterdir()) == sorted(files)


def test_only_person_approved_cards(builder, tmp_path):
    ids = fill_batch(builder)
    files = export_batch(builder.store, BATCH, "jsonl", tmp_path / "out", actor=EXPORTER, include_auto_accepted=False)

    objects = [obj for path in files for obj in read_jsonl(path)]
    assert [obj["card_id"] for obj in objects] == [ids["hk_permit"]]
    assert len(files) == 1
    for role in ("foreign_auto", "group_visa", "macao_passport", "domestic_auto"):
        assert builder.store.get_card(ids[role]).status == CardStatus.AUTO_ACCEPTED, role


def test_no_temporary_file_left(builder, tmp_path):
    fill_batch(builder)
    out = tmp_path / "out"
    files = export_batch(builder.store, BATCH, "csv", out, actor=EXPORTER)

    assert sorted(out.iterdir()) == sorted(files)
    assert not [p for p in out.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


def test_out_under_file_named_in_chinese(builder, tmp_path):
    fill_batch(builder)
    (tmp_path / "taken").write_text("not a folder", encoding="utf-8")

    with pytest.raises(ExportError) as raised:
        export_batch(builder.store, BATCH, "csv", tmp_path / "taken" / "out", actor=EXPORTER)

    assert "路径中的某一级是文件，不是目录" in raised.value.message_zh
    assert "Not a directory" not in raised.value.message_zh
    assert "Not a directory" in raised.value.message_en


def test_unknown_format_changes_nothing(builder, tmp_path):
    ids = fill_batch(builder)
    before = {card_id: builder.store.get_card(card_id).status for card_id in ids.values()}

    with pytest.raises(ExportError) as raised:
        export_batch(builder.store, BATCH, "xml", tmp_path / "out", actor=EXPORTER)

    assert "xml" in raised.value.message_zh
    assert "csv" in raised.value.message_zh
    assert {card_id: builder.store.get_card(card_id).status for card_id in ids.values()} == before
    assert not (tmp_path / "out").exists()


def test_unknown_batch_named_in_error(builder, tmp_path):
    fill_batch(builder)

    with pytest.raises(ExportError) as raised:
        export_batch(builder.store, "2031-01-01", "csv", tmp_path / "out", actor=EXPORTER)

    assert "2031-01-01" in raised.value.message_zh
    assert not (tmp_path / "out").exists()


def test_corrected_auto_card_revalidated(builder, tmp_path):
    """A reviewer's edit that breaks a rule on an auto-accepted card keeps the card out of the export."""
    ids = fill_batch(builder)
    card = builder.store.get_card(ids["foreign_auto"])
    arrival = card.fields["arrival_date"].value
    # Departure one year before arrival breaks departure_date >= arrival_date.
    departure = f"{int(arrival[:4]) - 1}{arrival[4:]}"
    correct_fields(
        builder.store,
        ids["foreign_auto"],
        {"departure_date": departure},
        actor=REVIEWER,
        expected_version=card.version,
    )
    assert builder.store.get_card(ids["foreign_auto"]).fields["departure_date"].needs_review

    files = export_batch(builder.store, BATCH, "csv", tmp_path / "out", actor=EXPORTER)

    exported_ids = {int(row["card_id"]) for path in files for row in read_csv(path)[1]}
    assert ids["foreign_auto"] not in exported_ids
    assert builder.store.get_card(ids["foreign_auto"]).status != CardStatus.EXPORTED


def test_later_export_keeps_earlier_file(builder, tmp_path):
    ids = fill_batch(builder)
    out = tmp_path / "out"
    first = export_batch(builder.store, BATCH, "csv", out, actor=EXPORTER)
    first_contents = {path: path.read_bytes() for path in first}

    # A card approved after the first export goes into a new file; the first file is untouched.
    card = builder.store.get_card(ids["domestic_flagged"])
    fixed = truth_values("card_09_domestic_printed")["id_number"]
    version = correct_fields(builder.store, card.id, {"id_number": fixed}, actor=EXPORTER, expected_version=card.version)
    approve_card(builder.store, card.id, actor=EXPORTER, expected_version=version)
    second = export_batch(builder.store, BATCH, "csv", out, actor=EXPORTER)

    assert set(second).isdisjoint(first)
    assert {path: path.read_bytes() for path in first} == first_contents
    (path,) = second
    _header, rows = read_csv(path)
    assert [int(row["card_id"]) for row in rows] == [card.id]


def test_again_exports_exported_cards(builder, tmp_path):
    fill_batch(builder)
    out = tmp_path / "out"
    first = export_batch(builder.store, BATCH, "csv", out, actor=EXPORTER)
    again = export_batch(builder.store, BATCH, "csv", out, actor=EXPORTER, include_exported=True)

    assert len(again) == len(first)
    first_ids = sorted(row["card_id"] for path in first for row in read_csv(path)[1])
    again_ids = sorted(row["card_id"] for path in again for row in read_csv(path)[1])
    assert again_ids == first_ids


def test_export_files_owner_only(builder, tmp_path):
    fill_batch(builder)
    out = tmp_path / "out"
    for path in export_batch(builder.store, BATCH, "jsonl", out, actor=EXPORTER):
        assert path.stat().st_mode & 0o077 == 0, path


def test_formula_cells_kept_as_text(builder, tmp_path):
    values = dict(truth_values("card_01_foreign_printed"), received_by="=HYPERLINK(\"x\")", entry_port="+SHA")
    builder.add("foreign_guest", values, "/scans/formula.jpg")
    (path,) = export_batch(builder.store, BATCH, "csv", tmp_path / "out", actor=EXPORTER)
    _header, (row,) = read_csv(path)
    assert row["received_by"] == "'=HYPERLINK(\"x\")"
    assert row["entry_port"] == "'+SHA"
    assert row["arrival_date"] == values["arrival_date"]
