"""Queued scans: pages stored by a scanning station and read later by an OCR worker.

``ingest --queue`` stores each new page (its original image and content key)
with a ``scan_queue`` row in state ``queued``, and the task queue of
:mod:`ocr.worker` gets a job naming the scan id. A worker then runs
:func:`process_queued_scan`, which writes the card and moves the row to
``done`` in one transaction. Processing is idempotent: a scan that has a card
already is only marked ``done``, so a job run twice (a retried stalled job, or
two workers racing) stores one card. A scan whose processing raised an error
:data:`MAX_ATTEMPTS` times, or whose worker died that often, is ``failed``.

This module contains the table and the store side only; the job queue itself
(procrastinate on PostgreSQL) is in :mod:`ocr.worker`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.card_type import UNKNOWN_CARD_TYPE
from ocr.crypto import read_stored_file
from ocr.errors import CardCaptureError, DuplicateScanError, StoreError
from ocr.ingest import IngestFailure, Page, iter_pages
from ocr.pipeline import _png
from ocr.store import Base, CardRow, ScanRow, Store

__all__ = [
    "MAX_ATTEMPTS",
    "EnqueueReport",
    "QueuedScanRow",
    "ScanOutcome",
    "enqueue_paths",
    "process_queued_scan",
    "queue_counts",
    "queued_scan_ids",
    "requeue_failed",
]

log = logging.getLogger(__name__)

# Attempts per scan before it is marked failed: a worker killed during a card counts as one,
# so a page that crashes every worker that reads it stops being retried.
MAX_ATTEMPTS = 3

QUEUED = "queued"
DONE = "done"
FAILED = "failed"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class QueuedScanRow(Base):
    """The OCR state of a scan stored by ``ingest --queue``: which batch it goes to and how far it got."""

    __tablename__ = "scan_queue"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id"), unique=True)
    # Name of the batch the card is stored in; the batch row is made with the card.
    batch: Mapped[str] = mapped_column(String(200))
    # OCR engine the scanning station asked for.
    engine: Mapped[str] = mapped_column(String(32))
    # "queued" → "done", or "failed" after MAX_ATTEMPTS attempts.
    state: Mapped[str] = mapped_column(String(16), index=True, default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    queued_at: Mapped[datetime] = mapped_column(DateTime, default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


@dataclass
class EnqueueReport:
    """Counts of one ``ingest --queue`` run; ``scan_ids`` are the scans queued by it."""

    pages: int = 0
    queued: int = 0
    duplicates: int = 0
    failures: list[IngestFailure] = field(default_factory=list)
    # (source file, page, id of the card stored before or None while it waits for OCR, id of the
    # stored scan) per duplicate page.
    duplicate_of: list[tuple[str, int, int | None, int | None]] = field(default_factory=list)
    scan_ids: list[int] = field(default_factory=list)


def enqueue_paths(
    paths: Iterable[str | Path],
    store: Store,
    *,
    batch: str,
    engine_name: str = "rapidocr",
    pdf_dpi: int = 200,
    on_page: Callable[[Page | IngestFailure], None] | None = None,
    on_queued: Callable[[int], None] | None = None,
) -> EnqueueReport:
    """Store every new page of the files as a queued scan; call ``on_queued(scan_id)`` after each commit.

    A page whose content is stored already (as a card or a queued scan) is
    counted as a duplicate. No OCR runs here.
    """
    report = EnqueueReport()
    # A station whose data folder is not the shared one stops here, before any page is read.
    store.ensure_data_folder()
    for item in iter_pages(paths, pdf_dpi=pdf_dpi):
        if on_page is not None:
            on_page(item)
        if isinstance(item, IngestFailure):
            report.failures.append(item)
            continue
        report.pages += 1

        existing = store.find_scan_id(item.key)
        if existing is None:
            try:
                scan_id = store.add_scan(
                    content_key=item.key,
                    source=str(item.source),
                    page=item.page,
                    original_png=_png(item.image),
                    on_stored=lambda session, new_id: session.add(
                        QueuedScanRow(scan_id=new_id, batch=batch, engine=engine_name)
                    ),
                )
            except DuplicateScanError as exc:
                # Another station stored the same page between the look-up and the insert.
                existing = exc.scan_id
            else:
                report.queued += 1
                report.scan_ids.append(scan_id)
                if on_queued is not None:
                    on_queued(scan_id)
                continue

        report.duplicates += 1
        report.duplicate_of.append((str(item.source), item.page, store.find_scan(item.key), existing))
        log.info("page skipped as duplicate page=%s scan=%s", item.key[:12], existing)
    log.info("queue ingest finished batch=%s pages=%d queued=%d duplicates=%d", batch, report.pages, report.queued, report.duplicates)
    return report


@dataclass(frozen=True)
class ScanOutcome:
    """Result of :func:`process_queued_scan`: ``action`` is "stored", "had_card", "failed" or "missing"."""

    scan_id: int
    action: str
    card_id: int | None = None
    needs_review: bool = False
    unknown: bool = False


def _card_of(store: Store, scan_id: int) -> int | None:
    with store.session() as session:
        return session.scalar(select(CardRow.id).where(CardRow.scan_id == scan_id))


def _mark(session: Session, scan_id: int, state: str, error: str | None = None) -> None:
    values: dict[str, object] = {"state": state, "finished_at": _now()}
    if error is not None:
        values["last_error"] = error[:2000]
    session.execute(update(QueuedScanRow).where(QueuedScanRow.scan_id == scan_id).values(**values))


def _start_attempt(store: Store, scan_id: int) -> QueuedScanRow | None:
    """Count one more attempt, committed before the OCR starts, so that a crash counts too."""
    with store.session() as session:
        row = session.scalar(select(QueuedScanRow).where(QueuedScanRow.scan_id == scan_id).with_for_update())
        if row is None:
            return None
        row.attempts += 1
        session.flush()
        session.expunge(row)
        return row


def _read_original(store: Store, scan: ScanRow) -> np.ndarray:
    """Decode the stored original image; a relative path may be another machine's, so the data folder is tried too."""
    path = store.image_file(scan.image_path)
    # The stored file may be encrypted at rest; read_stored_file returns the plain bytes.
    try:
        data = read_stored_file(path)
    except FileNotFoundError:
        data = b""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise StoreError(
            f"扫描页 {scan.id} 的原图 {path} 不存在或无法读取。请检查各台机器是否挂载了同一个数据目录（--data-dir）。",
            f"original image {path} of scan {scan.id} is missing or unreadable; "
            "check that every machine mounts the same data folder (--data-dir)",
        )
    return image


