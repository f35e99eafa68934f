"""Statistics from a real store (SQLite and PostgreSQL) filled and reviewed through the store and review APIs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from card_builders import REGISTRY
from models.card import CardStatus
from ocr.review import approve_card, correct_fields, mark_illegible, reject_card
from ocr.stats import FieldCorrections, ReviewerDay, statistics, totals
from ocr.store import Store
from ocr.transmit.config import Config
from ocr.transmit.outbox import approve_auto_accepted
from test_arrivals import CardFiller

ZONE = Config().deadline.zone
FOREIGN_FIELDS = len(REGISTRY.card_type("foreign_guest").fields)


@pytest.fixture()
def filler(tmp_path: Path, store_url: str) -> Iterator[CardFiller]:
    store = Store(url=store_url, data_dir=tmp_path / "data")
    yield CardFiller(store)
    store.close()


def _today() -> date:
    return datetime.now(UTC).astimezone(ZONE).date()


def _review_work(filler: CardFiller) -> dict[str, int]:
    """Store four cards and review three of them as two reviewers; return the card ids by role.

    Fields that needed a person: surname and document_number of "flagged"
    (low confidence), room_number of "clean" (corrected without a flag) and
    surname of "second" (low confidence, corrected).
    """
    store = filler.store
    ids = {
        "clean": filler.add("card_01_foreign_printed"),
        "flagged": filler.add("card_06_foreign_printed", low_confidence=("surname", "document_number")),
        "second": filler.add("card_02_foreign_handwriting", low_confidence=("surname",)),
        "untouched": filler.add("card_10_foreign_printed"),
    }
    version = correct_fields(store, ids["clean"], {"room_number": "B1633"}, actor="王芳", expected_version=1)
    assert version == 2
    version = correct_fields(store, ids["flagged"], {"surname": "NAKAMOTO"}, actor="王芳", expected_version=1)
    approve_card(store, ids["flagged"], actor="王芳", expected_version=version)
    version = correct_fields(store, ids["second"], {"surname": "YUN"}, actor="李雷", expected_version=1)
    reject_card(store, ids["second"], actor="李雷", expected_version=version, kind="rescan")
    return ids


def test_cards_and_automation_per_day(filler: CardFiller) -> None:
    _review_work(filler)
    today = _today()
    # The day before and after are included, so a run across midnight still counts every card.
    stats = statistics(filler.store, today - timedelta(days=1), today + timedelta(days=1), ZONE)

    assert [day.day for day in stats.cards_per_day] == [today - timedelta(days=1), today, today + timedelta(days=1)]
    summary = totals(stats)
    assert summary["cards"] == 4
    assert summary["fields"] == 4 * FOREIGN_FIELDS
    assert summary["automated"] == 4 * FOREIGN_FIELDS - 4
    assert summary["rate"] == pytest.approx((4 * FOREIGN_FIELDS - 4) / (4 * FOREIGN_FIELDS))
    busy = [day for day in stats.automation_per_day if day.fields]
    assert all(day.rate == pytest.approx(day.automated / day.fields) for day in busy)


def test_unreviewed_flags_count_against_rate(filler: CardFiller) -> None:
    filler.add("card_01_foreign_printed", low_confidence=("surname", "given_names", "room_number"))
    today = _today()
    summary = totals(statistics(filler.store, today - timedelta(days=1), today + timedelta(days=1), ZONE))
    assert summary["fields"] == FOREIGN_FIELDS
    assert summary["automated"] == FOREIGN_FIELDS - 3


def test_corrections_per_field(filler: CardFiller) -> None:
    _review_work(filler)
    today = _today()
    stats = statistics(filler.store, today - timedelta(days=1), today + timedelta(days=1), ZONE)
    assert stats.corrections_per_field == [
        FieldCorrections(field_key="surname", corrections=2),
        FieldCorrections(field_key="room_number", corrections=1),
    ]


def test_reviewer_throughput(filler: CardFiller) -> None:
    _review_work(filler)
    # The automatic approval before transmission is not a reviewer's work.
    assert approve_auto_accepted(filler.store, REGISTRY) == 2
    today = _today()
    stats = statistics(filler.store, today - timedelta(days=1), today + timedelta(days=1), ZONE)

    by_reviewer: dict[str, ReviewerDay] = {}
    for entry in stats.reviewer_days:
        merged = by_reviewer.setdefault(entry.reviewer, ReviewerDay(day=entry.day, reviewer=entry.reviewer))
        merged.confirmed += entry.confirmed
        merged.corrected += entry.corrected
        merged.approved += entry.approved
        merged.rejected += entry.rejected
    assert set(by_reviewer) == {"王芳", "李雷"}
    wang, li = by_reviewer["王芳"], by_reviewer["李雷"]
    assert (wang.corrected, wang.confirmed, wang.approved, wang.rejected) == (2, 1, 1, 0)
    assert (li.corrected, li.confirmed, li.approved, li.rejected) == (1, 0, 0, 1)


def test_empty_range_has_zero_days(filler: CardFiller) -> None:
    _review_work(filler)
    stats = statistics(filler.store, date(2020, 1, 1), date(2020, 1, 3), ZONE)
    assert [day.cards for day in stats.cards_per_day] == [0, 0, 0]
    assert [day.rate for day in stats.automation_per_day] == [None, None, None]
    assert stats.corrections_per_field == []
    assert stats.reviewer_days == []
    assert totals(stats)["rate"] is None


def test_statuses_after_review(filler: CardFiller) -> None:
    ids = _review_work(filler)
    assert filler.store.get_card(ids["flagged"]).status == CardStatus.APPROVED
    assert filler.store.get_card(ids["second"]).status == CardStatus.REJECTED
    assert filler.store.get_card(ids["clean"]).status == CardStatus.AUTO_ACCEPTED


def test_illegible_field_counts_for_reviewer(filler: CardFiller) -> None:
    card_id = filler.add("card_01_foreign_printed")
    mark_illegible(filler.store, card_id, ["room_number"], actor="王芳", expected_version=1)
    today = _today()
    stats = statistics(filler.store, today - timedelta(days=1), today + timedelta(days=1), ZONE)

    [entry] = stats.reviewer_days
    assert (entry.reviewer, entry.illegible, entry.corrected, entry.confirmed) == ("王芳", 1, 0, 0)
    assert totals(stats)["automated"] == FOREIGN_FIELDS - 1
    assert stats.corrections_per_field == []
