"""Masking of personal values in log records: patterns, remembered values, and a real run at DEBUG level.

The run reads two committed sample cards with the real OCR engine into a real
SQLite store, corrects and approves them as a reviewer would and exports them,
with every logger at DEBUG, SQLAlchemy's statement log included. The scan files are named after their guests, as a
clerk may name them. No personal value of either card may appear in a log line.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models.card import CardStatus
from ocr import logmask
from ocr.export import export_batch
from ocr.logmask import MASK, PERSONAL_FIELD_KEYS, install, mask_text, remember_fields, remember_values
from ocr.pipeline import ingest_paths
from ocr.registry import load_registry
from ocr.review import approve_card, correct_fields
from ocr.store import Store
from sample_cards import SAMPLES_DIR

OCR_TIMEOUT_S = 300
APP_TIMEOUT_S = 30
REVIEW_APP_FILE = Path(__file__).resolve().parent.parent / "review_app" / "app.py"
FOREIGN_SAMPLE = "card_01_foreign_printed"
DOMESTIC_SAMPLE = "card_03_domestic_printed"
# A name a reviewer types over the OCR reading: it must be masked from then on too.
CORRECTED_SURNAME = "OKONKWO-BRANDT"
REVIEWER = "reviewer-1"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def sample_fields(stem: str) -> dict[str, str]:
    return json.loads((SAMPLES_DIR / f"{stem}.json").read_text(encoding="utf-8"))["fields"]


def personal_values(fields: dict[str, str]) -> set[str]:
    """Return the personal values of a card that a log line could show, whole or as a name's words."""
    values = {fields[key] for key in PERSONAL_FIELD_KEYS if fields.get(key)}
    for key in ("surname", "given_names"):
        values |= set(fields.get(key, "").split())
    # Two-letter Latin words ("LI") are not remembered, so the test cannot ask for them.
    return {value for value in values if len(value) >= 3 or not value.isascii()}


def guest_file_name(fields: dict[str, str]) -> str:
    """Return the file name a clerk might give the scan: the guest's name and document number."""
    name = fields.get("chinese_name") or fields.get("name") or fields.get("surname", "")
    number = fields.get("document_number") or fields.get("id_number", "")
    return f"{name} {fields.get('surname', '')} {number}.jpg".replace("  ", " ")


# --------------------------------------------------------------------------
# Patterns and remembered values
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "id 440106197403067734 read",
        "id 44010619740306773X read",
        "old id 440106740306773 read",
        "passport E12345678 read",
        "permit H1234567890 read",
        "residence ID ABC123456789012 read",
        "call 13812345678 now",
        "call +86 138-1234-5678 now",
        "call 020-87654321 now",
        "taiwan permit 12345678 read",
    ],
)
def test_pattern_masked(text):
    masked = mask_text(text)

    assert masked.count(MASK) == 1, masked
    assert masked.startswith(text.split()[0])
    assert masked.endswith(text.split()[-1])


@pytest.mark.parametrize(
    "text",
    [
        "card 42 stored id=7 batch=2025-08-13 status=needs_review",
        "input rejected: reason=truncated file_sha256=3b5e12345678",
        "ingest finished: files=12 pages=1234567 failures=0",
        "page=ab1234567890cd fields=20 flagged=3 rotation=-0.3",
    ],
)
def test_ordinary_line_unchanged(text):
    assert mask_text(text) == text


def test_remembered_values_masked():
    remember_fields({"surname": "QUIXLEY", "given_names": "ANNA MAE", "room_number": "1208", "name": "欧阳娜娜"})

    masked = mask_text("QUIXLEY ANNA MAE in 1208, 欧阳娜娜; QUIXLEYS stays; ANNA alone")

    assert "QUIXLEY " not in masked
    assert "欧阳娜娜" not in masked
    assert "ANNA MAE" not in masked
    assert "ANNA alone" not in masked
    # A room number is not personal, and a longer word is not the name.
    assert "1208" in masked
    assert "QUIXLEYS" in masked


def test_short_latin_value_not_remembered():
    remember_values(["LI", "MA"])

    assert mask_text("LIMIT MAX LI") == "LIMIT MAX LI"


def test_install_masks_args_and_exception(caplog):
    install()
    remember_values(["ZYWIECKA"])
    logger = logging.getLogger("ocr.test_logmask")

    with caplog.at_level(logging.DEBUG):
        logger.debug("guest %s passport %s", "ZYWIECKA", "G7654321")
        try:
            raise ValueError("bad value ZYWIECKA 440106197403067734")
        except ValueError:
            logger.exception("failed for card %d", 5)

    assert "ZYWIECKA" not in caplog.text
    assert "G7654321" not in caplog.text
    assert "440106197403067734" not in caplog.text
    assert "failed for card 5" in caplog.text
    assert "ValueError" in caplog.text
    assert caplog.records[0].getMessage() == f"guest {MASK} passport {MASK}"


def test_install_twice_keeps_one_factory():
    install()
    factory = logging.getLogRecordFactory()
    install()

    assert logging.getLogRecordFactory() is factory
    assert logmask.is_installed()


