"""Ingest of a page another station stores at the same moment: counted as a duplicate, the run goes on."""

from __future__ import annotations

import shutil
from pathlib import Path

from ocr.pipeline import ingest_paths
from ocr.store import Store
from sample_cards import SAMPLES_DIR

SAMPLES = ["card_01_foreign_printed.jpg", "card_03_domestic_printed.jpg"]


def test_page_stored_meanwhile_is_duplicate(store_url: str, tmp_path: Path):
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in SAMPLES:
        shutil.copy(SAMPLES_DIR / name, scans)
    other_station = Store(url=store_url, data_dir=tmp_path / "data")
    first = ingest_paths([scans / SAMPLES[0]], other_station, batch="A", workers=1)
    store = Store(url=store_url, data_dir=tmp_path / "data")
    # The look-ups of this station ran before the other station's card committed, so they find nothing.
    store.find_scan = lambda content_key: None
    try:
        report = ingest_paths([scans], store, batch="B", workers=1)

        assert report.pages == 2
        assert report.duplicates == 1
        assert report.duplicate_of == [(str(scans / SAMPLES[0]), 1, first.card_ids[0])]
        assert report.stored == 1
        assert len(other_station.list_cards()) == 2
        assert report.failures == []
    finally:
        store.close()
        other_station.close()
