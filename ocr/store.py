"""Store: the one data-access layer for cards, fields, batches and the audit log.

SQLite is the embedded default (one file in the data folder, WAL journal);
any SQLAlchemy URL such as ``postgresql+psycopg://…`` selects another server.
Scan images are files in the data folder; the database keeps their paths.

Card states: ``extracted`` → ``needs_review`` or ``auto_accepted`` →
``approved`` (or ``rejected``) → ``exported``. Every change, by the pipeline or
a reviewer, writes an audit event with who, when, old and new value. Saves
carry the card version they were based on, and a save on a stale version is
rejected with :class:`StaleVersionError`.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from models.batch import AuditEvent, BatchSummary, CardDetail, CardSummary
from models.card import CardStatus, Extraction, FieldResult
from ocr.crypto import EncryptedJSON, EncryptedText, check_store_key, encrypt_file_bytes, encryption_enabled
from ocr.errors import DuplicateScanError, StaleVersionError, StoreError, os_error_reason
from ocr.migrations import upgrade as upgrade_schema

__all__ = ["DISK_FULL_ERRNOS", "Store", "default_data_dir", "default_db_url", "disk_full_error", "normalize_db_url"]

log = logging.getLogger(__name__)

PIPELINE_ACTOR = "pipeline"


def default_data_dir() -> Path:
    """Return the data folder: ``$HUKA_DATA_DIR`` or ``./ocr-data``."""
    return Path(os.environ.get("HUKA_DATA_DIR", "ocr-data"))


def default_db_url(data_dir: Path | None = None) -> str:
    """Return ``$HUKA_DB_URL`` or the SQLite file ``cards.db`` in the data folder."""
    url = os.environ.get("HUKA_DB_URL")
    if url:
        return url
    folder = data_dir or default_data_dir()
    return f"sqlite:///{(folder / 'cards.db').as_posix()}"


def normalize_db_url(url: str) -> str:
    """Return ``url`` with the psycopg 3 driver named for a bare ``postgresql://`` or ``postgres://`` URL.

    SQLAlchemy reads a bare PostgreSQL URL as psycopg2, which this project does
    not install; the ``postgres`` extra installs psycopg 3.
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class BatchRow(Base):
    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now)


class ScanRow(Base):
    """One page of one scanned file, identified by its content."""

    __tablename__ = "scans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "<sha256 of the file>:<page>": the same file scanned twice has the same key.
    content_key: Mapped[str] = mapped_column(String(80), unique=True)
    # Personal columns are EncryptedText or EncryptedJSON: encrypted while $HUKA_ENCRYPTION_KEY is set (ocr.crypto).
    source: Mapped[str] = mapped_column(EncryptedText)
    page: Mapped[int] = mapped_column(Integer)
    image_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now)


class CardRow(Base):
    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id"), unique=True)
    card_type: Mapped[str] = mapped_column(String(64))
    template: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    rotation_deg: Mapped[float] = mapped_column(Float, default=0.0)
    straight_image_path: Mapped[str] = mapped_column(Text)
    full_text: Mapped[str] = mapped_column(EncryptedText, default="")
    card_reasons: Mapped[list] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=_now)

    batch: Mapped[BatchRow] = relationship()
    scan: Mapped[ScanRow] = relationship()
    fields: Mapped[list["FieldRow"]] = relationship(back_populates="card", order_by="FieldRow.position")


