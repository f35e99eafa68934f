"""Integrity check of a store: ``python -m ocr check``.

Run it after a crash or a power loss, or on a schedule. It checks:

- the database itself: ``PRAGMA integrity_check`` and ``PRAGMA
  foreign_key_check`` on SQLite; on PostgreSQL, which keeps its files
  consistent itself, the same relations by query;
- the relations the product relies on, on both back ends. No row points at a
  missing card or scan, and no content key or field is stored twice. Every card
  is out of the pipeline's transaction, and every queued scan is either waiting
  or has its card. Every approved card is queued for transmission, with one
  original entry and one pending entry at most;
- every image file the database names is present, not empty, decrypts with the
  current key and contains a PNG whose chunks pass their checksums.

It prints counts of what the store holds, so a run before and after a restart
can be compared, and exits with a non-zero code when it finds a problem.
"""

from __future__ import annotations

import io
import logging
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Optional

import typer
from PIL import Image
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from models.card import CardStatus
from ocr.crypto import EncryptionError, read_stored_file
from ocr.datafolder import check_data_folder
from ocr.errors import ExitCode, StoreError, os_error_reason
from ocr.queue import QueuedScanRow
from ocr.store import AuditRow, CardRow, FieldRow, OutboxRow, ScanRow, Store

__all__ = ["CheckReport", "check_command", "check_store"]

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Problems listed one by one; the rest are counted.
MAX_LISTED = 20


@dataclass
class CheckReport:
    """Problems (each a Chinese and an English message), notes that need no action, and counts."""

    problems: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


# Relations checked by query on both back ends: (what is wrong in Chinese, in English, SQL returning offending ids).
_RELATION_CHECKS: list[tuple[str, str, str]] = [
    ("卡片指向不存在的扫描页", "cards point at a missing scan",
     "SELECT c.id FROM cards c LEFT JOIN scans s ON s.id = c.scan_id WHERE s.id IS NULL"),
    ("卡片指向不存在的批次", "cards point at a missing batch",
     "SELECT c.id FROM cards c LEFT JOIN batches b ON b.id = c.batch_id WHERE b.id IS NULL"),
    ("字段指向不存在的卡片", "fields point at a missing card",
     "SELECT f.id FROM fields f LEFT JOIN cards c ON c.id = f.card_id WHERE c.id IS NULL"),
    ("审计记录指向不存在的卡片", "audit events point at a missing card",
     # The retention job deletes cards but keeps their audit events, with a "purged" event last.
     "SELECT a.id FROM audit_events a LEFT JOIN cards c ON c.id = a.card_id WHERE c.id IS NULL"
     " AND a.card_id NOT IN (SELECT p.card_id FROM audit_events p WHERE p.action = 'purged')"),
    ("上报队列条目指向不存在的卡片", "transmission outbox entries point at a missing card",
     "SELECT o.id FROM transmit_outbox o LEFT JOIN cards c ON c.id = o.card_id WHERE c.id IS NULL"),
    ("识别队列条目指向不存在的扫描页", "scan queue entries point at a missing scan",
     "SELECT q.id FROM scan_queue q LEFT JOIN scans s ON s.id = q.scan_id WHERE s.id IS NULL"),
    ("同一内容键存了多个扫描页", "content keys stored more than once",
     "SELECT MIN(id) FROM scans GROUP BY content_key HAVING COUNT(*) > 1"),
    ("同一扫描页有多张卡片", "scans with more than one card",
     "SELECT scan_id FROM cards GROUP BY scan_id HAVING COUNT(*) > 1"),
    ("同一卡片的同一字段存了多次", "fields stored twice on one card",
     "SELECT card_id FROM fields GROUP BY card_id, key HAVING COUNT(*) > 1"),
    ("卡片停在“已提取”状态（入库事务未完成）", "cards left in state extracted (an unfinished store transaction)",
     "SELECT id FROM cards WHERE status = 'extracted'"),
    ("卡片缺少或重复“已提取”审计记录", "cards without exactly one extracted audit event",
     "SELECT c.id FROM cards c LEFT JOIN audit_events a ON a.card_id = c.id AND a.action = 'extracted' "
     "GROUP BY c.id HAVING COUNT(a.id) <> 1"),
    ("扫描页既没有卡片也不在识别队列中", "scans with neither a card nor a scan queue entry",
     "SELECT s.id FROM scans s LEFT JOIN cards c ON c.scan_id = s.id LEFT JOIN scan_queue q ON q.scan_id = s.id "
     "WHERE c.id IS NULL AND q.id IS NULL"),
    ("识别队列标为等待，但卡片已存在", "scan queue entries still queued although the card exists",
     "SELECT q.scan_id FROM scan_queue q JOIN cards c ON c.scan_id = q.scan_id WHERE q.state = 'queued'"),
    ("识别队列标为完成，但没有卡片", "scan queue entries done without a card",
     "SELECT q.scan_id FROM scan_queue q LEFT JOIN cards c ON c.scan_id = q.scan_id "
     "WHERE q.state = 'done' AND c.id IS NULL"),
    ("已审核的卡片没有进入上报队列", "approved cards not queued for transmission",
     "SELECT c.id FROM cards c LEFT JOIN transmit_outbox o ON o.card_id = c.id "
     "WHERE c.status IN ('approved', 'exported') AND EXISTS (SELECT 1 FROM audit_events a "
     "WHERE a.card_id = c.id AND a.action = 'status' AND a.new_value = 'approved') AND o.id IS NULL"),
    ("卡片在上报队列中有多个首次上报条目", "cards with more than one original outbox entry",
     "SELECT card_id FROM transmit_outbox WHERE kind = 'original' GROUP BY card_id HAVING COUNT(*) > 1"),
    ("卡片在上报队列中有多个待发送条目", "cards with more than one pending outbox entry",
     "SELECT card_id FROM transmit_outbox WHERE state = 'pending' GROUP BY card_id HAVING COUNT(*) > 1"),
]


