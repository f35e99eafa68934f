"""One transmission run, and the clerk's confirmation of a manual upload.

A run takes a lock, so two runs never form or send the same batch, even from
two machines that share a PostgreSQL database. It first
re-sends every batch formed before and not yet delivered (after a crash or an
outage). Then it forms new batches from the queued records, delivers them, and
archives what was acknowledged. A batch keeps its idempotency key and records
on every re-send, so a receiver that dedupes by the key counts it once.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ocr.errors import CardCaptureError, ConfigError, ExitCode, StoreError, os_error_reason
from ocr.registry import Registry, load_registry
from ocr.store import Store
from ocr.transmit import outbox
from ocr.transmit.adapters import Adapter, DeliveryError, make_adapter
from ocr.transmit.archive import archive_acknowledged
from ocr.transmit.batches import BatchFiles, columns_for, render_batch
from ocr.transmit.config import Config

__all__ = [
    "ConfirmError",
    "TransmitConflictError",
    "TransmitReport",
    "TransmitRunningError",
    "confirm_manual",
    "ensure_files",
    "run_transmit",
    "transmit_running",
]

log = logging.getLogger(__name__)

PHONE_RECEIPT = "电话确认 / confirmed by phone"


class ConfirmError(CardCaptureError):
    """A confirmation that cannot be recorded: a missing detail, an unknown batch, or one not handed over yet."""

    exit_code = ExitCode.BAD_INPUT


class AlreadyConfirmedError(ConfirmError):
    """The batch was confirmed before; the first confirmation is kept."""

    exit_code = ExitCode.CONFLICT


class TransmitConflictError(CardCaptureError):
    """The database rejected a write because another process wrote the same rows at the same time."""

    exit_code = ExitCode.CONFLICT


@dataclass
class TransmitReport:
    approved: int = 0
    # Auto-accepted cards sent back to review because another card has their serial number.
    held_duplicates: list[int] = field(default_factory=list)
    formed: int = 0
    acknowledged: list[int] = field(default_factory=list)
    awaiting_confirmation: list[int] = field(default_factory=list)
    # (batch id, Chinese message, English message)
    failed: list[tuple[int, str, str]] = field(default_factory=list)
    archived: int = 0
    # The batch being delivered right now; the command line names it when the run is interrupted.
    in_flight: int | None = None


class TransmitRunningError(ConfigError):
    """Another transmit run holds the lock."""


def _another_run() -> TransmitRunningError:
    return TransmitRunningError(
        "另一个 transmit 正在运行，本次未发送。请等它结束后再运行。",
        "another transmit run is in progress; nothing was sent; run again when it has finished",
    )


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path``; the system releases it if the process dies."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError as exc:
        reason_zh, reason_en = os_error_reason(exc)
        raise StoreError(
            f"无法创建锁文件 {path}：{reason_zh}。请检查数据目录的权限和剩余空间，或用 --data-dir 指向正确的数据目录。",
            f"cannot create lock file {path}: {reason_en}; check the data folder's permissions and free space, "
            "or point --data-dir at the right data folder",
        ) from exc
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise _another_run() from exc
        yield
    finally:
        os.close(descriptor)


def _advisory_lock_key(schema: str) -> int:
    """Return the advisory-lock key of the transmit runs of the store in ``schema``, a signed 64-bit integer."""
    digest = hashlib.sha256(f"hukacapture transmit {schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def _advisory_lock(store: Store) -> Iterator[None]:
    """Hold a PostgreSQL session-level advisory lock on one connection for the run.

    The server releases it when that connection ends, also when the process dies or the
    machine loses the network. The key depends on the schema, so stores in separate schemas of
    one database do not block each other.

    NOTE: when this connection breaks in the middle of a run, the server releases the lock while
    the run goes on, so a second run could start then. Its batches still carry their keys.
    """
    connection = store.engine.connect()
    try:
        schema = connection.scalar(text("SELECT current_schema()"))
        key = _advisory_lock_key(str(schema))
        acquired = connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        # Session-level locks outlive the transaction; committing keeps the connection from idling in one.
        connection.commit()
        if not acquired:
            raise _another_run()
        try:
            yield
        finally:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
            except SQLAlchemyError:
                # Dropping the connection ends its session, which releases the lock as well.
                log.warning("transmit lock not released cleanly; closing its database connection")
                connection.invalidate()
    finally:
        connection.close()


@contextmanager
def _run_lock(store: Store) -> Iterator[None]:
    """Hold the lock that lets one transmit run at a time work on ``store``.

    PostgreSQL: stations on several machines share the database, and a file lock in the shared
    data folder is not reliable over network file systems, so the lock is held in the database.
    SQLite: every process that uses the store opens its database file on this machine, so the
    lock is a file beside it (``cards.db.transmit.lock``), the same whichever --data-dir a run
    names. A database that is not a file locks ``transmit.lock`` in the data folder.
    """
    if store.engine.dialect.name == "postgresql":
        with _advisory_lock(store):
            yield
        return
    with _file_lock(_lock_path(store)):
        yield


def _lock_path(store: Store) -> Path:
    """Return the lock file of the transmit runs of a store that is not PostgreSQL."""
    database = store.engine.url.database
    if database and database != ":memory:":
        path = Path(database).absolute()
        return path.with_name(f"{path.name}.transmit.lock")
    return store.data_dir / "transmit.lock"


def transmit_running(store: Store) -> bool:
    """Return whether a transmit run holds the run lock of ``store`` at this moment.

    PostgreSQL: reads ``pg_locks`` for the run's advisory lock, without taking it. SQLite and
    other stores: takes a shared lock on the lock file without blocking and drops it at once.
    A missing lock file means that no run has started on this machine.

    NOTE: on SQLite a transmit run that starts during the few microseconds of the shared lock
    fails with "another transmit run is in progress" and has to be run again.
    """
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as connection:
            schema = connection.scalar(text("SELECT current_schema()"))
            # pg_locks shows a bigint advisory key as two unsigned 32-bit halves, with objsubid 1.
            key = _advisory_lock_key(str(schema)) & 0xFFFF_FFFF_FFFF_FFFF
            locked = connection.scalar(
                text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    " AND classid = CAST(:high AS oid) AND objid = CAST(:low AS oid) AND objsubid = 1)"
                ),
                {"high": key >> 32, "low": key & 0xFFFF_FFFF},
            )
        return bool(locked)
    try:
        descriptor = os.open(_lock_path(store), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def _check_data_folder(store: Store) -> None:
    """Raise :class:`StoreError` unless ``store.data_dir`` exists and is the store's data folder.

    A run writes batch files and the archive there. Written to a local folder instead of the
    shared one, they would be missing on every other machine, so the folder is checked as
    ``ingest`` and ``worker`` check it.
    """
    if not store.data_dir.is_dir():
        raise StoreError(
            f"数据目录 {store.data_dir} 不存在，未发送任何记录。请用 --data-dir（或 HUKA_DATA_DIR）指向此数据库的数据目录；"
            "多工位时请先挂载共享数据目录。",
            f"data folder {store.data_dir} does not exist and nothing was sent; point --data-dir (or HUKA_DATA_DIR) "
            "at this database's data folder, and with several stations mount the shared data folder first",
        )
    store.ensure_data_folder()


def _conflict(exc: IntegrityError) -> TransmitConflictError:
    constraint = getattr(getattr(getattr(exc, "orig", None), "diag", None), "constraint_name", None)
    log.warning("transmit write rejected by the database constraint=%s", constraint or type(exc.orig).__name__)
    return TransmitConflictError(
        "数据库拒绝了本次写入：另一个进程（可能是另一台电脑上的 transmit 或 confirm）同时写入了相同的记录。"
        "本次运行已停止，已确认的批次已保存。请等另一个进程结束后重新运行 transmit，"
        "未确认的批次会用相同的幂等键重发，接收方不会重复计数。",
        "the database rejected a write because another process (perhaps transmit or confirm on another "
        "computer) wrote the same rows at the same time; this run stopped and acknowledged batches are saved; "
        "run transmit again when the other process has finished, and unacknowledged batches are re-sent under "
        "the same idempotency key, so the receiver counts them once",
    )


def _archive(store: Store, config: Config) -> int:
    """Archive the acknowledged records; raise :class:`StoreError` with a Chinese reason when a file cannot be written."""
    try:
        return archive_acknowledged(store, config, store.data_dir)
    except OSError as exc:
        reason_zh, reason_en = os_error_reason(exc)
        raise StoreError(
            f"无法写入归档 {exc.filename or ''}：{reason_zh}。记录已上报并确认；请检查归档目录后重新运行 transmit，它会补上归档。",
            f"cannot write the archive {exc.filename or ''}: {reason_en}; the records were sent and acknowledged; "
            "check the archive folder and run transmit again to complete the archive",
        ) from exc


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


def _write_files(store: Store, config: Config, registry: Registry, batch: outbox.BatchInfo) -> BatchFiles:
    try:
        return ensure_files(store, config, registry, batch)
    except OSError as exc:
        reason_zh, reason_en = os_error_reason(exc)
        raise DeliveryError(
            f"无法写入批次文件 {exc.filename or store.data_dir}：{reason_zh}。请检查数据目录的权限和剩余空间，然后重新运行 transmit。",
            f"cannot write the batch file {exc.filename or store.data_dir}: {reason_en}; check the data folder's "
            "permissions and free space, then run transmit again",
        ) from exc


def _deliver(store: Store, config: Config, registry: Registry, adapter: Adapter, batch: outbox.BatchInfo, report: TransmitReport) -> None:
    report.in_flight = batch.id
    try:
        files = _write_files(store, config, registry, batch)
        result = adapter.deliver(files)
    except DeliveryError as exc:
        outbox.mark_attempt(store, batch.id, adapter=adapter.name, error=(exc.message_zh, exc.message_en))
        # The command line prints the failure to the user; the log repeats it only with --verbose.
        log.warning("transmit batch %s not delivered: %s", batch.id, exc.message_en)
        report.failed.append((batch.id, exc.message_zh, exc.message_en))
        report.in_flight = None
        return
    if result.acknowledged:
        outbox.mark_attempt(store, batch.id, adapter=adapter.name, error=None)
        outbox.mark_acknowledged(
            store, batch.id, by=adapter.name, receipt=result.receipt, acknowledgement=result.acknowledgement
        )
        report.acknowledged.append(batch.id)
    else:
        outbox.mark_attempt(store, batch.id, adapter=adapter.name, error=None, state=outbox.AWAITING_CONFIRMATION)
        report.awaiting_confirmation.append(batch.id)
    report.in_flight = None


def run_transmit(
    store: Store,
    config: Config,
    *,
    registry: Registry | None = None,
    report: TransmitReport | None = None,
) -> TransmitReport:
    """Send every approved record not yet acknowledged; returns what happened to each batch.

    ``report``, when given, is filled as the run goes, so a caller interrupted by Ctrl-C can
    tell what was sent. Raises :class:`ConfigError` when no adapter is configured or another
    run holds the lock, :class:`StoreError` when the data folder is not the store's, and
    :class:`TransmitConflictError` when a concurrent writer made the database reject a write.
    """
    registry = registry or load_registry()
    adapter = make_adapter(config, store.data_dir)
    report = report if report is not None else TransmitReport()
    _check_data_folder(store)
    try:
        with _run_lock(store):
            if config.transmit.include_auto_accepted:
                report.approved = outbox.approve_auto_accepted(store, registry, held=report.held_duplicates)
            # Batches from earlier runs first: they are the oldest records.
            earlier = outbox.open_batches(store)
            report.formed = len(outbox.form_batches(store, config, registry, adapter.name))
            for batch in earlier + [b for b in outbox.open_batches(store) if b.id not in {e.id for e in earlier}]:
                _deliver(store, config, registry, adapter, batch, report)
            report.archived = _archive(store, config)
    except IntegrityError as exc:
        raise _conflict(exc) from exc
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
        # Stored in UTC; shown in the zone of the deadlines, which the clerk reads as local time.
        zone = config.deadline.zone
        when = (
            batch.acknowledged_at.replace(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")
            if batch.acknowledged_at
            else "?"
        )
        raise AlreadyConfirmedError(
            f"批次 {batch.id} 已于 {when}（{zone.key}）确认，回执：{batch.receipt or '无'}。未重复记录。",
            f"batch {batch.id} was confirmed at {when} ({zone.key}) (receipt: {batch.receipt or 'none'}); "
            "nothing recorded",
        )
    if batch.state != outbox.AWAITING_CONFIRMATION:
        raise ConfirmError(
            f"批次 {batch.id} 尚未交给户管员上传（状态 {batch.state}），不能确认。请先运行 transmit。",
            f"batch {batch.id} was not handed over for upload yet (state {batch.state}); run transmit first",
        )
    _check_data_folder(store)
    try:
        outbox.mark_acknowledged(
            store,
            batch.id,
            by=clerk.strip(),
            receipt=receipt or PHONE_RECEIPT,
            acknowledgement={"manual": True, "by_phone": by_phone, "receipt": receipt},
            at=at,
        )
        # Archived under the run lock, so a transmit run archiving at the same moment does not race it.
        try:
            with _run_lock(store):
                _archive(store, config)
        except TransmitRunningError:
            log.info("transmit run in progress; batch %s is archived by it or by the next run", batch.id)
    except IntegrityError as exc:
        raise _conflict(exc) from exc
    return outbox.get_batch(store, str(batch.id))
