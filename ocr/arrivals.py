"""Expected arrivals against scanned cards: counts, categories, serial gaps and deadlines per arrival date.

The front desk enters, or imports from CSV, how many guests of each card type
arrive on a date and optionally the range of pre-printed card serials used
that day. :func:`arrivals_report` sets these against the cards in the store
whose arrival date falls in a range: cards scanned, rejected, per guest
category (外宾 / 港澳台 / 团签), serial numbers missing from the range or on
more than one card, and the time left until the date's 24-hour deadline.

CSV columns (header row required, UTF-8 with or without BOM, or GB18030 as
Excel on Chinese Windows writes it); English or Chinese header names:

=================  ==============  =========================================
column             Chinese header  value
=================  ==============  =========================================
``date``           日期            arrival date, ``YYYY-MM-DD`` (``2025/5/1``
                                   and ``2025年5月1日`` are read too)
``expected``       预计人数        guests expected, an integer ≥ 0
``card_type``      卡片类型        optional, default ``foreign_guest``
``serial_first``   起始编号        optional first card serial of the day
``serial_last``    结束编号        optional last card serial; both or neither
=================  ==============  =========================================

An import is one transaction: a file with any invalid row imports nothing,
and the error names the row and the column. A date and card type that exist
already get the new figures.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, DateTime, Integer, String, UniqueConstraint, and_, select
from sqlalchemy.orm import Mapped, mapped_column

from models.card import CardStatus
from models.card_type import FieldKind
from ocr.errors import CardCaptureError, ExitCode, os_error_reason
from ocr.normalize import normalize_value, to_half_width
from ocr.search import field_values
from ocr.store import Base, BatchRow, CardRow, OutboxRow, Store, _now
from ocr.transmit.batches import MAX_LISTED_GAPS
from ocr.transmit.config import Config
from ocr.transmit.deadline import _deadline
from ocr.validate import guest_category

__all__ = [
    "CATEGORIES",
    "COLUMN_NAMES",
    "DEFAULT_CARD_TYPE",
    "ArrivalsError",
    "ArrivalsReport",
    "BatchDeadline",
    "DayArrivals",
    "ExpectedArrival",
    "ExpectedArrivalRow",
    "SerialCheck",
    "arrivals_report",
    "batch_deadlines",
    "category_of",
    "check_entry",
    "check_serials",
    "deadline_level",
    "list_expected",
    "parse_arrivals_csv",
    "read_arrivals_csv",
    "save_expected",
]

log = logging.getLogger(__name__)

DEFAULT_CARD_TYPE = "foreign_guest"

# Guest categories in display order: key, Chinese, English. The first three are the
# exit-entry office's sorting of foreign-guest cards.
CATEGORIES: tuple[tuple[str, str, str], ...] = (
    ("foreign", "外宾", "foreign"),
    ("hk_macao_taiwan", "港澳台", "HK, Macao, Taiwan"),
    ("group_visa", "团签", "group visa"),
    ("domestic", "境内旅客", "domestic"),
    ("other", "其他", "other"),
)

# CSV column -> header names accepted for it, the first being the canonical one.
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "date": ("date", "arrival_date", "日期", "抵店日期"),
    "expected": ("expected", "expected_count", "预计人数", "预计抵店人数"),
    "card_type": ("card_type", "卡片类型"),
    "serial_first": ("serial_first", "起始编号"),
    "serial_last": ("serial_last", "结束编号"),
}
REQUIRED_COLUMNS = ("date", "expected")

DeadlineLevel = Literal["done", "ok", "near", "past"]

_YEAR_FIRST = re.compile(r"^\s*\d{4}")


class ExpectedArrivalRow(Base):
    """The front desk's expected arrivals of one card type on one date."""

    __tablename__ = "expected_arrivals"
    __table_args__ = (UniqueConstraint("arrival_date", "card_type"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    arrival_date: Mapped[str] = mapped_column(String(10), index=True)
    card_type: Mapped[str] = mapped_column(String(64))
    expected_count: Mapped[int] = mapped_column(Integer)
    serial_first: Mapped[str | None] = mapped_column(String(20), nullable=True)
    serial_last: Mapped[str | None] = mapped_column(String(20), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=_now)
    updated_by: Mapped[str] = mapped_column(String(100))


class ArrivalsError(CardCaptureError):
    """An invalid expected-arrivals entry or CSV file; the message names the row and column."""

    exit_code = ExitCode.BAD_INPUT


class ExpectedArrival(BaseModel):
    arrival_date: date
    card_type: str = DEFAULT_CARD_TYPE
    expected: int = Field(ge=0)
    serial_first: str | None = None
    serial_last: str | None = None


class SerialCheck(BaseModel):
    """Pre-printed serial numbers of one day's cards of one type, against the expected range if one is given."""

    first: str | None = None
    last: str | None = None
    expected_first: str | None = None
    expected_last: str | None = None
    # Numbers of the range on no card, at most MAX_LISTED_GAPS of them; gap_count counts all.
    gaps: list[str] = Field(default_factory=list)
    gap_count: int = 0
    # Numbers on more than one card.
    duplicates: list[str] = Field(default_factory=list)
    # Numbers outside the expected range.
    outside_range: list[str] = Field(default_factory=list)
    without_serial: int = 0


class DayArrivals(BaseModel):
    """One arrival date and card type: expected against scanned, categories, serials and deadline."""

    arrival_date: str
    card_type: str
    expected: int | None
    # Cards of this date and type that were not rejected.
    scanned: int
    rejected: int
    # scanned - expected; None when nothing is expected.
    difference: int | None
    categories: dict[str, int]
    serials: SerialCheck
    # Cards not rejected whose first record the receiver has not acknowledged.
    open_cards: int
    # Expected cards not scanned yet: expected - scanned, at least 0.
    missing_cards: int
    deadline: datetime
    hours_left: float
    level: DeadlineLevel


class ArrivalsReport(BaseModel):
    start: date
    end: date
    now: datetime
    due_soon_hours: float
    days: list[DayArrivals]


class BatchDeadline(BaseModel):
    """A scan batch's earliest deadline among its open cards."""

    batch: str
    open_cards: int
    earliest_arrival: str | None
    deadline: datetime | None
    hours_left: float | None
    level: DeadlineLevel


# Entries and CSV import.


def _bad(where_zh: str, where_en: str, column: str, problem_zh: str, problem_en: str) -> ArrivalsError:
    """Return the error on one value: in a file row when ``where`` is given, else in a form field."""
    if where_zh:
        return ArrivalsError(
            f"{where_zh}「{column}」列：{problem_zh}。请改正后重试。",
            f"{where_en}, column {column!r}: {problem_en}; correct it and try again",
        )
    return ArrivalsError(f"「{column}」：{problem_zh}。请改正后重试。", f"{column}: {problem_en}; correct it and try again")


def _serial(text: str) -> str:
    return "".join(to_half_width(text).split())


def check_entry(
    values: dict[str, str],
    *,
    known_card_types: Iterable[str],
    where: tuple[str, str] = ("", ""),
    headers: dict[str, str] | None = None,
) -> ExpectedArrival:
    """Return the entry that ``values`` (column -> text) describe, or raise :class:`ArrivalsError`.

    ``where`` (Chinese, English) names where the values come from, e.g. the CSV
    file and row; ``headers`` maps columns to the header names the file used,
    so the message names the column as the user wrote it.
    """
    headers = headers or {}
    where_zh, where_en = where

    def bad(column: str, problem_zh: str, problem_en: str) -> ArrivalsError:
        return _bad(where_zh, where_en, headers.get(column, column), problem_zh, problem_en)

    raw_date = (values.get("date") or "").strip()
    if not raw_date:
        raise bad("date", "缺少抵店日期", "the arrival date is missing")
    iso = normalize_value(FieldKind.DATE, raw_date)
    try:
        if not _YEAR_FIRST.match(raw_date):
            raise ValueError(raw_date)
        arrival = date.fromisoformat(iso)
    except ValueError:
        raise bad(
            "date",
            f"{raw_date!r} 不是有效日期，应写成 YYYY-MM-DD，如 2025-05-01",
            f"{raw_date!r} is not a valid date; use YYYY-MM-DD, e.g. 2025-05-01",
        ) from None

    raw_expected = to_half_width(values.get("expected") or "").strip()
    if not raw_expected.isdigit():
        raise bad(
            "expected",
            f"{raw_expected!r} 不是非负整数（预计抵店人数）",
            f"{raw_expected!r} is not a whole number ≥ 0 (guests expected)",
        )

    card_type = (values.get("card_type") or "").strip() or DEFAULT_CARD_TYPE
    known = sorted(known_card_types)
    if card_type not in known:
        raise bad(
            "card_type",
            f"卡片类型 {card_type!r} 不存在，可用：{', '.join(known)}",
            f"unknown card type {card_type!r}; known: {', '.join(known)}",
        )

    first = _serial(values.get("serial_first") or "") or None
    last = _serial(values.get("serial_last") or "") or None
    for column, serial in (("serial_first", first), ("serial_last", last)):
        if serial is not None and not serial.isdigit():
            raise bad(column, f"编号 {serial!r} 只能由数字组成", f"serial {serial!r} must be digits only")
    if (first is None) != (last is None):
        missing = "serial_last" if last is None else "serial_first"
        raise bad(missing, "起始编号与结束编号须同时填写或同时留空", "give both the first and the last serial, or neither")
    if first is not None and last is not None and int(first) > int(last):
        raise bad("serial_last", f"结束编号 {last} 小于起始编号 {first}", f"last serial {last} is below first serial {first}")

    return ExpectedArrival(
        arrival_date=arrival, card_type=card_type, expected=int(raw_expected), serial_first=first, serial_last=last
    )


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise ArrivalsError(
            f"{source} 不是 UTF-8 或 GB18030 编码的文本文件。请在 Excel 中另存为「CSV UTF-8」后重试。",
            f"{source} is not UTF-8 or GB18030 text; save it as CSV UTF-8 and try again",
        ) from None


def _header_columns(header: list[str], source: str) -> dict[str, str]:
    """Return column -> header name as written, or raise for an unknown, repeated or missing column."""
    aliases = {alias.casefold(): column for column, names in COLUMN_NAMES.items() for alias in names}
    found: dict[str, str] = {}
    for name in header:
        column = aliases.get(name.strip().casefold())
        if column is None:
            raise ArrivalsError(
                f"{source} 第 1 行：未知的列名 {name!r}。可用列名：date、expected、card_type、serial_first、serial_last"
                "（或 日期、预计人数、卡片类型、起始编号、结束编号）。",
                f"{source} row 1: unknown column {name!r}; known columns: "
                "date, expected, card_type, serial_first, serial_last",
            )
        if column in found:
            raise ArrivalsError(
                f"{source} 第 1 行：列 {found[column]!r} 与 {name!r} 重复，请只保留一列。",
                f"{source} row 1: columns {found[column]!r} and {name!r} are the same column; keep one",
            )
        found[column] = name.strip()
    for column in REQUIRED_COLUMNS:
        if column not in found:
            raise ArrivalsError(
                f"{source} 第 1 行：缺少必需的列 {column}（{COLUMN_NAMES[column][2]}）。",
                f"{source} row 1: the required column {column!r} is missing",
            )
    return found


def parse_arrivals_csv(data: bytes, *, source: str, known_card_types: Iterable[str]) -> list[ExpectedArrival]:
    """Return the entries of an expected-arrivals CSV file, or raise :class:`ArrivalsError` for the first bad row.

    Rows are numbered as a spreadsheet shows them: the header is row 1. The
    error message says that nothing from the file was imported.
    """
    try:
        return _parse_rows(data, source, list(known_card_types))
    except ArrivalsError as exc:
        raise ArrivalsError(
            f"{exc.message_zh}本文件的数据均未导入。", f"{exc.message_en}; nothing from the file was imported"
        ) from exc


def _parse_rows(data: bytes, source: str, known: list[str]) -> list[ExpectedArrival]:
    reader = csv.reader(io.StringIO(_decode(data, source), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ArrivalsError(f"{source} 是空文件，缺少标题行。", f"{source} is empty; the header row is missing") from None
    except csv.Error as exc:
        raise ArrivalsError(f"{source} 第 1 行无法解析：{exc}。", f"{source} row 1 cannot be parsed: {exc}") from None
    columns = _header_columns(header, source)
    order = list(columns)

    entries: list[ExpectedArrival] = []
    seen: dict[tuple[date, str], int] = {}
    row_number = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ArrivalsError(
                f"{source} 第 {row_number + 1} 行无法解析：{exc}。", f"{source} row {row_number + 1} cannot be parsed: {exc}"
            ) from None
        row_number += 1
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(order):
            raise ArrivalsError(
                f"{source} 第 {row_number} 行有 {len(cells)} 列，而标题行只有 {len(order)} 列。",
                f"{source} row {row_number} has {len(cells)} cells but the header has {len(order)} columns",
            )
        values = dict(zip(order, cells))
        entry = check_entry(
            values,
            known_card_types=known,
            where=(f"{source} 第 {row_number} 行", f"{source} row {row_number}"),
            headers=columns,
        )
        key = (entry.arrival_date, entry.card_type)
        if key in seen:
            raise ArrivalsError(
                f"{source} 第 {row_number} 行：{entry.arrival_date} 的 {entry.card_type} 已在第 {seen[key]} 行出现，"
                "每个日期与卡片类型只能有一行。",
                f"{source} row {row_number}: {entry.arrival_date} {entry.card_type} repeats row {seen[key]}; "
                "give each date and card type once",
            )
        seen[key] = row_number
        entries.append(entry)
    if not entries:
        raise ArrivalsError(f"{source} 只有标题行，没有数据。", f"{source} has a header row but no data rows")
    return entries


def read_arrivals_csv(path: Path, *, known_card_types: Iterable[str]) -> list[ExpectedArrival]:
    """Read and check an expected-arrivals CSV file; see :func:`parse_arrivals_csv`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArrivalsError(
            f"无法读取文件 {path}：{os_error_reason(exc)[0]}。请检查路径。", f"cannot read {path}: {exc.strerror or exc}"
        ) from exc
    return parse_arrivals_csv(data, source=path.name, known_card_types=known_card_types)


def save_expected(store: Store, entries: Iterable[ExpectedArrival], *, actor: str) -> tuple[int, int]:
    """Store the entries in one transaction, replacing those of the same date and card type; return (added, updated)."""
    added = updated = 0
    with store.session() as session:
        for entry in entries:
            iso = entry.arrival_date.isoformat()
            row = session.scalar(
                select(ExpectedArrivalRow).where(
                    ExpectedArrivalRow.arrival_date == iso, ExpectedArrivalRow.card_type == entry.card_type
                )
            )
            if row is None:
                row = ExpectedArrivalRow(arrival_date=iso, card_type=entry.card_type)
                session.add(row)
                added += 1
            else:
                updated += 1
            row.expected_count = entry.expected
            row.serial_first = entry.serial_first
            row.serial_last = entry.serial_last
            row.updated_at = _now()
            row.updated_by = actor
    log.info("expected arrivals saved added=%d updated=%d by=%s", added, updated, actor)
    return added, updated


def list_expected(store: Store, start: date | None = None, end: date | None = None) -> list[ExpectedArrival]:
    """Return the stored entries with arrival dates from ``start`` to ``end`` (both included), by date and type."""
    query = select(ExpectedArrivalRow).order_by(ExpectedArrivalRow.arrival_date, ExpectedArrivalRow.card_type)
    if start is not None:
        query = query.where(ExpectedArrivalRow.arrival_date >= start.isoformat())
    if end is not None:
        query = query.where(ExpectedArrivalRow.arrival_date <= end.isoformat())
    with store.session() as session:
        return [
            ExpectedArrival(
                arrival_date=date.fromisoformat(row.arrival_date),
                card_type=row.card_type,
                expected=row.expected_count,
                serial_first=row.serial_first,
                serial_last=row.serial_last,
            )
            for row in session.scalars(query)
        ]


# Report.


# Fields read for the report: the arrival date, the serial and what guest_category looks at.
REPORT_KEYS = ("arrival_date", "card_serial", "document_type", "nationality", "visa_type")


@dataclass(frozen=True)
class _Card:
    """The columns and field values of one card that the report needs."""

    id: int
    batch: str
    status: str
    card_type: str
    created_at: datetime
    values: dict[str, str]


def category_of(card_type: str, values: dict[str, str]) -> str:
    """Return the guest category key of a card: a foreign-guest category, "domestic" or "other"."""
    if card_type == "foreign_guest":
        return guest_category(values)
    if card_type == "domestic_guest":
        return "domestic"
    return "other"


def _arrival_date(card: _Card, zone: ZoneInfo) -> str:
    """Return the card's arrival date, or the day it was stored when that field is empty or invalid.

    This is the rule of ocr.transmit.batches.arrival_date_of, which needs a whole CardDetail.
    """
    try:
        return date.fromisoformat(card.values.get("arrival_date", "")).isoformat()
    except ValueError:
        return card.created_at.replace(tzinfo=UTC).astimezone(zone).date().isoformat()


def _cards(store: Store, where: ColumnElement[bool]) -> list[_Card]:
    """Return the report's view of the cards that the SQL condition ``where`` on ``CardRow`` selects."""
    query = (
        select(CardRow.id, BatchRow.name, CardRow.status, CardRow.card_type, CardRow.created_at)
        .join(BatchRow, CardRow.batch_id == BatchRow.id)
        .where(where)
        .order_by(CardRow.id)
    )
    values = field_values(store, REPORT_KEYS, where=where)
    with store.session() as session:
        rows = session.execute(query).all()
    return [_Card(*row, values=values.get(row[0], {})) for row in rows]


def check_serials(serials: list[str], first: str | None = None, last: str | None = None) -> SerialCheck:
    """Return the gaps and duplicates of ``serials`` within ``first``..``last``, or within their own range.

    Serials that are not all digits count as without serial; leading zeros are
    kept in the listed numbers at the width of the range's numbers.
    """
    numbered = [s for s in serials if s.isdigit()]
    counts = Counter(int(s) for s in numbered)
    check = SerialCheck(
        expected_first=first,
        expected_last=last,
        without_serial=len(serials) - len(numbered),
        duplicates=sorted({s for s in numbered if counts[int(s)] > 1}, key=int),
    )
    if numbered:
        ordered = sorted(numbered, key=int)
        check.first, check.last = ordered[0], ordered[-1]
    if first is not None and last is not None:
        low, high = int(first), int(last)
        width = max(len(first), len(last))
        check.outside_range = sorted({s for s in numbered if not low <= int(s) <= high}, key=int)
    elif numbered:
        low, high = int(check.first), int(check.last)
        width = max(len(s) for s in numbered)
    else:
        return check
    present = {n for n in counts if low <= n <= high}
    check.gap_count = (high - low + 1) - len(present)
    # Listing stops at MAX_LISTED_GAPS, so a misread serial far off the range stays cheap.
    number = low
    while number <= high and len(check.gaps) < MAX_LISTED_GAPS:
        if number not in present:
            check.gaps.append(str(number).zfill(width))
        number += 1
    return check


def deadline_level(deadline: datetime, now: datetime, due_soon_hours: float) -> DeadlineLevel:
    """Return "past" when the deadline has passed, "near" within ``due_soon_hours`` of it, else "ok"."""
    if deadline <= now:
        return "past"
    if deadline - now <= timedelta(hours=due_soon_hours):
        return "near"
    return "ok"


def _acknowledged() -> ColumnElement[bool]:
    """Return the SQL condition that the card's first record was acknowledged by the receiver."""
    return (
        select(OutboxRow.id)
        .where(OutboxRow.card_id == CardRow.id, OutboxRow.kind == "original", OutboxRow.state == "acknowledged")
        .exists()
    )


def _acknowledged_ids(store: Store, where: ColumnElement[bool]) -> set[int]:
    with store.session() as session:
        return set(session.scalars(select(CardRow.id).where(where, _acknowledged())))


def _is_open(card: _Card, acknowledged: set[int]) -> bool:
    return card.status != CardStatus.REJECTED and card.id not in acknowledged


def arrivals_report(
    store: Store, config: Config, start: date, end: date, *, now: datetime | None = None
) -> ArrivalsReport:
    """Return expected against scanned cards for every arrival date from ``start`` to ``end`` with either.

    A card's arrival date is its ``arrival_date`` field, or the day it was
    stored when that field is empty or invalid, as transmission counts it. Only
    cards stored from the day before ``start`` on are read: a card is scanned
    after its guest arrived.
    """
    zone = config.deadline.zone
    now = (now or datetime.now(UTC)).astimezone(zone)
    since = datetime.combine(start - timedelta(days=1), time(0, 0), tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
    stored = CardRow.created_at >= since
    acknowledged = _acknowledged_ids(store, stored)

    groups: dict[tuple[str, str], list[_Card]] = {}
    for card in _cards(store, stored):
        arrival = _arrival_date(card, zone)
        if start.isoformat() <= arrival <= end.isoformat():
            groups.setdefault((arrival, card.card_type), []).append(card)
    expected = {(e.arrival_date.isoformat(), e.card_type): e for e in list_expected(store, start, end)}

    days: list[DayArrivals] = []
    for key in sorted(set(groups) | set(expected)):
        arrival, card_type = key
        cards = groups.get(key, [])
        kept = [card for card in cards if card.status != CardStatus.REJECTED]
        entry = expected.get(key)
        categories = Counter(category_of(card.card_type, card.values) for card in kept)
        serials = [card.values.get("card_serial", "") for card in kept]
        open_cards = sum(1 for card in cards if _is_open(card, acknowledged))
        # A day is done when every card is acknowledged and no expected card is still missing.
        outstanding = open_cards > 0 or (entry is not None and len(kept) < entry.expected)
        deadline = _deadline(arrival, config)
        days.append(
            DayArrivals(
                arrival_date=arrival,
                card_type=card_type,
                expected=entry.expected if entry else None,
                scanned=len(kept),
                rejected=len(cards) - len(kept),
                difference=len(kept) - entry.expected if entry else None,
                categories={name: categories.get(name, 0) for name, _zh, _en in CATEGORIES},
                serials=check_serials(
                    serials, entry.serial_first if entry else None, entry.serial_last if entry else None
                ),
                open_cards=open_cards,
                missing_cards=max(entry.expected - len(kept), 0) if entry else 0,
                deadline=deadline,
                hours_left=(deadline - now).total_seconds() / 3600,
                level=deadline_level(deadline, now, config.deadline.due_soon_hours) if outstanding else "done",
            )
        )
    log.info("arrivals report start=%s end=%s days=%d", start, end, len(days))
    return ArrivalsReport(start=start, end=end, now=now, due_soon_hours=config.deadline.due_soon_hours, days=days)


def batch_deadlines(store: Store, config: Config, *, now: datetime | None = None) -> list[BatchDeadline]:
    """Return every scan batch with its open cards and the earliest deadline among them, in batch order."""
    zone = config.deadline.zone
    now = (now or datetime.now(UTC)).astimezone(zone)
    open_cards = and_(CardRow.status != str(CardStatus.REJECTED), ~_acknowledged())
    earliest: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for card in _cards(store, open_cards):
        arrival = _arrival_date(card, zone)
        counts[card.batch] += 1
        earliest[card.batch] = min(arrival, earliest.get(card.batch, arrival))

    result: list[BatchDeadline] = []
    for summary in store.list_batches():
        name = summary.name
        if name not in earliest:
            result.append(
                BatchDeadline(batch=name, open_cards=0, earliest_arrival=None, deadline=None, hours_left=None, level="done")
            )
            continue
        deadline = _deadline(earliest[name], config)
        result.append(
            BatchDeadline(
                batch=name,
                open_cards=counts[name],
                earliest_arrival=earliest[name],
                deadline=deadline,
                hours_left=(deadline - now).total_seconds() / 3600,
                level=deadline_level(deadline, now, config.deadline.due_soon_hours),
            )
        )
    return result
