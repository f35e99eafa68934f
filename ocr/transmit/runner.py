"""One transmission run, and the clerk's confirmation of a manual upload.

A run takes a lock, so two runs never form or send the same batch. It first
re-sends every batch formed before and not yet delivered (after a crash or an
outage). Then it forms new batches from the queued records, delivers them, and
archives what was acknowledged. A batch keeps its idempotency key and records
on every re-send, so a receiver that dedupes by the key counts it once.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ocr.errors import CardCaptureError, ConfigError, ExitCode
from ocr.registry import Registry, load_registry
from ocr.store import Store
from ocr.transmit import outbox
from ocr.transmit.adapters import Adapter, DeliveryError, make_adapter
from ocr.transmit.archive import archive_acknowledged
from ocr.transmit.batches import BatchFiles, columns_for, render_batch
from ocr.transmit.config import Config

__all__ = ["ConfirmError", "TransmitReport", "confirm_manual", "ensure_files", "run_transmit"]

log = logging.getLogger(__name__)

PHONE_RECEIPT = "电话确认 / confirmed by phone"


class ConfirmError(CardCaptureError):
    exit_code = ExitCode.CONFLICT


@dataclass
class TransmitReport:
    approved: int = 0
    formed: int = 0
    acknowledged: list[int] = field(default_factory=list)
    awaiting_confirmation: list[int] = field(default_factory=list)
    # (batch id, Chinese message, English message)
    failed: list[tuple[int, str, str]] = field(default_factory=list)
    archived: int = 0


@contextmanager
def _run_lock(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<data dir>/transmit.lock``; the system releases it if the process dies."""
    path = data_dir / "transmit.lock"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ConfigError(
                "另一个 transmit 正在运行，本次未发送。请等它结束后再运行。",
                "another transmit run is in progress; nothing was sent; run again when it has finished",
            ) from exc
        yield
    finally:
        os.close(descriptor)


def _stem(config: Config, batch: outbox.BatchInfo) -> str:
    return f"{config.transmit.hotel_id}_{batch.card_type}_{batch.arrival_date}_{batch.kind}_{batch.id:06d}"


def ensure_files(store: Store, config: Config, registry: Registry, batch: outbox.BatchInfo) -> BatchFiles:
    """Return the batch's files, writing them from the stored records when they are missing.

    The files are written once and re-sent as they are, so every attempt carries the same checksum.
    """
    folder = store.data_dir / "transmit" / batch.idempotency_key
    stem = _stem(config, batch)
    data_file = folder / f"{stem}.{batch.file_format}"
    manifest_file = folder / f"{stem}.manifest.json"
    if batch.state == outbox.READY and data_file.is_file() and manifest_file.is_file() and batch.manifest:
        return BatchFiles(data_file=data_file, manifest_file=manifest_file, manifest=batch.manifest)
    files = render_batch(batch.manifest, batch.records, columns_for(batch.card_type, registry), folder, stem)
    outbox.set_batch_files(store, batch.id, str(files.data_file), files.manifest)
    return files


def _deliver(store: Store, config: Config, registry: Registry, adapter: Adapter, batch: outbox.BatchInfo, report: TransmitReport) -> None:
    try:
        files = ensure_files(store, config, registry, batch)
        result = adapter.deliver(files)
    except DeliveryError as exc:
        outbox.mark_attempt(store, batch.id, error=exc.message_en)
        log.error("transmit batch %s not delivered: %s", batch.id, exc.message_en)
        report.failed.append((batch.id, exc.message_zh, exc.message_en))
        return
    if result.acknowledged:
        outbox.mark_attempt(store, batch.id, error=None)
        outbox.mark_acknowledged(
            store, batch.id, by=adapter.name, receipt=result.receipt, acknowledgement=result.acknowledgement
        )
        report.acknowledged.append(batch.id)
    else:
        outbox.mark_attempt(store, batch.id, error=None, state=outbox.AWAITING_CONFIRMATION)
        report.awaiting_confirmation.append(batch.id)


def run_transmit(store: Store, config: Config, *, registry: Registry | None = None) -> TransmitReport:
    """Send every approved record not yet acknowledged; returns what happened to each batch.

    Raises :class:`ConfigError` when no adapter is configured or another run holds the lock.
    """
    registry = registry or load_registry()
    adapter = make_adapter(config, store.data_dir)
    report = TransmitReport()
    with _run_lock(store.data_dir):
        if config.transmit.include_auto_accepted:
            report.approved = outbox.approve_auto_accepted(store)
        # Batches from earlier runs first: they are the oldest records.
        earlier = outbox.open_batches(store)
        report.formed = len(outbox.form_batches(store, config, registry, adapter.name))
        for batch in earlier + [b for b in outbox.open_batches(store) if b.id not in {e.id for e in earlier}]:
            _deliver(store, config, registry, adapter, batch, report)
        report.archived = archive_acknowledged(store, config, store.data_dir)
    log.info(
        "transmit run done acknowledged=%d awaiting=%d failed=%d",
        len(report.acknowledged),
        len(report.awaiting_confirmation),
        len(report.failed),
    )
    return report


def confirm_manual(
    store: Store,
    config: Config,
    reference: str,
    *,
    clerk: str,
    receipt: str | None,
    by_phone: bool,
    at: datetime | None = None,
) -> outbox.BatchInfo:
    """Record that a clerk uploaded a batch by hand: who, when, and the receipt number or a phone confirmation.

    Raises :class:`ConfirmError` for an unknown batch, a missing receipt, or a
    batch confirmed before (the first confirmation is kept).
    """
    if not clerk.strip():
        raise ConfirmError("请用 --by 填写确认人姓名。", "give the confirming clerk's name with --by")
    if not receipt and not by_phone:
        raise ConfirmError(
            "请用 --receipt 填写回执编号，或用 --phone 表示已电话确认。",
            "give the receipt number with --receipt, or --phone for a confirmation by phone",
        )
    batch = outbox.get_batch(store, reference)
    if batch is None:
        raise ConfirmError(
            f"找不到批次 {reference}。请用 python -m ocr transmit --list 查看批次编号。",
            f"batch {reference} not found; list the batches with python -m ocr transmit --list",
        )
    if batch.state == outbox.ACKNOWLEDGED:
        when = batch.acknowledged_at.strftime("%Y-%m-%d %H:%M") if batch.acknowledged_at else "?"
        raise ConfirmError(
            f"批次 {batch.id} 已于 {when}（UTC）确认，回执：{batch.receipt or '无'}。未重复记录。",
            f"batch {batch.id} was confirmed at {when} UTC (receipt: {batch.receipt or 'none'}); nothing recorded",
        )
    if batch.state != outbox.AWAITING_CONFIRMATION:
        raise ConfirmError(
            f"批次 {batch.id} 尚未交给户管员上传（状态 {batch.state}），不能确认。请先运行 transmit。",
            f"batch {batch.id} was not handed over for upload yet (state {batch.state}); run transmit first",
        )
    outbox.mark_acknowledged(
        store,
        batch.id,
        by=clerk.strip(),
        receipt=receipt or PHONE_RECEIPT,
        acknowledgement={"manual": True, "by_phone": by_phone, "receipt": receipt},
        at=at,
    )
    archive_acknowledged(store, config, store.data_dir)
    return outbox.get_batch(store, str(batch.id))
