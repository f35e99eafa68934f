"""Folder drop, manual upload with confirm, archive, retention and the deadline watch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from models.card import CardStatus
from ocr.errors import ConfigError, ExitCode
from ocr.store import ArchiveRow, Store
from ocr.transmit import outbox
from ocr.transmit.archive import purge_expired
from ocr.transmit.config import load_config
from ocr.transmit.deadline import deadline_report
from ocr.transmit.runner import ConfirmError, confirm_manual, run_transmit
from test_transmit_support import REGISTRY, Cards, domestic_values, foreign_values, sample_png, signed_in_review_app, write_config

DAY = "2025-12-15"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
COMMAND_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def png() -> bytes:
    return sample_png()


@pytest.fixture()
def cards(tmp_path: Path, png: bytes) -> Cards:
    return Cards(Store(data_dir=tmp_path / "data"), png)


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    env.pop("HUKA_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "ocr", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
    )


def test_folder_drop_writes_complete_files(tmp_path: Path, cards: Cards):
    cards.add(foreign_values("0012345", DAY))
    cards.add(domestic_values("0000101", DAY), card_type="domestic_guest")
    drop = tmp_path / "drop"
    config = load_config(write_config(tmp_path / "hukacapture.toml", adapter="folder", folder=drop, format="jsonl"))

    report = run_transmit(cards.store, config, registry=REGISTRY)

    assert len(report.acknowledged) == 2
    names = sorted(p.name for p in drop.iterdir())
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]
    manifests = [drop / n for n in names if n.endswith(".manifest.json")]
    assert len(manifests) == 2
    for path in manifests:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        data = (drop / manifest["file"]["name"]).read_bytes()
        assert len(data) == manifest["file"]["bytes"]
        assert len(data.decode("utf-8").splitlines()) == manifest["count"]
    assert all(b.acknowledged_by == "folder" for b in outbox.list_batches(cards.store))


def test_folder_missing_from_config(tmp_path: Path, cards: Cards):
    cards.add(foreign_values("0012345", DAY))
    config = load_config(write_config(tmp_path / "hukacapture.toml", adapter="folder"))

    with pytest.raises(ConfigError) as error:
        run_transmit(cards.store, config, registry=REGISTRY)

    assert "transmit.folder" in error.value.message_zh


def test_no_adapter_configured(tmp_path: Path, cards: Cards):
    config = load_config(write_config(tmp_path / "hukacapture.toml", hotel_id="H001"))

    with pytest.raises(ConfigError) as error:
        run_transmit(cards.store, config, registry=REGISTRY)

    assert "尚未配置上报方式" in error.value.message_zh


def test_manual_upload_waits_for_confirm(tmp_path: Path, cards: Cards):
    cards.add(foreign_values("0012345", DAY))
    upload = tmp_path / "upload"
    config = load_config(write_config(tmp_path / "hukacapture.toml", adapter="manual", manual_folder=upload, format="xlsx"))

    report = run_transmit(cards.store, config, registry=REGISTRY)
    (batch_id,) = report.awaiting_confirmation
    rerun = run_transmit(cards.store, config, registry=REGISTRY)
    confirmed = confirm_manual(cards.store, config, str(batch_id), clerk="李娜", receipt="GA-2025-001", by_phone=False)

    assert rerun.awaiting_confirmation == []
    assert any(p.suffix == ".xlsx" for p in upload.iterdir())
    assert confirmed.state == "acknowledged"
    assert confirmed.acknowledged_by == "李娜"
    assert confirmed.receipt == "GA-2025-001"
    assert confirmed.acknowledged_at is not None


def test_confirm_by_phone_and_twice(tmp_path: Path, cards: Cards):
    cards.add(foreign_values("0012345", DAY))
    config = load_config(write_config(tmp_path / "hukacapture.toml", adapter="manual", manual_folder=tmp_path / "up"))
    (batch_id,) = run_transmit(cards.store, config, registry=REGISTRY).awaiting_confirmation
    key = outbox.get_batch(cards.store, str(batch_id)).idempotency_key

    with pytest.raises(ConfirmError):
        confirm_manual(cards.store, config, key, clerk="李娜", receipt=None, by_phone=False)
    confirmed = confirm_manual(cards.store, config, key, clerk="李娜", receipt=None, by_phone=True)
    with pytest.raises(ConfirmError) as twice:
        confirm_manual(cards.store, config, key, clerk="张伟", receipt="X", by_phone=False)

    assert "电话确认" in confirmed.receipt
    assert "已于" in twice.value.message_zh
    assert outbox.get_batch(cards.store, key).acknowledged_by == "李娜"


def test_confirm_command_line(tmp_path: Path, cards: Cards):
    cards.add(foreign_values("0012345", DAY))
    config_file = write_config(tmp_path / "hukacapture.toml", adapter="manual", manual_folder=tmp_path / "up")
    cards.store.close()
    common = ["--config", str(config_file), "--data-dir", str(tmp_path / "data")]

    sent = run_cli(["transmit", *common], tmp_path)
    confirmed = run_cli(["confirm", "1", "--by", "李娜", "--receipt", "GA-7", *common], tmp_path)
    again = run_cli(["confirm", "1", "--by", "李娜", "--receipt", "GA-7", *common], tmp_path)
    listed = run_cli(["--lang", "en", "transmit", "--list", *common], tmp_path)

    assert sent.returncode == 0, sent.stderr
    assert "python -m ocr confirm 1" in sent.stdout
    assert confirmed.returncode == 0, confirmed.stderr
    assert "GA-7" in confirmed.stdout
    assert again.returncode == ExitCode.CONFLICT
    assert "已于" in again.stderr
    assert "acknowledged" in listed.stdout
    assert "receipt GA-7" in listed.stdout


def test_archive_by_date_and_category(tmp_path: Path, cards: Cards):
    foreign = cards.add(foreign_values("0012345", DAY))
    hong_kong = cards.add(
        foreign_values("0012346", DAY, nationality="HKG", document_type="hk_macao_permit", document_number="H12345678", visa_type="")
    )
    group = cards.add(foreign_values("0012347", "2025-12-16", visa_type="GROUP"))
    config = load_config(write_config(tmp_path / "hukacapture.toml", adapter="folder", folder=tmp_path / "drop"))

    report = run_transmit(cards.store, config, registry=REGISTRY)

    archive = tmp_path / "archive"
    expected = {
        foreign: archive / DAY / "外宾" / f"card_{foreign}",
        hong_kong: archive / DAY / "港澳台" / f"card_{hong_kong}",
        group: archive / "2025-12-16" / "团签" / f"card_{group}",
    }
    assert report.archived == 3
    for card_id, folder in expected.items():
        assert (folder / "original.png").is_file()
        assert (folder / "straight.png").is_file()
        (record_file,) = folder.glob("record_*.json")
        document = json.loads(record_file.read_text(encoding="utf-8"))
        assert document["record"]["card_id"] == card_id
        assert document["batch"]["acknowledged_by"] == "folder"


def test_archive_purged_after_retention(tmp_path: Path, cards: Cards):
    cards.add(foreign_values("0012345", DAY))
    config = load_config(write_config(tmp_path / "hukacapture.toml", adapter="folder", folder=tmp_path / "drop"))
    run_transmit(cards.store, config, registry=REGISTRY)
    folder = tmp_path / "archive" / DAY / "外宾" / "card_1"
    assert folder.is_dir()

    kept = purge_expired(cards.store)
    with cards.store.session() as session:
        session.execute(update(ArchiveRow).values(purge_after=datetime(2000, 1, 1)))
    purged = purge_expired(cards.store)

    assert kept.cards == 0
    assert purged.cards == 1
    assert not folder.exists()
    assert run_transmit(cards.store, config, registry=REGISTRY).archived == 0


def test_deadline_overdue_due_soon_unconfirmed(tmp_path: Path, cards: Cards):
    overdue = cards.add(foreign_values("0012345", "2025-12-14"))
    soon = cards.add(foreign_values("0012346", "2025-12-15"))
    later = cards.add(foreign_values("0012347", "2025-12-16"))
    in_review = cards.add(foreign_values("0012348", "2025-12-13"), approve=False)
    version = cards.store.get_card(in_review).version
    cards.store.set_status(in_review, CardStatus.NEEDS_REVIEW, actor="王芳", expected_version=version)
    config = load_config(write_config(tmp_path / "hukacapture.toml", adapter="manual", manual_folder=tmp_path / "up"))
    now = datetime(2025, 12, 15, 20, 0, tzinfo=SHANGHAI)

    report = deadline_report(cards.store, config, now=now)

    assert [item.card_id for item in report.overdue] == [overdue]
    assert [item.card_id for item in report.due_soon] == [soon]
    assert later not in [item.card_id for item in report.overdue + report.due_soon]
    assert [item.card_id for item in report.review_overdue] == [in_review]
    assert report.overdue[0].deadline == datetime(2025, 12, 15, 0, 0, tzinfo=SHANGHAI)
    assert report.unconfirmed == []

    run_transmit(cards.store, config, registry=REGISTRY)
    sent = deadline_report(cards.store, config, now=now)

    assert {item.card_id for item in sent.unconfirmed} == {overdue, soon, later}
    assert [item.card_id for item in sent.overdue] == [overdue]


def test_deadline_clears_when_acknowledged(tmp_path: Path, cards: Cards):
    cards.add(foreign_values("0012345", "2025-12-14"))
    config = load_config(write_config(tmp_path / "hukacapture.toml", adapter="folder", folder=tmp_path / "drop"))

    run_transmit(cards.store, config, registry=REGISTRY)
    report = deadline_report(cards.store, config, now=datetime(2025, 12, 20, tzinfo=SHANGHAI))

    assert report.overdue == []
    assert report.unconfirmed == []


def test_status_exits_nonzero_when_overdue(tmp_path: Path, cards: Cards):
    # Arrival two days ago: overdue whatever the hour of the test run.
    arrival = (datetime.now(SHANGHAI) - timedelta(days=2)).date().isoformat()
    cards.add(foreign_values("0012345", arrival))
    cards.store.close()

    zh = run_cli(["status", "--data-dir", "data"], tmp_path)
    en = run_cli(["--lang", "en", "status", "--data-dir", "data"], tmp_path)

    assert zh.returncode == ExitCode.OVERDUE, zh.stderr
    assert "已逾期 1 条" in zh.stdout
    assert "已逾期：卡片 1" in zh.stdout
    assert en.returncode == ExitCode.OVERDUE
    assert "1 overdue" in en.stdout
    assert "0012345" not in zh.stdout + en.stdout


def test_status_exits_zero_when_nothing_due(tmp_path: Path, cards: Cards):
    arrival = (datetime.now(SHANGHAI) + timedelta(days=2)).date().isoformat()
    cards.add(foreign_values("0012345", arrival))
    cards.store.close()

    result = run_cli(["status", "--data-dir", "data"], tmp_path)

    assert result.returncode == 0, result.stderr
    assert "已逾期 0 条" in result.stdout


def test_review_app_deadline_panel(tmp_path: Path, cards: Cards, monkeypatch):
    from ocr.accounts import Role, add_user

    overdue = cards.add(foreign_values("0012345", "2025-12-01"))
    add_user(cards.store, "王芳", Role.REVIEWER, "kaishi-2025")
    monkeypatch.setenv("HUKA_DB_URL", cards.store.url)
    monkeypatch.setenv("HUKA_DATA_DIR", str(cards.store.data_dir))
    monkeypatch.delenv("HUKA_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)

    app = signed_in_review_app("王芳", "kaishi-2025")

    assert not app.exception, app.exception
    errors = "\n".join(str(element.value) for element in app.sidebar.error)
    assert f"已逾期 1 条：卡片 {overdue}" in errors
    assert "0012345" not in errors


def test_confirm_twice_shows_local_time(tmp_path: Path, cards: Cards):
    cards.add(foreign_values("0012345", DAY))
    config = load_config(write_config(tmp_path / "hukacapture.toml", adapter="manual", manual_folder=tmp_path / "up"))
    (batch_id,) = run_transmit(cards.store, config, registry=REGISTRY).awaiting_confirmation
    confirmed_at = datetime(2026, 12, 5, 14, 35, tzinfo=ZoneInfo("UTC"))
    confirm_manual(cards.store, config, str(batch_id), clerk="李娜", receipt="GA-1", by_phone=False, at=confirmed_at)

    with pytest.raises(ConfirmError) as twice:
        confirm_manual(cards.store, config, str(batch_id), clerk="张伟", receipt="X", by_phone=False)

    # 14:35 UTC is 22:35 in Shanghai, the zone the deadlines are shown in.
    assert "已于 2026-12-05 22:35（Asia/Shanghai）确认" in twice.value.message_zh
    assert "UTC" not in twice.value.message_zh
    assert "2026-12-05 22:35 (Asia/Shanghai)" in twice.value.message_en


def test_transmit_rejects_local_data_folder(tmp_path: Path, cards: Cards):
    cards.add(foreign_values("0012345", DAY))
    cards.store.close()
    config = write_config(tmp_path / "hukacapture.toml", adapter="folder", folder=tmp_path / "drop")
    database = f"sqlite:///{tmp_path / 'data' / 'cards.db'}"
    local = tmp_path / "emptylocal"
    local.mkdir()

    result = run_cli(["transmit", "--config", str(config), "--db", database, "--data-dir", str(local)], tmp_path)

    assert result.returncode == ExitCode.STORE_FAILED, result.stderr
    assert f"数据目录 {local} 不是此数据库的数据目录" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in local.iterdir()) == []
    assert not (tmp_path / "drop").exists()
    assert not (tmp_path / "archive").exists()


def test_transmit_missing_data_folder(tmp_path: Path, cards: Cards):
    cards.add(foreign_values("0012345", DAY))
    cards.store.close()
    config = write_config(tmp_path / "hukacapture.toml", adapter="folder", folder=tmp_path / "drop")
    database = f"sqlite:///{tmp_path / 'data' / 'cards.db'}"
    missing = tmp_path / "nonexist"

    result = run_cli(["transmit", "--config", str(config), "--db", database, "--data-dir", str(missing)], tmp_path)

    assert result.returncode == ExitCode.STORE_FAILED, result.stderr
    assert f"数据目录 {missing} 不存在" in result.stderr
    assert "--data-dir" in result.stderr
    assert "Traceback" not in result.stderr
    assert not missing.exists()
    assert not (tmp_path / "drop").exists()


def test_drop_folder_error_in_chinese(tmp_path: Path, cards: Cards):
    cards.add(foreign_values("0012345", DAY))
    drop = tmp_path / "drop"
    drop.write_text("")
    config = load_config(write_config(tmp_path / "hukacapture.toml", adapter="folder", folder=drop))

    report = run_transmit(cards.store, config, registry=REGISTRY)

    (_batch, message_zh, message_en) = report.failed[0]
    assert f"无法写入目录 {drop}：已有同名的文件。" in message_zh
    assert "File exists" not in message_zh
    assert "File exists" in message_en


def test_run_probe_sees_held_lock(store_url: str, tmp_path: Path):
    from ocr.transmit.runner import _run_lock, transmit_running

    store = Store(store_url, data_dir=tmp_path / "data")
    try:
        assert transmit_running(store) is False
        with _run_lock(store):
            assert transmit_running(store) is True
            # The probe leaves the lock with the run: a second run is still rejected.
            with pytest.raises(ConfigError, match="another transmit run"):
                with _run_lock(store):
                    pass
        assert transmit_running(store) is False
        # After the probe, a run can take the lock again.
        with _run_lock(store):
            pass
    finally:
        store.close()


def test_deadline_review_due_soon_and_auto_accepted(tmp_path: Path, cards: Cards):
    soon = cards.add(foreign_values("0012345", "2025-12-15"), approve=False)
    version = cards.store.get_card(soon).version
    cards.store.set_status(soon, CardStatus.NEEDS_REVIEW, actor="王芳", expected_version=version)
    later = cards.add(foreign_values("0012346", "2025-12-16"), approve=False)
    version = cards.store.get_card(later).version
    cards.store.set_status(later, CardStatus.NEEDS_REVIEW, actor="王芳", expected_version=version)
    auto_late = cards.add(foreign_values("0012347", "2025-12-13"), approve=False)
    auto_soon = cards.add(foreign_values("0012348", "2025-12-15"), approve=False)
    path = write_config(tmp_path / "hukacapture.toml", adapter="manual", manual_folder=tmp_path / "up")
    now = datetime(2025, 12, 15, 20, 0, tzinfo=SHANGHAI)

    report = deadline_report(cards.store, load_config(path), now=now)

    assert cards.store.get_card(auto_late).status == CardStatus.AUTO_ACCEPTED
    assert [item.card_id for item in report.review_due_soon] == [soon]
    assert report.review_overdue == []
    assert [item.card_id for item in report.auto_accepted] == [auto_late, auto_soon]
    assert [item.card_id for item in report.auto_accepted_overdue] == [auto_late]
    assert report.has_overdue
    assert later not in [item.card_id for item in report.review_due_soon]

    # Without include_auto_accepted, transmit leaves auto-accepted cards to review.
    path = write_config(
        tmp_path / "hukacapture.toml", adapter="manual", manual_folder=tmp_path / "up", include_auto_accepted=False
    )
    in_review = deadline_report(cards.store, load_config(path), now=now)

    assert in_review.auto_accepted == []
    assert [item.card_id for item in in_review.review_overdue] == [auto_late]
    assert [item.card_id for item in in_review.review_due_soon] == [soon, auto_soon]
