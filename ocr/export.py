"""Export: approved cards of a batch to CSV (UTF-8 with BOM, so that Excel opens it) or JSON Lines.

One file per card type and run, because each card type has its own columns and
an earlier export must never be overwritten: files are named
``<batch>_<card_type>_<YYYYmmdd-HHMMSS>.<format>``. Cards the pipeline
auto-accepted are approved by the export (an audit event records it) unless
``include_auto_accepted`` is off. Each file is written owner-only under a
temporary name and renamed when complete, so a reader never sees half a file.

A card corrected after an earlier export is approved again and written to a
correction file, ``<batch>_<card_type>_correction_<stamp>.<format>``; a card
rejected after an earlier export is written once to a cancellation file,
``<batch>_<card_type>_cancellation_<stamp>.<format>``, with its values at
rejection. Both files have the columns of the first export, so the
reader replaces or withdraws the row with the same ``card_id``. The last column,
``review_notes``, carries the reviewers' reasons for values confirmed as true
(a visa that ends before departure, a serial shared with another card).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from datetime import datetime
from pathlib import Path

from models.batch import AuditEvent, CardDetail
from models.card import CardStatus
from ocr.batchname import batch_file_stem
from ocr.errors import CardCaptureError, ExitCode, os_error_reason
from ocr.registry import Registry, load_registry
from ocr.review import CONFIRM_NOTE_ACTION, hold_duplicate_serials
from ocr.store import AuditRow, Store
from ocr.validate import guest_category

__all__ = ["EXPORT_FORMATS", "ExportError", "export_batch"]

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("csv", "jsonl")
AUTO_ACTOR = "auto"
META_COLUMNS = ("card_id", "batch", "card_type", "guest_category", "source", "page")
# Last column: the reviewers' reasons for values confirmed as true, "code: reason" joined by " | ".
NOTES_COLUMN = "review_notes"
# Kinds of export file, as the transmission's record kinds: first export, correction, cancellation.
ORIGINAL, CORRECTION, CANCELLATION = "original", "correction", "cancellation"
# Audit action that records the file a rejected card's cancellation was written to.
CANCELLATION_ACTION = "export_cancellation"


class ExportError(CardCaptureError):
    exit_code = ExitCode.BAD_INPUT


# A cell that starts with one of these is a formula to Excel; a leading apostrophe keeps it text.
_FORMULA_START = ("=", "+", "@", "\t", "\r")


def _excel_safe(value: str | int) -> str | int:
    """Return ``value`` so that Excel shows it as text, never runs it as a formula."""
    if isinstance(value, str) and (value.startswith(_FORMULA_START) or (value.startswith("-") and not value[1:2].isdigit())):
        return "'" + value
    return value


def _row(card: CardDetail, keys: list[str], events: list[AuditEvent]) -> dict[str, str | int]:
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
    notes = [f"{e.old_value}: {e.new_value}" for e in events if e.action == CONFIRM_NOTE_ACTION]
    row[NOTES_COLUMN] = " | ".join(notes)
    return row


def _export_kind(card: CardDetail, events: list[AuditEvent]) -> str | None:
    """Return the kind of file the card goes to, or None when it has nothing to export.

    An approved card exported before was corrected since. A rejected card
    exported before needs its cancellation, unless one was written already.
    """
    exported = any(e.action == "export" for e in events)
    if card.status == CardStatus.APPROVED:
        return CORRECTION if exported else ORIGINAL
    if card.status == CardStatus.EXPORTED:
        return ORIGINAL
    if card.status == CardStatus.REJECTED and exported and not any(e.action == CANCELLATION_ACTION for e in events):
        return CANCELLATION
    return None


def _record_cancellations(store: Store, card_ids: list[int], *, actor: str, export_file: str) -> None:
    """Write an audit event per card whose cancellation is in ``export_file``, so it is written once."""
    with store.session() as session:
        for card_id in card_ids:
            session.add(AuditRow(card_id=card_id, actor=actor, action=CANCELLATION_ACTION, new_value=export_file))


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
    held: list[int] | None = None,
) -> list[Path]:
    """Write the batch's approved cards to ``out_dir``; returns the files written.

    ``held`` receives the ids of auto-accepted cards sent back to review for a duplicate serial,
    also when nothing is left to export. Raises :class:`ExportError` for an unknown format or a
    batch with nothing to export.
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
        held_ids = hold_duplicate_serials(store, registry, actor=AUTO_ACTOR, batch=batch)
        if held is not None:
            held.extend(held_ids)
        for summary in store.list_cards(batch=batch, statuses=[CardStatus.AUTO_ACCEPTED]):
            if summary.flagged_fields:
                log.warning("auto-accepted card %s has %d flagged fields and is not exported", summary.id, summary.flagged_fields)
                continue
            store.set_status(summary.id, CardStatus.APPROVED, actor=AUTO_ACTOR, expected_version=summary.version)

    statuses = [CardStatus.APPROVED, CardStatus.REJECTED]
    if include_exported:
        statuses.append(CardStatus.EXPORTED)
    entries: list[tuple[str, CardDetail, list[AuditEvent]]] = []
    for summary in store.list_cards(batch=batch, statuses=statuses):
        card = store.get_card(summary.id)
        events = store.audit_events(card.id)
        kind = _export_kind(card, events)
        if kind is not None:
            entries.append((kind, card, events))
    if not entries:
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
            f"无法创建导出目录 {out_dir}：{os_error_reason(exc)[0]}。请换一个 --out 目录。",
            f"cannot create export folder {out_dir}: {exc.strerror or exc}",
        ) from exc
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    stem = batch_file_stem(batch)
    written: list[Path] = []
    groups: dict[tuple[str, str], list[tuple[CardDetail, list[AuditEvent]]]] = {}
    for kind, card, events in entries:
        groups.setdefault((kind, card.card_type), []).append((card, events))

    # Originals first, then corrections and cancellations, as the transmission orders its record kinds.
    order = {ORIGINAL: 0, CORRECTION: 1, CANCELLATION: 2}
    for kind, card_type in sorted(groups, key=lambda group: (order[group[0]], group[1])):
        group = groups[(kind, card_type)]
        keys = registry.card_type(card_type).keys
        rows = [_row(card, keys, events) for card, events in group]
        infix = "" if kind == ORIGINAL else f"_{kind}"
        path = out_dir / f"{stem}_{card_type}{infix}_{stamp}.{fmt}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = out_dir / f"{stem}_{card_type}{infix}_{stamp}_{suffix}.{fmt}"
        if fmt == "csv":
            def write(handle, rows=rows, keys=keys):
                writer = csv.DictWriter(handle, fieldnames=[*META_COLUMNS, *keys, NOTES_COLUMN])
                writer.writeheader()
                writer.writerows({k: _excel_safe(v) for k, v in row.items()} for row in rows)
        else:
            def write(handle, rows=rows):
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        _write_atomically(path, write)
        if kind == CANCELLATION:
            _record_cancellations(store, [card.id for card, _events in group], actor=actor, export_file=str(path))
        else:
            approved = [card.id for card, _events in group if card.status == CardStatus.APPROVED]
            store.mark_exported(approved, actor=actor, export_file=str(path))
        written.append(path)
        log.info(
            "batch exported batch=%s card_type=%s kind=%s cards=%d format=%s", batch, card_type, kind, len(group), fmt
        )
    return written
