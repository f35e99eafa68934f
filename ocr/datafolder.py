"""The data folder that belongs to a database: a marker file checked before a scan image is written.

Scan images live in the data folder (``images/``), the records in the
database. In a multi-station set-up every machine must mount the same shared
folder. A station whose ``--data-dir`` is a local folder would store scans
that no worker and no reviewer can open. So the database keeps a random
identity (table ``store_identity``) and the data folder a marker file,
:data:`MARKER_NAME`, with the same identity. Before a process writes its first
image, and when a worker starts, :func:`check_data_folder` compares them:

- neither exists (a new store, or one from before this check): a new
  identity goes into both. A store that has scans but none of their image
  files in this folder gets an error instead, because the folder is another one;
- only the marker exists: the database takes the marker's identity while
  the folder contains no scan image yet. A folder with images belongs to the
  database that wrote them, so a new or recreated database gets an error;
- only the database has one: this folder is not the store's folder, and
  :class:`ocr.errors.StoreError` names the folder and the fix. An SQLite
  database file inside the folder shows that the folder is the store's, so
  there the lost marker is written again;
- both exist and differ: the folder belongs to another database, and the
  same error is raised.

Commands that only read the database (status, export, audit) do not check,
so they run on a machine without the shared folder. ``check`` and the key
commands compare without writing anything.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import DateTime, Integer, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from ocr.errors import StoreError
from ocr.store import Base, ScanRow, _now

if TYPE_CHECKING:
    from ocr.store import Store

__all__ = ["MARKER_NAME", "StoreIdentityRow", "check_data_folder", "read_marker"]

log = logging.getLogger(__name__)

# The marker file at the top of the data folder.
MARKER_NAME = ".hukacapture-store"


class StoreIdentityRow(Base):
    """The store's random identity (one row, id 1), which its data folder's marker file repeats."""

    __tablename__ = "store_identity"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now)


def _marker_fix(database_inside: bool) -> tuple[str, str]:
    """Return what to do about a damaged marker, in Chinese and English."""
    if database_inside:
        return (
            "请从备份中恢复此文件。数据库文件就在此目录中，所以也可以删除此文件，"
            "下次写入扫描件（例如 ingest）时会自动重新生成。",
            "restore it from a backup, or delete it: the database file lies in this folder, so the next command "
            "that writes a scan (such as ingest) writes it again",
        )
    return (
        "请从备份中恢复此文件（多工位时它在共享数据目录中）；删除它不能解决问题，因为此后此目录会被当作别的目录拒绝。",
        "restore it from a backup (with several stations it lies in the shared data folder); deleting it does not "
        "help, because the folder is then rejected as not the store's",
    )


def _read_error_zh(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "没有读取权限"
    if isinstance(exc, IsADirectoryError):
        return "它是一个目录，不是文件"
    if exc.errno == errno.EINVAL:
        return "它不是普通文件"
    return f"系统错误号 {exc.errno}" if exc.errno is not None else "系统错误"


def read_marker(data_dir: Path, *, database_inside: bool = False) -> str | None:
    """Return the identity in ``data_dir``'s marker file, or None when the folder has none.

    Raises :class:`StoreError` when the marker exists but cannot be read or parsed. The Chinese
    message names the file and the fix, and the English one adds the system's or parser's
    detail. ``database_inside`` (an SQLite database file in this folder) adds deleting the
    marker to the fix, because then the next write creates it again.
    """
    path = data_dir / MARKER_NAME
    fix_zh, fix_en = _marker_fix(database_inside)
    try:
        # Opening a FIFO or a device to read would block or never end: only a regular file is read.
        if path.exists() and not path.is_file() and not path.is_dir():
            raise OSError(errno.EINVAL, "not a regular file")
        # utf-8-sig: a marker saved again by a Windows editor starts with a byte order mark.
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("data folder marker unreadable path=%s error=%s", path, exc)
        raise StoreError(
            f"无法读取数据目录的标记文件 {path}（{_read_error_zh(exc)}）。请检查此文件和共享数据目录的权限，或{fix_zh}",
            f"cannot read marker file {path} of the data folder ({exc}); check the permissions of the file and the "
            f"shared folder, or {fix_en}",
        ) from exc
    except UnicodeDecodeError as exc:
        log.warning("data folder marker not UTF-8 path=%s error=%s", path, exc)
        raise StoreError(
            f"数据目录的标记文件 {path} 已损坏（不是有效的 JSON 文本），无法确认此目录属于哪个数据库。{fix_zh}",
            f"marker file {path} of the data folder is damaged (invalid JSON: not UTF-8 text, {exc}), so it does "
            f"not show which database the folder belongs to; {fix_en}",
        ) from exc
    try:
        content = json.loads(text)
    except ValueError as exc:
        log.warning("data folder marker not JSON path=%s error=%s", path, exc)
        raise StoreError(
            f"数据目录的标记文件 {path} 已损坏（不是有效的 JSON），无法确认此目录属于哪个数据库。{fix_zh}",
            f"marker file {path} of the data folder is damaged (invalid JSON: {exc}), so it does not show which "
            f"database the folder belongs to; {fix_en}",
        ) from exc
    identity = content.get("store") if isinstance(content, dict) else None
    if not isinstance(identity, str) or not identity:
        raise StoreError(
            f"数据目录的标记文件 {path} 内容无效（没有数据库编号）。{fix_zh}",
            f"marker file {path} of the data folder is invalid (it names no database); {fix_en}",
        )
    return identity


def _create_marker(data_dir: Path, identity: str) -> bool:
    """Create the marker owner-only with ``identity`` unless one exists; return True when this call created it.

    The content is written to a temporary file first and then linked to the marker's name. The
    link fails when the name exists, so two processes sharing the folder cannot both create it,
    and neither reads it half written.
    """
    path = data_dir / MARKER_NAME
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
        handle.write(json.dumps({"store": identity}) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def _stored_identity(store: Store) -> str | None:
    with store.session() as session:
        return session.scalar(select(StoreIdentityRow.identity).where(StoreIdentityRow.id == 1))


def _claim_identity(store: Store, identity: str) -> str:
    """Record ``identity`` as the store's unless another process recorded one first; return the one recorded."""
    try:
        with store.session() as session:
            session.add(StoreIdentityRow(id=1, identity=identity))
    except IntegrityError:
        # Two stations opened a new store at the same time: the first insert wins.
        pass
    recorded = _stored_identity(store)
    assert recorded is not None
    return recorded


