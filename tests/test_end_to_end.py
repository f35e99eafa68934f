"""End to end: the bundled sample cards are ingested by the real engine, reviewed in the
Streamlit app, exported, and the exported rows are checked against each card's truth."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from models.card import CardStatus
from ocr.accounts import Role, add_user
from ocr.export import export_batch
from ocr.pipeline import ingest_paths
from ocr.store import Store
from sample_cards import SAMPLES_DIR

APP_FILE = Path(__file__).resolve().parent.parent / "review_app" / "app.py"
BATCH = "2026-12-04"
REVIEWER = "王芳"
REVIEWER_PASSWORD = "kaishi-2025"


def _truths() -> dict[str, dict]:
    return {path.with_suffix(".jpg").name: json.loads(path.read_text(encoding="utf-8")) for path in SAMPLES_DIR.glob("*.json")}


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("e2e") / "data"
    store = Store(data_dir=data_dir)
    report = ingest_paths([SAMPLES_DIR], store, batch=BATCH)
    return store, data_dir, report


def test_samples_all_stored(ingested):
    store, _data_dir, report = ingested
    assert len(_truths()) >= 10
    assert report.failures == []
    assert report.stored == len(_truths())
    assert len(store.list_cards(batch=BATCH)) == len(_truths())


def test_card_type_and_rotation_match_truth(ingested):
    store, _data_dir, _report = ingested
    truths = _truths()
    for summary in store.list_cards(batch=BATCH):
        card = store.get_card(summary.id)
        truth = truths[Path(card.source).name]
        assert card.card_type == truth["card_type"], card.source
        difference = (card.rotation_deg - truth["rotation_deg"] + 180) % 360 - 180
        assert abs(difference) < 1.0, f"{card.source}: {card.rotation_deg} vs {truth['rotation_deg']}"


def test_second_ingest_stores_no_duplicate(ingested):
    store, _data_dir, _report = ingested
    again = ingest_paths([SAMPLES_DIR], store, batch=BATCH)
    assert again.stored == 0
    assert again.duplicates == len(_truths())
    assert len(store.list_cards(batch=BATCH)) == len(_truths())


def test_review_approve_export_matches_truth(ingested, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    store, data_dir, _report = ingested
    truths = _truths()
    add_user(store, REVIEWER, Role.REVIEWER, REVIEWER_PASSWORD)
    monkeypatch.setenv("HUKA_DB_URL", store.url)
    monkeypatch.setenv("HUKA_DATA_DIR", str(data_dir))

    flagged = store.list_cards(batch=BATCH, statuses=[CardStatus.NEEDS_REVIEW])
    assert flagged, "the samples include cards that need review"
    corrected = rejected = 0
    for summary in flagged:
        card = store.get_card(summary.id)
        truth = truths[Path(card.source).name]
        app = AppTest.from_file(str(APP_FILE), default_timeout=60)
        app.run()
        app.text_input(key="sign_in_name").input(REVIEWER)
        app.text_input(key="sign_in_password").input(REVIEWER_PASSWORD)
        app.button(key="sign_in").click().run()
        app.session_state["goto_page"] = "cards"
        app.run()
        app.button(key=f"open_{card.id}").click().run()
        assert not app.exception, app.exception

        # The reviewer types the value written on the card into every flagged field, then approves.
        for key in card.flagged_keys:
            app.text_input(key=f"field_{key}").input(truth["fields"][key])
            corrected += 1
        app.button(key="approve").click().run()
        assert not app.exception, app.exception

        if truth.get("invalid_fields"):
            # A card whose written values break a rule cannot be approved: it goes back to the front desk.
            assert store.get_card(card.id).status == CardStatus.NEEDS_REVIEW
            version = store.get_card(card.id).version
            from ocr.review import reject_card

            reject_card(store, card.id, actor=REVIEWER, expected_version=version, kind="front_desk", note="有效期早于离店日期")
            rejected += 1
        else:
            assert store.get_card(card.id).status == CardStatus.APPROVED, card.source

    assert corrected > 0
    files = export_batch(store, BATCH, "csv", tmp_path, actor=REVIEWER)
    rows = []
    for path in files:
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows += list(csv.DictReader(handle))

    # Every card is exported except those sent back, and every exported value equals the truth.
    invalid = [name for name, truth in truths.items() if truth.get("invalid_fields")]
    assert len(rows) == len(truths) - len(invalid)
    assert rejected == len(invalid)
    for row in rows:
        truth = truths[row["source"]]
        assert row["card_type"] == truth["card_type"]
        for key, expected in truth["fields"].items():
            assert row[key] == expected, f"{row['source']} {key}: {row[key]!r} != {expected!r}"

    # Corrections carry the reviewer's name in the audit log.
    actors = {e.actor for s in flagged for e in store.audit_events(s.id) if e.action in ("correct", "confirm")}
    assert REVIEWER in actors