def process_queued_scan(store: Store, scan_id: int, read: Callable[[Page, str], object]) -> ScanOutcome:
    """Run OCR on a queued scan and store its card; do nothing but mark it done when it has a card.

    ``read(page, engine_name)`` returns the :class:`ocr.pipeline.PageResult` of
    a page. An error it raises is recorded on the scan, which stays queued for a
    retry (the exception propagates) until its last attempt, where it is
    marked failed and the error is not raised.
    """
    card_id = _card_of(store, scan_id)
    if card_id is not None:
        with store.session() as session:
            _mark(session, scan_id, DONE)
        log.info("queued scan already has a card scan=%s card=%s", scan_id, card_id)
        return ScanOutcome(scan_id, "had_card", card_id)

    queued = _start_attempt(store, scan_id)
    if queued is None:
        log.warning("queued scan not found scan=%s", scan_id)
        return ScanOutcome(scan_id, "missing")
    if queued.attempts > MAX_ATTEMPTS:
        with store.session() as session:
            _mark(session, scan_id, FAILED, queued.last_error or "the worker stopped during every attempt")
        log.error("queued scan failed after %d attempts scan=%s", MAX_ATTEMPTS, scan_id)
        return ScanOutcome(scan_id, "failed")

    with store.session() as session:
        scan = session.get(ScanRow, scan_id)
        session.expunge(scan)
    try:
        image = _read_original(store, scan)
        file_hash, _, page_number = scan.content_key.rpartition(":")
        page = Page(
            source=Path(scan.source),
            page=scan.page,
            page_count=1,
            file_sha256=file_hash,
            image=image,
            dpi=None,
        )
        if page.key != scan.content_key:
            raise StoreError(
                f"扫描页 {scan_id} 的内容键无效。", f"scan {scan_id} has an invalid content key ({page_number})"
            )
        result = read(page, queued.engine)
        card_id = store.add_card(
            batch=queued.batch,
            content_key=scan.content_key,
            extraction=result.extraction,
            original_png=None,
            straight_png=result.straight_png(),
            scan_id=scan_id,
            on_stored=lambda session, _card_id: _mark(session, scan_id, DONE),
        )
    except Exception as exc:
        # A second worker may have stored the card first; that is success, not an error.
        card_id = _card_of(store, scan_id)
        if card_id is not None:
            with store.session() as session:
                _mark(session, scan_id, DONE)
            return ScanOutcome(scan_id, "had_card", card_id)
        message = exc.message_en if isinstance(exc, CardCaptureError) else f"{type(exc).__name__}: {exc}"
        last = queued.attempts >= MAX_ATTEMPTS
        with store.session() as session:
            if last:
                _mark(session, scan_id, FAILED, message)
            else:
                session.execute(
                    update(QueuedScanRow).where(QueuedScanRow.scan_id == scan_id).values(last_error=message[:2000])
                )
        # The message names the failure without field values; ocr.logmask masks any that slip in.
        log.error("queued scan attempt %d failed scan=%s: %s", queued.attempts, scan_id, message)
        if last:
            return ScanOutcome(scan_id, "failed")
        raise

    extraction = result.extraction
    log.info("queued scan stored scan=%s card=%s", scan_id, card_id)
    return ScanOutcome(
        scan_id,
        "stored",
        card_id,
        needs_review=extraction.needs_review,
        unknown=extraction.card_type == UNKNOWN_CARD_TYPE,
    )


