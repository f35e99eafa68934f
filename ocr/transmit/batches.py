"""Records, daily batch files and their manifest.

A batch contains the records of one card type, one arrival date and one kind
(first sends or corrections). Its data file is CSV (UTF-8 with BOM), XLSX or
JSON Lines with the columns of ``docs/export-schema.md``; its manifest is a
JSON file with the count, the card-serial range and gaps, SHA-256 checksums of
the file and of every record, and :data:`SCHEMA_VERSION`. Files are written
under a temporary name, flushed to disk and renamed, so no reader sees half a
file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from models.batch import CardDetail
from ocr.export import _excel_safe
from ocr.registry import Registry
from ocr.validate import guest_category

__all__ = [
    "META_COLUMNS",
    "SCHEMA_VERSION",
    "BatchFiles",
    "arrival_date_of",
    "build_manifest",
    "build_record",
    "columns_for",
    "record_checksum",
    "render_batch",
    "write_atomically",
]

# Raised when a column is added, removed or changes meaning; receivers check it in the manifest.
SCHEMA_VERSION = "1.0"

# Columns before the card type's own fields: key, Chinese label, English label.
META_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("record_id", "记录编号", "Record ID"),
    ("record_kind", "记录类型", "Record kind"),
    ("corrects_record_id", "更正的记录编号", "Corrects record ID"),
    ("hotel_id", "酒店编号", "Hotel ID"),
    ("card_id", "卡片编号", "Card ID"),
    ("card_type", "卡片类型", "Card type"),
    ("guest_category", "旅客类别", "Guest category"),
)

# More gaps than this are not listed one by one; the manifest gives their count.
MAX_LISTED_GAPS = 1000


@dataclass(frozen=True)
class BatchFiles:
    """The written files of one batch and its manifest."""

    data_file: Path
    manifest_file: Path
    manifest: dict


def arrival_date_of(card: CardDetail, zone: ZoneInfo) -> str:
    """Return the card's arrival date as ISO text; a missing or invalid one falls back to the date it was stored."""
    value = card.fields.get("arrival_date")
    if value is not None and value.value:
        try:
            return date.fromisoformat(value.value).isoformat()
        except ValueError:
            pass
    return card.created_at.replace(tzinfo=UTC).astimezone(zone).date().isoformat()


def columns_for(card_type: str, registry: Registry) -> list[tuple[str, str, str]]:
    """Return (key, Chinese label, English label) of every column of a card type's records."""
    spec = registry.card_type(card_type)
    return [*META_COLUMNS, *((f.key, f.label_zh, f.label_en) for f in spec.fields)]


def build_record(
    card: CardDetail,
    *,
    record_id: int,
    kind: str,
    corrects_id: int | None,
    hotel_id: str,
    registry: Registry,
) -> dict[str, str | int]:
    """Return the record of ``card`` as transmitted: the meta columns, then every field of its card type."""
    values = card.values()
    record: dict[str, str | int] = {
        "record_id": record_id,
        "record_kind": kind,
        "corrects_record_id": corrects_id if corrects_id is not None else "",
        "hotel_id": hotel_id,
        "card_id": card.id,
        "card_type": card.card_type,
        "guest_category": guest_category(values) if card.card_type == "foreign_guest" else "",
    }
    for key in registry.card_type(card.card_type).keys:
        record[key] = values.get(key, "")
    return record