class FieldRow(Base):
    __tablename__ = "fields"
    __table_args__ = (UniqueConstraint("card_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(64))
    raw_text: Mapped[str] = mapped_column(EncryptedText, default="")
    value: Mapped[str] = mapped_column(EncryptedText, default="")
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    engine: Mapped[str] = mapped_column(String(32), default="")
    box: Mapped[list | None] = mapped_column(JSON, nullable=True)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    reason_codes: Mapped[list] = mapped_column(JSON, default=list)
    candidates: Mapped[list] = mapped_column(EncryptedJSON, default=list)

    card: Mapped[CardRow] = relationship(back_populates="fields")

    def to_result(self) -> FieldResult:
        return FieldResult(
            key=self.key,
            raw_text=self.raw_text,
            value=self.value,
            confidence=self.confidence,
            engine=self.engine,
            box=tuple(self.box) if self.box else None,
            needs_review=self.needs_review,
            reason=self.reason,
            reason_codes=list(self.reason_codes or []),
            candidates=list(self.candidates or []),
        )


class AuditRow(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign key: the events of a card the retention job deleted stay in the chain.
    card_id: Mapped[int] = mapped_column(Integer, index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=_now)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    field_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    old_value: Mapped[str | None] = mapped_column(EncryptedText, nullable=True)
    new_value: Mapped[str | None] = mapped_column(EncryptedText, nullable=True)
    # The hash chain (see ocr.audit), written by a commit hook for every new event.
    chain_seq: Mapped[int | None] = mapped_column(Integer, nullable=True, unique=True)
    value_salt: Mapped[str | None] = mapped_column(String(32), nullable=True)
    value_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


# Transmission to the exit-entry office: the outbox, the batches sent and the archive.
# A card's approval queues its record in the same transaction (see Store.set_status),
# so an approved record cannot be left out of transmission. The package
# ocr.transmit reads and advances these rows; the card states stay as they are.


class OutboxRow(Base):
    """One record of a card queued for transmission: the first send or a correction."""

    __tablename__ = "transmit_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), index=True)
    # "original" for the first send of a card, "correction" for a later change of a sent card.
    kind: Mapped[str] = mapped_column(String(16))
    # The original entry a correction replaces; None for an original.
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("transmit_outbox.id"), nullable=True)
    # "pending" until put in a batch, then "batched", then "acknowledged" by the receiver.
    state: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("transmit_batches.id"), nullable=True, index=True)
    # The record as sent (field values and derived columns), written when the entry is batched.
    record: Mapped[dict | None] = mapped_column(EncryptedJSON, nullable=True)
    queued_at: Mapped[datetime] = mapped_column(DateTime, default=_now)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class TransmitBatchRow(Base):
    """One file of records of one card type, arrival date and kind, delivered as a unit."""

    __tablename__ = "transmit_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Sent with every delivery attempt of this batch, so a receiver counts a re-sent batch once.
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    card_type: Mapped[str] = mapped_column(String(64))
    arrival_date: Mapped[str] = mapped_column(String(10), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    file_format: Mapped[str] = mapped_column(String(8))
    adapter: Mapped[str] = mapped_column(String(16))
    # "created" → "ready" (files written) → "awaiting_confirmation" (manual) → "acknowledged".
    state: Mapped[str] = mapped_column(String(24), index=True, default="created")
    data_file: Mapped[str | None] = mapped_column(Text, nullable=True)
    manifest: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Who confirmed the delivery: "https", "folder", or the clerk's name for a manual upload.
    acknowledged_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    receipt: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The receiver's acknowledgement as received (HTTP status and body), or the clerk's note.
    acknowledgement: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class ArchiveRow(Base):
    """A transmitted card's scans and records kept in the archive folder until ``purge_after``."""

    __tablename__ = "transmit_archive"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), unique=True)
    arrival_date: Mapped[str] = mapped_column(String(10), index=True)
    category: Mapped[str] = mapped_column(String(32))
    folder: Mapped[str] = mapped_column(Text)
    archived_at: Mapped[datetime] = mapped_column(DateTime, default=_now)
    purge_after: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    purged_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


def _queue_for_transmission(session: Session, card_id: int) -> None:
    """Queue the card's record unless an entry is pending already.

    A card whose original was put in a batch before gets a correction that
    refers to that original; any other card gets its original.
    """
    # A cancellation not yet sent is void once the card is approved again.
    _drop_pending(session, card_id, kind="cancellation")
    pending = session.scalar(
        select(OutboxRow.id).where(OutboxRow.card_id == card_id, OutboxRow.state == "pending")
    )
    if pending is not None:
        return
    original = session.scalar(
        select(OutboxRow.id)
        .where(OutboxRow.card_id == card_id, OutboxRow.kind == "original")
        .order_by(OutboxRow.id)
    )
    if original is None:
        session.add(OutboxRow(card_id=card_id, kind="original"))
    else:
        session.add(OutboxRow(card_id=card_id, kind="correction", corrects_id=original))
    log.info("card %s queued for transmission", card_id)


