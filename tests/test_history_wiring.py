"""The store's correction history reaches the confidence of newly ingested cards."""

from __future__ import annotations

import shutil
from pathlib import Path

from ocr.confidence import field_history
from ocr.pipeline import ingest_paths
from ocr.review import approve_card, correct_fields
from ocr.store import Store
from card_builders import REGISTRY, build_extraction, sample_scan_png, truth_values
from sample_cards import SAMPLES_DIR

SAMPLE = "card_01_foreign_printed"
CORRECTED_KEY = "room_number"
REVIEWER = "王芳"
HISTORY_CARDS = 40


def _store_with_corrections(data_dir: Path) -> Store:
    """Return a store where a reviewer corrected the room number on every one of many approved cards."""
    store = Store(data_dir=data_dir)
    png = sample_scan_png()
    values = truth_values(SAMPLE)
    for index in range(HISTORY_CARDS):
        # Each card its own serial: cards sharing one are held as the same card scanned twice.
        card_values = dict(values, card_serial=f"{50000 + index:07d}")
        extraction = build_extraction("foreign_guest", card_values, source=f"history_{index}.jpg")
        card_id = store.add_card(
            batch="history",
            content_key=f"history:{index}",
            extraction=extraction,
            original_png=png,
            straight_png=png,
        )
        version = correct_fields(
            store, card_id, {CORRECTED_KEY: str(3000 + index)}, actor=REVIEWER,
            expected_version=store.get_card(card_id).version, registry=REGISTRY,
        )
        approve_card(store, card_id, actor=REVIEWER, expected_version=version, registry=REGISTRY)
    return store


def _ingested_confidence(store: Store, scans: Path) -> float:
    report = ingest_paths([scans], store, batch="new")
    assert report.stored == 1
    card = store.get_card(store.list_cards(batch="new")[0].id)
    return card.fields[CORRECTED_KEY].confidence


def test_correction_history_lowers_confidence(tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(SAMPLES_DIR / f"{SAMPLE}.jpg", scans / f"{SAMPLE}.jpg")
    fresh = Store(data_dir=tmp_path / "fresh")
    corrected = _store_with_corrections(tmp_path / "corrected")

    history = field_history(corrected)
    fresh_confidence = _ingested_confidence(fresh, scans)
    corrected_confidence = _ingested_confidence(corrected, scans)
    fresh.close()
    corrected.close()

    assert history["foreign_guest"][CORRECTED_KEY].corrections == HISTORY_CARDS
    assert corrected_confidence < fresh_confidence
