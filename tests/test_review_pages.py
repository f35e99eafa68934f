"""Batch overview, statistics and search pages driven through Streamlit's AppTest against a real SQLite store.

Each page is drawn by tests/review_pages_app.py with a signed-in test user, as
the app draws it. The store is filled through the store and review APIs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from ocr.arrivals import list_expected
from ocr.review import correct_fields, reject_card
from ocr.search import search_log
from ocr.stats import statistics
from ocr.store import Store
from ocr.transmit.config import Config
from review_app.overview_page import LEVEL_COLOURS
from review_app.texts import TEXTS
from review_app.texts_pages import PAGE_TEXTS
from test_arrivals import CardFiller

APP_FILE = Path(__file__).resolve().parent / "review_pages_app.py"
APP_TIMEOUT_S = 30
OVERVIEW = "review_app.overview_page:render_overview"
STATISTICS = "review_app.stats_page:render_statistics"
SEARCH = "review_app.search_page:render_search"
DAY = date(2025, 12, 15)
ZONE = Config().deadline.zone


@pytest.fixture()
def filler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CardFiller]:
    """A store with DAY's cards: two foreign, one HK permit, one group visa (one duplicate serial), one rejected."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("HUKA_DATA_DIR", str(data_dir))
    monkeypatch.delenv("HUKA_DB_URL", raising=False)
    monkeypatch.delenv("HUKA_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    store = Store(data_dir=data_dir)
    filler = CardFiller(store)
    filler.add("card_01_foreign_printed", card_serial="0038565")
    filler.add("card_01_foreign_printed", card_serial="0038565", surname="TANAKA", given_names="YUKI", room_number="B1633")
    filler.add("card_10_foreign_printed", card_serial="0038566", arrival_date="2025-12-15", entry_date="2025-12-15")
    filler.add("card_01_foreign_printed", card_serial="0038569", visa_type="GROUP", low_confidence=("surname",))
    rejected = filler.add("card_02_foreign_handwriting", batch="batch-2")
    reject_card(store, rejected, actor="李雷", expected_version=1, kind="rescan")
    yield filler
    store.close()


def _run(page: str, *, role: str = "reviewer", lang: str = "zh", **state: object):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(APP_FILE), default_timeout=APP_TIMEOUT_S)
    app.session_state["test_page"] = page
    app.session_state["test_role"] = role
    app.session_state["lang"] = lang
    for key, value in state.items():
        app.session_state[key] = value
    app.run()
    assert not app.exception, app.exception
    return app


def _texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def _frame(app, column: str):
    """Return the first table of the page that has ``column``."""
    for frame in app.dataframe:
        if column in frame.value.columns:
            return frame
    raise AssertionError(f"no table with column {column!r}: {[list(frame.value.columns) for frame in app.dataframe]}")


def test_page_texts_have_own_prefixes() -> None:
    for text_id, pair in PAGE_TEXTS.items():
        assert text_id.split("_", 1)[0] in ("ov", "st", "se"), text_id
        assert TEXTS[text_id] == pair, text_id


# Batch overview.


def test_overview_batches_match_store(filler: CardFiller) -> None:
    app = _run(OVERVIEW, ov_range=(DAY, DAY))
    assert "批次概览" in _texts(app.header)

    batches = _frame(app, "批次").value
    by_name = {row["批次"]: row for _, row in batches.iterrows()}
    for summary in filler.store.list_batches():
        row = by_name[summary.name]
        assert row["合计"] == summary.total
        assert row["待审核"] == summary.counts.get("needs_review", 0)
        assert row["自动通过"] == summary.counts.get("auto_accepted", 0)
        assert row["已退回"] == summary.counts.get("rejected", 0)
    assert by_name["batch-1"]["未完成"] == 4
    assert by_name["batch-1"]["剩余时间"].startswith("逾期")
    assert by_name["batch-2"]["剩余时间"] == "已全部上报"
    assert "批次 batch-1：4 张卡片已过上报期限（2025-12-16 00:00）" in _texts(app.error)

    styles = _frame(app, "批次").proto.arrow_data.styler.styles
    assert LEVEL_COLOURS["past"].split(";")[0] in styles
    assert LEVEL_COLOURS["done"].split(";")[0] in styles