def _ids(rows) -> str:
    ids = [str(row[0]) for row in rows[:MAX_LISTED]]
    more = f" …(+{len(rows) - MAX_LISTED})" if len(rows) > MAX_LISTED else ""
    return ", ".join(ids) + more


def _check_sqlite_file(store: Store, report: CheckReport) -> None:
    with store.engine.connect() as connection:
        integrity = [row[0] for row in connection.execute(text("PRAGMA integrity_check"))]
        if integrity != ["ok"]:
            detail = "; ".join(integrity[:MAX_LISTED])
            report.problems.append((f"SQLite 完整性检查未通过：{detail}", f"SQLite integrity_check failed: {detail}"))
        foreign = connection.execute(text("PRAGMA foreign_key_check")).all()
        if foreign:
            detail = "; ".join(f"{row[0]} rowid {row[1]} → {row[2]}" for row in foreign[:MAX_LISTED])
            report.problems.append(
                (f"SQLite 外键检查发现 {len(foreign)} 处断开的引用：{detail}", f"SQLite foreign_key_check: {len(foreign)} broken references: {detail}")
            )


def _check_relations(store: Store, report: CheckReport) -> None:
    with store.engine.connect() as connection:
        for label_zh, label_en, query in _RELATION_CHECKS:
            rows = connection.execute(text(query)).all()
            if rows:
                report.problems.append(
                    (f"{label_zh}：{len(rows)} 处（编号 {_ids(rows)}）", f"{label_en}: {len(rows)} (ids {_ids(rows)})")
                )


def _check_data_folder(store: Store, report: CheckReport) -> None:
    """Report a data folder whose marker does not match the database (ocr.datafolder); nothing is written."""
    try:
        check_data_folder(store, create=False)
    except StoreError as exc:
        report.problems.append((exc.message_zh, exc.message_en))


