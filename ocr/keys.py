"""Key rotation and encryption of plain data: ``python -m ocr key rotate`` and ``key encrypt-existing``.

Both commands bring the whole store under one target key. That covers every
value of the EncryptedText and EncryptedJSON columns of the tables on
``ocr.store.Base``, and every file in the data folder's ``images/``. It also
covers every image file a row names and every file in the archive folders.
A plain value or file is encrypted. One that the previous key opens is
decrypted and encrypted again under the target key. One that the target key
opens already is left as it is. So a run started again after a crash skips
what the killed run committed, and converts only the rest. Empty values and
card states stay plain, as the store writes them.

``key rotate`` reads the current key from ``$HUKA_ENCRYPTION_KEY`` and the new
key from ``$HUKA_NEW_ENCRYPTION_KEY``, never from the command line, because any
user can read a process's arguments. It runs these steps:

1. Check the keys: the new key is valid and differs from the current one, and
   the current key is the store's (row 1 of ``encryption_key_check``).
2. Write the new key's check value to row 2 of ``encryption_key_check`` and
   commit. While row 2 exists, every open of the store other than by these
   commands stops with a message to finish the rotation
   (:func:`ocr.crypto.check_store_key`). So no other process reads the
   half-converted store or starts writing under the old key. Only this command
   reads with both keys.
3. Convert the values table by table, in transactions of :data:`BATCH_ROWS`
   rows. An update applies only while the column still contains the value read
   (compare and set), so the command never overwrites a concurrent change. A
   table with such changes is read again, at most :data:`MAX_PASSES` times.
4. Convert the files. The new content goes to a temporary file in the same
   folder, which is flushed with fsync and renamed over the file with
   ``os.replace``, and then the folder is flushed. A file thus always contains
   either its old or its new content. The next run deletes temporary files that a
   killed run left.
5. If any value or file opens with neither key, or an image file that a row
   names is missing, or a file is damaged, stop before step 6 and name them
   (missing and damaged files by card id). A damaged file is neither
   encrypted nor a plain file of a kind the store or the archive writes (see
   :func:`_is_plain_file`), such as an empty file; it is left as it is. Row 2
   stays, so the store stays closed to other programs. A missing or damaged
   file may be restored later from a backup under the old key, so only
   ``skip_missing`` (``--skip-missing``) lets the run go on to step 6 without
   it. Likewise only ``skip_unreadable`` (``--skip-unreadable``) lets it go on
   while some values or files open with neither key; they stay as they are,
   unreadable as before the run. A file or value restored after that is
   converted by the next run with both keys.
6. In one transaction, set row 1 to the new key's check value and delete row 2.
   From then on the store opens only with the new key.
7. Overwrite the old forms in the database files: ``VACUUM`` and a WAL
   checkpoint on SQLite, ``VACUUM FULL`` of the tables with encrypted columns
   on PostgreSQL. Other programs wait for the database while this runs.

A run killed at any point (SIGKILL, power cut) loses nothing. Until step 6
commits, every value and file is either in its old form, which the old key
opens, or its new form, which the new key opens, and the command reads both.
Running the same command again with the same two keys finishes the rotation.
After step 6 the command finds row 1 equal to the new key, checks that
everything opens with the new key, converts what does not, and repeats step 7.

``key encrypt-existing`` encrypts, under ``$HUKA_ENCRYPTION_KEY``, a store that
was used without a key, or the values and files written before that key was
set. There is no previous key. It first records the key's check value in row 1
as any open with a key does, so from then on the store needs the key. The
store reads plain and encrypted values alike, so it stays usable while the
command runs and after a killed run; this command needs no row 2. It then runs
steps 3, 4, 5 and 7, and running it again finishes a killed run. At step 5
missing or damaged files make it exit with an error too, unless
``skip_missing`` is set, because a file restored later would stay plain, and
so do values and files the key does not open, unless ``skip_unreadable`` is
set.

The audit hash chain covers the plain values (see ocr.audit), so neither
command changes a hash, and ``python -m ocr audit verify`` still passes.
Only one key command runs at a time on a store: an advisory lock on
PostgreSQL, an ``flock`` of ``<database>.rekey-lock`` on SQLite. Logs
contain counts only.

NOTE: a program that opened the store before step 2 (a review app, a worker)
keeps writing under the old key until it stops, and nothing detects it. Stop
every program that uses the store before a rotation. Running ``key rotate``
again with both keys converts what such a program wrote. Backups made before
a run, the old content of replaced files in the file system's free space and
PostgreSQL's WAL archives keep the old forms. The search log's HMAC key is
derived from ``$HUKA_ENCRYPTION_KEY`` unless ``$HUKA_SEARCH_LOG_KEY`` is set
(see ocr.search), so after a rotation a lookup by value finds only the
searches made since.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Column, Table, Text, bindparam, cast, delete, func, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.types import JSON

from ocr.crypto import (
    FILE_MAGIC,
    KEY_ENV,
    NEW_KEY_ENV,
    PLAIN_VALUES,
    ROTATION_KEY_ROW,
    STORE_KEY_ROW,
    TEXT_PREFIX,
    EncryptedJSON,
    EncryptedText,
    EncryptionError,
    StoreKey,
    check_store_key,
    load_key,
)
from ocr.datafolder import check_data_folder
from ocr.errors import CardCaptureError, ExitCode
from ocr.migrations import load_models
from ocr.store import ArchiveRow, CardRow, EncryptionKeyCheckRow, ScanRow, Store, _now

__all__ = [
    "BATCH_ROWS",
    "MAX_PASSES",
    "KeyCommandBusyError",
    "KeyReport",
    "KeyRotationError",
    "MissingFilesError",
    "describe_missing_files",
    "describe_unreadable",
    "encrypt_existing",
    "rotate_key",
]

log = logging.getLogger(__name__)

# Rows converted per database transaction.
BATCH_ROWS = 500
# Reads of one table, when other programs changed some of its rows while it was converted.
MAX_PASSES = 5
# Values and files named one by one in an error message. The rest are counted.
MAX_LISTED = 20
# Suffix of the temporary file that replaces a stored file. The next run deletes leftovers.
TEMPORARY_SUFFIX = ".rekey-tmp"
# Any constant works, but it must differ from the migration lock of ocr.migrations.
_PG_ADVISORY_LOCK_ID = 0x4855_4B45
# How long a key command waits on PostgreSQL for the lock of another one before it stops.
LOCK_TIMEOUT_S = 10

# Kinds of stored item that a conversion finds.
_KEPT = "kept"  # None, empty or a card state: stays plain by design
_CURRENT = "current"  # opens with the target key already
_ENCRYPTED = "encrypted"  # was plain
_REENCRYPTED = "reencrypted"  # opened with the previous key
_UNREADABLE = "unreadable"  # opens with neither key
_DAMAGED = "damaged"  # a file that is neither encrypted nor a plain file of a kind the store writes

# Leading bytes of the plain images a store may hold. The store and the archive write PNG only;
# JPEG, TIFF and WebP are accepted as well because they are scan formats with unambiguous signatures.
_IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")


class KeyRotationError(CardCaptureError):
    """Some stored data opens with neither key, or other programs kept changing the store; the run did not finish."""

    exit_code = ExitCode.STORE_FAILED


class MissingFilesError(KeyRotationError):
    """Image files that rows name are missing, or files are damaged, and were not converted; the rest of the store was."""


class KeyCommandBusyError(CardCaptureError):
    """Another key command holds the store's key command lock."""

    exit_code = ExitCode.CONFLICT


