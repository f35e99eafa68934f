"""Card search and its log, on a real store (SQLite and PostgreSQL) filled with cards built from the samples."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from ocr.search import (
    KEY_FILE_NAME,
    SEARCH_LOG_KEY_ENV,
    SearchError,
    SearchKind,
    SearchLogRow,
    mask_query,
    query_digest,
    search_cards,
    search_log,
)
from ocr.arrivals import arrivals_report
from ocr.store import Store
from ocr.transmit.config import Config
from test_arrivals import CardFiller

REVIEWER = "王芳"


@pytest.fixture()
def filler(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CardFiller]:
    monkeypatch.delenv(SEARCH_LOG_KEY_ENV, raising=False)
    store = Store(url=store_url, data_dir=tmp_path / "data")
    filler = CardFiller(store)
    # TANAKA KENJI (JPN passport CW4645765, room B1632), CHEUNG MAN YEE 张芳 (HK permit), 金鑫 (domestic).
    filler.add("card_01_foreign_printed")
    filler.add("card_10_foreign_printed")
    filler.add("card_03_domestic_printed")
    filler.add("card_01_foreign_printed", surname="TANAKA", given_names="YUKI", room_number="B1633", card_serial="0038566")
    yield filler
    store.close()


def _names(result) -> list[str]:
    return sorted(hit.name for hit in result.hits)


NAME_QUERIES = [
    ("tanaka", ["TANAKA KENJI", "TANAKA YUKI"]),
    ("Kenji Tanaka", ["TANAKA KENJI"]),
    ("ＴＡＮＡＫＡ　ＫＥＮＪＩ", ["TANAKA KENJI"]),
    ("man yee", ["CHEUNG MAN YEE 张芳"]),
    ("张芳", ["CHEUNG MAN YEE 张芳"]),
    ("金鑫", ["金鑫"]),
    ("SMITH", []),
]


def test_search_by_name(filler: CardFiller) -> None:
    for query, names in NAME_QUERIES:
        result = search_cards(filler.store, SearchKind.NAME, query, actor=REVIEWER)
        assert _names(result) == names, f"query {query!r}"
        assert result.total == len(names), f"query {query!r}"
    assert len(search_log(filler.store)) == len(NAME_QUERIES)


def test_search_by_document_part(filler: CardFiller) -> None:
    result = search_cards(filler.store, "document", "4645765", actor=REVIEWER)
    assert _names(result) == ["TANAKA KENJI", "TANAKA YUKI"]
    assert result.hits[0].document_masked == "*****5765"
    assert result.hits[0].matched_keys == ["document_number"]


def test_search_by_resident_id(filler: CardFiller) -> None:
    result = search_cards(filler.store, "document", "440106 19740306 7734", actor=REVIEWER)
    assert _names(result) == ["金鑫"]
    assert result.hits[0].matched_keys == ["id_number"]


def test_search_by_room_is_exact(filler: CardFiller) -> None:
    assert _names(search_cards(filler.store, "room", "b1632", actor=REVIEWER)) == ["TANAKA KENJI"]
    assert _names(search_cards(filler.store, "room", "B16", actor=REVIEWER)) == []


def test_search_by_arrival_date(filler: CardFiller) -> None:
    result = search_cards(filler.store, "date", "2025/12/15", actor=REVIEWER)
    assert _names(result) == ["TANAKA KENJI", "TANAKA YUKI"]
    assert all(hit.arrival_date == "2025-12-15" for hit in result.hits)


@pytest.mark.parametrize(
    ("kind", "query", "problem"),
    [("name", "T", "至少输入 2 个字符"), ("document", "576", "至少输入 4 个字符"), ("date", "2025-02-30", "日期 '2025-02-30' 无效")],
)
def test_invalid_query_not_run_or_logged(filler: CardFiller, kind: str, query: str, problem: str) -> None:
    with pytest.raises(SearchError) as caught:
        search_cards(filler.store, kind, query, actor=REVIEWER)
    assert problem in caught.value.message("zh")
    assert search_log(filler.store) == []


def test_search_needs_an_actor(filler: CardFiller) -> None:
    with pytest.raises(SearchError):
        search_cards(filler.store, "name", "tanaka", actor=" ")
    assert search_log(filler.store) == []


def test_search_is_logged_without_query(filler: CardFiller) -> None:
    search_cards(filler.store, "name", "Kenji Tanaka", actor=REVIEWER)
    search_cards(filler.store, "document", "CW4645765", actor="李雷")

    entries = search_log(filler.store)
    assert [(e.actor, e.kind, e.result_count) for e in entries] == [("李雷", "document", 2), (REVIEWER, "name", 1)]
    assert entries[0].query_masked == "****65"
    assert entries[1].query_masked == "K***"
    with filler.store.session() as session:
        rows = session.scalars(select(SearchLogRow)).all()
        stored = " ".join(f"{row.actor} {row.kind} {row.query_masked} {row.query_hmac}" for row in rows)
    for plain in ("KENJI", "Kenji", "TANAKA", "Tanaka", "CW4645765", "4645765"):
        assert plain not in stored


def test_log_filters_by_digest_of_value(filler: CardFiller) -> None:
    search_cards(filler.store, "name", "tanaka kenji", actor=REVIEWER)
    search_cards(filler.store, "name", "cheung", actor=REVIEWER)

    # The same name typed otherwise has the same digest.
    digest = query_digest(filler.store, "name", "TANAKA  Kenji")
    matching = search_log(filler.store, query_hmac=digest)
    assert [e.result_count for e in matching] == [1]
    assert search_log(filler.store, actor="李雷") == []
    assert query_digest(filler.store, "room", "tanaka kenji") != digest


def test_digest_key_file_is_private(filler: CardFiller) -> None:
    query_digest(filler.store, "room", "1208")
    key_file = filler.store.data_dir / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text(encoding="ascii").strip()) == 64


def test_digest_key_from_environment(filler: CardFiller, monkeypatch: pytest.MonkeyPatch) -> None:
    from ocr.crypto import KEY_ENV, generate_key

    from_file = query_digest(filler.store, "room", "1208")
    monkeypatch.setenv(KEY_ENV, generate_key())
    from_encryption_key = query_digest(filler.store, "room", "1208")
    monkeypatch.setenv(SEARCH_LOG_KEY_ENV, "site secret shared by every server")
    from_env = query_digest(filler.store, "room", "1208")
    assert len({from_file, from_encryption_key, from_env}) == 3
    assert query_digest(filler.store, "room", " 1208 ") == from_env


@pytest.mark.parametrize(
    ("kind", "query", "masked"),
    [
        ("name", "tanaka", "T***"),
        ("name", "张芳", "张***"),
        ("document", "CW4645765", "****65"),
        ("document", "1234", "****"),
        ("room", "B1632", "B***"),
        ("date", "2025-12-15", "2025-12-**"),
    ],
)
def test_mask_query(kind: str, query: str, masked: str) -> None:
    assert mask_query(SearchKind(kind), query) == masked


def test_search_over_encrypted_values(
    tmp_path: Path, new_store_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from ocr.crypto import KEY_ENV, generate_key

    monkeypatch.setenv(KEY_ENV, generate_key())
    store = Store(url=new_store_url("encrypted"), data_dir=tmp_path / "encrypted")
    filler = CardFiller(store)
    card_id = filler.add("card_01_foreign_printed")
    with store.session() as session:
        stored = session.execute(
            text("SELECT value FROM fields WHERE card_id = :card AND key = 'surname'"), {"card": card_id}
        ).scalar_one()
    assert stored.startswith("enc1:")

    assert [hit.card_id for hit in search_cards(store, "name", "tanaka kenji", actor=REVIEWER).hits] == [card_id]
    assert [hit.card_id for hit in search_cards(store, "room", "B1632", actor=REVIEWER).hits] == [card_id]
    # The overview reads the same column: the serial and the arrival date come back decrypted.
    [day] = arrivals_report(store, Config(), date(2025, 12, 15), date(2025, 12, 15)).days
    assert day.scanned == 1
    assert day.serials.first == "0038565"
    store.close()
