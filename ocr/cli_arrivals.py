"""Command line for expected arrivals: ``python -m ocr arrivals import FILE.csv`` and ``arrivals show``.

``show`` prints, per arrival date and card type, the guests expected against
the cards scanned, the cards per guest category, the gaps and duplicates in the
card serials, and the time left until the date's deadline: the same figures as
the review app's batch overview. The CSV columns are described in
:mod:`ocr.arrivals`.
"""

from __future__ import annotations

import getpass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Optional

import typer

from ocr.errors import ExitCode

__all__ = ["arrivals_app"]

arrivals_app = typer.Typer(
    no_args_is_help=True,
    help="预计抵店人数：导入并与已扫描的卡片核对。 / Expected arrivals: import them and check them against the scanned cards.",
)

# Number of gaps and duplicates printed per line; the count gives the rest.
MAX_LISTED_SERIALS = 10

StoreUrl = Annotated[Optional[str], typer.Option("--db", help="数据库地址 / database URL")]
StoreFolder = Annotated[Optional[Path], typer.Option("--data-dir", help="数据目录，默认 ./ocr-data / data folder")]


def _say(zh: str, en: str) -> None:
    # Imported here, because ocr.cli imports this module while it loads.
    from ocr.cli import say

    say(zh, en)


def _open_store(db: str | None, data_dir: Path | None, *, create: bool):
    from ocr.store import Store

    return Store(url=db, data_dir=data_dir, create=create)


@arrivals_app.command("import")
def import_command(
    csv_file: Annotated[Path, typer.Argument(help="CSV 文件：date, expected[, card_type, serial_first, serial_last]")],
    by: Annotated[Optional[str], typer.Option("--by", help="导入人姓名，默认当前系统用户 / who imports")] = None,
    templates: Annotated[
        Optional[list[Path]],
        typer.Option("--templates", help="自定义卡片类型所在目录，可多次指定 / folder of a site's own card types"),
    ] = None,
    db: StoreUrl = None,
    data_dir: StoreFolder = None,
) -> None:
    """导入预计抵店人数；有错误的文件不导入任何一行。 / Import expected arrivals; a file with an error imports nothing.

    退出码：0 成功；3 文件有误（信息中注明行与列）。Exit codes: 0 done; 3 invalid file (the message names the row and column).
    """
    from ocr.arrivals import read_arrivals_csv, save_expected
    from ocr.registry import load_registry

    registry = load_registry(tuple(str(folder) for folder in templates or []))
    entries = read_arrivals_csv(csv_file, known_card_types=registry.card_types)
    store = _open_store(db, data_dir, create=True)
    added, updated = save_expected(store, entries, actor=by or getpass.getuser())
    _say(
        f"已导入 {csv_file.name}：新增 {added} 行，更新 {updated} 行。",
        f"imported {csv_file.name}: {added} rows added, {updated} updated",
    )


def _listed(numbers: list[str], total: int) -> str:
    shown = ", ".join(numbers[:MAX_LISTED_SERIALS])
    return shown + (f" …(+{total - MAX_LISTED_SERIALS})" if total > MAX_LISTED_SERIALS else "")


def _serial_line(serials) -> tuple[str, str]:
    """Return the Chinese and English line on a day's serial range, gaps, duplicates and strays."""
    low = serials.expected_first or serials.first
    high = serials.expected_last or serials.last
    parts = [(f"缺号 {serials.gap_count} 个", f"{serials.gap_count} missing", serials.gaps, serials.gap_count)]
    parts.append(
        (f"重号 {len(serials.duplicates)} 个", f"{len(serials.duplicates)} on more than one card", serials.duplicates, len(serials.duplicates))
    )
    if serials.outside_range:
        count = len(serials.outside_range)
        parts.append((f"范围外 {count} 个", f"{count} outside the range", serials.outside_range, count))
    zh = "，".join(f"{label}（{_listed(numbers, count)}）" if count else label for label, _en, numbers, count in parts)
    en = ", ".join(f"{label} ({_listed(numbers, count)})" if count else label for _zh, label, numbers, count in parts)
    if serials.without_serial:
        zh += f"，无编号 {serials.without_serial} 张"
        en += f", {serials.without_serial} cards without serial"
    return f"  编号 {low}–{high}：{zh}", f"  serials {low}–{high}: {en}"


