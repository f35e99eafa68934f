"""Retention on SQLite and PostgreSQL: which cards go, what is deleted with them, and the audit chain after.

Cards are built from sample truth values and sent for real through the folder
adapter, which acknowledges at once and archives each card. Their ages are set
with plain SQL, the way months of use would leave them.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from models.card import CardStatus
from ocr.audit import verify_chain
from ocr.errors import ConfigError, ExitCode
from ocr.retention import RETENTION_ACTOR, retention_days_from_config, run_retention
from ocr.store import ArchiveRow, AuditRow, CardRow, FieldRow, OutboxRow, ScanRow, Store, TransmitBatchRow, _now
from ocr.transmit.config import load_config
from ocr.transmit.runner import run_transmit
from test_transmit_support import REGISTRY, Cards, domestic_values, foreign_values, sample_png, write_config

DAYS = 30
OLD = _now() - timedelta(days=DAYS + 10)
DAY = "2025-12-15"
COMMAND_TIMEOUT_S = 60


class Site:
    """A store with cards in every retention case, keyed by case name."""

    def __init__(self, store: Store, tmp_path: Path) -> None:
        self.store = store
        self.tmp_path = tmp_path
        self.ids: dict[str, int] = {}


def make_old(store: Store, card_id: int) -> None:
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE cards SET updated_at = :old WHERE id = :id"), {"old": OLD, "id": card_id})
        connection.execute(
            text("UPDATE transmit_outbox SET acknowledged_at = :old WHERE card_id = :id AND acknowledged_at IS NOT NULL"),
            {"old": OLD, "id": card_id},
        )


@pytest.fixture()
def site(store_url: str, tmp_path: Path) -> Site:
    store = Store(url=store_url, data_dir=tmp_path / "data")
    cards = Cards(store, sample_png())
    built = Site(store, tmp_path)
    built.ids["sent_old"] = cards.add(foreign_values("0010001", DAY))
    built.ids["sent_recent"] = cards.add(domestic_values("0010002", DAY), card_type="domestic_guest")
    config = load_config(write_config(tmp_path / "hukacapture.toml", adapter="folder", folder=tmp_path / "drop"))
    report = run_transmit(store, config, registry=REGISTRY)
    assert len(report.acknowledged) == 2

    built.ids["approved_unsent"] = cards.add(foreign_values("0010003", DAY))
    built.ids["in_review"] = cards.add(foreign_values("0010004", DAY), approve=False)
    rejected = cards.add(foreign_values("0010005", DAY), approve=False)
    store.set_status(rejected, CardStatus.REJECTED, actor="clerk", expected_version=store.get_card(rejected).version)
    built.ids["rejected"] = rejected
    for case in ("sent_old", "approved_unsent", "in_review", "rejected"):
        make_old(store, built.ids[case])
    yield built
    store.close()


def card_ids(store: Store) -> set[int]:
    return {card.id for card in store.list_cards()}


def count(store: Store, query) -> int:
    with store.session() as session:
        return session.scalar(query)


def test_settled_old_cards_deleted(site):
    deleted = {site.ids["sent_old"], site.ids["rejected"]}

    report = run_retention(site.store, DAYS)

    assert set(report.card_ids) == deleted
    assert card_ids(site.store) == set(site.ids.values()) - deleted
    assert report.kept_unsettled == 2


def test_unsettled_kept_unless_forced(site):
    forced = run_retention(site.store, DAYS, force=True)

    assert set(forced.card_ids) == set(site.ids.values()) - {site.ids["sent_recent"]}
    assert card_ids(site.store) == {site.ids["sent_recent"]}


def test_rows_of_deleted_card_gone(site):
    card_id = site.ids["sent_old"]
    with site.store.session() as session:
        scan_id = session.scalar(select(CardRow.scan_id).where(CardRow.id == card_id))

    run_retention(site.store, DAYS)

    assert count(site.store, select(func.count()).select_from(FieldRow).where(FieldRow.card_id == card_id)) == 0
    assert count(site.store, select(func.count()).select_from(OutboxRow).where(OutboxRow.card_id == card_id)) == 0
    assert count(site.store, select(func.count()).select_from(ArchiveRow).where(ArchiveRow.card_id == card_id)) == 0
    assert count(site.store, select(func.count()).select_from(ScanRow).where(ScanRow.id == scan_id)) == 0
    # The recent card's batch is still used; the old card's batch had only that card.
    assert count(site.store, select(func.count()).select_from(TransmitBatchRow)) == 1


def test_files_of_deleted_card_gone(site):
    kept = site.store.get_card(site.ids["sent_recent"])
    gone = site.store.get_card(site.ids["sent_old"])
    with site.store.session() as session:
        folders = dict(session.execute(select(ArchiveRow.card_id, ArchiveRow.folder)).all())
    transmit_folders = sorted((site.store.data_dir / "transmit").iterdir())

    report = run_retention(site.store, DAYS)

    assert not Path(gone.original_image).exists()
    assert not Path(gone.straight_image).exists()
    assert not Path(folders[gone.id]).exists()
    assert Path(kept.original_image).exists()
    assert Path(folders[kept.id]).exists()
    assert [folder.exists() for folder in transmit_folders].count(False) == 1
    assert report.files == 4  # original and straightened scan of two cards
    assert report.folders == 2  # one archive folder and one batch folder


def test_audit_chain_verifies_after(site):
    card_id = site.ids["sent_old"]

    run_retention(site.store, DAYS)

    chain = verify_chain(site.store)
    with site.store.session() as session:
        events = session.scalars(select(AuditRow).where(AuditRow.card_id == card_id).order_by(AuditRow.id)).all()
    assert chain.intact, chain.reason_en
    assert len(events) > 20
    assert all(event.new_value is None and event.old_value is None for event in events)
    assert events[-1].action == "purged"
    assert events[-1].actor == RETENTION_ACTOR


def test_check_passes_after(site):
    from ocr.check import check_store

    run_retention(site.store, DAYS)

    # The deleted cards' audit events stay on purpose; check does not count them as broken.
    report = check_store(site.store)
    assert report.ok, report.problems


def test_moved_store_files_deleted(site):
    # The store's folder moves: rows keep the old absolute paths, and a copy stays at the old place.
    site.store.close()
    shutil.copytree(site.tmp_path / "data", site.tmp_path / "moved")
    url = site.store.url
    if url.startswith("sqlite:///"):
        url = f"sqlite:///{(site.tmp_path / 'moved' / 'cards.db').as_posix()}"
    moved = Store(url=url, data_dir=site.tmp_path / "moved")
    with moved.session() as session:
        stored = session.scalar(select(ScanRow.image_path).join(CardRow).where(CardRow.id == site.ids["sent_old"]))

    run_retention(moved, DAYS)

    assert not (site.tmp_path / "moved" / "images" / Path(stored).name).exists()
    # The copy at the old path is left alone.
    assert Path(stored).exists()
    moved.close()


def test_erased_audit_keeps_no_values(site):
    # The document number differs per built card; the name is the same sample name on all of them.
    number = site.store.get_card(site.ids["sent_old"]).fields["document_number"].value

    run_retention(site.store, DAYS)

    with site.store.engine.connect() as connection:
        rows = connection.execute(text("SELECT old_value, new_value FROM audit_events")).all()
    assert number
    assert not any(number in (value or "") for row in rows for value in row)


def test_dry_run_deletes_nothing(site):
    before = card_ids(site.store)

    report = run_retention(site.store, DAYS, dry_run=True)

    assert report.cards == 2
    assert report.kept_unsettled == 2
    assert card_ids(site.store) == before
    assert verify_chain(site.store).intact


def test_second_run_deletes_nothing(site):
    run_retention(site.store, DAYS)

    again = run_retention(site.store, DAYS)

    assert again.cards == 0
    assert again.files == 0


def test_log_has_counts_only(site, caplog):
    values = site.store.get_card(site.ids["sent_old"]).values()

    with caplog.at_level(logging.DEBUG, logger="ocr.retention"):
        run_retention(site.store, DAYS)

    assert "retention finished" in caplog.text
    assert "cards=2" in caplog.text
    for key in ("surname", "given_names", "document_number"):
        assert values[key]
        assert values[key] not in caplog.text


def test_period_from_config(tmp_path):
    path = tmp_path / "hukacapture.toml"
    path.write_text("[retention]\ndays = 180\n", encoding="utf-8")
    invalid = tmp_path / "invalid.toml"
    invalid.write_text("[retention]\ndays = 0\n", encoding="utf-8")

    assert retention_days_from_config(path) == 180
    with pytest.raises(ConfigError) as error:
        retention_days_from_config(invalid)
    assert "retention.days" in error.value.message_zh


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HUKA_DATA_DIR", "HUKA_DB_URL", "HUKA_LANG", "HUKA_CONFIG")}
    return subprocess.run(
        [sys.executable, "-m", "ocr", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=COMMAND_TIMEOUT_S,
    )


def test_retention_command(site):
    url = site.store.engine.url.render_as_string(hide_password=False)
    store_args = ["--db", url, "--data-dir", str(site.store.data_dir)]
    workdir = site.tmp_path / "elsewhere"
    workdir.mkdir()

    missing = run_cli(["retention", *store_args], workdir)
    dry = run_cli(["retention", "--days", str(DAYS), "--dry-run", *store_args], workdir)
    real = run_cli(["retention", "--days", str(DAYS), *store_args], workdir)
    verify = run_cli(["audit", "verify", *store_args], workdir)

    assert missing.returncode == ExitCode.CONFIG_INVALID, missing.stderr
    assert "--days" in missing.stderr
    assert dry.returncode == 0, dry.stderr
    assert "将删除 2 张卡片" in dry.stdout
    assert real.returncode == 0, real.stderr
    assert "已删除 2 张卡片" in real.stdout
    assert "2 张卡片已过期限" in real.stdout
    assert verify.returncode == 0, verify.stderr
    assert card_ids(site.store) == {site.ids["sent_recent"], site.ids["approved_unsent"], site.ids["in_review"]}
