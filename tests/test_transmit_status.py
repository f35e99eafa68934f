"""What `status` and `transmit` tell the clerk after failed, interrupted and late deliveries.

Every case runs the command line against a real SQLite store and, where records
are sent, a real HTTP receiver on 127.0.0.1 (or a port where nothing listens).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from models.card import CardStatus
from ocr.errors import ExitCode
from ocr.store import Store
from ocr.transmit.config import load_config
from ocr.transmit.deadline import deadline_report
from test_transmit_support import (
    REGISTRY,
    Cards,
    Receiver,
    ReceiverServer,
    foreign_values,
    sample_png,
    signed_in_review_app,
    write_config,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
COMMAND_TIMEOUT_S = 60
# Run the command line as a terminal would: Ctrl-C raises KeyboardInterrupt even when the test runner ignores SIGINT.
INTERACTIVE_MAIN = "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); from ocr.cli import main; main()"


def in_days(days: int) -> str:
    return (datetime.now(SHANGHAI) + timedelta(days=days)).date().isoformat()


@pytest.fixture()
def cards(tmp_path: Path) -> Cards:
    cards = Cards(Store(data_dir=tmp_path / "data"), sample_png())
    # Two arrival dates, so two batches; both due in two days, so nothing is overdue.
    cards.add(foreign_values("0012345", in_days(2)))
    cards.add(foreign_values("0012346", in_days(2)))
    cards.add(foreign_values("0012347", in_days(3)))
    cards.store.close()
    return cards


def cli_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), NO_PROXY="127.0.0.1,localhost")
    env.pop("HUKA_CONFIG", None)
    env.pop("HUKA_LANG", None)
    return env


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ocr", *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def https_config(tmp_path: Path, url: str, **overrides) -> Path:
    values = {"adapter": "https", "url": url, "timeout": 20.0, "retries": 1, "backoff": 0.01, "hotel_id": "H001"}
    values.update(overrides)
    return write_config(tmp_path / "hukacapture.toml", **values)


def test_refused_batches_not_counted_as_sent(tmp_path: Path, cards: Cards):
    config = https_config(tmp_path, f"http://127.0.0.1:{free_port()}/batches")

    sent = run_cli(["transmit", "--config", str(config), "--data-dir", "data"], tmp_path)
    zh = run_cli(["status", "--config", str(config), "--data-dir", "data"], tmp_path)
    en = run_cli(["--lang", "en", "status", "--config", str(config), "--data-dir", "data"], tmp_path)

    assert sent.returncode == ExitCode.PARTIAL, sent.stderr
    assert "失败 2 个" in sent.stdout
    assert zh.returncode == 0, zh.stderr
    assert "未送达 3 条" in zh.stdout
    assert "已发送待确认 0 条" in zh.stdout
    assert "未送达：批次 1（2 条，已尝试 1 次）。最后一次错误：上报失败" in zh.stdout
    assert "连接失败（ConnectionError）" in zh.stdout
    assert "未送达：批次 2（1 条" in zh.stdout
    assert en.returncode == 0, en.stderr
    assert "3 not delivered yet" in en.stdout
    assert "0 sent and awaiting acknowledgement" in en.stdout
    assert "last error: delivery failed" in en.stdout
    assert "connection failed (ConnectionError)" in en.stdout


def test_failed_batch_printed_once(tmp_path: Path, cards: Cards):
    config = https_config(tmp_path, f"http://127.0.0.1:{free_port()}/batches")

    result = run_cli(["transmit", "--config", str(config), "--data-dir", "data"], tmp_path)

    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == ExitCode.PARTIAL
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("批次 1：上报失败")
    assert "ERROR" not in result.stderr
    assert "Traceback" not in result.stderr


def test_manual_upload_counted_as_sent(tmp_path: Path, cards: Cards):
    config = write_config(tmp_path / "hukacapture.toml", adapter="manual", manual_folder=tmp_path / "upload")

    run_cli(["transmit", "--config", str(config), "--data-dir", "data"], tmp_path)
    report = deadline_report(Store(data_dir=tmp_path / "data"), load_config(config))

    assert len(report.unconfirmed) == 3
    assert report.undelivered == []


def test_interrupted_run_says_what_was_sent(tmp_path: Path, cards: Cards):
    receiver = Receiver(script=["delay:30"])
    with ReceiverServer(receiver) as server:
        config = https_config(tmp_path, server.url)
        sender = subprocess.Popen(
            [sys.executable, "-c", INTERACTIVE_MAIN, "transmit", "--config", str(config), "--data-dir", "data"],
            cwd=tmp_path,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert receiver.received.wait(COMMAND_TIMEOUT_S), "the receiver got no request"
            sender.send_signal(signal.SIGINT)
            _stdout, stderr = sender.communicate(timeout=COMMAND_TIMEOUT_S)
        finally:
            if sender.poll() is None:
                sender.kill()
                sender.wait()
    status = run_cli(["status", "--config", str(config), "--data-dir", "data"], tmp_path)

    assert sender.returncode == 130, stderr
    assert "transmit 已中断：已确认 0 个批次" in stderr
    assert "批次 1 发送中被中断" in stderr
    assert "重新运行 python -m ocr transmit 会继续发送" in stderr
    assert "Traceback" not in stderr
    assert "已入库的卡片" not in stderr
    assert "已发送待确认 0 条" in status.stdout
    assert "未送达 3 条" in status.stdout


def test_list_shows_delivering_adapter(tmp_path: Path, cards: Cards):
    refused = https_config(tmp_path, f"http://127.0.0.1:{free_port()}/batches")
    run_cli(["transmit", "--config", str(refused), "--data-dir", "data"], tmp_path)
    manual = write_config(tmp_path / "manual.toml", adapter="manual", manual_folder=tmp_path / "upload")

    delivered = run_cli(["transmit", "--config", str(manual), "--data-dir", "data"], tmp_path)
    listing = run_cli(["transmit", "--list", "--config", str(manual), "--data-dir", "data"], tmp_path)

    assert delivered.returncode == 0, delivered.stderr
    rows = [line.split("\t") for line in listing.stdout.splitlines()]
    assert len(rows) == 2
    assert [row[5] for row in rows] == ["manual", "manual"]


def test_review_overdue_named_in_status(tmp_path: Path):
    cards = Cards(Store(data_dir=tmp_path / "data"), sample_png())
    in_review = cards.add(foreign_values("0012345", in_days(-3)), approve=False)
    version = cards.store.get_card(in_review).version
    cards.store.set_status(in_review, CardStatus.NEEDS_REVIEW, actor="王芳", expected_version=version)
    cards.store.close()

    zh = run_cli(["status", "--data-dir", "data"], tmp_path)
    en = run_cli(["--lang", "en", "status", "--data-dir", "data"], tmp_path)

    assert zh.returncode == ExitCode.OVERDUE, zh.stderr
    assert "已逾期 0 条" in zh.stdout
    assert "审核中已逾期 1 张" in zh.stdout
    assert f"请尽快审核：卡片 {in_review}" in zh.stdout
    assert en.returncode == ExitCode.OVERDUE
    assert "1 in review past their deadline" in en.stdout


def open_review_app(tmp_path: Path, config: Path, monkeypatch):
    """Sign in to the review app on the store in ``tmp_path / "data"`` with ``config``, as reviewer 王芳."""
    monkeypatch.setenv("HUKA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HUKA_CONFIG", str(config))
    monkeypatch.delenv("HUKA_DB_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return signed_in_review_app("王芳", "kaishi-2025")


def test_review_app_panel_shows_undelivered(tmp_path: Path, cards: Cards, monkeypatch):
    from ocr.accounts import Role, add_user

    config = https_config(tmp_path, f"http://127.0.0.1:{free_port()}/batches")
    sent = run_cli(["transmit", "--config", str(config), "--data-dir", "data"], tmp_path)
    assert sent.returncode == ExitCode.PARTIAL, sent.stderr
    store = Store(data_dir=tmp_path / "data")
    add_user(store, "王芳", Role.REVIEWER, "kaishi-2025")
    store.close()
    app = open_review_app(tmp_path, config, monkeypatch)

    assert not app.exception, app.exception
    warnings = "\n".join(str(element.value) for element in app.sidebar.warning)
    infos = "\n".join(str(element.value) for element in app.sidebar.info)
    assert "未送达 3 条" in warnings
    assert "已发送待确认" not in infos


def due_soon_config(path: Path, hours: int) -> Path:
    """Write a manual-upload config whose "due soon" window is ``hours``."""
    write_config(path, adapter="manual", manual_folder=path.parent / "upload")
    with path.open("a", encoding="utf-8") as file:
        file.write(f"\n[deadline]\ndue_soon_hours = {hours}\n")
    return path


def test_review_due_soon_named_in_status(tmp_path: Path, monkeypatch):
    from ocr.accounts import Role, add_user

    cards = Cards(Store(data_dir=tmp_path / "data"), sample_png())
    # Arrival today: due at 00:00 tomorrow, within 48 hours whatever the hour now.
    in_review = cards.add(foreign_values("0012345", in_days(0)), approve=False)
    version = cards.store.get_card(in_review).version
    cards.store.set_status(in_review, CardStatus.NEEDS_REVIEW, actor="王芳", expected_version=version)
    add_user(cards.store, "王芳", Role.REVIEWER, "kaishi-2025")
    cards.store.close()
    config = due_soon_config(tmp_path / "hukacapture.toml", 48)

    zh = run_cli(["status", "--config", str(config), "--data-dir", "data"], tmp_path)
    en = run_cli(["--lang", "en", "status", "--config", str(config), "--data-dir", "data"], tmp_path)

    assert zh.returncode == 0, zh.stdout + zh.stderr
    assert "审核中 48 小时内到期 1 张" in zh.stdout
    assert f"审核中 48 小时内到期 1 张：卡片 {in_review}。请在期限前审核。" in zh.stdout
    assert en.returncode == 0, en.stderr
    assert "1 in review due within 48 h" in en.stdout
    assert f"in review, due within 48 h: 1 cards: {in_review}" in en.stdout

    app = open_review_app(tmp_path, config, monkeypatch)

    assert not app.exception, app.exception
    warnings = "\n".join(str(element.value) for element in app.sidebar.warning)
    assert f"审核中 48 小时内到期 1 张：卡片 {in_review}" in warnings


def test_auto_accepted_told_to_transmit(tmp_path: Path):
    cards = Cards(Store(data_dir=tmp_path / "data"), sample_png())
    late = cards.add(foreign_values("0012345", in_days(-3)), approve=False)
    on_time = cards.add(foreign_values("0012346", in_days(3)), approve=False)
    assert cards.store.get_card(late).status == CardStatus.AUTO_ACCEPTED
    cards.store.close()

    zh = run_cli(["status", "--data-dir", "data"], tmp_path)
    en = run_cli(["--lang", "en", "status", "--data-dir", "data"], tmp_path)

    assert zh.returncode == ExitCode.OVERDUE, zh.stderr
    assert "审核中已逾期 0 张" in zh.stdout
    assert "请尽快审核" not in zh.stdout
    assert "自动通过未发送 2 张（已逾期 1 张）" in zh.stdout
    assert f"卡片 {late}, {on_time}。请运行 python -m ocr transmit" in zh.stdout
    assert en.returncode == ExitCode.OVERDUE
    assert "0 in review past their deadline" in en.stdout
    assert "2 auto-accepted and not sent yet (1 overdue)" in en.stdout
    assert "run python -m ocr transmit, which approves and sends them" in en.stdout


def test_auto_accepted_on_time_exits_zero(tmp_path: Path):
    cards = Cards(Store(data_dir=tmp_path / "data"), sample_png())
    cards.add(foreign_values("0012345", in_days(3)), approve=False)
    cards.store.close()

    zh = run_cli(["status", "--data-dir", "data"], tmp_path)

    assert zh.returncode == 0, zh.stderr
    assert "自动通过未发送 1 张（已逾期 0 张）" in zh.stdout


def test_status_during_transmit_run(tmp_path: Path):
    cards = Cards(Store(data_dir=tmp_path / "data"), sample_png())
    # The later arrival is queued first, so its batch (2) comes first in the queue.
    cards.add(foreign_values("0012345", in_days(3)))
    cards.add(foreign_values("0012346", in_days(2)))
    cards.store.close()
    receiver = Receiver(script=["delay:30"])
    with ReceiverServer(receiver) as server:
        config = https_config(tmp_path, server.url)
        sender = subprocess.Popen(
            [sys.executable, "-m", "ocr", "transmit", "--config", str(config), "--data-dir", "data"],
            cwd=tmp_path,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert receiver.received.wait(COMMAND_TIMEOUT_S), "the receiver got no request"
            during = run_cli(["status", "--config", str(config), "--data-dir", "data"], tmp_path)
            receiver.release.set()
            sender.communicate(timeout=COMMAND_TIMEOUT_S)
        finally:
            if sender.poll() is None:
                sender.kill()
                sender.wait()

    assert during.returncode == 0, during.stderr
    assert "transmit 正在运行" in during.stdout
    assert "请重新运行" not in during.stdout
    first = during.stdout.index("未送达：批次 1（")
    second = during.stdout.index("未送达：批次 2（")
    assert first < second
    assert sender.returncode == 0


def test_undelivered_batches_sorted_by_id(tmp_path: Path):
    cards = Cards(Store(data_dir=tmp_path / "data"), sample_png())
    cards.add(foreign_values("0012345", in_days(3)))
    cards.add(foreign_values("0012346", in_days(2)))
    cards.store.close()
    config = https_config(tmp_path, f"http://127.0.0.1:{free_port()}/batches")
    run_cli(["transmit", "--config", str(config), "--data-dir", "data"], tmp_path)

    status = run_cli(["status", "--config", str(config), "--data-dir", "data"], tmp_path)

    assert "transmit 正在运行" not in status.stdout
    assert status.stdout.index("未送达：批次 1（") < status.stdout.index("未送达：批次 2（")


def test_corrections_and_cancellations_counted_apart(tmp_path: Path):
    from ocr.review import correct_fields, reject_card

    cards = Cards(Store(data_dir=tmp_path / "data"), sample_png())
    corrected = cards.add(foreign_values("0012345", in_days(2)))
    rejected = cards.add(foreign_values("0012346", in_days(2)))
    config = write_config(tmp_path / "hukacapture.toml", adapter="manual", manual_folder=tmp_path / "upload")
    sent = run_cli(["transmit", "--config", str(config), "--data-dir", "data"], tmp_path)
    assert sent.returncode == 0, sent.stderr
    store = cards.store
    correct_fields(
        store, corrected, {"room_number": "1209"}, actor="王芳",
        expected_version=store.get_card(corrected).version, registry=REGISTRY,
    )
    reject_card(store, rejected, actor="王芳", expected_version=store.get_card(rejected).version, kind="front_desk")
    store.close()

    zh = run_cli(["status", "--config", str(config), "--data-dir", "data"], tmp_path)
    en = run_cli(["--lang", "en", "status", "--config", str(config), "--data-dir", "data"], tmp_path)

    assert zh.returncode == 0, zh.stderr
    assert "待发送的更正 1 条，撤销 1 条" in zh.stdout
    assert en.returncode == 0, en.stderr
    assert "1 corrections and 1 cancellations queued" in en.stdout
