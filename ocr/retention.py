"""Retention: delete the scans and records of cards past the retention period.

A card is due when its last change and every acknowledgement of its records
are older than the period, and its records are settled. Settled means that
each queued record was acknowledged by the receiver and at least one was, or
that the card was rejected and no record is waiting. A card still waiting for review or for transmission is
kept unless ``force`` is on. The period comes from ``--days`` or from
``days`` under ``[retention]`` in the config file (see
:func:`ocr.transmit.config.find_config_file`); without either nothing is deleted.

For each due card, in chunks, the job deletes the files first (original and
straightened scan, the card's archive folder, the files of transmission
batches left with no records), then in one transaction every row that refers
to the card or its scan, the card and the scan, and erases the old and new
values of the card's audit events. The events themselves stay, with their
hashes, so ``python -m ocr audit verify`` still passes, and a ``purged`` event
records the deletion. A run killed between the two steps leaves cards whose
files are gone, and the next run deletes them. Search-log entries older than
the period are deleted too. Only counts are logged.
"""

from __future__ import annotations

import logging
import shutil
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from models.card import CardStatus
from ocr.errors import ConfigError
from ocr.migrations import load_models
from ocr.store import (
    ArchiveRow,
    AuditRow,
    BatchRow,
    CardRow,
    OutboxRow,
    ScanRow,
    Store,
    TransmitBatchRow,
    _now,
)

__all__ = ["RETENTION_ACTOR", "RetentionReport", "due_card_ids", "retention_days_from_config", "run_retention"]

log = logging.getLogger(__name__)

RETENTION_ACTOR = "retention"
# Cards deleted per transaction: bounds the lock time and the size of IN lists.
CHUNK_SIZE = 200
ACKNOWLEDGED = "acknowledged"


@dataclass
class RetentionReport:
    """Counts of one retention run; in a dry run, what would be deleted."""

    days: int
    cutoff: datetime
    dry_run: bool
    cards: int = 0
    files: int = 0
    folders: int = 0
    audit_events_erased: int = 0
    search_entries: int = 0
    # Cards past the period that were kept because their records are not settled.
    kept_unsettled: int = 0
    card_ids: list[int] = field(default_factory=list)


def retention_days_from_config(config_path: Path | None = None) -> int | None:
    """Return ``days`` of the ``[retention]`` table of the config file, or None when unset."""
    from ocr.transmit.config import find_config_file

    source = find_config_file(config_path)
    if source is None:
        return None
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"无法读取配置文件 {source}：{exc}。请检查 TOML 格式。",
            f"cannot read config file {source}: {exc}; check the TOML syntax",
        ) from exc
    days = data.get("retention", {}).get("days")
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ConfigError(
            f"配置文件 {source} 中 retention.days = {days!r} 无效：应为不小于 1 的整数（天数）。",
            f"invalid retention.days = {days!r} in config file {source}: expected a whole number of days, at least 1",
        )
    return days


def _settled(cutoff: datetime):
    """Return the SQL condition of a card whose records need nothing more and were last acknowledged before ``cutoff``."""
    entry = OutboxRow.card_id == CardRow.id
    waiting = exists().where(entry, OutboxRow.state != ACKNOWLEDGED)
    acknowledged = exists().where(entry, OutboxRow.state == ACKNOWLEDGED)
    recent = exists().where(entry, OutboxRow.acknowledged_at >= cutoff)
    return and_(~waiting, ~recent, or_(acknowledged, CardRow.status == str(CardStatus.REJECTED)))


def due_card_ids(session: Session, cutoff: datetime, *, force: bool) -> tuple[list[int], int]:
    """Return (ids of the cards to delete, number of cards past the period kept as unsettled)."""
    old = CardRow.updated_at < cutoff
    settled = _settled(cutoff)
    query = select(CardRow.id).where(old).order_by(CardRow.id)
    if not force:
        query = query.where(settled)
    ids = list(session.scalars(query))
    kept = 0 if force else session.scalar(select(func.count(CardRow.id)).where(old, ~settled)) or 0
    return ids, kept


def _resolve(store: Store, stored: str | None) -> Path | None:
    """Return the file a stored image path names (see :meth:`Store.image_file`), or None for no path."""
    return store.image_file(stored) if stored else None


def _unlink(path: Path | None) -> int:
    if path is None:
        return 0
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1


def _remove_tree(path: Path) -> int:
    if not path.exists():
        return 0
    shutil.rmtree(path)
    return 1


def _orphaned_batches(session: Session, card_ids: list[int]) -> list[TransmitBatchRow]:
    """Return the transmission batches whose records all belong to ``card_ids``."""
    batch_ids = set(
        session.scalars(select(OutboxRow.batch_id).where(OutboxRow.card_id.in_(card_ids), OutboxRow.batch_id.is_not(None)))
    )
    if not batch_ids:
        return []
    still_used = set(
        session.scalars(
            select(OutboxRow.batch_id).where(OutboxRow.batch_id.in_(batch_ids), OutboxRow.card_id.not_in(card_ids))
        )
    )
    return list(session.scalars(select(TransmitBatchRow).where(TransmitBatchRow.id.in_(batch_ids - still_used))))


