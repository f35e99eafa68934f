"""Monthly handover list of the white copies of foreign-guest cards, as XLSX and a printable PDF.

The white copy of each 境外人员临时住宿登记表 goes to the exit-entry office
each month, sorted into 外宾, 港澳台 and 团签. The list has one row per approved
card of the month, grouped by category and arrival date, with a total per day,
per category and for the month, and lines for both signatures.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select

from models.card import CardStatus
from ocr.errors import CardCaptureError, ConfigError, ExitCode, os_error_reason
from ocr.store import CardRow, OutboxRow, Store, _detail
from ocr.transmit.batches import arrival_date_of, write_atomically
from ocr.transmit.config import Config
from ocr.validate import guest_category

__all__ = ["FONT_CANDIDATES", "HandoverError", "HandoverRow", "handover_rows", "write_handover"]

log = logging.getLogger(__name__)

# Debian packages fonts-wqy-zenhei, fonts-arphic-uming and fonts-arphic-ukai, tried in this order.
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),
    Path("/usr/share/fonts/truetype/arphic/ukai.ttc"),
)

CATEGORIES = (("foreign", "外宾", "foreign"), ("hk_macao_taiwan", "港澳台", "HK, Macao, Taiwan"), ("group_visa", "团签", "group visa"))

# Column title (Chinese / English) and PDF width in millimetres.
COLUMNS = (
    ("序号 / No.", 14),
    ("抵店日期 / Arrival", 28),
    ("编号 / Card No.", 26),
    ("姓名 / Name", 62),
    ("国籍 / Nationality", 24),
    ("房号 / Room", 18),
    ("离店日期 / Departure", 28),
    ("上报 / Sent", 36),
)


class HandoverError(CardCaptureError):
    exit_code = ExitCode.BAD_INPUT


@dataclass(frozen=True)
class HandoverRow:
    category: str
    arrival_date: str
    card_serial: str
    name: str
    nationality: str
    room_number: str
    departure_date: str
    # "已确认 / acknowledged", "未确认 / not acknowledged" or "未上报 / not sent".
    transmission: str


def _month_bounds(month: str) -> tuple[str, str]:
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except ValueError as exc:
        raise HandoverError(f"月份 {month!r} 无效，格式应为 YYYY-MM，如 2025-12。", f"invalid month {month!r}; use YYYY-MM") from exc
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return first.isoformat(), following.isoformat()


def handover_rows(store: Store, config: Config, month: str) -> tuple[list[HandoverRow], int]:
    """Return the month's approved foreign-guest cards, sorted by category, date and serial, and how many still wait for review."""
    first, following = _month_bounds(month)
    zone = config.deadline.zone
    rows: list[HandoverRow] = []
    waiting = 0
    with store.session() as session:
        cards = session.scalars(
            select(CardRow).where(CardRow.card_type == "foreign_guest", CardRow.status != str(CardStatus.REJECTED))
        ).all()
        for card in cards:
            detail = _detail(card)
            arrival = arrival_date_of(detail, zone)
            if not first <= arrival < following:
                continue
            if card.status not in (CardStatus.APPROVED, CardStatus.EXPORTED):
                waiting += 1
                continue
            states = set(session.scalars(select(OutboxRow.state).where(OutboxRow.card_id == card.id, OutboxRow.kind == "original")).all())
            if "acknowledged" in states:
                sent = "已确认 / acknowledged"
            elif "batched" in states:
                sent = "未确认 / not acknowledged"
            else:
                sent = "未上报 / not sent"
            values = detail.values()
            latin = " ".join(v for v in (values.get("surname", ""), values.get("given_names", "")) if v)
            name = " ".join(v for v in (latin, values.get("chinese_name", "")) if v)
            rows.append(
                HandoverRow(
                    category=guest_category(values),
                    arrival_date=arrival,
                    card_serial=values.get("card_serial", ""),
                    name=name,
                    nationality=values.get("nationality", ""),
                    room_number=values.get("room_number", ""),
                    departure_date=values.get("departure_date", ""),
                    transmission=sent,
                )
            )
    order = {key: index for index, (key, _zh, _en) in enumerate(CATEGORIES)}
    rows.sort(key=lambda r: (order.get(r.category, 99), r.arrival_date, r.card_serial.zfill(12)))
    return rows, waiting


def _sections(rows: list[HandoverRow]):
    """Yield (category key, Chinese, English, [(date, rows of that date)]) for every category, empty ones too."""
    for key, zh, en in CATEGORIES:
        in_category = [r for r in rows if r.category == key]
        dates = sorted({r.arrival_date for r in in_category})
        yield key, zh, en, [(day, [r for r in in_category if r.arrival_date == day]) for day in dates]


def _cells(index: int, row: HandoverRow) -> list[str]:
    return [str(index), row.arrival_date, row.card_serial, row.name, row.nationality, row.room_number, row.departure_date, row.transmission]