def test_overview_arrivals_and_categories(filler: CardFiller) -> None:
    app = _run(OVERVIEW, ov_range=(DAY, DAY))
    days = _frame(app, "抵店日期").value
    assert len(days) == 1
    row = days.iloc[0]
    assert row["抵店日期"] == "2025-12-15"
    assert row["卡片类型"] == "境外人员临时住宿登记表"
    assert row["预计"] == ""
    assert row["已扫描"] == 4
    assert row["外宾"] == 2
    assert row["港澳台"] == 1
    assert row["团签"] == 1
    assert row["编号范围"] == "0038565–0038569"
    assert row["缺号"] == "0038567, 0038568"
    assert row["重号"] == "0038565"
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["外宾"] == "2"
    assert metrics["港澳台"] == "1"
    assert metrics["团签"] == "1"
    assert "缺号 2 个，重号 1 个" in _texts(app.warning)


def test_overview_in_english(filler: CardFiller) -> None:
    app = _run(OVERVIEW, lang="en", ov_range=(DAY, DAY))
    assert "Batch overview" in _texts(app.header)
    row = _frame(app, "Arrival date").value.iloc[0]
    assert row["Scanned"] == 4
    assert row["HK, Macao, Taiwan"] == 1
    assert row["Duplicate serials"] == "0038565"
    assert app.button(key="ov_import").label == "Import"


def test_overview_csv_error_imports_nothing(filler: CardFiller) -> None:
    app = _run(OVERVIEW, ov_range=(DAY, DAY))
    bad = "date,expected,serial_first,serial_last\n2025-12-15,6,0038564,0038570\n2025-12-16,3,0038571,003857X\n"
    app.file_uploader(key="ov_csv").upload("arrivals.csv", bad.encode("utf-8"), "text/csv")
    app.run()
    app.button(key="ov_import").click().run()
    assert not app.exception, app.exception

    errors = _texts(app.error)
    assert "arrivals.csv 第 3 行「serial_last」列：编号 '003857X' 只能由数字组成" in errors
    assert "本文件的数据均未导入" in errors
    assert list_expected(filler.store) == []


def test_overview_csv_import_shows_expected(filler: CardFiller) -> None:
    app = _run(OVERVIEW, ov_range=(DAY, DAY))
    good = "日期,预计人数,起始编号,结束编号\n2025-12-15,6,0038564,0038570\n".encode("gb18030")
    app.file_uploader(key="ov_csv").upload("抵店.csv", good, "text/csv")
    app.run()
    app.button(key="ov_import").click().run()
    assert not app.exception, app.exception

    assert "已导入 抵店.csv：新增 1 行，更新 0 行。" in _texts(app.success)
    [entry] = list_expected(filler.store)
    assert entry.expected == 6
    row = _frame(app, "抵店日期").value.iloc[0]
    assert row["预计"] == "6"
    assert row["差额"] == "-2"
    assert row["编号范围"] == "0038564–0038570"
    assert row["缺号"] == "0038564, 0038567, 0038568, 0038570"


def test_overview_entry_form_saves(filler: CardFiller) -> None:
    app = _run(OVERVIEW, ov_range=(DAY, DAY))
    app.date_input(key="ov_enter_date").set_value(DAY)
    app.number_input(key="ov_enter_expected").set_value(5)
    app.text_input(key="ov_enter_serial_first").input("0038565")
    app.text_input(key="ov_enter_serial_last").input("0038569")
    app.button(key="FormSubmitter:ov_entry_form-保存").click().run()
    assert not app.exception, app.exception

    [entry] = list_expected(filler.store)
    assert (entry.arrival_date, entry.expected, entry.serial_first) == (DAY, 5, "0038565")
    assert "已保存 2025-12-15 境外人员临时住宿登记表 的预计人数 5。" in _texts(app.success)
    assert _frame(app, "抵店日期").value.iloc[0]["差额"] == "-1"