@dataclass
class KeyReport:
    """Counts of one run of a key command; the lists name what opened with neither key."""

    values_encrypted: int = 0  # plain values now encrypted
    values_reencrypted: int = 0  # values moved from the previous key to the target key
    values_current: int = 0  # values under the target key already
    files_encrypted: int = 0
    files_reencrypted: int = 0
    files_current: int = 0
    files_missing: int = 0  # image files that a row names and that do not exist
    missing_file_names: list[str] = field(default_factory=list)  # names of those files, without folder
    missing_card_ids: list[int] = field(default_factory=list)  # cards whose scan or straight image is missing
    missing_scan_ids: list[int] = field(default_factory=list)  # scans without a card whose image is missing
    # Files neither encrypted nor a plain image or record (empty, cut short, foreign); left as they are.
    damaged_files: list[Path] = field(default_factory=list)
    damaged_card_ids: list[int] = field(default_factory=list)  # cards that a damaged image or archive file belongs to
    damaged_scan_ids: list[int] = field(default_factory=list)  # scans without a card whose image is damaged
    unreadable_values: list[str] = field(default_factory=list)  # "table.column id N"
    unreadable_files: list[Path] = field(default_factory=list)
    # rotate only: the store used the new key already when the run began (a finished rotation run again).
    finished_before: bool = False


# Keys from the environment.


def _current_key_for_rotation() -> StoreKey:
    current = load_key(KEY_ENV)
    if current is None:
        raise EncryptionError(
            f"没有设置环境变量 {KEY_ENV}（数据库当前的密钥），未更换密钥。"
            "从未加密过的数据库请用 python -m ocr key encrypt-existing 加密。",
            f"${KEY_ENV} (the store's current key) is not set, so the key was not changed; "
            "to encrypt a store that was never encrypted, use python -m ocr key encrypt-existing",
        )
    return current


def _new_key_for_rotation(current: StoreKey) -> StoreKey:
    new = load_key(NEW_KEY_ENV)
    if new is None:
        raise EncryptionError(
            f"没有设置环境变量 {NEW_KEY_ENV}，未更换密钥。请用 python -m ocr.crypto genkey 生成新密钥，"
            "放入该环境变量后重试；不要把密钥写在命令行上。",
            f"${NEW_KEY_ENV} is not set, so the key was not changed; make a new key with "
            "python -m ocr.crypto genkey, put it in that variable and try again (never on the command line)",
        )
    if new.check == current.check:
        raise EncryptionError(
            f"环境变量 {NEW_KEY_ENV} 与 {KEY_ENV} 是同一个密钥，未更换密钥。请用 python -m ocr.crypto genkey 生成新密钥。",
            f"${NEW_KEY_ENV} and ${KEY_ENV} hold the same key, so the key was not changed; "
            "make a new key with python -m ocr.crypto genkey",
        )
    return new