def _xlsx(rows: list[HandoverRow], month: str, hotel_id: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = month
    bold = Font(bold=True)
    sheet.append([f"境外人员临时住宿登记表（白联）移交清单 / Handover list of white copies — {month} — {hotel_id}"])
    sheet["A1"].font = bold
    sheet.append([title for title, _width in COLUMNS])
    for cell in sheet[2]:
        cell.font = bold
    for _key, zh, en, days in _sections(rows):
        sheet.append([f"{zh} / {en}"])
        sheet.cell(sheet.max_row, 1).font = bold
        index = 0
        for day, day_rows in days:
            for row in day_rows:
                index += 1
                sheet.append(_cells(index, row))
            sheet.append(["", f"{day} 小计 / subtotal", str(len(day_rows))])
        sheet.append(["", f"{zh}合计 / total {en}", str(index)])
        sheet.cell(sheet.max_row, 2).font = bold
    sheet.append([])
    sheet.append(["", "总计 / grand total", str(len(rows))])
    sheet.cell(sheet.max_row, 2).font = bold
    sheet.append([])
    sheet.append(["", "移交人 / Handed over by:", "", "", "接收人 / Received by:", "", "日期 / Date:"])
    for column, (_title, width) in zip("ABCDEFGH", COLUMNS):
        sheet.column_dimensions[column].width = width * 0.6 + 4
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _font_path(config: Config) -> Path:
    candidates = [config.handover.font] if config.handover.font else list(FONT_CANDIDATES)
    for path in candidates:
        if path is not None and path.is_file():
            return path
    raise ConfigError(
        "找不到中文字体，无法生成 PDF。请安装 fonts-wqy-zenhei（apt-get install fonts-wqy-zenhei），"
        "或在配置文件 [handover] 中用 font 指定一个中文 TrueType 字体。",
        "no Chinese font found for the PDF; install fonts-wqy-zenhei or set font under [handover] in the config file",
    )


def _pdf(rows: list[HandoverRow], month: str, hotel_id: str, font: Path) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font("cjk", "", str(font))
    pdf.add_page()
    line = 7
    pdf.set_font("cjk", size=14)
    pdf.cell(0, 10, f"境外人员临时住宿登记表（白联）移交清单 / Handover list of white copies — {month}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=9)
    pdf.cell(0, line, f"酒店 / Hotel: {hotel_id}    共 / Total: {len(rows)}", new_x="LMARGIN", new_y="NEXT")

    def header() -> None:
        for title, width in COLUMNS:
            pdf.cell(width, line, title, border=1)
        pdf.ln(line)

    for _key, zh, en, days in _sections(rows):
        pdf.set_font("cjk", size=11)
        pdf.cell(0, 9, f"{zh} / {en}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=8)
        header()
        index = 0
        for day, day_rows in days:
            for row in day_rows:
                index += 1
                for text, (_title, width) in zip(_cells(index, row), COLUMNS):
                    pdf.cell(width, line, text[:40], border=1)
                pdf.ln(line)
            pdf.cell(0, line, f"{day} 小计 / subtotal: {len(day_rows)}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=10)
        pdf.cell(0, line, f"{zh}合计 / total {en}: {index}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(line)
    pdf.set_font("cjk", size=11)
    pdf.cell(0, line, f"总计 / Grand total: {len(rows)}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(line * 2)
    pdf.cell(0, line, "移交人 / Handed over by: ________________    接收人 / Received by: ________________    日期 / Date: ____________")
    return bytes(pdf.output())


def write_handover(store: Store, config: Config, month: str, out_dir: Path) -> tuple[Path, Path, int, int]:
    """Write ``handover_<month>.xlsx`` and ``handover_<month>.pdf``; returns both paths, the cards listed and those still in review."""
    rows, waiting = handover_rows(store, config, month)
    font = _font_path(config)
    try:
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        reason_zh, reason_en = os_error_reason(exc)
        raise HandoverError(
            f"无法创建目录 {out_dir}：{reason_zh}。请换一个 --out 目录。",
            f"cannot create folder {out_dir}: {reason_en}; choose another --out",
        ) from exc
    hotel_id = config.transmit.hotel_id
    xlsx_path = out_dir / f"handover_{month}.xlsx"
    pdf_path = out_dir / f"handover_{month}.pdf"
    try:
        write_atomically(xlsx_path, _xlsx(rows, month, hotel_id))
        write_atomically(pdf_path, _pdf(rows, month, hotel_id, font))
    except OSError as exc:
        reason_zh, reason_en = os_error_reason(exc)
        raise HandoverError(
            f"无法在目录 {out_dir} 中写入移交清单：{reason_zh}。请检查该目录的权限和剩余空间，或换一个 --out 目录。",
            f"cannot write the handover list into {out_dir}: {reason_en}; check the folder's permissions and "
            "free space, or choose another --out",
        ) from exc
    log.info("handover list written month=%s cards=%d", month, len(rows))
    return xlsx_path, pdf_path, len(rows), waiting