def test_overview_entry_form_rejects_bad_serial(filler: CardFiller) -> None:
    app = _run(OVERVIEW, ov_range=(DAY, DAY))
    app.text_input(key="ov_enter_serial_first").input("0038569")
    app.text_input(key="ov_enter_serial_last").input("0038565")
    app.button(key="FormSubmitter:ov_entry_form-保存").click().run()

    assert "「结束编号（选填）」：结束编号 0038565 小于起始编号 0038569" in _texts(app.error)
    assert list_expected(filler.store) == []


# Statistics.


def test_statistics_match_store(filler: CardFiller) -> None:
    flagged = filler.store.list_cards(statuses=["needs_review"])[0].id
    correct_fields(filler.store, flagged, {"surname": "TANAKO"}, actor="王芳", expected_version=1)
    today = datetime.now(UTC).astimezone(ZONE).date()
    start = today - timedelta(days=1)
    expected = statistics(filler.store, start, today, ZONE)

    app = _run(STATISTICS, st_range=(start, today))
    assert "统计" in _texts(app.header)
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["卡片"] == str(sum(day.cards for day in expected.cards_per_day))
    assert metrics["卡片"] == "5"

    days = _frame(app, "自动通过字段").value
    assert list(days["卡片数"]) == [day.cards for day in expected.cards_per_day]
    assert list(days["自动通过字段"]) == [day.automated for day in expected.automation_per_day]

    corrections = _frame(app, "更正次数").value
    assert list(corrections["字段"]) == ["英文姓（surname）"]
    assert list(corrections["更正次数"]) == [1]

    throughput = _frame(app, "审核人").value
    rows = {row["审核人"]: row for _, row in throughput.iterrows()}
    assert rows["王芳"]["更正字段"] == 1
    assert rows["李雷"]["退回卡片"] == 1


def test_statistics_in_english_empty_range(filler: CardFiller) -> None:
    app = _run(STATISTICS, lang="en", st_range=(date(2020, 1, 1), date(2020, 1, 2)))
    assert "Statistics" in _texts(app.header)
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Cards"] == "0"
    assert metrics["Automation rate"] == "—"
    assert "There are no corrections on the dates chosen." in _texts(app.info)
    assert "No review work was done on the dates chosen." in _texts(app.info)


# Search.


def _search(app, kind: str, query: str) -> None:
    app.radio(key="se_kind").set_value(kind).run()
    app.text_input(key="se_query").input(query)
    app.button(key="FormSubmitter:se_form-" + ("查找" if app.session_state["lang"] == "zh" else "Search")).click().run()
    assert not app.exception, app.exception


def test_search_finds_and_logs(filler: CardFiller) -> None:
    app = _run(SEARCH)
    _search(app, "name", "tanaka")

    assert "找到 3 张卡片。" in _texts(app.caption)
    page = _texts(app.markdown)
    assert page.count("TANAKA KENJI") == 2
    assert "TANAKA YUKI" in page
    [entry] = search_log(filler.store)
    assert entry.actor == "王芳"
    assert entry.kind == "name"
    assert entry.result_count == 3
    assert entry.query_masked == "T***"
    # A reviewer does not see the log.
    assert "查找记录（主管）" not in _texts(app.subheader)


def test_search_open_goes_to_card(filler: CardFiller) -> None:
    app = _run(SEARCH)
    _search(app, "room", "B1633")
    [hit] = app.session_state["se_result"].hits
    app.button(key=f"se_open_{hit.card_id}").click().run()
    assert app.session_state["card_id"] == hit.card_id
    assert app.session_state["goto_page"] == "cards"
    assert app.session_state["card_return_page"] == "search"