def _key_rows(store: Store) -> dict[int, str]:
    table = EncryptionKeyCheckRow.__table__
    with store.engine.begin() as connection:
        return dict(connection.execute(select(table.c.id, table.c.key_check)).all())


def _check_rotation_keys(rows: dict[int, str], current: StoreKey, new: StoreKey) -> None:
    """Raise :class:`EncryptionError` unless ``current`` and ``new`` fit the store and any unfinished rotation."""
    stored = rows.get(STORE_KEY_ROW)
    running = rows.get(ROTATION_KEY_ROW)
    if running is not None and running != new.check:
        if running == current.check:
            raise EncryptionError(
                f"环境变量 {KEY_ENV} 中是一次未完成的密钥更换所用的新密钥。请把原密钥放入 {KEY_ENV}、"
                f"新密钥放入 {NEW_KEY_ENV}，再运行 python -m ocr key rotate 完成更换。",
                f"${KEY_ENV} holds the new key of an unfinished rotation; put the old key in ${KEY_ENV} and "
                f"the new key in ${NEW_KEY_ENV}, and run python -m ocr key rotate to finish it",
            )
        raise EncryptionError(
            f"此数据库有一次未完成的密钥更换，其新密钥不是 {NEW_KEY_ENV} 中的密钥。请把那次更换的新密钥放入 "
            f"{NEW_KEY_ENV}，再运行 python -m ocr key rotate 完成它；完成之后才能换成别的密钥。",
            f"this store has an unfinished rotation to another key than the one in ${NEW_KEY_ENV}; put that "
            f"rotation's new key in ${NEW_KEY_ENV} and run python -m ocr key rotate to finish it, "
            "then rotate to another key if needed",
        )
    if stored is not None and stored not in (current.check, new.check):
        raise EncryptionError(
            f"环境变量 {KEY_ENV} 中的密钥不是此数据库当前所用的密钥，未更换密钥。"
            f"请把数据库当前的密钥放入 {KEY_ENV} 后重试。",
            f"the key in ${KEY_ENV} is not the store's current key, so the key was not changed; "
            f"put the store's current key in ${KEY_ENV} and try again",
        )


# Locking and the key check rows.


