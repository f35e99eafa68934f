"""Expected arrivals: CSV import, the arrivals command, and the report against cards in a real store.

Cards are built from the committed samples' truth values (tests/card_builders.py)
and stored with Store.add_card, on SQLite and on PostgreSQL. ``CardFiller`` is
shared with the statistics, search and review-page tests.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from card_builders import REGISTRY, build_extraction, sample_scan_png, truth_values
from models.card import CardStatus
from ocr.arrivals import (
    ArrivalsError,
    ExpectedArrival,
    arrivals_report,
    batch_deadlines,
    check_serials,
    list_expected,
    parse_arrivals_csv,
    save_expected,
)
from ocr.cli import main
from ocr.store import Store
from ocr.transmit.config import Config
from ocr.transmit.outbox import form_batches, mark_acknowledged

KNOWN_TYPES = tuple(REGISTRY.card_types)
DAY = "2025-12-15"
# 00:00 of 2025-12-16 in Asia/Shanghai, the deadline of cards arriving on DAY.
DEADLINE_UTC = datetime(2025, 12, 15, 16, 0, tzinfo=UTC)


@functools.cache
def _scan_png() -> bytes:
    return sample_scan_png()


class CardFiller:
    """Adds cards built from sample truth values to a store, each under its own content key."""

    _numbers = itertools.count(1)

    def __init__(self, store: Store) -> None:
        self.store = store
        self.png = _scan_png()

    def add(
        self, stem: str, *, batch: str = "batch-1", low_confidence: tuple[str, ...] = (), **changes: str
    ) -> int:
        """Store the sample ``stem`` with ``changes`` applied to its values; return the card id."""
        values = dict(truth_values(stem), **changes)
        card_type = "domestic_guest" if "domestic" in stem else "foreign_guest"
        number = next(self._numbers)
        extraction = build_extraction(card_type, values, f"/scans/{stem}_{number}.png", low_confidence)
        return self.store.add_card(
            batch=batch,
            content_key=f"{hashlib.sha256(f'{stem}-{number}'.encode()).hexdigest()}:1",
            extraction=extraction,
            original_png=self.png,
            straight_png=self.png,
        )


@pytest.fixture()
def filler(tmp_path: Path, store_url: str) -> Iterator[CardFiller]:
    store = Store(url=store_url, data_dir=tmp_path / "data")
    yield CardFiller(store)
    store.close()


def _csv(text: str, encoding: str = "utf-8") -> bytes:
    return text.encode(encoding)


# CSV parsing.


def test_csv_chinese_headers_in_gb18030() -> None:
    data = _csv("日期,预计人数,卡片类型,起始编号,结束编号\n2025/12/15,12,foreign_guest,0038560,0038571\n2025年12月16日,3,,,\n", "gb18030")
    entries = parse_arrivals_csv(data, source="arrivals.csv", known_card_types=KNOWN_TYPES)
    assert len(entries) == 2
    assert entries[0] == ExpectedArrival(
        arrival_date=date(2025, 12, 15), card_type="foreign_guest", expected=12, serial_first="0038560", serial_last="0038571"
    )
    assert entries[1].arrival_date == date(2025, 12, 16)
    assert entries[1].card_type == "foreign_guest"
    assert entries[1].serial_first is None


def test_csv_english_headers_with_bom() -> None:
    data = b"\xef\xbb\xbf" + _csv("date,expected,card_type\n2025-12-15,4,domestic_guest\n\n2025-12-15,2,foreign_guest\n")
    entries = parse_arrivals_csv(data, source="a.csv", known_card_types=KNOWN_TYPES)
    assert [(e.card_type, e.expected) for e in entries] == [("domestic_guest", 4), ("foreign_guest", 2)]


BAD_FILES = [
    ("date,expected\n2025-12-15,4\n2025-13-01,2\n", "第 3 行「date」列", "'2025-13-01' 不是有效日期"),
    ("date,expected\n15/12/2025,4\n", "第 2 行「date」列", "不是有效日期"),
    ("日期,预计人数\n2025-12-15,abc\n", "第 2 行「预计人数」列", "'abc' 不是非负整数"),
    ("date,expected\n2025-12-15,-1\n", "第 2 行「expected」列", "不是非负整数"),
    ("date,expected,card_type\n2025-12-15,1,hotel_folio\n", "第 2 行「card_type」列", "卡片类型 'hotel_folio' 不存在"),
    ("date,expected,serial_first,serial_last\n2025-12-15,1,00A1,0002\n", "第 2 行「serial_first」列", "只能由数字组成"),
    ("date,expected,serial_first,serial_last\n2025-12-15,1,0001,\n", "第 2 行「serial_last」列", "须同时填写"),
    ("date,expected,serial_first,serial_last\n2025-12-15,1,0009,0002\n", "第 2 行「serial_last」列", "小于起始编号"),
    ("date,expected\n2025-12-15,1,7\n", "第 2 行有 3 列", "标题行只有 2 列"),
    ("date,expected\n2025-12-15,1\n2025-12-16,1\n2025-12-15,2\n", "第 4 行", "已在第 2 行出现"),
    ("date,guests\n2025-12-15,1\n", "第 1 行", "未知的列名 'guests'"),
    ("date,card_type\n2025-12-15,foreign_guest\n", "第 1 行", "缺少必需的列 expected"),
    ("date,expected,日期\n2025-12-15,1,2025-12-15\n", "第 1 行", "重复"),
    ("", "空文件", "缺少标题行"),
    ("date,expected\n", "只有标题行", "没有数据"),
]


@pytest.mark.parametrize(("text", "where", "problem"), BAD_FILES)
def test_csv_error_names_row_and_column(text: str, where: str, problem: str) -> None:
    with pytest.raises(ArrivalsError) as caught:
        parse_arrivals_csv(_csv(text), source="arrivals.csv", known_card_types=KNOWN_TYPES)
    message = caught.value.message("zh")
    assert message.startswith("arrivals.csv ")
    assert where in message
    assert problem in message
    assert "本文件的数据均未导入" in message
    assert "nothing from the file was imported" in caught.value.message("en")


def test_csv_undecodable_bytes_rejected() -> None:
    with pytest.raises(ArrivalsError) as caught:
        parse_arrivals_csv(b"date,expected\n\xff\xfe\xfa\n", source="x.csv", known_card_types=KNOWN_TYPES)
    assert "UTF-8" in caught.value.message("zh")


# Storing entries and the command line.


def test_save_expected_replaces_same_date(filler: CardFiller) -> None:
    store = filler.store
    first = ExpectedArrival(arrival_date=date(2025, 12, 15), expected=4)
    other_type = ExpectedArrival(arrival_date=date(2025, 12, 15), card_type="domestic_guest", expected=9)
    assert save_expected(store, [first, other_type], actor="李娜") == (2, 0)

    changed = ExpectedArrival(arrival_date=date(2025, 12, 15), expected=5, serial_first="0100", serial_last="0104")
    assert save_expected(store, [changed], actor="李娜") == (0, 1)

    stored = list_expected(store)
    assert [(e.card_type, e.expected) for e in stored] == [("domestic_guest", 9), ("foreign_guest", 5)]
    assert stored[1].serial_first == "0100"
    assert list_expected(store, start=date(2025, 12, 16)) == []


def _run_cli(args: list[str], lang: str = "zh") -> int:
    """Run the command line in this process; the language is given each time, because it is kept between runs."""
    with pytest.raises(SystemExit) as exited:
        main(["--lang", lang, *args])
    return exited.value.code


def test_cli_bad_file_imports_nothing(tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = tmp_path / "arrivals.csv"
    csv_file.write_text("date,expected\n2025-12-15,4\n2025-12-16,4\n2025-12-17,four\n", encoding="utf-8")
    data_dir = tmp_path / "data"

    code = _run_cli(["arrivals", "import", str(csv_file), "--db", store_url, "--data-dir", str(data_dir)])

    assert code == 3
    err = capsys.readouterr().err
    assert "arrivals.csv 第 4 行「expected」列：'four' 不是非负整数" in err
    store = Store(url=store_url, data_dir=data_dir)
    assert list_expected(store) == []
    store.close()


def test_cli_import_then_show(filler: CardFiller, tmp_path: Path, store_url: str, capsys) -> None:
    filler.add("card_01_foreign_printed", card_serial="0038565")
    filler.add("card_01_foreign_printed", card_serial="0038565")
    filler.add("card_01_foreign_printed", card_serial="0038568")
    csv_file = tmp_path / "arrivals.csv"
    csv_file.write_text("date,expected,serial_first,serial_last\n2025-12-15,5,0038564,0038568\n", encoding="utf-8")
    where = ["--db", store_url, "--data-dir", str(tmp_path / "data")]

    assert _run_cli(["arrivals", "import", str(csv_file), "--by", "李娜", *where]) == 0
    assert "已导入 arrivals.csv：新增 1 行，更新 0 行。" in capsys.readouterr().out

    assert _run_cli(["arrivals", "show", "--date", DAY, *where]) == 0
    out = capsys.readouterr().out
    assert "2025-12-15 foreign_guest：预计 5，已扫描 3（差 -2），已退回 0；外宾 3" in out
    assert "编号 0038564–0038568：缺号 3 个（0038564, 0038566, 0038567），重号 1 个（0038565）" in out
    assert "尚缺 2 张卡片" in out

    assert _run_cli(["arrivals", "show", "--date", DAY, *where], lang="en") == 0
    assert "expected 5, scanned 3 (-2), rejected 0; foreign 3" in capsys.readouterr().out


def test_cli_show_rejects_bad_date(tmp_path: Path, capsys) -> None:
    assert _run_cli(["arrivals", "show", "--date", "2025-02-30", "--data-dir", str(tmp_path)]) == 3
    assert "日期 '2025-02-30' 无效" in capsys.readouterr().err


# Serial numbers.


def test_serials_against_expected_range() -> None:
    check = check_serials(["0100", "0102", "0102", "0107", "", "01O3"], "0100", "0105")
    assert check.first == "0100"
    assert check.last == "0107"
    assert check.gaps == ["0101", "0103", "0104", "0105"]
    assert check.gap_count == 4
    assert check.duplicates == ["0102"]
    assert check.outside_range == ["0107"]
    assert check.without_serial == 2


def test_serials_without_range_use_their_own() -> None:
    check = check_serials(["0038565", "0038568", "0038565"])
    assert check.gaps == ["0038566", "0038567"]
    assert check.duplicates == ["0038565"]
    assert check.outside_range == []


def test_serial_gap_list_is_capped() -> None:
    check = check_serials(["0000001", "9000000"])
    assert check.gap_count == 9000000 - 2
    assert len(check.gaps) == 1000
    assert check.gaps[0] == "0000002"


def test_serials_none_numbered() -> None:
    check = check_serials(["", "ABC"])
    assert check.first is None
    assert check.gaps == []
    assert check.without_serial == 2


# The report.


def _fill_day(filler: CardFiller) -> dict[str, int]:
    """Add DAY's cards: two foreign, one HK permit, one group visa, one rejected, one domestic, one other day."""
    ids = {
        "foreign": filler.add("card_01_foreign_printed", card_serial="0038565"),
        "foreign_duplicate": filler.add("card_01_foreign_printed", card_serial="0038565", room_number="B1633"),
        "hong_kong": filler.add("card_10_foreign_printed", card_serial="0038566", arrival_date=DAY, entry_date=DAY),
        "group": filler.add("card_01_foreign_printed", card_serial="0038569", visa_type="GROUP"),
        "rejected": filler.add("card_01_foreign_printed", card_serial="0038567"),
        "domestic": filler.add("card_03_domestic_printed", arrival_date=DAY, batch="batch-2"),
        "other_day": filler.add("card_02_foreign_handwriting", batch="batch-2"),
    }
    store = filler.store
    store.set_status(ids["rejected"], CardStatus.REJECTED, actor="王芳", expected_version=1)
    save_expected(
        store,
        [ExpectedArrival(arrival_date=date(2025, 12, 15), expected=6, serial_first="0038564", serial_last="0038570")],
        actor="李娜",
    )
    return ids


