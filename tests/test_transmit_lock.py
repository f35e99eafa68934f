"""One transmit run at a time per store, on SQLite and PostgreSQL, and no raw database error.

Two stations share one database but see the shared data folder under their own
paths, so a lock file in the data folder does not make them wait for each other.
Each test runs on both back ends (see conftest.py).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocr.datafolder import MARKER_NAME
from ocr.errors import ExitCode
from ocr.store import ArchiveRow, Store
from ocr.transmit import runner
from ocr.transmit.config import load_config
from ocr.transmit.runner import TransmitConflictError, TransmitRunningError, run_transmit
from test_transmit_support import REGISTRY, Cards, Receiver, ReceiverServer, foreign_values, sample_png, write_config

DAY = "2025-12-15"
WAIT_S = 30


@pytest.fixture()
def cards(tmp_path: Path, store_url: str, monkeypatch) -> Iterator[Cards]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    store = Store(url=store_url, data_dir=tmp_path / "data")
    cards = Cards(store, sample_png())
    cards.add(foreign_values("0012345", DAY))
    cards.add(foreign_values("0012346", "2025-12-16"))
    yield cards
    store.close()


def second_station(tmp_path: Path, cards: Cards) -> Store:
    """Open the same database with the shared data folder seen under another path, as a second machine does."""
    other = tmp_path / "station2" / "data"
    other.mkdir(parents=True)
    shutil.copy(cards.store.data_dir / MARKER_NAME, other / MARKER_NAME)
    shutil.copytree(cards.store.image_dir, other / "images")
    return Store(url=cards.store.url, data_dir=other)


def test_second_station_waits_for_lock(tmp_path: Path, cards: Cards):
    receiver = Receiver(script=["delay:20"])
    with ReceiverServer(receiver) as server:
        config = load_config(
            write_config(tmp_path / "hukacapture.toml", adapter="https", url=server.url, timeout=30.0, retries=1, hotel_id="H001")
        )
        outcome: dict[str, object] = {}

        def first_run() -> None:
            outcome["report"] = run_transmit(cards.store, config, registry=REGISTRY)

        thread = threading.Thread(target=first_run)
        thread.start()
        try:
            assert receiver.received.wait(WAIT_S), "the first run sent nothing"
            station2 = second_station(tmp_path, cards)
            with pytest.raises(TransmitRunningError) as raised:
                run_transmit(station2, config, registry=REGISTRY)
        finally:
            receiver.release.set()
            thread.join(WAIT_S)
        station2.close()

    assert raised.value.exit_code == ExitCode.CONFIG_INVALID
    assert "另一个 transmit 正在运行" in raised.value.message_zh
    assert len(outcome["report"].acknowledged) == 2
    assert receiver.requests == 2
    assert receiver.duplicates == 0


def test_lock_released_after_run(tmp_path: Path, cards: Cards):
    with ReceiverServer() as server:
        config = load_config(write_config(tmp_path / "hukacapture.toml", adapter="https", url=server.url, hotel_id="H001"))
        run_transmit(cards.store, config, registry=REGISTRY)
        station2 = second_station(tmp_path, cards)
        try:
            rerun = run_transmit(station2, config, registry=REGISTRY)
        finally:
            station2.close()

    assert rerun.failed == []
    assert rerun.formed == 0


def test_integrity_error_becomes_conflict(tmp_path: Path, cards: Cards, monkeypatch):
    # The race itself needs two runs past the lock; a real duplicate insert makes the database reject the write.
    def archive_twice(store: Store, config, data_dir: Path) -> int:
        card_id = cards.store.list_cards()[0].id
        for _ in range(2):
            with store.session() as session:
                session.add(ArchiveRow(card_id=card_id, arrival_date=DAY, category="外宾", folder=str(data_dir)))
        return 0

    monkeypatch.setattr(runner, "archive_acknowledged", archive_twice)
    config = load_config(write_config(tmp_path / "hukacapture.toml", adapter="folder", folder=tmp_path / "drop"))

    with pytest.raises(TransmitConflictError) as raised:
        run_transmit(cards.store, config, registry=REGISTRY)

    assert raised.value.exit_code == ExitCode.CONFLICT
    assert "另一个进程" in raised.value.message_zh
    assert "重新运行 transmit" in raised.value.message_zh