@contextmanager
def _exclusive_run(store: Store) -> Iterator[None]:
    """Hold the store's key command lock for the block; raise :class:`KeyCommandBusyError` when another run holds it."""
    busy = KeyCommandBusyError(
        "另一个 python -m ocr key 命令正在处理此数据库。请等它结束后再运行。",
        "another python -m ocr key command is working on this store; wait until it ends and run again",
    )
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as connection:
            # Waits for the lock of a killed run until its server process notices the closed connection.
            # SET LOCAL ends with this transaction; the advisory lock is the session's and stays.
            connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_S}s'"))
            try:
                connection.execute(select(func.pg_advisory_lock(_PG_ADVISORY_LOCK_ID)))
            except OperationalError as exc:
                raise busy from exc
            connection.commit()
            try:
                yield
            finally:
                connection.execute(select(func.pg_advisory_unlock(_PG_ADVISORY_LOCK_ID)))
                connection.commit()
        return

    database = store.engine.url.database
    if store.engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    descriptor = os.open(f"{database}.rekey-lock", os.O_RDWR | os.O_CREAT, 0o600)
    with open(descriptor, "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise busy from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _mark_rotation_running(store: Store, new: StoreKey) -> None:
    table = EncryptionKeyCheckRow.__table__
    try:
        with store.engine.begin() as connection:
            connection.execute(table.insert().values(id=ROTATION_KEY_ROW, key_check=new.check, created_at=_now()))
    except IntegrityError:
        # A killed run of the same rotation wrote it, and _check_rotation_keys compared it with the new key.
        pass


def _finish_rotation(store: Store, new: StoreKey) -> None:
    """Make the new key the store's key and end the rotation, in one transaction."""
    table = EncryptionKeyCheckRow.__table__
    with store.engine.begin() as connection:
        changed = connection.execute(
            update(table).where(table.c.id == STORE_KEY_ROW).values(key_check=new.check, created_at=_now())
        )
        if changed.rowcount == 0:
            # The store was never encrypted before this rotation.
            connection.execute(table.insert().values(id=STORE_KEY_ROW, key_check=new.check, created_at=_now()))
        connection.execute(delete(table).where(table.c.id == ROTATION_KEY_ROW))


# Database values.


def _convert_text(stored: str | None, target: StoreKey, previous: StoreKey | None) -> tuple[str, str | None]:
    """Return what an EncryptedText value is and its new stored form, or None when it stays as it is."""
    if stored is None or stored == "" or stored in PLAIN_VALUES:
        return _KEPT, None
    if not stored.startswith(TEXT_PREFIX):
        return _ENCRYPTED, target.seal_text(stored)
    if target.open_text(stored) is not None:
        return _CURRENT, None
    plain = previous.open_text(stored) if previous is not None else None
    if plain is None:
        return _UNREADABLE, None
    return _REENCRYPTED, target.seal_text(plain)


def _convert_json(stored: str | None, target: StoreKey, previous: StoreKey | None) -> tuple[str, str | None]:
    """Return what an EncryptedJSON value (its JSON text) is and its new form, the value of a JSON string, or None."""
    if stored is None:
        return _KEPT, None
    try:
        document = json.loads(stored)
    except ValueError:
        return _UNREADABLE, None
    if document is None:
        return _KEPT, None
    if isinstance(document, str) and document.startswith(TEXT_PREFIX):
        return _convert_text(document, target, previous)
    return _ENCRYPTED, target.seal_text(json.dumps(document, ensure_ascii=False))


def _encrypted_columns() -> list[tuple[Table, list[Column]]]:
    """Return every table with EncryptedText or EncryptedJSON columns, and those columns."""
    tables = []
    for table in load_models().sorted_tables:
        columns = [column for column in table.columns if isinstance(column.type, (EncryptedText, EncryptedJSON))]
        if columns:
            tables.append((table, columns))
    return tables


def _update_value(connection: Connection, table: Table, column: Column, row_id: int, stored: str, new: str) -> bool:
    """Write ``new`` unless another program changed the value since it was read; return whether it was written."""
    # The column's own type would encrypt again, so the new form is bound as plain text or JSON.
    new_type = JSON() if isinstance(column.type, EncryptedJSON) else Text()
    result = connection.execute(
        update(table)
        .where(table.c.id == row_id, cast(column, Text) == bindparam("stored", stored, type_=Text()))
        .values({column.name: bindparam("new", new, type_=new_type)})
    )
    return result.rowcount == 1


@dataclass
class _TablePass:
    counts: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    changed_meanwhile: int = 0


def _convert_table_once(
    store: Store, table: Table, columns: list[Column], target: StoreKey, previous: StoreKey | None
) -> _TablePass:
    outcome = _TablePass()
    selected = [cast(column, Text) for column in columns]
    last_id: int | None = None
    while True:
        query = select(table.c.id, *selected).order_by(table.c.id).limit(BATCH_ROWS)
        if last_id is not None:
            query = query.where(table.c.id > last_id)
        with store.engine.begin() as connection:
            rows = connection.execute(query).all()
            for row in rows:
                row_id, stored_values = row[0], row[1:]
                for column, stored in zip(columns, stored_values):
                    convert = _convert_json if isinstance(column.type, EncryptedJSON) else _convert_text
                    kind, new = convert(stored, target, previous)
                    if kind == _UNREADABLE:
                        outcome.unreadable.append(f"{table.name}.{column.name} id {row_id}")
                    if new is not None and not _update_value(connection, table, column, row_id, stored, new):
                        outcome.changed_meanwhile += 1
                        continue
                    outcome.counts[kind] = outcome.counts.get(kind, 0) + 1
        if not rows:
            return outcome
        last_id = rows[-1][0]


def _convert_values(store: Store, target: StoreKey, previous: StoreKey | None, report: KeyReport) -> None:
    for table, columns in _encrypted_columns():
        for _attempt in range(MAX_PASSES):
            outcome = _convert_table_once(store, table, columns, target, previous)
            report.values_encrypted += outcome.counts.get(_ENCRYPTED, 0)
            report.values_reencrypted += outcome.counts.get(_REENCRYPTED, 0)
            if not outcome.changed_meanwhile:
                break
            log.warning(
                "key: %d values of %s changed during conversion; reading it again", outcome.changed_meanwhile, table.name
            )
        else:
            raise KeyRotationError(
                f"其他程序在不断修改表 {table.name}（读了 {MAX_PASSES} 遍仍有改动），未完成。"
                "请停止其他使用此数据库的程序，再运行一次同一命令。",
                f"other programs kept changing table {table.name} ({MAX_PASSES} reads still found changes), "
                "so the run did not finish; stop the other programs that use the store and run the same command again",
            )
        # The last pass saw the table as it is now.
        report.values_current += outcome.counts.get(_CURRENT, 0)
        report.unreadable_values += outcome.unreadable


# Files.


def _is_temporary(path: Path) -> bool:
    """Return whether ``path`` is an unfinished write: the store's and the archive's ``*.tmp``, or this module's."""
    return path.name.endswith(".tmp") or path.name.endswith(TEMPORARY_SUFFIX)


def _file_folders(store: Store, archive_folders: Iterable[Path]) -> list[Path]:
    """Return the image folder and every archive folder: those given and those of unpurged archive rows."""
    folders = [store.image_dir, *archive_folders]
    with store.session() as session:
        archived = session.scalars(select(ArchiveRow.folder).where(ArchiveRow.purged_at.is_(None)))
        folders += [Path(folder) for folder in archived]
    return [folder for folder in folders if folder.is_dir()]


def _named_images(store: Store) -> list[tuple[int | None, int, str]]:
    """Return (card id or None, scan id, stored path) of every image file that a row names."""
    with store.session() as session:
        scans = session.execute(
            select(CardRow.id, ScanRow.id, ScanRow.image_path).outerjoin(CardRow, CardRow.scan_id == ScanRow.id)
        ).all()
        straight = session.execute(select(CardRow.id, CardRow.scan_id, CardRow.straight_image_path)).all()
    return [tuple(row) for row in (*scans, *straight)]


# The card id or None, and the scan id or None, that a stored file belongs to.
_Owner = tuple[int | None, int | None]


def _archive_owners(store: Store) -> dict[Path, int]:
    """Return the card id of every unpurged archive folder, by the folder's resolved path."""
    with store.session() as session:
        rows = session.execute(select(ArchiveRow.folder, ArchiveRow.card_id).where(ArchiveRow.purged_at.is_(None))).all()
    return {Path(folder).resolve(): card_id for folder, card_id in rows}


def _stored_files(store: Store, folders: list[Path], report: KeyReport) -> tuple[list[Path], dict[Path, _Owner]]:
    """Return every stored file once, those in ``folders`` and the images the rows name, and the owners of those images.

    The owners are keyed by resolved path. Missing images go to ``report``.
    """
    found: dict[Path, Path] = {}
    owners: dict[Path, _Owner] = {}
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and not _is_temporary(path):
                found.setdefault(path.resolve(), path)
    missing_cards: set[int] = set()
    missing_scans: set[int] = set()
    for card_id, scan_id, stored in _named_images(store):
        path = store.image_file(stored)
        if path.is_file():
            found.setdefault(path.resolve(), path)
            owners.setdefault(path.resolve(), (card_id, scan_id))
            continue
        report.files_missing += 1
        report.missing_file_names.append(path.name)
        if card_id is not None:
            missing_cards.add(card_id)
        else:
            missing_scans.add(scan_id)
    report.missing_card_ids = sorted(missing_cards)
    report.missing_scan_ids = sorted(missing_scans)
    return [found[key] for key in sorted(found)], owners


def _remove_temporary_files(folders: list[Path]) -> int:
    """Delete the temporary files a killed run left. The file each was to replace still contains its old content."""
    removed = 0
    for folder in folders:
        for path in folder.rglob(f"*{TEMPORARY_SUFFIX}"):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_temporary(path: Path, data: bytes) -> Path:
    """Write ``data`` owner-only to a temporary file beside ``path`` and flush it to disk; return its path."""
    temporary = path.with_name(f".{path.name}{TEMPORARY_SUFFIX}")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return temporary


def _replace_file(path: Path, data: bytes) -> None:
    """Replace the content of ``path`` atomically, so after a crash it contains the old or the new bytes, never a mix."""
    temporary = _write_temporary(path, data)
    os.replace(temporary, path)
    _fsync_folder(path.parent)


def _is_plain_file(path: Path, content: bytes) -> bool:
    """Return whether ``content`` is a plain file of a kind the store or the archive writes: an image or a JSON record.

    Images are recognised by their leading bytes only, so an image cut short after its header counts as plain.
    """
    if content.startswith(_IMAGE_SIGNATURES):
        return True
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return True
    if path.suffix.lower() == ".json":
        try:
            json.loads(content.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError is a ValueError too
            return False
        return True
    return False


def _convert_file(path: Path, target: StoreKey, previous: StoreKey | None) -> str:
    stored = path.read_bytes()
    if stored.startswith(FILE_MAGIC):
        if target.open_file(stored) is not None:
            return _CURRENT
        plain = previous.open_file(stored) if previous is not None else None
        if plain is None:
            return _UNREADABLE
        kind = _REENCRYPTED
    elif _is_plain_file(path, stored):
        plain = stored
        kind = _ENCRYPTED
    else:
        # Encrypting an empty or foreign file would hide the damage from every later check.
        return _DAMAGED
    _replace_file(path, target.seal_file(plain))
    return kind


def _convert_files(
    store: Store, archive_folders: Iterable[Path], target: StoreKey, previous: StoreKey | None, report: KeyReport
) -> None:
    folders = _file_folders(store, archive_folders)
    removed = _remove_temporary_files(folders)
    if removed:
        log.info("key: %d temporary files of an interrupted run deleted", removed)
    files, owners = _stored_files(store, folders, report)
    archive_owners = _archive_owners(store)
    damaged_cards: set[int] = set()
    damaged_scans: set[int] = set()
    for path in files:
        kind = _convert_file(path, target, previous)
        if kind == _ENCRYPTED:
            report.files_encrypted += 1
        elif kind == _REENCRYPTED:
            report.files_reencrypted += 1
        elif kind == _CURRENT:
            report.files_current += 1
        elif kind == _DAMAGED:
            report.damaged_files.append(path)
            card_id, scan_id = owners.get(path.resolve(), (archive_owners.get(path.parent.resolve()), None))
            if card_id is not None:
                damaged_cards.add(card_id)
            elif scan_id is not None:
                damaged_scans.add(scan_id)
        else:
            report.unreadable_files.append(path)
    report.damaged_card_ids = sorted(damaged_cards)
    report.damaged_scan_ids = sorted(damaged_scans)


# Whole runs.


def _compact(store: Store) -> None:
    """Rewrite the database files, so the old forms of the converted values no longer sit in free pages."""
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if store.engine.dialect.name == "sqlite":
            connection.execute(text("VACUUM"))
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        elif store.engine.dialect.name == "postgresql":
            # NOTE: PostgreSQL skips, with a warning only, a table the connecting role does not own.
            for table, _columns in _encrypted_columns():
                connection.execute(text(f'VACUUM FULL "{table.name}"'))


def _listed(items: list) -> str:
    listed = ", ".join(str(item) for item in items[:MAX_LISTED])
    return listed + (f" …(+{len(items) - MAX_LISTED})" if len(items) > MAX_LISTED else "")


def _unreadable_details(report: KeyReport) -> tuple[str, str]:
    """Return a Chinese and an English phrase that counts and names the files and values no key of the run decrypts."""
    details_zh = []
    details_en = []
    if report.unreadable_files:
        count = len(report.unreadable_files)
        details_zh.append(f"{count} 个文件：{_listed(report.unreadable_files)}")
        details_en.append(f"{count} files: {_listed(report.unreadable_files)}")
    if report.unreadable_values:
        count = len(report.unreadable_values)
        details_zh.append(f"{count} 个数据库值：{_listed(report.unreadable_values)}")
        details_en.append(f"{count} database values: {_listed(report.unreadable_values)}")
    return "；".join(details_zh), "; ".join(details_en)


def _unreadable_message(report: KeyReport, *, rotating: bool) -> tuple[str, str]:
    """Return the Chinese and English message that names the values and files no key of the run decrypts."""
    details_zh, details_en = _unreadable_details(report)
    if rotating:
        failure_zh = f"以下数据用原密钥和新密钥都无法解密，密钥更换未完成：{details_zh}。"
        failure_en = f"neither the old nor the new key decrypts this data, so the rotation did not finish: {details_en}."
        backup_zh = "备份中用原密钥或新密钥加密的均可"
        backup_en = "encrypted with the old or the new key"
        skip_zh = "确认无法恢复时，请加 --skip-unreadable 再运行一次：这些数据保持原样，和现在一样无法读取，其余数据照常完成更换。"
        skip_en = (
            "If they cannot be restored, run it again with --skip-unreadable: they stay as they are, unreadable as "
            "now, and the rotation of the rest finishes."
        )
        state_zh = "在再次运行成功之前，数据库仍处于更换密钥的状态，其他程序不能打开它。"
        state_en = "Until a run succeeds, the store stays in rotation and other programs cannot open it."
    else:
        failure_zh = f"以下数据用当前密钥无法解密，未全部加密：{details_zh}。"
        failure_en = f"the current key does not decrypt this data, so the run did not finish: {details_en}."
        backup_zh = "备份中未加密或用当前密钥加密的均可"
        backup_en = "plain or encrypted with the current key"
        skip_zh = "确认无法恢复时，请加 --skip-unreadable 再运行一次：这些数据保持原样，和现在一样无法读取。"
        skip_en = "If they cannot be restored, run it again with --skip-unreadable: they stay as they are, unreadable as now."
        state_zh = "其余数据已加密。"
        state_en = "The rest of the data is encrypted."
    return (
        f"{failure_zh}这些数据是用别的密钥加密的，或已损坏。请从备份恢复这些文件或数据库行（{backup_zh}），"
        f"或把无法恢复的文件移出数据目录和归档目录，然后再运行一次同一命令。{skip_zh}{state_zh}",
        f"{failure_en} It was encrypted with another key or is damaged. Restore these files or database rows from "
        f"a backup ({backup_en}), or move files that cannot be restored out of the data and archive folders, then "
        f"run the same command again. {skip_en} {state_en}",
    )


def describe_unreadable(report: KeyReport, *, rotating: bool) -> tuple[str, str]:
    """Return a Chinese and an English phrase naming the values (by table, column and row id) and files no key opened."""
    details_zh, details_en = _unreadable_details(report)
    if rotating:
        return f"用原密钥和新密钥都无法解密的数据：{details_zh}", f"data that neither the old nor the new key decrypts: {details_en}"
    return f"用当前密钥无法解密的数据：{details_zh}", f"data that the current key does not decrypt: {details_en}"


def _owners(card_ids: list[int], scan_ids: list[int], names: str) -> tuple[str, str]:
    """Return the Chinese and English list of the cards, the scans without a card and the file names ``names``."""
    owners_zh = []
    owners_en = []
    if card_ids:
        owners_zh.append(f"卡片 {_listed(card_ids)}")
        owners_en.append(f"cards {_listed(card_ids)}")
    if scan_ids:
        owners_zh.append(f"尚未识别的扫描件 {_listed(scan_ids)}")
        owners_en.append(f"scans not read yet {_listed(scan_ids)}")
    if not owners_zh:
        return f"文件 {names}", f"files {names}"
    return f"{'，'.join(owners_zh)}；文件 {names}", f"{', '.join(owners_en)}; files {names}"


def describe_missing_files(report: KeyReport) -> tuple[str, str]:
    """Return a Chinese and an English phrase that counts the missing and the damaged files and names their cards and files."""
    phrases_zh = []
    phrases_en = []
    if report.files_missing:
        owners_zh, owners_en = _owners(
            report.missing_card_ids, report.missing_scan_ids, _listed(sorted(report.missing_file_names))
        )
        phrases_zh.append(f"数据库中登记的 {report.files_missing} 个图像文件不在数据目录中（{owners_zh}）")
        phrases_en.append(
            f"image files that the database names are missing from the data folder: {report.files_missing} ({owners_en})"
        )
    if report.damaged_files:
        count = len(report.damaged_files)
        owners_zh, owners_en = _owners(report.damaged_card_ids, report.damaged_scan_ids, _listed(report.damaged_files))
        phrases_zh.append(
            f"{count} 个文件已损坏，未做改动（{owners_zh}）：它们是空文件，或既不是加密文件，"
            "也不是图像（PNG、JPEG、TIFF、WebP）或记录文件（JSON）"
        )
        phrases_en.append(
            f"{count} files are damaged and were left as they are ({owners_en}): they are empty, or neither "
            "encrypted nor an image (PNG, JPEG, TIFF, WebP) or a record (JSON)"
        )
    return "；".join(phrases_zh), "; ".join(phrases_en)


def _missing_message(report: KeyReport, image_dir: Path, *, rotating: bool) -> tuple[str, str]:
    """Return the message of a run that converted everything but the missing and the damaged files."""
    missing_zh, missing_en = describe_missing_files(report)
    restore_zh = f"请从备份或共享目录把它们恢复到原处（图像文件在 {image_dir} 中，损坏的文件按上面的路径覆盖）"
    restore_en = (
        f"Restore them from a backup or the shared folder to where they belong (image files into {image_dir}, "
        "damaged files over the paths above)"
    )
    if rotating:
        return (
            f"{missing_zh}。这些文件没有换成新密钥，所以密钥更换未完成，其余数据和文件已换成新密钥。"
            "这些文件找回后仍需原密钥才能解密，请保留原密钥。"
            f"{restore_zh}，再用同样的两个密钥运行一次 python -m ocr key rotate。"
            "确认无法找回时，请加 --skip-missing 再运行一次，以完成更换。"
            "在更换完成之前，数据库仍处于更换密钥的状态，其他程序不能打开它。",
            f"{missing_en}. They were not moved to the new key, so the rotation did not finish. The rest of the data "
            "and files is under the new key. These files still need the old key if they turn up, so keep the old key. "
            f"{restore_en} and run python -m ocr key rotate again "
            "with the same two keys. If they cannot be restored, run it again with --skip-missing to finish the "
            "rotation. Until the rotation finishes, the store stays in rotation and other programs cannot open it.",
        )
    return (
        f"{missing_zh}。这些文件没有加密，其余数据和文件已加密，数据库照常可用。"
        f"{restore_zh}，再运行一次 python -m ocr key encrypt-existing。"
        "确认无法找回时，请加 --skip-missing 再运行一次。",
        f"{missing_en}. They were not encrypted. The rest of the data and files is encrypted and the store stays "
        f"usable. {restore_en} and run "
        "python -m ocr key encrypt-existing again. If they cannot be restored, run it again with --skip-missing.",
    )


def _raise_incomplete(
    report: KeyReport, image_dir: Path, *, rotating: bool, skip_missing: bool, skip_unreadable: bool
) -> None:
    """Raise when some data opens with no key of the run, or when files are missing or damaged, unless skipped.

    Raises :class:`KeyRotationError` for unreadable data, naming the missing and damaged files as well, and
    :class:`MissingFilesError` when missing or damaged files are the only problem that is not skipped.
    """
    files_left = (report.files_missing > 0 or bool(report.damaged_files)) and not skip_missing
    unreadable = bool(report.unreadable_files or report.unreadable_values)
    if unreadable and not skip_unreadable:
        message_zh, message_en = _unreadable_message(report, rotating=rotating)
        if files_left:
            missing_zh, missing_en = describe_missing_files(report)
            message_zh += f"另外，{missing_zh}，请一并恢复到原处（图像文件在 {image_dir} 中），或在再次运行时加 --skip-missing。"
            message_en += (
                f" Also, {missing_en}. Restore them too (image files into {image_dir}), or add --skip-missing to the "
                "next run."
            )
        raise KeyRotationError(message_zh, message_en)
    if files_left:
        message_zh, message_en = _missing_message(report, image_dir, rotating=rotating)
        if unreadable:
            unreadable_zh, unreadable_en = describe_unreadable(report, rotating=rotating)
            message_zh += f"另外，{unreadable_zh}，已按 --skip-unreadable 保持原样。"
            message_en += f" Also, {unreadable_en}; left as it is because of --skip-unreadable."
        raise MissingFilesError(message_zh, message_en)


def _log_report(command: str, report: KeyReport) -> None:
    log.info(
        "key %s: values encrypted=%d re-encrypted=%d current=%d unreadable=%d; "
        "files encrypted=%d re-encrypted=%d current=%d missing=%d damaged=%d unreadable=%d",
        command,
        report.values_encrypted,
        report.values_reencrypted,
        report.values_current,
        len(report.unreadable_values),
        report.files_encrypted,
        report.files_reencrypted,
        report.files_current,
        report.files_missing,
        len(report.damaged_files),
        len(report.unreadable_files),
    )
    if report.files_missing:
        log.warning(
            "key %s: %d image files missing, cards %s, scans without card %s",
            command,
            report.files_missing,
            _listed(report.missing_card_ids),
            _listed(report.missing_scan_ids),
        )
    if report.damaged_files:
        log.warning(
            "key %s: %d damaged files left as they are, cards %s, scans without card %s",
            command,
            len(report.damaged_files),
            _listed(report.damaged_card_ids),
            _listed(report.damaged_scan_ids),
        )


def rotate_key(
    store: Store,
    *,
    archive_folders: Iterable[Path] = (),
    skip_missing: bool = False,
    skip_unreadable: bool = False,
) -> KeyReport:
    """Re-encrypt the store from ``$HUKA_ENCRYPTION_KEY`` to ``$HUKA_NEW_ENCRYPTION_KEY``; see the module docstring.

    ``store`` must be opened with ``check_key=False``, because a store whose
    rotation was interrupted does not open otherwise. ``archive_folders`` are
    the archive roots to convert besides the folders the archive rows name.
    With ``skip_missing`` the rotation finishes although image files that
    rows name are missing or files are damaged, and with ``skip_unreadable``
    although values or files open with neither key; those stay as they are
    and the report lists them. Raises :class:`EncryptionError` for a missing,
    invalid or wrong key, :class:`KeyRotationError` when some data opens with
    neither key and is not skipped, :class:`MissingFilesError` when files are
    missing or damaged and not skipped, and :class:`KeyCommandBusyError` while
    another key command runs.
    """
    # A folder that is not the store's (an unmounted share, another store's folder) changes nothing.
    check_data_folder(store, create=False)
    current = _current_key_for_rotation()
    new = _new_key_for_rotation(current)
    report = KeyReport()
    with _exclusive_run(store):
        rows = _key_rows(store)
        _check_rotation_keys(rows, current, new)
        report.finished_before = rows.get(STORE_KEY_ROW) == new.check and ROTATION_KEY_ROW not in rows
        if not report.finished_before:
            _mark_rotation_running(store, new)
        log.info("key rotate: started, finished before=%s", report.finished_before)
        _convert_values(store, new, current, report)
        _convert_files(store, archive_folders, new, current, report)
        _log_report("rotate", report)
        _raise_incomplete(
            report, store.image_dir, rotating=True, skip_missing=skip_missing, skip_unreadable=skip_unreadable
        )
        if not report.finished_before:
            _finish_rotation(store, new)
        _compact(store)
    log.info("key rotate: finished")
    return report


def encrypt_existing(
    store: Store,
    *,
    archive_folders: Iterable[Path] = (),
    skip_missing: bool = False,
    skip_unreadable: bool = False,
) -> KeyReport:
    """Encrypt the store's plain values and files under ``$HUKA_ENCRYPTION_KEY``; see the module docstring.

    Records the key as the store's key first if the store had none. Raises
    :class:`EncryptionError` when the key is missing, invalid or not the
    store's, or a rotation is unfinished; :class:`KeyRotationError` when some
    data does not open with the key, unless ``skip_unreadable`` is set;
    :class:`MissingFilesError` when image files that rows name are missing or
    files are damaged, unless ``skip_missing`` is set;
    :class:`KeyCommandBusyError` while another key command runs.
    """
    check_data_folder(store, create=False)
    key = load_key(KEY_ENV)
    if key is None:
        raise EncryptionError(
            f"没有设置环境变量 {KEY_ENV}，未加密任何数据。请用 python -m ocr.crypto genkey 生成密钥，放入该环境变量后重试。",
            f"${KEY_ENV} is not set, so nothing was encrypted; make a key with python -m ocr.crypto genkey, "
            "put it in that variable and try again",
        )
    report = KeyReport()
    with _exclusive_run(store):
        # Records the key as the store's key, or raises for another key or an unfinished rotation.
        check_store_key(store.engine, EncryptionKeyCheckRow.__table__)
        log.info("key encrypt-existing: started")
        _convert_values(store, key, None, report)
        _convert_files(store, archive_folders, key, None, report)
        _log_report("encrypt-existing", report)
        _raise_incomplete(
            report, store.image_dir, rotating=False, skip_missing=skip_missing, skip_unreadable=skip_unreadable
        )
        _compact(store)
    log.info("key encrypt-existing: finished")
    return report