def _unreadable_image(path: Path) -> tuple[str, str] | None:
    """Return why a stored image file cannot be read (Chinese, English), or None when it decrypts to a sound PNG.

    PIL's verify() checks the PNG signature and every chunk's CRC without decoding the pixels.
    """
    try:
        data = read_stored_file(path)
    except EncryptionError:
        return ("无法用当前密钥解密", "cannot be decrypted with the current key")
    except OSError as exc:
        return (f"无法读取：{os_error_reason(exc)[0]}", f"cannot be read: {exc.strerror or exc}")
    if not data.startswith(PNG_SIGNATURE):
        return ("不是 PNG 图像", "not a PNG image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (OSError, SyntaxError, ValueError) as exc:
        return ("PNG 数据已损坏", f"damaged PNG data: {exc}")
    return None


def _check_images(store: Store, report: CheckReport) -> None:
    with store.session() as session:
        named = [("scan", scan_id, path) for scan_id, path in session.execute(select(ScanRow.id, ScanRow.image_path))]
        named += [("card", card_id, path) for card_id, path in session.execute(select(CardRow.id, CardRow.straight_image_path))]
    missing = []
    damaged = []
    referenced = set()
    for kind, row_id, stored in named:
        path = store.image_file(stored)
        referenced.add(path.name)
        try:
            status = path.stat()
        except OSError:
            missing.append((kind, row_id, path))
            continue
        # A folder or other non-file in the image's place counts as missing, as an empty file does.
        if not stat.S_ISREG(status.st_mode) or status.st_size == 0:
            missing.append((kind, row_id, path))
            continue
        problem = _unreadable_image(path)
        if problem is not None:
            damaged.append((kind, row_id, path, problem))
    report.counts["image_files"] = len(named)
    if damaged:
        listed = "; ".join(
            f"{'扫描页' if kind == 'scan' else '卡片'} {row_id}: {path}（{problem[0]}）"
            for kind, row_id, path, problem in damaged[:MAX_LISTED]
        )
        listed_en = "; ".join(f"{kind} {row_id}: {path} ({problem[1]})" for kind, row_id, path, problem in damaged[:MAX_LISTED])
        report.problems.append(
            (
                f"{len(damaged)} 个图像文件已损坏或无法解密（{listed}）。请从备份恢复这些文件。",
                f"{len(damaged)} image files are damaged or cannot be decrypted ({listed_en}); restore them from a backup",
            )
        )
    if missing:
        listed = "; ".join(f"{'扫描页' if kind == 'scan' else '卡片'} {row_id}: {path}" for kind, row_id, path in missing[:MAX_LISTED])
        listed_en = "; ".join(f"{kind} {row_id}: {path}" for kind, row_id, path in missing[:MAX_LISTED])
        report.problems.append(
            (
                f"{len(missing)} 个图像文件缺失或为空（{listed}）。请从备份恢复，或检查 --data-dir 是否正确。",
                f"{len(missing)} image files missing or empty ({listed_en}); restore them from a backup or check --data-dir",
            )
        )

    # Files no row names: the image of a store transaction that a crash cut short. Harmless.
    if store.image_dir.is_dir():
        partial = [p for p in store.image_dir.iterdir() if p.suffix == ".tmp"]
        unreferenced = [p for p in store.image_dir.iterdir() if p.suffix == ".png" and p.name not in referenced]
        if partial or unreferenced:
            report.notes.append(
                (
                    f"图像目录中有 {len(partial)} 个未写完的临时文件和 {len(unreferenced)} 个未被引用的图像"
                    "（中断的入库留下的，可以删除；重新入库会再写）。",
                    f"the image folder holds {len(partial)} unfinished temporary files and {len(unreferenced)} "
                    "unreferenced images (left by interrupted stores; safe to delete, a new ingest writes them again)",
                )
            )


def _count(store: Store, report: CheckReport) -> None:
    with store.session() as session:
        report.counts["scans"] = session.scalar(select(func.count(ScanRow.id))) or 0
        report.counts["cards"] = session.scalar(select(func.count(CardRow.id))) or 0
        report.counts["fields"] = session.scalar(select(func.count(FieldRow.id))) or 0
        report.counts["audit_events"] = session.scalar(select(func.count(AuditRow.id))) or 0
        report.counts["corrections"] = (
            session.scalar(select(func.count(AuditRow.id)).where(AuditRow.action == "correct")) or 0
        )
        report.counts["approvals"] = (
            session.scalar(
                select(func.count(AuditRow.id)).where(
                    AuditRow.action == "status", AuditRow.new_value == str(CardStatus.APPROVED)
                )
            )
            or 0
        )
        report.counts["outbox_entries"] = session.scalar(select(func.count(OutboxRow.id))) or 0
        report.counts["queued_scans"] = (
            session.scalar(select(func.count(QueuedScanRow.id)).where(QueuedScanRow.state == "queued")) or 0
        )
        report.counts["failed_scans"] = (
            session.scalar(select(func.count(QueuedScanRow.id)).where(QueuedScanRow.state == "failed")) or 0
        )


def check_store(store: Store) -> CheckReport:
    """Run every check on ``store`` and return the report; nothing is changed."""
    report = CheckReport()
    if store.engine.dialect.name == "sqlite":
        _check_sqlite_file(store, report)
    _check_relations(store, report)
    _check_data_folder(store, report)
    _check_images(store, report)
    _count(store, report)
    log.info("store checked problems=%d cards=%d", len(report.problems), report.counts.get("cards", 0))
    return report


_COUNT_LABELS = {
    "scans": ("扫描页", "scans"),
    "cards": ("卡片", "cards"),
    "fields": ("字段", "fields"),
    "audit_events": ("审计记录", "audit events"),
    "corrections": ("更正", "corrections"),
    "approvals": ("审核通过", "approvals"),
    "outbox_entries": ("上报队列条目", "outbox entries"),
    "queued_scans": ("排队等待识别", "scans queued for OCR"),
    "failed_scans": ("识别失败", "scans failed in OCR"),
    "image_files": ("图像文件", "image files"),
}


def check_command(
    db: Annotated[Optional[str], typer.Option("--db", help="数据库地址，默认 sqlite:///<数据目录>/cards.db / database URL")] = None,
    data_dir: Annotated[
        Optional[Path], typer.Option("--data-dir", help="数据目录（数据库与扫描图像），默认 ./ocr-data / data folder")
    ] = None,
) -> None:
    """检查数据库与图像文件是否完整一致；发现问题时退出码为 6。 / Check the database and image files; exit 6 on a problem."""
    from ocr.cli import say, warn

    try:
        store = Store(url=db, data_dir=data_dir, create=False)
        try:
            report = check_store(store)
        finally:
            store.close()
    except DatabaseError as exc:
        # SQLite raises this for a damaged file before any check can run.
        warn(
            f"问题：数据库文件已损坏，无法打开（{exc.orig}）。请从备份恢复数据库；扫描图像仍在数据目录中，可以重新入库。",
            f"problem: the database file is damaged and cannot be opened ({exc.orig}); restore it from a backup, "
            "or ingest the scans in the data folder again",
        )
        raise typer.Exit(ExitCode.STORE_FAILED) from exc
    zh = "，".join(f"{_COUNT_LABELS[key][0]} {value}" for key, value in report.counts.items())
    en = ", ".join(f"{_COUNT_LABELS[key][1]} {value}" for key, value in report.counts.items())
    say(f"数量：{zh}", f"counts: {en}")
    for note_zh, note_en in report.notes:
        say(f"提示：{note_zh}", f"note: {note_en}")
    for problem_zh, problem_en in report.problems:
        warn(f"问题：{problem_zh}", f"problem: {problem_en}")
    if report.ok:
        say("检查通过：数据库完整，图像文件齐全。", "check passed: the database is consistent and every image file is present")
        return
    warn(
        f"检查发现 {len(report.problems)} 个问题。请先备份数据目录和数据库，再按上面的提示处理。",
        f"the check found {len(report.problems)} problems; back up the data folder and database before fixing them",
    )
    raise typer.Exit(ExitCode.STORE_FAILED)
