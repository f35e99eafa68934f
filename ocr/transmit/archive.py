"""Archive: every transmitted card's original scan, straightened image and records, by arrival date and category.

Layout: ``<archive>/<arrival date>/<category>/card_<id>/`` with
``original.png``, ``straight.png`` and one ``record_<record id>.json`` per
acknowledged record (the first send and each correction), so the folder of a
day contains that day's cards sorted into 外宾, 港澳台, 团签 and 境内旅客 (domestic
guests). Each card's folder is kept ``retention_days`` after its first
archiving; ``transmit --purge-expired`` then deletes it. While
``$HUKA_ENCRYPTION_KEY`` is set the files are encrypted, and
``python -m ocr.crypto decrypt FILE OUT`` writes one back in plain.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from ocr.crypto import encrypt_file_bytes, read_stored_file
from ocr.store import ArchiveRow, CardRow, OutboxRow, Store, TransmitBatchRow, _now
from ocr.transmit.batches import write_atomically
from ocr.transmit.config import Config

__all__ = ["CATEGORY_FOLDERS", "archive_acknowledged", "archive_root", "category_of", "purge_expired"]

log = logging.getLogger(__name__)

# Folder name per guest category; domestic cards have no category and go to 境内旅客.
CATEGORY_FOLDERS = {"foreign": "外宾", "hk_macao_taiwan": "港澳台", "group_visa": "团签", "": "境内旅客"}


@dataclass(frozen=True)
class PurgeResult:
    cards: int
    folders: list[Path]


def archive_root(config: Config, data_dir: Path) -> Path:
    return config.archive.folder or data_dir / "archive"


def category_of(record: dict) -> str:
    return CATEGORY_FOLDERS.get(str(record.get("guest_category", "")), "境内旅客")


def _copy_image(source: str, target: Path) -> None:
    if target.exists():
        return
    try:
        # Re-encrypted under the current key setting, like the record files beside it.
        write_atomically(target, encrypt_file_bytes(read_stored_file(source)))
    except FileNotFoundError:
        log.warning("archive: scan image missing for %s", target.parent.name)


def archive_acknowledged(store: Store, config: Config, data_dir: Path) -> int:
    """Copy every acknowledged record not yet in the archive, with its card's images; returns the records added.

    A run after a crash finishes what the crashed run left, because each record
    file is checked for on disk.
    """
    root = archive_root(config, data_dir)
    retention = config.archive.retention_days
    added = 0
    with store.session() as session:
        rows = session.execute(
            select(OutboxRow, TransmitBatchRow)
            .join(TransmitBatchRow, OutboxRow.batch_id == TransmitBatchRow.id)
            .where(OutboxRow.state == "acknowledged")
            .order_by(OutboxRow.id)
        ).all()
        for entry, batch in rows:
            archived = session.scalar(select(ArchiveRow).where(ArchiveRow.card_id == entry.card_id))
            if archived is not None and archived.purged_at is not None:
                continue
            record = entry.record or {}
            folder = (
                Path(archived.folder)
                if archived is not None
                else root / batch.arrival_date / category_of(record) / f"card_{entry.card_id}"
            )
            record_file = folder / f"record_{entry.id}.json"
            if record_file.exists():
                continue
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            card = session.get(CardRow, entry.card_id)
            _copy_image(card.scan.image_path, folder / "original.png")
            _copy_image(card.straight_image_path, folder / "straight.png")
            document = {
                "record": record,
                "batch": {
                    "idempotency_key": batch.idempotency_key,
                    "acknowledged_at": batch.acknowledged_at.isoformat() if batch.acknowledged_at else None,
                    "acknowledged_by": batch.acknowledged_by,
                    "receipt": batch.receipt,
                },
            }
            text = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
            write_atomically(record_file, encrypt_file_bytes(text))
            if archived is None:
                now = _now()
                session.add(
                    ArchiveRow(
                        card_id=entry.card_id,
                        arrival_date=batch.arrival_date,
                        category=category_of(record),
                        folder=str(folder),
                        archived_at=now,
                        purge_after=now + timedelta(days=retention) if retention else None,
                    )
                )
                session.flush()
            added += 1
    if added:
        log.info("archive: %d records added under %s", added, root)
    return added


def purge_expired(store: Store) -> PurgeResult:
    """Delete the archive folders whose retention period has passed; the database keeps a row saying when."""
    now = _now()
    removed: list[Path] = []
    with store.session() as session:
        rows = session.scalars(
            select(ArchiveRow).where(
                ArchiveRow.purge_after.is_not(None), ArchiveRow.purge_after <= now, ArchiveRow.purged_at.is_(None)
            )
        ).all()
        for row in rows:
            folder = Path(row.folder)
            shutil.rmtree(folder, ignore_errors=True)
            row.purged_at = now
            removed.append(folder)
    if removed:
        log.info("archive: %d expired card folders deleted", len(removed))
    return PurgeResult(cards=len(removed), folders=removed)