def test_search_short_query_shows_error(filler: CardFiller) -> None:
    app = _run(SEARCH)
    _search(app, "document", "576")
    assert "查询内容太短：至少输入 4 个字符。" in _texts(app.error)
    assert search_log(filler.store) == []


def test_search_log_shown_to_supervisor(filler: CardFiller) -> None:
    app = _run(SEARCH, role="supervisor", test_user="张主管")
    _search(app, "document", "CW4645765")
    assert "查找记录（主管）" in _texts(app.subheader)

    log_table = _frame(app, "查找人").value
    assert list(log_table["查找人"]) == ["张主管"]
    assert list(log_table["类型"]) == ["证件号码"]
    assert list(log_table["查找内容（遮蔽）"]) == ["****65"]
    assert list(log_table["结果数"]) == [3]
    assert "CW4645765" not in log_table.to_string()

    # Checking a value filters the log by its digest.
    app.text_input(key="se_log_value").input("CW4645764").run()
    assert "没有查找记录。" in _texts(app.info)
    app.selectbox(key="se_log_kind").set_value("document")
    app.text_input(key="se_log_value").input("cw 4645765").run()
    assert list(_frame(app, "查找人").value["结果数"]) == [3]


def test_search_in_english(filler: CardFiller) -> None:
    app = _run(SEARCH, lang="en", role="admin")
    _search(app, "name", "张芳")
    assert "1 cards found." in _texts(app.caption)
    assert "Search log (supervisors)" in _texts(app.subheader)
    assert list(_frame(app, "Searched by").value["Kind"]) == ["Name"]


# The pages in the app, behind sign-in.

REVIEW_APP = Path(__file__).resolve().parent.parent / "review_app" / "app.py"
PASSWORD = "kaishi-2025"


@pytest.fixture()
def accounts(filler: CardFiller) -> CardFiller:
    """The filled store with a reviewer 王芳 and a supervisor 赵主管, and a fresh sign-in throttle."""
    from ocr.accounts import Role, add_user
    from review_app.auth import get_throttle

    add_user(filler.store, "王芳", Role.REVIEWER, PASSWORD)
    add_user(filler.store, "赵主管", Role.SUPERVISOR, PASSWORD)
    get_throttle.clear()
    return filler


def _signed_in(name: str):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(REVIEW_APP), default_timeout=APP_TIMEOUT_S).run()
    app.text_input(key="sign_in_name").input(name)
    app.text_input(key="sign_in_password").input(PASSWORD)
    app.button(key="sign_in").click().run()
    assert not app.exception, app.exception
    return app


def _show(app, page: str) -> str:
    app.session_state["goto_page"] = page
    app.run()
    assert not app.exception, app.exception
    return _texts(app.header)


def test_app_shows_pages_by_role(accounts: CardFiller) -> None:
    supervisor = _signed_in("赵主管")
    assert "批次概览" in _show(supervisor, "overview")
    assert "查找卡片" in _show(supervisor, "search")
    assert "统计" in _show(supervisor, "statistics")

    reviewer = _signed_in("王芳")
    assert "批次概览" in _show(reviewer, "overview")
    # Statistics, with every reviewer's throughput, are for supervisors.
    assert "统计" not in _show(reviewer, "statistics")


def test_app_search_opens_card(accounts: CardFiller) -> None:
    app = _signed_in("王芳")
    _show(app, "search")
    _search(app, "room", "B1633")
    [hit] = app.session_state["se_result"].hits
    app.button(key=f"se_open_{hit.card_id}").click().run()
    assert not app.exception, app.exception

    assert app.session_state["card_id"] == hit.card_id
    assert f"卡片 {hit.card_id}" in _texts(app.header) + _texts(app.subheader)
    [entry] = search_log(accounts.store)
    assert entry.actor == "王芳"