def test_record_with_bad_args_masked(caplog):
    install()
    logger = logging.getLogger("ocr.test_logmask")

    with caplog.at_level(logging.DEBUG):
        logger.info("two values %s %s", "G7654321")

    assert len(caplog.records) == 1
    assert "two values %s %s" in caplog.text
    assert "G7654321" not in caplog.text


# --------------------------------------------------------------------------
# A real run at DEBUG level
# --------------------------------------------------------------------------


@pytest.mark.slow
def test_pipeline_review_export_logs_masked(tmp_path, caplog):
    install()
    registry = load_registry()
    samples = {stem: sample_fields(stem) for stem in (FOREIGN_SAMPLE, DOMESTIC_SAMPLE)}
    scans = tmp_path / "scans"
    scans.mkdir()
    for stem, fields in samples.items():
        shutil.copy(SAMPLES_DIR / f"{stem}.jpg", scans / guest_file_name(fields))
    store = Store(data_dir=tmp_path / "data")

    # SQLAlchemy's statement log prints bound parameters and rows, so it leaks every value unless masked.
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="sqlalchemy.engine"):
        report = ingest_paths([scans], store, batch="masked")
        stored_values: set[str] = set()
        for card_id in report.card_ids:
            card = store.get_card(card_id)
            stored_values |= personal_values(card.values())
            entries = {"surname": CORRECTED_SURNAME} if card.card_type == "foreign_guest" else {}
            entries |= {key: value for key, value in samples_for(card, samples).items() if key in card.fields}
            version = correct_fields(
                store, card_id, entries, actor=REVIEWER, expected_version=card.version, registry=registry
            )
            approve_card(store, card_id, actor=REVIEWER, expected_version=version, registry=registry)
        files = export_batch(store, "masked", "csv", tmp_path / "export", actor=REVIEWER, registry=registry)
    store.close()

    secrets = stored_values | {CORRECTED_SURNAME}
    for fields in samples.values():
        secrets |= personal_values(fields)
    assert report.stored == 2
    assert len(files) == 2
    assert {store_card.status for store_card in _cards(tmp_path)} == {CardStatus.EXPORTED}
    assert len(caplog.records) > 20
    for secret in sorted(secrets):
        assert secret not in caplog.text, secret
        assert not any(secret in record.getMessage() for record in caplog.records), secret


def samples_for(card, samples: dict[str, dict[str, str]]) -> dict[str, str]:
    """Return the true values of the sample the card was read from, so the reviewer's corrections make it valid."""
    stem = FOREIGN_SAMPLE if card.card_type == "foreign_guest" else DOMESTIC_SAMPLE
    truth = dict(samples[stem])
    if card.card_type == "foreign_guest":
        truth.pop("surname")
    return truth


def _cards(tmp_path: Path):
    store = Store(data_dir=tmp_path / "data", create=False)
    try:
        return store.list_cards(batch="masked")
    finally:
        store.close()


@pytest.mark.slow
def test_cli_debug_log_masked(tmp_path):
    fields = sample_fields(DOMESTIC_SAMPLE)
    scan = tmp_path / guest_file_name(fields)
    shutil.copy(SAMPLES_DIR / f"{DOMESTIC_SAMPLE}.jpg", scan)
    # The command line sets its own level, so the script sets DEBUG on the root and SQL loggers first.
    script = (
        "import logging, sys\n"
        f"logging.basicConfig(level=logging.DEBUG, format={LOG_FORMAT!r})\n"
        "logging.getLogger('sqlalchemy.engine').setLevel(logging.DEBUG)\n"
        "from ocr.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HUKA_DATA_DIR", "HUKA_DB_URL", "HUKA_LANG")}

    result = subprocess.run(
        [sys.executable, "-c", script, "ingest", "--data-dir", "data", "--", scan.name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=OCR_TIMEOUT_S,
    )

    assert result.returncode == 0, result.stderr
    # Log lines only: the progress line names the file, which the clerk needs to see.
    log_lines = [line for line in result.stderr.splitlines() if " DEBUG " in line or " INFO " in line]
    assert len(log_lines) > 5, result.stderr
    for secret in sorted(personal_values(fields)):
        assert not any(secret in line for line in log_lines), secret


def test_review_app_installs_masking(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("HUKA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HUKA_DB_URL", f"sqlite:///{(tmp_path / 'data' / 'cards.db').as_posix()}")
    previous = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    try:
        AppTest.from_file(str(REVIEW_APP_FILE)).run(timeout=APP_TIMEOUT_S)
        installed = logmask.is_installed()
    finally:
        logging.setLogRecordFactory(previous)

    assert installed


def test_oldest_value_forgotten_at_limit(monkeypatch):
    known = logmask._KnownValues(limit=2)
    monkeypatch.setattr(logmask, "_known", known)

    remember_values(["ALPHAVALUE SHARED", "BRAVOVALUE SHARED", "王小明"])

    assert mask_text("ALPHAVALUE BRAVOVALUE SHARED 王小明") == f"ALPHAVALUE {MASK} {MASK} {MASK}"