def _has_images(data_dir: Path) -> bool:
    """Return True when the folder's ``images/`` contains at least one file."""
    try:
        with os.scandir(data_dir / "images") as entries:
            return any(entry.is_file() for entry in entries)
    except FileNotFoundError:
        return False


# Scan rows whose image files are looked for when an unmarked folder is checked.
_SCANS_SAMPLED = 20


def _holds_stored_scans(store: Store) -> bool:
    """Return True when the store has no scan yet, or its folder contains the image of one of its newest scans."""
    with store.session() as session:
        names = session.scalars(select(ScanRow.image_path).order_by(ScanRow.id.desc()).limit(_SCANS_SAMPLED)).all()
    if not names:
        return True
    return any(store.image_file(name).is_file() for name in names)


def _database_inside(store: Store) -> bool:
    """Return True for an SQLite store whose database file lies inside its data folder."""
    if not store.url.startswith("sqlite:///"):
        return False
    database = Path(store.url.removeprefix("sqlite:///")).absolute()
    return store.data_dir in database.parents


def _not_the_store_folder(data_dir: Path) -> StoreError:
    return StoreError(
        f"数据目录 {data_dir} 不是此数据库的数据目录（其中没有标记文件 {MARKER_NAME}）。"
        "多工位时，请把共享数据目录挂载到此路径，或用 --data-dir（或 HUKA_DATA_DIR）指向它；"
        "扫描图像写到本机目录，其他机器就无法识别和审核。",
        f"{data_dir} is not this database's data folder (it has no {MARKER_NAME} marker file); mount the shared "
        "data folder here or point --data-dir (or HUKA_DATA_DIR) at it, because scans written to a local folder "
        "cannot be read or reviewed on the other machines",
    )