def _delete_files(store: Store, session: Session, card_ids: list[int], report: RetentionReport) -> None:
    """Delete the scans, archive folders and orphaned batch folders of the cards."""
    images = session.execute(
        select(ScanRow.image_path, CardRow.straight_image_path).join(CardRow, CardRow.scan_id == ScanRow.id).where(
            CardRow.id.in_(card_ids)
        )
    ).all()
    for original, straight in images:
        report.files += _unlink(_resolve(store, original)) + _unlink(_resolve(store, straight))
    for folder in session.scalars(select(ArchiveRow.folder).where(ArchiveRow.card_id.in_(card_ids))):
        report.folders += _remove_tree(Path(folder))
    for batch in _orphaned_batches(session, card_ids):
        report.folders += _remove_tree(store.data_dir / "transmit" / batch.idempotency_key)


def _referring_tables(target: str):
    """Yield (table, column) of every foreign key that refers to ``target``'s id, from every model module."""
    metadata = load_models()
    for table in metadata.sorted_tables:
        for foreign_key in table.foreign_keys:
            if foreign_key.column.table.name == target and table.name != target:
                yield table, foreign_key.parent


def _delete_rows(session: Session, card_ids: list[int], report: RetentionReport) -> None:
    """Delete the cards, their scans and every row that refers to either; erase their audit values."""
    scan_ids = list(session.scalars(select(CardRow.scan_id).where(CardRow.id.in_(card_ids))))
    batch_ids = [batch.id for batch in _orphaned_batches(session, card_ids)]
    card_batch_ids = set(session.scalars(select(CardRow.batch_id).where(CardRow.id.in_(card_ids))))

    # Rows that refer to the cards (fields, outbox entries, archive rows, holds) go first.
    # A correction refers to its original in the outbox, and both go in one statement.
    for table, column in _referring_tables("cards"):
        session.execute(delete(table).where(column.in_(card_ids)))
    session.execute(delete(TransmitBatchRow).where(TransmitBatchRow.id.in_(batch_ids)))
    session.execute(delete(CardRow).where(CardRow.id.in_(card_ids)))
    for table, column in _referring_tables("scans"):
        if table.name != "cards":
            session.execute(delete(table).where(column.in_(scan_ids)))
    session.execute(delete(ScanRow).where(ScanRow.id.in_(scan_ids)))
    # Batches left with no card are dropped; their names are dates or what the clerk typed.
    session.execute(
        delete(BatchRow).where(BatchRow.id.in_(card_batch_ids), ~exists().where(CardRow.batch_id == BatchRow.id))
    )

    erased = session.execute(
        update(AuditRow)
        .where(AuditRow.card_id.in_(card_ids))
        .values(old_value=None, new_value=None, value_salt=None)
        .execution_options(synchronize_session=False)
    )
    report.audit_events_erased += erased.rowcount or 0
    now = _now()
    for card_id in card_ids:
        session.add(AuditRow(card_id=card_id, at=now, actor=RETENTION_ACTOR, action="purged"))


def _delete_old_searches(session: Session, cutoff: datetime) -> int:
    from ocr.search import SearchLogRow

    result = session.execute(delete(SearchLogRow).where(SearchLogRow.at < cutoff))
    return result.rowcount or 0


def run_retention(
    store: Store, days: int, *, dry_run: bool = False, force: bool = False, now: datetime | None = None
) -> RetentionReport:
    """Delete the scans and records of cards past ``days`` days; return the counts.

    ``now`` (naive UTC, like every time in the store) is for tests. With
    ``dry_run`` nothing is deleted and the report gives what would be.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    cutoff = (now or _now()) - timedelta(days=days)
    report = RetentionReport(days=days, cutoff=cutoff, dry_run=dry_run)
    with store.session() as session:
        card_ids, report.kept_unsettled = due_card_ids(session, cutoff, force=force)
    report.card_ids = card_ids
    report.cards = len(card_ids)
    if dry_run:
        log.info("retention dry run days=%d due=%d kept_unsettled=%d", days, report.cards, report.kept_unsettled)
        return report

    for start in range(0, len(card_ids), CHUNK_SIZE):
        chunk = card_ids[start : start + CHUNK_SIZE]
        with store.session() as session:
            _delete_files(store, session, chunk, report)
        with store.session() as session:
            _delete_rows(session, chunk, report)
        log.info("retention chunk deleted cards=%d", len(chunk))
    with store.session() as session:
        report.search_entries = _delete_old_searches(session, cutoff)
    log.info(
        "retention finished days=%d cards=%d files=%d folders=%d audit_erased=%d searches=%d kept_unsettled=%d forced=%s",
        days,
        report.cards,
        report.files,
        report.folders,
        report.audit_events_erased,
        report.search_entries,
        report.kept_unsettled,
        force,
    )
    return report