def _say_day(day) -> None:
    from ocr.arrivals import CATEGORIES

    expected_zh = "未填" if day.expected is None else str(day.expected)
    expected_en = "not entered" if day.expected is None else str(day.expected)
    diff = "" if day.difference is None else f"{day.difference:+d}"
    categories = [(zh, en, day.categories[key]) for key, zh, en in CATEGORIES if day.categories.get(key)]
    _say(
        f"{day.arrival_date} {day.card_type}：预计 {expected_zh}，已扫描 {day.scanned}"
        + (f"（差 {diff}）" if diff else "")
        + f"，已退回 {day.rejected}；"
        + ("，".join(f"{zh} {count}" for zh, _en, count in categories) or "无卡片"),
        f"{day.arrival_date} {day.card_type}: expected {expected_en}, scanned {day.scanned}"
        + (f" ({diff})" if diff else "")
        + f", rejected {day.rejected}; "
        + (", ".join(f"{en} {count}" for _zh, en, count in categories) or "no cards"),
    )
    serials = day.serials
    if serials.first is not None or serials.expected_first is not None:
        _say(*_serial_line(serials))
    due = day.deadline.strftime("%Y-%m-%d %H:%M")
    missing_zh = f"，尚缺 {day.missing_cards} 张卡片" if day.missing_cards else ""
    missing_en = f", {day.missing_cards} expected cards not scanned" if day.missing_cards else ""
    if day.level == "done":
        _say(f"  期限 {due}：已全部上报并确认。", f"  deadline {due}: every record is acknowledged")
    elif day.level == "past":
        _say(
            f"  期限 {due}：已逾期 {-day.hours_left:.1f} 小时，{day.open_cards} 张未完成{missing_zh}。",
            f"  deadline {due}: {-day.hours_left:.1f} h overdue, {day.open_cards} cards open{missing_en}",
        )
    else:
        _say(
            f"  期限 {due}：剩余 {day.hours_left:.1f} 小时，{day.open_cards} 张未完成{missing_zh}。",
            f"  deadline {due}: {day.hours_left:.1f} h left, {day.open_cards} cards open{missing_en}",
        )


@arrivals_app.command("show")
def show_command(
    on: Annotated[
        Optional[str], typer.Option("--date", help="只看此抵店日期 YYYY-MM-DD / only this arrival date")
    ] = None,
    days: Annotated[
        int, typer.Option("--days", min=1, max=366, help="不指定 --date 时，显示截至今天的天数 / days up to today")
    ] = 7,
    config: Annotated[
        Optional[Path], typer.Option("--config", help="配置文件（时区与期限）/ config file (time zone, deadline)")
    ] = None,
    db: StoreUrl = None,
    data_dir: StoreFolder = None,
) -> None:
    """按抵店日期核对预计人数、已扫描卡片、编号缺号与重号、上报期限。 / Check expected arrivals, scanned cards, serials and deadlines per arrival date."""
    from ocr.arrivals import arrivals_report
    from ocr.transmit.config import load_config

    settings = load_config(config)
    if on is not None:
        try:
            start = end = date.fromisoformat(on)
        except ValueError:
            from ocr.cli import warn

            warn(f"日期 {on!r} 无效，格式应为 YYYY-MM-DD。", f"invalid date {on!r}; use YYYY-MM-DD")
            raise typer.Exit(ExitCode.BAD_INPUT) from None
    else:
        end = datetime.now(UTC).astimezone(settings.deadline.zone).date()
        start = end - timedelta(days=days - 1)
    store = _open_store(db, data_dir, create=False)
    report = arrivals_report(store, settings, start, end)
    if not report.days:
        _say(
            f"{start} 至 {end} 没有预计人数，也没有卡片。",
            f"no expected arrivals and no cards from {start} to {end}",
        )
        return
    for day in report.days:
        _say_day(day)
