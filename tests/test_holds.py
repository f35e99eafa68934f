"""Holds on cards in review: taking, renewing, expiry, release, races and the review actions, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from models.card import CardStatus
from ocr.errors import ConfigError
from ocr.holds import (
    CardHeldError,
    active_holds,
    check_hold,
    hold_minutes,
    release_hold,
    release_holds_of,
    take_hold,
)
from ocr.review import approve_card, correct_fields, mark_illegible, reject_card
from test_review_app import make_review_store


@pytest.fixture
def review(store_url: str, tmp_path: Path):
    created = make_review_store(tmp_path, cards=2, db_url=store_url)
    yield created
    created.store.close()


def test_take_and_renew(review) -> None:
    card_id = review.card_ids[0]
    first = take_hold(review.store, card_id, "王芳", minutes=10)
    later = first.taken_at + timedelta(minutes=3)
    renewed = take_hold(review.store, card_id, "王芳", minutes=10, now=later)
    assert renewed.holder == "王芳"
    assert renewed.taken_at == first.taken_at
    assert renewed.expires_at == later + timedelta(minutes=10)
    assert active_holds(review.store, now=later)[card_id].expires_at == renewed.expires_at


def test_other_holder_refused(review) -> None:
    card_id = review.card_ids[0]
    take_hold(review.store, card_id, "王芳")
    with pytest.raises(CardHeldError) as raised:
        take_hold(review.store, card_id, "李雷")
    assert raised.value.hold.holder == "王芳"
    assert "正由 王芳 审核" in raised.value.message_zh
    assert "being reviewed by 王芳" in raised.value.message_en
    # The other card is free.
    assert take_hold(review.store, review.card_ids[1], "李雷").holder == "李雷"


def test_expired_hold_taken_over(review) -> None:
    card_id = review.card_ids[0]
    hold = take_hold(review.store, card_id, "王芳", minutes=10)
    after = hold.expires_at + timedelta(seconds=1)
    assert active_holds(review.store, now=after) == {}
    check_hold(review.store, card_id, "李雷", now=after)
    taken = take_hold(review.store, card_id, "李雷", minutes=10, now=after)
    assert taken.holder == "李雷"
    assert taken.taken_at == after


def test_release_own_and_forced(review) -> None:
    first, second = review.card_ids
    take_hold(review.store, first, "王芳")
    assert not release_hold(review.store, first, holder="李雷")
    assert active_holds(review.store)[first].holder == "王芳"
    assert release_hold(review.store, first, released_by="赵主管")
    assert active_holds(review.store) == {}

    take_hold(review.store, first, "王芳")
    take_hold(review.store, second, "王芳")
    assert release_holds_of(review.store, "王芳", keep=second) == 1
    assert set(active_holds(review.store)) == {second}


def test_check_hold(review) -> None:
    card_id = review.card_ids[0]
    check_hold(review.store, card_id, "李雷")
    take_hold(review.store, card_id, "王芳")
    check_hold(review.store, card_id, "王芳")
    with pytest.raises(CardHeldError):
        check_hold(review.store, card_id, "李雷")


def test_simultaneous_takes_one_wins(review) -> None:
    card_id = review.card_ids[0]
    names = [f"reviewer{index}" for index in range(6)]
    barrier = threading.Barrier(len(names))
    winners: list[str] = []
    refused: list[str] = []
    errors: list[BaseException] = []

    def attempt(name: str) -> None:
        barrier.wait()
        try:
            take_hold(review.store, card_id, name)
            winners.append(name)
        except CardHeldError as exc:
            refused.append(exc.hold.holder)
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(winners) == 1
    assert len(refused) == len(names) - 1
    assert set(refused) == set(winners)
    assert active_holds(review.store)[card_id].holder == winners[0]


def test_review_actions_refused_while_held(review) -> None:
    card_id = review.card_ids[0]
    take_hold(review.store, card_id, "王芳")
    actions = [
        lambda: correct_fields(review.store, card_id, {"room_number": "1210"}, actor="李雷", expected_version=1),
        lambda: mark_illegible(review.store, card_id, ["room_number"], actor="李雷", expected_version=1),
        lambda: approve_card(review.store, card_id, actor="李雷", expected_version=1),
        lambda: reject_card(review.store, card_id, actor="李雷", expected_version=1, kind="rescan", note="模糊"),
    ]
    for action in actions:
        with pytest.raises(CardHeldError):
            action()
    card = review.store.get_card(card_id)
    assert card.version == 1
    assert card.status == CardStatus.NEEDS_REVIEW
    # The holder goes on.
    assert correct_fields(review.store, card_id, {"room_number": "1210"}, actor="王芳", expected_version=1) == 2


def test_hold_minutes_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUKA_HOLD_MIN", raising=False)
    assert hold_minutes() == 10
    monkeypatch.setenv("HUKA_HOLD_MIN", "2.5")
    assert hold_minutes() == 2.5
    for bad in ("0", "-1", "ten"):
        monkeypatch.setenv("HUKA_HOLD_MIN", bad)
        with pytest.raises(ConfigError, match="HUKA_HOLD_MIN"):
            hold_minutes()