def _scans_elsewhere(data_dir: Path) -> StoreError:
    return StoreError(
        f"数据目录 {data_dir} 中没有此数据库已有扫描件的图像，也没有标记文件 {MARKER_NAME}，"
        "所以它不是此数据库的数据目录。请把原来的数据目录（多工位时是共享数据目录）挂载到此路径，"
        "或用 --data-dir（或 HUKA_DATA_DIR）指向它。",
        f"{data_dir} contains none of the images of this database's scans and no {MARKER_NAME} marker file, so it "
        "is not the database's data folder; mount the original (with several stations, the shared) data folder "
        "here or point --data-dir (or HUKA_DATA_DIR) at it",
    )


def _another_store_folder(data_dir: Path) -> StoreError:
    return StoreError(
        f"数据目录 {data_dir} 属于另一个数据库（标记文件 {MARKER_NAME} 不符，或目录中已有另一个数据库的扫描图像）。"
        "请检查 --db 与 --data-dir 是否配对；新的数据库请用新的数据目录。",
        f"{data_dir} belongs to another database (its {MARKER_NAME} marker differs, or it holds another database's "
        "scans); check that --db and --data-dir belong together, and give a new database a new data folder",
    )


def check_data_folder(store: Store, *, create: bool = True) -> None:
    """Check that ``store.data_dir`` is the data folder of ``store``'s database, or make it so for a new store.

    With ``create`` off nothing is written: a store without an identity passes only when the
    folder has no marker either. Raises :class:`StoreError` naming the folder when it belongs to
    no or another database.
    """
    data_dir = store.data_dir
    # The database first: a process that records the identity has created the marker before, so
    # once the identity is seen, the marker of a shared folder is there to read.
    identity = _stored_identity(store)
    database_inside = _database_inside(store)
    marker = read_marker(data_dir, database_inside=database_inside)

    if identity is None:
        if not create:
            if marker is None:
                return
            raise _another_store_folder(data_dir)
        created = False
        if marker is None and not database_inside and not _holds_stored_scans(store):
            # A store from before this check has scans but no marker. Its first writer after the
            # upgrade must not mark a folder without them, such as a station's local one.
            raise _scans_elsewhere(data_dir)
        if marker is None:
            candidate = uuid.uuid4().hex
            created = _create_marker(data_dir, candidate)
            # A process sharing the folder may have created it first, and then its identity counts.
            marker = candidate if created else read_marker(data_dir, database_inside=database_inside)
            assert marker is not None
        elif _has_images(data_dir) and _stored_identity(store) != marker:
            # A marked folder with scans belongs to the database that wrote them: a new or recreated
            # database taking it over would write over those scans with its own. The identity is read
            # again first: a process sharing this new store records it before its first scan, so the
            # scans may be that process's, written since the identity was read above.
            # NOTE: a second process that starts in the same moment as the first one to mark the folder
            # of a store from before this check is refused too. Started again, it passes.
            raise _another_store_folder(data_dir)
        identity = _claim_identity(store, marker)
        if identity != marker and created:
            # Another folder was recorded first: this one is not the store's, so take the marker back.
            (data_dir / MARKER_NAME).unlink(missing_ok=True)
            marker = None
        log.info("store identity checked recorded=%s marker_created=%s", identity == marker, created)

    if marker is None:
        if database_inside:
            # The database file lies in this folder, so the folder is the store's: the marker was lost.
            # Opened with create off (check, the key commands), the folder passes and the next ingest
            # writes the marker.
            if create:
                _create_marker(data_dir, identity)
            log.warning("data folder marker missing beside its database written_again=%s", create)
            return
        raise _not_the_store_folder(data_dir)
    if marker != identity:
        raise _another_store_folder(data_dir)
