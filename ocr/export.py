"""Export: approved cards of a batch to CSV (UTF-8 with BOM, so that Excel opens it) or JSON Lines.

One file per card type and run, because each card type has its own columns and
an earlier export must never be overwritten: files are named
``<batch>_<card_type>_<YYYYmmdd-HHMMSS>.<format>``. Cards the pipeline
auto-accepted are approved by the export (an audit event records it) unless
``include_auto_accepted`` is off. Each file is written owner-only under a
temporary name and renamed when complete, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from datetime import datetime
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


# A cell that starts with one of these is a formula to Excel; a leading apostrophe keeps it text.
_FORMULA_START = ("=", "+", "@", "\t", "\r")


def _excel_safe(value: str | int) -> str | int:
    """Return ``value`` so that Excel shows it as text, never runs it as a formula."""
    if isinstance(value, str) and (value.startswith(_FORMULA_START) or (value.startswith("-") and not value[1:2].isdigit())):
        return "'" + value
    return value


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
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(descriptor, "w", encoding="utf-8-sig" if path.suffix == ".csv" else "utf-8", newline="") as handle:
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
    include_exported: bool = False,
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

    statuses = [CardStatus.APPROVED, CardStatus.EXPORTED] if include_exported else [CardStatus.APPROVED]
    cards = [store.get_card(s.id) for s in store.list_cards(batch=batch, statuses=statuses)]
    if not cards:
        waiting = len(store.list_cards(batch=batch, statuses=[CardStatus.NEEDS_REVIEW, CardStatus.AUTO_ACCEPTED]))
        done = len(store.list_cards(batch=batch, statuses=[CardStatus.EXPORTED]))
        raise ExportError(
            f"批次 {batch} 没有新的已审核卡片可导出：已导出 {done} 张，待审核 {waiting} 张。"
            "如需重新导出已导出的卡片，请加 --again。",
            f"batch {batch} has no new approved cards: {done} exported before, {waiting} waiting for review; "
            "add --again to export the exported cards once more",
        )

    try:
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ExportError(
            f"无法创建导出目录 {out_dir}：{exc.strerror or exc}。请换一个 --out 目录。",
            f"cannot create export folder {out_dir}: {exc.strerror or exc}",
        ) from exc
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    written: list[Path] = []
    by_type: dict[str, list[CardDetail]] = {}
    for card in cards:
        by_type.setdefault(card.card_type, []).append(card)

    for card_type, group in sorted(by_type.items()):
        keys = registry.card_type(card_type).keys
        rows = [_row(card, keys) for card in group]
        path = out_dir / f"{batch}_{card_type}_{stamp}.{fmt}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = out_dir / f"{batch}_{card_type}_{stamp}_{suffix}.{fmt}"
        if fmt == "csv":
            def write(handle, rows=rows, keys=keys):
                writer = csv.DictWriter(handle, fieldnames=[*META_COLUMNS, *keys])
                writer.writeheader()
                writer.writerows({k: _excel_safe(v) for k, v in row.items()} for row in rows)
        else:
            def write(handle, rows=rows):
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        _write_atomically(path, write)
        store.mark_exported([card.id for card in group if card.status == CardStatus.APPROVED], actor=actor, export_file=str(path))
        written.append(path)
        log.info("batch exported batch=%s card_type=%s cards=%d format=%s", batch, card_type, len(group), fmt)
    return written