def test_report_sets_expected_against_scanned(filler: CardFiller) -> None:
    _fill_day(filler)
    report = arrivals_report(filler.store, Config(), date(2025, 12, 14), date(2025, 12, 16), now=DEADLINE_UTC)

    assert [(d.arrival_date, d.card_type) for d in report.days] == [(DAY, "domestic_guest"), (DAY, "foreign_guest")]
    domestic, foreign = report.days
    assert foreign.expected == 6
    assert foreign.scanned == 4
    assert foreign.rejected == 1
    assert foreign.difference == -2
    assert foreign.missing_cards == 2
    assert foreign.categories == {"foreign": 2, "hk_macao_taiwan": 1, "group_visa": 1, "domestic": 0, "other": 0}
    assert foreign.serials.gaps == ["0038564", "0038567", "0038568", "0038570"]
    assert foreign.serials.duplicates == ["0038565"]
    assert domestic.expected is None
    assert domestic.difference is None
    assert domestic.categories["domestic"] == 1


def test_report_date_range_filters(filler: CardFiller) -> None:
    _fill_day(filler)
    report = arrivals_report(filler.store, Config(), date(2025, 5, 15), date(2025, 5, 15), now=DEADLINE_UTC)
    assert [(d.arrival_date, d.scanned) for d in report.days] == [("2025-05-15", 1)]