def record_checksum(record: dict) -> str:
    """Return the SHA-256 of the record's canonical JSON (sorted keys, UTF-8, no spaces)."""
    canonical = json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _serial_summary(records: list[dict], earlier_serials: Iterable[str]) -> dict:
    """Return the serial range of the records and the numbers missing from it.

    A number sent in an earlier batch of the same card type and date is not a gap.
    """
    serials = [str(r.get("card_serial", "")) for r in records]
    numbered = sorted({s for s in serials if s.isdigit()}, key=int)
    summary: dict = {
        "serial_first": numbered[0] if numbered else None,
        "serial_last": numbered[-1] if numbered else None,
        "serial_gaps": [],
        "serial_gap_count": 0,
        "records_without_serial": sum(1 for s in serials if not s.isdigit()),
        "duplicate_serials": sorted({s for s in serials if s.isdigit() and serials.count(s) > 1}, key=int),
    }
    if not numbered:
        return summary
    width = max(len(s) for s in numbered)
    first, last = int(numbered[0]), int(numbered[-1])
    known = {int(s) for s in numbered} | {int(s) for s in earlier_serials if s.isdigit()}
    in_range = {n for n in known if first <= n <= last}
    # The loop stops after MAX_LISTED_GAPS gaps, so a misread serial that opens a range of millions stays cheap.
    gaps: list[str] = []
    number = first
    while number <= last and len(gaps) < MAX_LISTED_GAPS:
        if number not in in_range:
            gaps.append(str(number).zfill(width))
        number += 1
    summary["serial_gaps"] = gaps
    summary["serial_gap_count"] = (last - first + 1) - len(in_range)
    return summary


def build_manifest(
    *,
    idempotency_key: str,
    hotel_id: str,
    card_type: str,
    arrival_date: str,
    kind: str,
    file_format: str,
    created_at: datetime,
    records: list[dict],
    earlier_serials: Iterable[str] = (),
) -> dict:
    """Return the manifest of a batch, without the data file's checksum (added by :func:`render_batch`)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "idempotency_key": idempotency_key,
        "hotel_id": hotel_id,
        "card_type": card_type,
        "arrival_date": arrival_date,
        "kind": kind,
        "format": file_format,
        "created_at": created_at.replace(tzinfo=UTC).isoformat(timespec="seconds"),
        "count": len(records),
        **_serial_summary(records, earlier_serials),
        "records": [
            {"record_id": r["record_id"], "card_serial": r.get("card_serial", ""), "sha256": record_checksum(r)}
            for r in records
        ],
    }


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` owner-only under a temporary name, flush it to disk and rename it."""
    tmp = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    # The rename itself reaches the disk only when the folder is flushed too.
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _csv_bytes(records: list[dict], columns: list[tuple[str, str, str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=[key for key, _zh, _en in columns])
    writer.writeheader()
    writer.writerows({k: _excel_safe(v) for k, v in r.items()} for r in records)
    return buffer.getvalue().encode("utf-8-sig")


def _jsonl_bytes(records: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def _xlsx_bytes(records: list[dict], columns: list[tuple[str, str, str]], created_at: datetime) -> bytes:
    """Return a workbook whose first row has the Chinese labels, the second the column keys, then the records."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "records"
    sheet.append([zh for _key, zh, _en in columns])
    sheet.append([key for key, _zh, _en in columns])
    for record in records:
        # Every cell is text: serials and document numbers keep their leading zeros, and nothing runs as a formula.
        sheet.append([str(_excel_safe(record.get(key, ""))) for key, _zh, _en in columns])
    sheet.freeze_panes = "A3"
    workbook.properties.created = created_at
    workbook.properties.modified = created_at
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def render_batch(
    manifest: dict, records: list[dict], columns: list[tuple[str, str, str]], folder: Path, stem: str
) -> BatchFiles:
    """Write the data file, then the manifest with the data file's checksum, into ``folder``.

    The manifest is written last, so a reader that waits for it finds the data file complete.
    """
    file_format = manifest["format"]
    if file_format == "csv":
        data = _csv_bytes(records, columns)
    elif file_format == "xlsx":
        created = datetime.fromisoformat(manifest["created_at"]).replace(tzinfo=None)
        data = _xlsx_bytes(records, columns, created)
    else:
        data = _jsonl_bytes(records)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_file = folder / f"{stem}.{file_format}"
    write_atomically(data_file, data)
    manifest = dict(
        manifest,
        file={"name": data_file.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()},
    )
    manifest_file = folder / f"{stem}.manifest.json"
    write_atomically(manifest_file, json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8"))
    return BatchFiles(data_file=data_file, manifest_file=manifest_file, manifest=manifest)