def _drop_pending(session: Session, card_id: int, *, kind: str) -> None:
    """Delete the card's unsent outbox entries of ``kind``; nothing of them reached the office."""
    for entry in session.scalars(
        select(OutboxRow).where(OutboxRow.card_id == card_id, OutboxRow.state == "pending", OutboxRow.kind == kind)
    ).all():
        session.delete(entry)


def _queue_cancellation(session: Session, card_id: int) -> None:
    """Queue the cancellation of a sent card's record, replacing any unsent correction of it."""
    _drop_pending(session, card_id, kind="correction")
    pending = session.scalar(
        select(OutboxRow.id).where(
            OutboxRow.card_id == card_id, OutboxRow.state == "pending", OutboxRow.kind == "cancellation"
        )
    )
    if pending is not None:
        return
    original = session.scalar(
        select(OutboxRow.id)
        .where(OutboxRow.card_id == card_id, OutboxRow.kind == "original")
        .order_by(OutboxRow.id)
    )
    session.add(OutboxRow(card_id=card_id, kind="cancellation", corrects_id=original))
    log.info("card %s queued for cancellation", card_id)


def _was_transmitted(session: Session, card_id: int) -> bool:
    """Return whether a record of the card was put in a batch, so a change must be sent as a correction."""
    return (
        session.scalar(select(OutboxRow.id).where(OutboxRow.card_id == card_id, OutboxRow.state != "pending"))
        is not None
    )


class EncryptionKeyCheckRow(Base):
    """A key check value (see ocr.crypto): row 1 for the store's key, absent while unencrypted.

    Row 2 exists only while ``python -m ocr key rotate`` runs, for the new key (see ocr.keys).
    """

    __tablename__ = "encryption_key_check"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_check: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now)


def _make_owner_only(path: Path) -> None:
    """Set an existing database file to owner-only; a file that cannot be changed (a read-only backup) is logged."""
    try:
        if stat.S_IMODE(path.stat().st_mode) != 0o600:
            os.chmod(path, 0o600)
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("database file mode not changed path=%s error=%s", path, exc.strerror or exc)


def _read_only_folder(folder: Path) -> bool:
    """Return True when ``folder`` lies on a read-only file system or this process may not write in it."""
    try:
        read_only_mount = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False
    return read_only_mount or not os.access(folder, os.W_OK)