@pytest.mark.parametrize(
    ("now", "level"),
    [
        (datetime(2025, 12, 15, 8, 0, tzinfo=UTC), "ok"),
        (datetime(2025, 12, 15, 12, 0, tzinfo=UTC), "near"),
        (DEADLINE_UTC, "past"),
    ],
)
def test_report_deadline_levels(filler: CardFiller, now: datetime, level: str) -> None:
    filler.add("card_01_foreign_printed")
    day = arrivals_report(filler.store, Config(), date(2025, 12, 15), date(2025, 12, 15), now=now).days[0]
    assert day.level == level
    assert day.hours_left == pytest.approx((DEADLINE_UTC - now).total_seconds() / 3600)
    assert day.open_cards == 1


def _acknowledge_all(store: Store) -> None:
    for batch_id in form_batches(store, Config(), REGISTRY, "manual"):
        mark_acknowledged(store, batch_id, by="李娜", receipt="R-1", acknowledgement={"note": "uploaded"})


def test_acknowledged_day_is_done(filler: CardFiller) -> None:
    card_id = filler.add("card_01_foreign_printed")
    filler.store.set_status(card_id, CardStatus.APPROVED, actor="王芳", expected_version=1)
    _acknowledge_all(filler.store)

    day = arrivals_report(filler.store, Config(), date(2025, 12, 15), date(2025, 12, 15), now=DEADLINE_UTC).days[0]
    assert day.open_cards == 0
    assert day.level == "done"