def queue_counts(store: Store) -> dict[str, dict[str, int]]:
    """Return the number of queued scans per batch name and state ("queued", "done", "failed")."""
    with store.session() as session:
        rows = session.execute(
            select(QueuedScanRow.batch, QueuedScanRow.state, func.count(QueuedScanRow.id)).group_by(
                QueuedScanRow.batch, QueuedScanRow.state
            )
        )
        counts: dict[str, dict[str, int]] = {}
        for batch, state, count in rows:
            counts.setdefault(batch, {})[state] = count
        return counts


def requeue_failed(store: Store) -> list[int]:
    """Put failed scans back in state queued with no attempts counted; return their scan ids.

    The next worker sweep queues a job for each of them.
    """
    with store.session() as session:
        ids = list(session.scalars(select(QueuedScanRow.scan_id).where(QueuedScanRow.state == FAILED)))
        session.execute(
            update(QueuedScanRow)
            .where(QueuedScanRow.scan_id.in_(ids))
            .values(state=QUEUED, attempts=0, finished_at=None, queued_at=_now() - timedelta(days=1))
        )
    log.info("failed scans queued again count=%d", len(ids))
    return ids


def queued_scan_ids(store: Store, *, older_than_s: float = 0.0) -> list[int]:
    """Return the ids of scans still waiting for OCR, queued at least ``older_than_s`` seconds ago."""
    cutoff = _now() - timedelta(seconds=older_than_s)
    with store.session() as session:
        return list(
            session.scalars(
                select(QueuedScanRow.scan_id)
                .where(QueuedScanRow.state == QUEUED, QueuedScanRow.queued_at <= cutoff)
                .order_by(QueuedScanRow.scan_id)
            )
        )
