"""Process pool: a run with two OCR processes gives the same cards as a run in one process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ocr.pipeline import extract_paths, ingest_paths
from ocr.store import Store
from sample_cards import SAMPLES_DIR

pytestmark = pytest.mark.slow

SAMPLES = ["card_01_foreign_printed.jpg", "card_04_domestic_handwriting.jpg"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Path:
    """Two sample cards, plus a copy of the first under another name (the same page scanned twice)."""
    folder = tmp_path_factory.mktemp("stack")
    for name in SAMPLES:
        shutil.copy(SAMPLES_DIR / name, folder / name)
    shutil.copy(SAMPLES_DIR / SAMPLES[0], folder / "z_rescan.jpg")
    return folder


def read_outputs(folder: Path) -> dict[str, dict]:
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))}


def stored_cards(store: Store) -> list[tuple]:
    cards = []
    for summary in store.list_cards():
        card = store.get_card(summary.id)
        values = {key: (field.value, field.needs_review, round(field.confidence, 6)) for key, field in card.fields.items()}
        cards.append((card.source, card.card_type, card.status, values))
    return cards


def test_extract_pool_matches_one_process(stack: Path, tmp_path: Path):
    one = extract_paths([stack], tmp_path / "one", workers=1)
    two = extract_paths([stack], tmp_path / "two", workers=2)

    assert one.stored == 3
    assert two.stored == 3
    assert read_outputs(tmp_path / "two") == read_outputs(tmp_path / "one")


def test_ingest_pool_matches_one_process(stack: Path, tmp_path: Path, store_url: str, new_store_url):
    one_store = Store(url=new_store_url("one"), data_dir=tmp_path / "one")
    two_store = Store(url=store_url, data_dir=tmp_path / "data")

    one = ingest_paths([stack], one_store, batch="b", workers=1)
    two = ingest_paths([stack], two_store, batch="b", workers=2)

    assert (one.pages, one.stored, one.duplicates) == (3, 2, 1)
    assert (two.pages, two.stored, two.duplicates) == (3, 2, 1)
    # The rescan is reported as a copy of the card stored from the first file.
    assert two.duplicate_of == [(str(stack / "z_rescan.jpg"), 1, two.card_ids[0])]
    assert stored_cards(two_store) == stored_cards(one_store)


def test_ingest_pool_skips_stored_pages(stack: Path, tmp_path: Path):
    store = Store(data_dir=tmp_path / "data")
    ingest_paths([stack / SAMPLES[0]], store, batch="b", workers=1)

    report = ingest_paths([stack], store, batch="b", workers=2)

    assert report.stored == 1
    assert report.duplicates == 2
    assert len(store.list_cards()) == 2


def test_long_one_process_run_continues_in_pool(stack: Path, tmp_path: Path, monkeypatch, caplog):
    # A one-process run reads its first PAGES_PER_PROCESS pages itself, here one page. The second
    # page goes to a pool process, and the rescan of the first is skipped as a duplicate.
    import ocr.pool

    whole = Store(data_dir=tmp_path / "whole")
    ingest_paths([stack], whole, batch="b", workers=1)
    monkeypatch.setattr(ocr.pool, "PAGES_PER_PROCESS", 1)
    handed = Store(data_dir=tmp_path / "handed")

    with caplog.at_level("INFO", logger="ocr.pool"):
        report = ingest_paths([stack], handed, batch="b", workers=1)

    assert any("continues in a pool process pages_read=1" in record.getMessage() for record in caplog.records)
    assert (report.pages, report.stored, report.duplicates) == (3, 2, 1)
    assert stored_cards(handed) == stored_cards(whole)