def _enable_sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Store:
    """Data-access layer over SQLite (default) or PostgreSQL."""

    def __init__(
        self,
        url: str | None = None,
        data_dir: Path | str | None = None,
        *,
        create: bool = True,
        check_key: bool = True,
    ) -> None:
        """Open the store, creating the data folder and the database unless ``create`` is off.

        With ``create`` off, a missing SQLite file raises :class:`StoreError`, so a
        mistyped path in a reading command does not make a new, empty store, and no
        folder is created.
        ``check_key`` off skips the comparison with the store's encryption key;
        only the key commands of ocr.keys, which check the keys themselves, turn it off.
        """
        # Absolute, so the image paths stored in rows stay valid for a process started in another folder.
        self.data_dir = (Path(data_dir) if data_dir is not None else default_data_dir()).absolute()
        self.url = normalize_db_url(url or default_db_url(self.data_dir))
        self.image_dir = self.data_dir / "images"
        db_file = Path(self.url.removeprefix("sqlite:///")) if self.url.startswith("sqlite:///") else None
        if not create and db_file is not None and not db_file.is_file():
            raise StoreError(
                f"找不到数据库 {db_file}。请检查 --data-dir 或 --db，或先运行 ingest 或 demo。",
                f"database {db_file} not found; check --data-dir or --db, or run ingest or demo first",
            )

        # Create the folders owner-only: they hold scans with personal data.
        folders = [self.data_dir, self.image_dir] if create else []
        if db_file is not None and create:
            folders.append(db_file.parent)
        for folder in folders:
            try:
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise StoreError(
                    f"无法创建数据目录 {folder}：{os_error_reason(exc)[0]}。请检查 --data-dir 或 --db 的路径。",
                    f"cannot create data folder {folder}: {exc.strerror or exc}; check --data-dir or --db",
                ) from exc

        try:
            self.engine = create_engine(self.url, future=True)
        except ModuleNotFoundError as exc:
            raise StoreError(
                f"缺少数据库驱动 {exc.name}。PostgreSQL 请运行：pip install 'hukacapture[postgres]'。",
                f"database driver {exc.name} is not installed; for PostgreSQL: pip install 'hukacapture[postgres]'",
            ) from exc
        except Exception as exc:  # noqa: BLE001 - any bad URL must become a readable message
            raise StoreError(
                "数据库地址无效。格式应为 sqlite:///路径/cards.db 或 postgresql+psycopg://用户@主机/库名，"
                "请检查 --db 参数。",
                f"invalid database URL ({exc}); use sqlite:///path/cards.db or postgresql+psycopg://user@host/db",
            ) from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _enable_sqlite_pragmas)
        try:
            # Create or upgrade the schema; the migrations also adopt stores older than them.
            upgrade_schema(self.engine)
            if db_file is not None:
                # The database contains names and document numbers, so it is owner-only, like the folders.
                for path in (db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm")):
                    _make_owner_only(path)
        except OperationalError as exc:
            if db_file is not None and _read_only_folder(db_file.parent):
                raise StoreError(
                    f"无法打开数据库 {db_file}：所在目录 {db_file.parent} 是只读的。SQLite 数据库即使只读取，"
                    "也要在同一目录中写入 -wal 和 -shm 文件。请以可写方式挂载此目录，或把整个数据目录复制到可写的位置再运行。",
                    f"cannot open database {db_file}: its folder {db_file.parent} is read-only, and SQLite writes "
                    "its -wal and -shm files beside the database even to read it; mount the folder writable, or copy "
                    "the whole data folder to a writable place and run the command there",
                ) from exc
            raise StoreError(
                f"无法打开数据库 {self.engine.url.render_as_string(hide_password=True)}：{exc.orig}。"
                "请检查路径或服务器是否可用。",
                f"cannot open database: {exc.orig}",
            ) from exc
        # A store encrypted once needs its key from then on; stop here rather than fail on the first value.
        if check_key:
            check_store_key(self.engine, EncryptionKeyCheckRow.__table__)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._data_folder_checked = False
        log.debug("store opened dialect=%s encrypted=%s", self.engine.dialect.name, encryption_enabled())

    @contextmanager
    def session(self) -> Iterator[Session]:
        try:
            with self._sessions() as session, session.begin():
                yield session
        except OperationalError as exc:
            if _is_disk_full(exc):
                raise self._database_full_error(exc) from exc
            raise

    def _database_full_error(self, exc: OperationalError) -> StoreError:
        if self.url.startswith("sqlite:///"):
            return disk_full_error(Path(self.url.removeprefix("sqlite:///")).absolute().parent, str(exc.orig))
        server = self.engine.url.render_as_string(hide_password=True)
        return StoreError(
            f"数据库服务器 {server} 的磁盘已满，本页未入库，已入库的卡片不受影响。"
            "请让管理员释放服务器磁盘空间后重新运行同一命令，已入库的页会被跳过。",
            f"the disk of the database server {server} is full; this page was not stored and stored cards are "
            "kept; have the administrator free space on the server and run the same command again",
        )

    def close(self) -> None:
        self.engine.dispose()

    # Batches and scans.

    def _batch(self, session: Session, name: str) -> BatchRow:
        batch = session.scalar(select(BatchRow).where(BatchRow.name == name))
        if batch is None:
            batch = BatchRow(name=name)
            session.add(batch)
            session.flush()
        return batch

    def find_scan(self, content_key: str) -> int | None:
        """Return the id of the card made from this scan page, or None."""
        with self.session() as session:
            return session.scalar(
                select(CardRow.id).join(ScanRow).where(ScanRow.content_key == content_key)
            )

    def find_scan_id(self, content_key: str) -> int | None:
        """Return the id of the stored scan page with this content key, with or without a card yet, or None."""
        with self.session() as session:
            return session.scalar(select(ScanRow.id).where(ScanRow.content_key == content_key))

    def ensure_data_folder(self) -> None:
        """Check once that the data folder is the database's, marking it for a new store (ocr.datafolder).

        Raises :class:`StoreError` naming the folder when it belongs to no or another database.
        """
        if not self._data_folder_checked:
            from ocr.datafolder import check_data_folder

            check_data_folder(self)
            self._data_folder_checked = True

    def image_file(self, stored: str) -> Path:
        """Return the file in the store's own ``images/`` that an image path stored in a row names.

        Only that folder counts: a store moved to another folder, or a share mounted at another
        path, keeps its files there under the stored name. The stored absolute path may point into
        the folder of another store, such as the one this store was copied from, whose files the
        check, the key commands and retention must not read or rewrite.
        """
        return self.image_dir / Path(stored).name

    def _write_image(self, name: str, data: bytes) -> str:
        # Before the first image: is this folder the one the database's other machines use?
        self.ensure_data_folder()
        # A store opened with create off has not created images/ (the key commands write files).
        self.image_dir.mkdir(exist_ok=True, mode=0o700)
        path = self.image_dir / name
        # A name of its own per write: two stations storing the same page at the same moment
        # write the same image name, and a shared temporary file would be truncated under the other.
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
                handle.write(encrypt_file_bytes(data))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            # The rename must reach the disk before the database row that points at the file commits.
            folder = os.open(self.image_dir, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in DISK_FULL_ERRNOS:
                raise disk_full_error(self.image_dir, exc.strerror or str(exc)) from exc
            raise
        return str(path)

    def _duplicate_error(self, content_key: str) -> DuplicateScanError | None:
        """Return the error for a unique-key conflict when a scan with ``content_key`` exists, else None."""
        with self.session() as session:
            found = session.execute(
                select(ScanRow.id, CardRow.id)
                .outerjoin(CardRow, CardRow.scan_id == ScanRow.id)
                .where(ScanRow.content_key == content_key)
            ).first()
        if found is None:
            return None
        return DuplicateScanError(content_key, found[0], found[1])

    def add_scan(
        self,
        *,
        content_key: str,
        source: str,
        page: int,
        original_png: bytes,
        on_stored: Callable[[Session, int], None] | None = None,
    ) -> int:
        """Store a scan page with no card yet (a scan queued for OCR); return the scan id.

        ``on_stored(session, scan_id)`` runs in the same transaction. Raises
        :class:`StoreError` when a scan with ``content_key`` exists already.
        """
        stem = content_key.replace(":", "_p")
        original_path = self._write_image(f"{stem}_original.png", original_png)
        try:
            with self.session() as session:
                scan = ScanRow(content_key=content_key, source=source, page=page, image_path=original_path)
                session.add(scan)
                session.flush()
                if on_stored is not None:
                    on_stored(session, scan.id)
                scan_id = scan.id
        except IntegrityError as exc:
            # Another station stored the same page between this run's look-up and this insert.
            raise self._duplicate_error(content_key) or _integrity_error(content_key, exc) from exc
        log.info("scan stored id=%s page=%s", scan_id, content_key[:12])
        return scan_id

    def add_card(
        self,
        *,
        batch: str,
        content_key: str,
        extraction: Extraction,
        original_png: bytes | None,
        straight_png: bytes,
        actor: str = PIPELINE_ACTOR,
        scan_id: int | None = None,
        on_stored: Callable[[Session, int], None] | None = None,
    ) -> int:
        """Store a newly extracted card with its images; return its id.

        With ``scan_id`` the card is made from that stored scan (see
        :meth:`add_scan`) and ``original_png`` is not used. ``on_stored(session,
        card_id)`` runs in the card's transaction. Raises :class:`StoreError` when
        a card for ``content_key`` exists already.
        """
        stem = content_key.replace(":", "_p")
        original_path = None
        if scan_id is None:
            if original_png is None:
                raise ValueError("add_card needs original_png or scan_id")
            original_path = self._write_image(f"{stem}_original.png", original_png)
        straight_path = self._write_image(f"{stem}_straight.png", straight_png)
        status = CardStatus.NEEDS_REVIEW if extraction.needs_review else CardStatus.AUTO_ACCEPTED

        try:
            with self.session() as session:
                batch_row = self._batch(session, batch)
                if scan_id is None:
                    scan = ScanRow(
                        content_key=content_key,
                        source=extraction.source,
                        page=extraction.page,
                        image_path=original_path,
                    )
                    session.add(scan)
                    session.flush()
                else:
                    scan = session.get(ScanRow, scan_id)
                    if scan is None or scan.content_key != content_key:
                        raise StoreError(
                            f"扫描页 {scan_id} 不存在或与内容键不符，未保存卡片。",
                            f"scan {scan_id} not found or its content key differs; card not stored",
                        )
                card = CardRow(
                    batch_id=batch_row.id,
                    scan_id=scan.id,
                    card_type=extraction.card_type,
                    template=extraction.template,
                    status=CardStatus.EXTRACTED,
                    rotation_deg=extraction.rotation_deg,
                    straight_image_path=straight_path,
                    full_text=extraction.full_text,
                    card_reasons=list(extraction.card_reasons),
                )
                session.add(card)
                session.flush()
                for position, (key, result) in enumerate(extraction.fields.items()):
                    session.add(_field_row(card.id, position, key, result))
                session.add(AuditRow(card_id=card.id, actor=actor, action="extracted", new_value=extraction.card_type))
                for key, result in extraction.fields.items():
                    session.add(
                        AuditRow(card_id=card.id, actor=actor, action="field_read", field_key=key, new_value=result.value)
                    )
                card.status = status
                session.add(
                    AuditRow(
                        card_id=card.id, actor=actor, action="status", old_value=CardStatus.EXTRACTED, new_value=status
                    )
                )
                if on_stored is not None:
                    on_stored(session, card.id)
                card_id = card.id
        except IntegrityError as exc:
            # Another station stored the same page between this run's look-up and this insert.
            raise self._duplicate_error(content_key) or _integrity_error(content_key, exc) from exc
        log.info("card stored id=%s batch=%s status=%s", card_id, batch, status)
        return card_id

    # Reading.

    def list_cards(
        self, *, batch: str | None = None, statuses: Iterable[CardStatus | str] | None = None
    ) -> list[CardSummary]:
        """Return card summaries, oldest first, optionally for one batch and some states."""
        flagged = (
            select(func.count(FieldRow.id))
            .where(FieldRow.card_id == CardRow.id, FieldRow.needs_review.is_(True))
            .scalar_subquery()
        )
        query = (
            select(CardRow, BatchRow.name, ScanRow.source, ScanRow.page, flagged)
            .join(BatchRow, CardRow.batch_id == BatchRow.id)
            .join(ScanRow, CardRow.scan_id == ScanRow.id)
            .order_by(CardRow.id)
        )
        if batch is not None:
            query = query.where(BatchRow.name == batch)
        if statuses is not None:
            query = query.where(CardRow.status.in_([str(s) for s in statuses]))
        with self.session() as session:
            return [
                CardSummary(
                    id=card.id,
                    batch=batch_name,
                    status=CardStatus(card.status),
                    card_type=card.card_type,
                    source=source,
                    page=page,
                    version=card.version,
                    flagged_fields=flagged_count or 0,
                    created_at=card.created_at,
                )
                for card, batch_name, source, page, flagged_count in session.execute(query)
            ]

    def get_card(self, card_id: int) -> CardDetail:
        with self.session() as session:
            card = session.get(CardRow, card_id)
            if card is None:
                raise StoreError(f"卡片 {card_id} 不存在。", f"card {card_id} not found")
            return _detail(card)

    def list_batches(self) -> list[BatchSummary]:
        with self.session() as session:
            batches = session.scalars(select(BatchRow).order_by(BatchRow.id)).all()
            rows = session.execute(
                select(CardRow.batch_id, CardRow.status, func.count(CardRow.id)).group_by(
                    CardRow.batch_id, CardRow.status
                )
            ).all()
            counts: dict[int, dict[str, int]] = {}
            for batch_id, status, count in rows:
                counts.setdefault(batch_id, {})[status] = count
            return [BatchSummary(name=b.name, created_at=b.created_at, counts=counts.get(b.id, {})) for b in batches]

    def audit_events(self, card_id: int) -> list[AuditEvent]:
        with self.session() as session:
            rows = session.scalars(select(AuditRow).where(AuditRow.card_id == card_id).order_by(AuditRow.id)).all()
            return [AuditEvent.model_validate(row) for row in rows]

    # Changes by reviewers and the export stage.

    def _claim_version(self, session: Session, card_id: int, expected_version: int) -> CardRow:
        """Bump the card's version if it still equals ``expected_version``, else raise."""
        result = session.execute(
            update(CardRow)
            .where(CardRow.id == card_id, CardRow.version == expected_version)
            .values(version=CardRow.version + 1, updated_at=_now())
        )
        if result.rowcount != 1:
            current = session.scalar(select(CardRow.version).where(CardRow.id == card_id))
            if current is None:
                raise StoreError(f"卡片 {card_id} 不存在。", f"card {card_id} not found")
            raise StaleVersionError(
                f"卡片 {card_id} 已被他人修改（您的版本 {expected_version}，当前版本 {current}）。"
                "您的修改未保存，请重新打开该卡片后再改。",
                f"card {card_id} was changed by someone else (your version {expected_version}, "
                f"current {current}); reload the card and redo the change",
            )
        card = session.get(CardRow, card_id)
        session.refresh(card)
        return card

    def save_fields(
        self,
        card_id: int,
        results: dict[str, FieldResult],
        *,
        actor: str,
        expected_version: int,
        action: str = "correct",
        audit_keys: Collection[str] = (),
    ) -> int:
        """Write new field results (value, review flag, reason) and audit every changed value.

        The fields in ``audit_keys`` are audited under ``action`` even when their
        value stays the same (a reviewer marking a field illegible). Returns the
        card's new version.
        """
        with self.session() as session:
            card = self._claim_version(session, card_id, expected_version)
            rows = {row.key: row for row in card.fields}
            any_changed = False
            for key, result in results.items():
                row = rows.get(key)
                if row is None:
                    raise StoreError(f"卡片 {card_id} 没有字段 {key}。", f"card {card_id} has no field {key}")
                # A changed value is a correction; an unchanged value cleared of its flag is a confirmation.
                changed = row.value != result.value
                if changed or key in audit_keys or (row.needs_review and not result.needs_review):
                    session.add(
                        AuditRow(
                            card_id=card_id,
                            actor=actor,
                            action=action if changed or key in audit_keys else "confirm",
                            field_key=key,
                            old_value=row.value,
                            new_value=result.value,
                        )
                    )
                row.value = result.value
                row.needs_review = result.needs_review
                row.reason = result.reason
                row.reason_codes = list(result.reason_codes)
                row.candidates = list(result.candidates)
                if result.engine:
                    row.engine = result.engine
                row.confidence = result.confidence
                any_changed = any_changed or changed
            # Transmission: a changed value of a sent card is queued as a correction.
            if any_changed and _was_transmitted(session, card_id):
                _queue_for_transmission(session, card_id)
            log.info("card %s fields saved count=%d by=%s", card_id, len(results), actor)
            return card.version

    def set_status(
        self,
        card_id: int,
        status: CardStatus,
        *,
        actor: str,
        expected_version: int,
        note: str | None = None,
    ) -> int:
        """Move a card to ``status``; returns the new version."""
        with self.session() as session:
            card = self._claim_version(session, card_id, expected_version)
            old = card.status
            card.status = str(status)
            session.add(
                AuditRow(card_id=card_id, actor=actor, action="status", old_value=old, new_value=str(status))
            )
            if note:
                session.add(AuditRow(card_id=card_id, actor=actor, action="note", new_value=note))
            # Transmission: the approval and the queued record commit together, and so do a
            # rejection of a sent card and the cancellation of its record.
            if status == CardStatus.APPROVED:
                _queue_for_transmission(session, card_id)
            elif status == CardStatus.REJECTED and _was_transmitted(session, card_id):
                _queue_cancellation(session, card_id)
            log.info("card %s status %s -> %s by=%s", card_id, old, status, actor)
            return card.version

    def mark_exported(self, card_ids: Iterable[int], *, actor: str, export_file: str) -> int:
        """Move approved cards to ``exported``; returns how many moved."""
        moved = 0
        with self.session() as session:
            for card_id in card_ids:
                result = session.execute(
                    update(CardRow)
                    .where(CardRow.id == card_id, CardRow.status == CardStatus.APPROVED)
                    .values(status=CardStatus.EXPORTED, version=CardRow.version + 1, updated_at=_now())
                )
                if result.rowcount == 1:
                    moved += 1
                    session.add(
                        AuditRow(
                            card_id=card_id,
                            actor=actor,
                            action="status",
                            old_value=CardStatus.APPROVED,
                            new_value=CardStatus.EXPORTED,
                        )
                    )
                    session.add(AuditRow(card_id=card_id, actor=actor, action="export", new_value=export_file))
        log.info("cards exported count=%d", moved)
        return moved


# errno values of a write that failed for lack of space: the disk is full, or the user's quota is used up.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


# SQLite's result code SQLITE_FULL and PostgreSQL's SQLSTATE disk_full.
_SQLITE_FULL = 13
_POSTGRES_DISK_FULL = "53100"


def _is_disk_full(exc: OperationalError) -> bool:
    """Return whether a database error means that the disk holding the database is full."""
    orig = exc.orig
    if getattr(orig, "sqlite_errorcode", None) == _SQLITE_FULL:
        return True
    if getattr(orig, "sqlstate", None) == _POSTGRES_DISK_FULL:
        return True
    return isinstance(orig, OSError) and orig.errno in DISK_FULL_ERRNOS


def disk_full_error(folder: Path, reason: str) -> StoreError:
    """Return the error for a write to ``folder`` that failed because its disk is full; ``reason`` is the system's text."""
    return StoreError(
        f"磁盘已满，无法在 {folder} 写入数据（{reason}）。本页未入库，已入库的卡片不受影响。"
        "请释放该磁盘的空间后重新运行同一命令，已入库的页会被跳过。",
        f"the disk is full: cannot write to {folder} ({reason}); this page was not stored and stored cards "
        "are kept; free space on that disk and run the same command again, stored pages are skipped",
    )


def _integrity_error(content_key: str, exc: IntegrityError) -> StoreError:
    return StoreError(
        f"扫描页 {content_key[:12]}… 无法保存：数据库拒绝了这条记录（{type(exc.orig).__name__}）。"
        "请运行 python -m ocr check 检查数据库。",
        f"scan {content_key[:12]}… not stored: the database rejected the row ({type(exc.orig).__name__}); "
        "run python -m ocr check",
    )


def _field_row(card_id: int, position: int, key: str, result: FieldResult) -> FieldRow:
    return FieldRow(
        card_id=card_id,
        position=position,
        key=key,
        raw_text=result.raw_text,
        value=result.value,
        confidence=result.confidence,
        engine=result.engine,
        box=list(result.box) if result.box else None,
        needs_review=result.needs_review,
        reason=result.reason,
        reason_codes=list(result.reason_codes),
        candidates=list(result.candidates),
    )


def _detail(card: CardRow) -> CardDetail:
    return CardDetail(
        id=card.id,
        batch=card.batch.name,
        status=CardStatus(card.status),
        card_type=card.card_type,
        template=card.template,
        source=card.scan.source,
        page=card.scan.page,
        version=card.version,
        rotation_deg=card.rotation_deg,
        original_image=card.scan.image_path,
        straight_image=card.straight_image_path,
        full_text=card.full_text,
        card_reasons=list(card.card_reasons or []),
        fields={row.key: row.to_result() for row in card.fields},
        created_at=card.created_at,
        updated_at=card.updated_at,
    )


# Registers the flush hook that chains every new audit event; ocr.audit imports the classes above.
import ocr.audit  # noqa: E402,F401
