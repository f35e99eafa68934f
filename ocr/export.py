"""Export: approved cards of a batch to CSV (UTF-8 with BOM, so that Excel opens it) or JSON Lines.

One file per card type, because each card type has its own columns. Cards the
pipeline auto-accepted are approved by the export (an audit event records it)
unless ``include_auto_accepted`` is off. Each file is written under a temporary
name and renamed when complete, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

from models.batch import CardDetail
from models.card import CardStatus
from ocr.errors import CardCaptureError, ExitCode
from ocr.registry import Registry, load_registry
from ocr.store import Store
from ocr.validate import guest_category

__all__ = ["EXPORT_FORMATS", "ExportError", "export_batch"]

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("csv", "jsonl")
AUTO_ACTOR = "auto"
META_COLUMNS = ("card_id", "batch", "card_type", "guest_category", "source", "page")


class ExportError(CardCaptureError):
    exit_code = ExitCode.BAD_INPUT


def _row(card: CardDetail, keys: list[str]) -> dict[str, str | int]:
    values = card.values()
    row: dict[str, str | int] = {
        "card_id": card.id,
        "batch": card.batch,
        "card_type": card.card_type,
        "guest_category": guest_category(values) if card.card_type == "foreign_guest" else "",
        "source": Path(card.source).name,
        "page": card.page,
    }
    for key in keys:
        row[key] = values.get(key, "")
    return row


def _write_atomically(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8-sig" if path.suffix == ".csv" else "utf-8", newline="") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def export_batch(
    store: Store,
    batch: str,
    fmt: str,
    out_dir: Path,
    *,
    actor: str,
    include_auto_accepted: bool = True,
    registry: Registry | None = None,
) -> list[Path]:
    """Write the batch's approved cards to ``out_dir``; returns the files written.

    Raises :class:`ExportError` for an unknown format or a batch with nothing to export.
    """
    if fmt not in EXPORT_FORMATS:
        raise ExportError(
            f"导出格式 {fmt!r} 无效，可选：{', '.join(EXPORT_FORMATS)}。",
            f"invalid export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}",
        )
    registry = registry or load_registry()
    if batch not in {b.name for b in store.list_batches()}:
        raise ExportError(f"批次 {batch} 不存在。请用 status 命令查看已有批次。", f"batch {batch} not found")

    # Approve what the pipeline auto-accepted, so every exported card has passed "approved".
    if include_auto_accepted:
        for summary in store.list_cards(batch=batch, statuses=[CardStatus.AUTO_ACCEPTED]):
            if summary.flagged_fields:
                log.warning("auto-accepted card %s has %d flagged fields and is not exported", summary.id, summary.flagged_fields)
                continue
            store.set_status(summary.id, CardStatus.APPROVED, actor=AUTO_ACTOR, expected_version=summary.version)

    cards = [store.get_card(s.id) for s in store.list_cards(batch=batch, statuses=[CardStatus.APPROVED])]
    if not cards:
        raise ExportError(
            f"批次 {batch} 没有已审核通过的卡片可导出。请先在审核界面处理待审卡片。",
            f"batch {batch} has no approved cards to export; review the flagged cards first",
        )

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    by_type: dict[str, list[CardDetail]] = {}
    for card in cards:
        by_type.setdefault(card.card_type, []).append(card)

    for card_type, group in sorted(by_type.items()):
        keys = registry.card_type(card_type).keys
        rows = [_row(card, keys) for card in group]
        path = out_dir / f"{batch}_{card_type}.{fmt}"
        if fmt == "csv":
            def write(handle, rows=rows, keys=keys):
                writer = csv.DictWriter(handle, fieldnames=[*META_COLUMNS, *keys])
                writer.writeheader()
                writer.writerows(rows)
        else:
            def write(handle, rows=rows):
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        _write_atomically(path, write)
        store.mark_exported([card.id for card in group], actor=actor, export_file=str(path))
        written.append(path)
        log.info("batch exported batch=%s card_type=%s cards=%d format=%s", batch, card_type, len(group), fmt)
    return written