def test_missing_expected_cards_keep_day_open(filler: CardFiller) -> None:
    save_expected(filler.store, [ExpectedArrival(arrival_date=date(2025, 12, 15), expected=2)], actor="李娜")
    day = arrivals_report(filler.store, Config(), date(2025, 12, 15), date(2025, 12, 15), now=DEADLINE_UTC).days[0]
    assert day.scanned == 0
    assert day.missing_cards == 2
    assert day.level == "past"


def test_batch_deadlines_use_earliest_open_card(filler: CardFiller) -> None:
    ids = _fill_day(filler)
    filler.add("card_01_foreign_printed", batch="batch-3")
    third = filler.store.list_cards(batch="batch-3")[0].id
    filler.store.set_status(third, CardStatus.APPROVED, actor="王芳", expected_version=1)
    _acknowledge_all(filler.store)

    deadlines = {d.batch: d for d in batch_deadlines(filler.store, Config(), now=datetime(2025, 12, 15, 12, 0, tzinfo=UTC))}

    assert deadlines["batch-1"].open_cards == 4
    assert deadlines["batch-1"].earliest_arrival == DAY
    assert deadlines["batch-1"].level == "near"
    # batch-2 has a card that arrived on 2025-05-15, so its deadline passed long ago.
    assert deadlines["batch-2"].earliest_arrival == "2025-05-15"
    assert deadlines["batch-2"].level == "past"
    assert deadlines["batch-3"].open_cards == 0
    assert deadlines["batch-3"].level == "done"
    assert ids["rejected"] not in {c.id for c in filler.store.list_cards(batch="batch-1", statuses=[CardStatus.APPROVED])}
