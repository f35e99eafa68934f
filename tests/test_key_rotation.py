"""Key rotation and encryption of plain data, on SQLite and PostgreSQL: ``python -m ocr key rotate|encrypt-existing``.

The store gets cards built from a committed sample card's truth and image
(see test_transmit_support), first without a key and then with one, and sends
them through the folder adapter, so the archive contains plain and encrypted
files. The tests run the real command line in a subprocess. After it, every
value and file reads back equal, and no personal value is in the database in
plain text. Every encrypted column value and every file opens with the new key
only, the old key is rejected, and ``audit verify`` and ``check`` pass.

The crash tests run the command in a child process that kills itself with
SIGKILL at a chosen call of ocr.keys. The calls are the Nth value update inside
a transaction, the Nth temporary file, the Nth replaced file and the final
commit, so the kill point is the same on every run. Then the same
command runs again and must give the same result as an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Text, bindparam, cast, select, update

from models.card import FieldResult
from ocr.crypto import (
    FILE_MAGIC,
    KEY_ENV,
    NEW_KEY_ENV,
    PLAIN_VALUES,
    TEXT_PREFIX,
    EncryptedJSON,
    EncryptedText,
    EncryptionError,
    StoreKey,
    generate_key,
    read_stored_file,
)
from ocr.errors import ExitCode
from ocr.keys import TEMPORARY_SUFFIX, _exclusive_run
from ocr.migrations import load_models
from ocr.store import ArchiveRow, CardRow, OutboxRow, Store
from ocr.transmit.config import load_config
from ocr.transmit.runner import run_transmit
from test_encryption import raw_database_text
from test_transmit_support import REGISTRY, Cards, foreign_values, sample_png, write_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DAY = "2025-12-15"
COMMAND_TIMEOUT_S = 120
# Distinctive values, so a search of the raw database cannot match anything else.
PLAIN_SURNAME = "KWIATKOWSKA"
PLAIN_PASSPORT = "E55501234"
SECRET_SURNAME = "ZYWIECKA"
SECRET_PASSPORT = "E98765432"
CORRECTED_GIVEN_NAMES = "MIROSLAWA"
PERSONAL_VALUES = (PLAIN_SURNAME, PLAIN_PASSPORT, SECRET_SURNAME, SECRET_PASSPORT, CORRECTED_GIVEN_NAMES)

# Runs ``python -m ocr`` with one function of ocr.keys wrapped so that the process
# kills itself with SIGKILL right after the Nth call of it returns. argv: point, N, batch rows, command.
KILLING_CHILD = """
import os
import signal
import sys

import ocr.keys as keys

point, count, batch_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
name = {
    "value": "_update_value",
    "temporary": "_write_temporary",
    "file": "_replace_file",
    "finish": "_finish_rotation",
}[point]
original = getattr(keys, name)
calls = 0


def kill_after_call(*args, **kwargs):
    global calls
    result = original(*args, **kwargs)
    calls += 1
    if calls == count:
        os.kill(os.getpid(), signal.SIGKILL)
    return result


setattr(keys, name, kill_after_call)
keys.BATCH_ROWS = batch_rows

from ocr.cli import main

main(sys.argv[4:])
"""


@dataclass
class Populated:
    """A store with plain and encrypted cards, archive files, and what reading it returned before any key command."""

    url: str
    data_dir: Path
    config: Path
    archive: Path
    key: str | None
    snapshot: dict

    def store_args(self) -> list[str]:
        return ["--db", self.url, "--data-dir", str(self.data_dir)]


def stored_files(populated: Populated) -> list[Path]:
    """Return every file the store and the archive wrote, without unfinished temporary files."""
    files = []
    for folder in (populated.data_dir / "images", populated.archive):
        files += [path for path in folder.rglob("*") if path.is_file() and not path.name.endswith((".tmp", TEMPORARY_SUFFIX))]
    return sorted(files)


def read_everything(populated: Populated) -> dict:
    """Return every card, audit event, outbox record and file as the product reads them with the key in the environment."""
    store = Store(url=populated.url, data_dir=populated.data_dir, create=False)
    try:
        cards = {}
        events = {}
        for summary in store.list_cards():
            cards[summary.id] = store.get_card(summary.id).model_dump()
            events[summary.id] = [event.model_dump() for event in store.audit_events(summary.id)]
        with store.session() as session:
            records = dict(session.execute(select(OutboxRow.id, OutboxRow.record)).all())
    finally:
        store.close()
    files = {str(path.relative_to(populated.data_dir.parent)): read_stored_file(path) for path in stored_files(populated)}
    return {"cards": cards, "events": events, "records": records, "files": files}


def add_cards(store: Store, config: Path, *, serial: str, surname: str, passport: str, correct: bool) -> None:
    """Store one approved card (corrected first if ``correct``) and one auto-accepted card, and transmit both."""
    cards = Cards(store, sample_png())
    card_id = cards.add(foreign_values(serial, DAY, surname=surname, document_number=passport), approve=False)
    if correct:
        card = store.get_card(card_id)
        corrected = card.fields["given_names"].model_copy(update={"value": CORRECTED_GIVEN_NAMES})
        store.save_fields(card_id, {"given_names": FieldResult.model_validate(corrected)}, actor="王芳", expected_version=card.version)
    cards.approve(card_id)
    cards.add(foreign_values(f"{serial[:-1]}9", DAY), approve=False)
    report = run_transmit(store, load_config(config), registry=REGISTRY)
    assert report.acknowledged


@pytest.fixture()
def populated(store_url, tmp_path, monkeypatch) -> Populated:
    """A store used first without a key (plain values and files), then with a key: both kinds for rotate to convert."""
    config = write_config(tmp_path / "hukacapture.toml", adapter="folder", folder=tmp_path / "drop")
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(NEW_KEY_ENV, raising=False)
    store = Store(url=store_url, data_dir=tmp_path / "data")
    add_cards(store, config, serial="0030001", surname=PLAIN_SURNAME, passport=PLAIN_PASSPORT, correct=False)
    store.close()

    key = generate_key()
    monkeypatch.setenv(KEY_ENV, key)
    store = Store(url=store_url, data_dir=tmp_path / "data")
    add_cards(store, config, serial="0030101", surname=SECRET_SURNAME, passport=SECRET_PASSPORT, correct=True)
    store.close()

    built = Populated(store_url, tmp_path / "data", config, tmp_path / "archive", key, {})
    built.snapshot = read_everything(built)
    return built


@pytest.fixture()
def plain_populated(store_url, tmp_path, monkeypatch) -> Populated:
    """A store used only without a key."""
    config = write_config(tmp_path / "hukacapture.toml", adapter="folder", folder=tmp_path / "drop")
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(NEW_KEY_ENV, raising=False)
    store = Store(url=store_url, data_dir=tmp_path / "data")
    add_cards(store, config, serial="0030001", surname=PLAIN_SURNAME, passport=PLAIN_PASSPORT, correct=True)
    store.close()
    built = Populated(store_url, tmp_path / "data", config, tmp_path / "archive", None, {})
    built.snapshot = read_everything(built)
    return built


def child_env(keys: dict[str, str | None]) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("HUKA_DATA_DIR", "HUKA_DB_URL", "HUKA_CONFIG", KEY_ENV, NEW_KEY_ENV)
    }
    env.update({name: value for name, value in keys.items() if value is not None})
    env.update(PYTHONPATH=str(PROJECT_ROOT), HUKA_LANG="zh", HUKA_OCR_THREADS="1")
    return env


def run_cli(args: list[str], keys: dict[str, str | None]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ocr", *args],
        env=child_env(keys),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=COMMAND_TIMEOUT_S,
    )


def rotate(populated: Populated, keys: dict[str, str | None]) -> subprocess.CompletedProcess:
    return run_cli(["key", "rotate", "--config", str(populated.config), *populated.store_args()], keys)


def rotate_killed(populated: Populated, keys: dict[str, str], point: str, count: int) -> subprocess.CompletedProcess:
    """Run ``key rotate`` in a child that SIGKILLs itself after the ``count``th call at ``point``, 3 rows per batch."""
    command = ["key", "rotate", "--config", str(populated.config), *populated.store_args()]
    return subprocess.run(
        [sys.executable, "-c", KILLING_CHILD, point, str(count), "3", *command],
        env=child_env(keys),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=COMMAND_TIMEOUT_S,
    )


def raw_column_values(populated: Populated) -> list[tuple[str, str | None]]:
    """Return (table.column id, stored text) of every EncryptedText and EncryptedJSON value, without decryption."""
    store = Store(url=populated.url, data_dir=populated.data_dir, create=False, check_key=False)
    values = []
    try:
        with store.engine.connect() as connection:
            for table in load_models().sorted_tables:
                for column in table.columns:
                    if not isinstance(column.type, (EncryptedText, EncryptedJSON)):
                        continue
                    for row_id, stored in connection.execute(select(table.c.id, cast(column, Text))):
                        values.append((f"{table.name}.{column.name} id {row_id}", stored))
    finally:
        store.close()
    return values


def sealed_text(stored: str | None) -> str | None:
    """Return the ``enc1:`` text of a stored column value (a JSON column stores it as a JSON string), else None."""
    if stored is None:
        return None
    if stored.startswith('"' + TEXT_PREFIX):
        return stored[1:-1]
    if stored.startswith(TEXT_PREFIX):
        return stored
    return None


def is_plain_by_design(stored: str | None) -> bool:
    return stored is None or stored in ("", "null") or stored in PLAIN_VALUES


def assert_only_key_opens(populated: Populated, key: str, other_keys: list[str]) -> None:
    """Assert that every personal column value and every file is encrypted, opens with ``key`` and with none of ``other_keys``."""
    target = StoreKey(key, KEY_ENV)
    others = [StoreKey(other, KEY_ENV) for other in other_keys]
    values = raw_column_values(populated)
    sealed = 0
    for where, stored in values:
        if is_plain_by_design(stored):
            continue
        text = sealed_text(stored)
        assert text is not None, f"{where} is plain"
        assert target.open_text(text) is not None, f"{where} does not open with the key"
        for other in others:
            assert other.open_text(text) is None, f"{where} opens with another key"
        sealed += 1
    assert sealed > 50

    files = stored_files(populated)
    assert len(files) == len(populated.snapshot["files"])
    for path in files:
        content = path.read_bytes()
        assert content.startswith(FILE_MAGIC), path
        assert target.open_file(content) is not None, path
        for other in others:
            assert other.open_file(content) is None, path


def assert_no_plain_personal_value(populated: Populated) -> None:
    store = Store(url=populated.url, data_dir=populated.data_dir, create=False, check_key=False)
    try:
        raw = raw_database_text(store)
    finally:
        store.close()
    assert "enc1:" in raw
    for value in PERSONAL_VALUES:
        assert value not in raw, value
    for path in stored_files(populated):
        content = path.read_bytes()
        for value in PERSONAL_VALUES:
            assert value.encode() not in content, (path, value)


def assert_reads_back(populated: Populated, monkeypatch, key: str) -> None:
    monkeypatch.setenv(KEY_ENV, key)
    after = read_everything(populated)
    assert after["cards"] == populated.snapshot["cards"]
    assert after["events"] == populated.snapshot["events"]
    assert after["records"] == populated.snapshot["records"]
    assert after["files"].keys() == populated.snapshot["files"].keys()
    for name, content in populated.snapshot["files"].items():
        assert after["files"][name] == content, name


def assert_rotation_blocks_open(populated: Populated, monkeypatch, keys: list[str]) -> None:
    for key in keys:
        monkeypatch.setenv(KEY_ENV, key)
        with pytest.raises(EncryptionError) as error:
            Store(url=populated.url, data_dir=populated.data_dir, create=False)
        assert "正在更换加密密钥" in error.value.message_zh


def count_under_key(populated: Populated, key: str) -> tuple[int, int]:
    """Return (column values that open with ``key``, files that open with it)."""
    target = StoreKey(key, KEY_ENV)
    values = sum(
        1 for _where, stored in raw_column_values(populated) if sealed_text(stored) and target.open_text(sealed_text(stored))
    )
    files = sum(1 for path in stored_files(populated) if target.open_file(path.read_bytes()) is not None)
    return values, files


# Rotation.


def test_rotate_reads_back_equal(populated, monkeypatch):
    new_key = generate_key()

    result = rotate(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: new_key})

    assert result.returncode == 0, result.stderr
    assert "密钥已更换" in result.stdout
    assert_reads_back(populated, monkeypatch, new_key)


def test_rotate_encrypts_all_under_new_key(populated):
    new_key = generate_key()

    result = rotate(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: new_key})

    assert result.returncode == 0, result.stderr
    assert_only_key_opens(populated, new_key, [populated.key])
    assert_no_plain_personal_value(populated)


def test_rotate_rejects_old_key_after(populated, monkeypatch):
    new_key = generate_key()

    result = rotate(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: new_key})
    monkeypatch.setenv(KEY_ENV, populated.key)

    assert result.returncode == 0, result.stderr
    with pytest.raises(EncryptionError) as error:
        Store(url=populated.url, data_dir=populated.data_dir, create=False)
    assert "不是此数据库加密所用的密钥" in error.value.message_zh


def test_rotate_leaves_no_old_ciphertext(populated, store_backend):
    old_forms = [stored for _where, stored in raw_column_values(populated) if sealed_text(stored)]
    new_key = generate_key()

    result = rotate(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: new_key})

    assert result.returncode == 0, result.stderr
    assert len(old_forms) > 50
    store = Store(url=populated.url, data_dir=populated.data_dir, create=False, check_key=False)
    try:
        raw = raw_database_text(store)
        if store_backend == "sqlite":
            with store.engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA freelist_count").scalar() == 0
    finally:
        store.close()
    for stored in old_forms:
        # The base64 part only: the old form must be gone from free pages and the WAL too.
        assert sealed_text(stored)[len(TEXT_PREFIX) :] not in raw


def test_rotate_then_audit_and_check_pass(populated):
    new_key = generate_key()

    result = rotate(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: new_key})
    verify = run_cli(["audit", "verify", *populated.store_args()], {KEY_ENV: new_key})
    check = run_cli(["check", *populated.store_args()], {KEY_ENV: new_key})

    assert result.returncode == 0, result.stderr
    assert verify.returncode == 0, verify.stderr
    assert "审计日志完整" in verify.stdout
    assert check.returncode == 0, check.stdout + check.stderr


def test_rotate_output_has_counts_only(populated):
    new_key = generate_key()

    result = run_cli(
        ["--verbose", "key", "rotate", "--config", str(populated.config), *populated.store_args()],
        {KEY_ENV: populated.key, NEW_KEY_ENV: new_key},
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, result.stderr
    assert "key rotate: values encrypted=" in output
    for secret in (populated.key, new_key, *PERSONAL_VALUES):
        assert secret not in output


def test_rotate_twice_in_a_row(populated, monkeypatch):
    first_key = generate_key()
    second_key = generate_key()

    first = rotate(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: first_key})
    second = rotate(populated, {KEY_ENV: first_key, NEW_KEY_ENV: second_key})

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert_only_key_opens(populated, second_key, [populated.key, first_key])
    assert_reads_back(populated, monkeypatch, second_key)


# Key errors.


def test_rotate_new_key_missing(populated):
    result = rotate(populated, {KEY_ENV: populated.key})

    assert result.returncode == ExitCode.CONFIG_INVALID
    assert f"没有设置环境变量 {NEW_KEY_ENV}" in result.stderr
    assert "genkey" in result.stderr
    assert "Traceback" not in result.stderr


def test_rotate_new_key_malformed(populated):
    result = rotate(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: "not-a-key"})

    assert result.returncode == ExitCode.CONFIG_INVALID
    assert f"环境变量 {NEW_KEY_ENV} 的格式无效" in result.stderr
    assert "Traceback" not in result.stderr


def test_rotate_new_key_same_as_current(populated):
    result = rotate(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: populated.key})

    assert result.returncode == ExitCode.CONFIG_INVALID
    assert "是同一个密钥" in result.stderr


def test_rotate_current_key_wrong(populated, monkeypatch):
    result = rotate(populated, {KEY_ENV: generate_key(), NEW_KEY_ENV: generate_key()})

    assert result.returncode == ExitCode.CONFIG_INVALID
    assert f"{KEY_ENV} 中的密钥不是此数据库当前所用的密钥" in result.stderr
    # Nothing changed: the store opens with its key and reads the same.
    assert_reads_back(populated, monkeypatch, populated.key)


def test_rotate_current_key_missing(populated):
    result = rotate(populated, {NEW_KEY_ENV: generate_key()})

    assert result.returncode == ExitCode.CONFIG_INVALID
    assert "encrypt-existing" in result.stderr


def test_rotate_english_messages(populated):
    result = run_cli(["key", "rotate", "--lang", "en", *populated.store_args()], {KEY_ENV: populated.key})

    assert result.returncode == ExitCode.CONFIG_INVALID
    assert f"${NEW_KEY_ENV} is not set" in result.stderr


def test_rotate_undecryptable_file_named(populated, monkeypatch):
    new_key = generate_key()
    victim = sorted((populated.data_dir / "images").glob("*_straight.png"))[-1]
    backup = victim.read_bytes()
    victim.write_bytes(StoreKey(generate_key(), KEY_ENV).seal_file(b"another key"))

    failed = rotate(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: new_key})

    assert failed.returncode == ExitCode.STORE_FAILED, failed.stderr
    assert str(victim) in failed.stderr
    assert "原密钥和新密钥都" in failed.stderr
    assert "从备份恢复" in failed.stderr
    assert_rotation_blocks_open(populated, monkeypatch, [populated.key, new_key])

    # The file restored from a backup made with the old key: the same command finishes.
    victim.write_bytes(backup)
    finished = rotate(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: new_key})

    assert finished.returncode == 0, finished.stderr
    assert_only_key_opens(populated, new_key, [populated.key])
    assert_reads_back(populated, monkeypatch, new_key)


def last_straight_image(populated: Populated) -> tuple[Path, int]:
    """Return the straight image file of the newest card and the card id."""
    store = Store(url=populated.url, data_dir=populated.data_dir, create=False, check_key=False)
    try:
        with store.session() as session:
            card_id, stored = session.execute(
                select(CardRow.id, CardRow.straight_image_path).order_by(CardRow.id.desc()).limit(1)
            ).one()
        return store.image_file(stored), card_id
    finally:
        store.close()


def remove_last_straight_image(populated: Populated) -> tuple[Path, bytes, int]:
    """Delete the straight image of the newest card, as if it were lost. Return its path, its content and the card id."""
    path, card_id = last_straight_image(populated)
    content = path.read_bytes()
    path.unlink()
    return path, content, card_id


def test_rotate_missing_file_not_finished(populated, monkeypatch):
    new_key = generate_key()
    keys = {KEY_ENV: populated.key, NEW_KEY_ENV: new_key}
    lost, content, card_id = remove_last_straight_image(populated)

    failed = rotate(populated, keys)

    assert failed.returncode == ExitCode.STORE_FAILED, failed.stdout + failed.stderr
    assert "1 个图像文件" in failed.stderr
    assert f"卡片 {card_id}" in failed.stderr
    assert "原密钥" in failed.stderr
    assert "--skip-missing" in failed.stderr
    assert "Traceback" not in failed.stderr
    for secret in (populated.key, new_key, *PERSONAL_VALUES):
        assert secret not in failed.stdout + failed.stderr
    # Everything present moved to the new key, but the rotation stays open for the lost file.
    assert count_under_key(populated, populated.key) == (0, 0)
    assert_rotation_blocks_open(populated, monkeypatch, [populated.key, new_key])

    # The file comes back from a backup made with the old key: the same command finishes.
    lost.write_bytes(content)
    finished = rotate(populated, keys)

    assert finished.returncode == 0, finished.stderr
    assert "密钥已更换" in finished.stdout
    assert_only_key_opens(populated, new_key, [populated.key])
    assert_reads_back(populated, monkeypatch, new_key)


def test_rotate_skip_missing_finishes(populated, monkeypatch):
    new_key = generate_key()
    keys = {KEY_ENV: populated.key, NEW_KEY_ENV: new_key}
    lost, content, card_id = remove_last_straight_image(populated)

    skipped = run_cli(
        ["key", "rotate", "--skip-missing", "--config", str(populated.config), *populated.store_args()], keys
    )

    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "密钥已更换" in skipped.stdout
    assert f"卡片 {card_id}" in skipped.stderr
    assert "原密钥" in skipped.stderr
    monkeypatch.setenv(KEY_ENV, new_key)
    Store(url=populated.url, data_dir=populated.data_dir, create=False).close()

    # The lost file turns up later, still under the old key: a run with both keys converts it.
    lost.write_bytes(content)
    converted = rotate(populated, keys)

    assert converted.returncode == 0, converted.stderr
    assert "更换已完成" in converted.stdout
    assert_only_key_opens(populated, new_key, [populated.key])
    assert_reads_back(populated, monkeypatch, new_key)


def test_rotate_unreadable_and_missing_named(populated, monkeypatch):
    new_key = generate_key()
    keys = {KEY_ENV: populated.key, NEW_KEY_ENV: new_key}
    lost, _content, card_id = remove_last_straight_image(populated)
    victim = sorted((populated.data_dir / "images").glob("*_straight.png"))[0]
    backup = victim.read_bytes()
    victim.write_bytes(StoreKey(generate_key(), KEY_ENV).seal_file(b"another key"))

    failed = rotate(populated, keys)

    assert failed.returncode == ExitCode.STORE_FAILED, failed.stderr
    assert str(victim) in failed.stderr
    assert "原密钥和新密钥都" in failed.stderr
    assert "1 个图像文件" in failed.stderr
    assert f"卡片 {card_id}" in failed.stderr
    assert "--skip-missing" in failed.stderr
    assert_rotation_blocks_open(populated, monkeypatch, [populated.key, new_key])

    # With the damaged file restored, --skip-missing finishes without the lost one.
    victim.write_bytes(backup)
    skipped = run_cli(["key", "rotate", "--skip-missing", "--config", str(populated.config), *populated.store_args()], keys)

    assert skipped.returncode == 0, skipped.stderr
    assert lost.name in skipped.stderr


def test_rotate_truncated_encrypted_file_named(populated, monkeypatch):
    new_key = generate_key()
    victim, _card_id = last_straight_image(populated)
    backup = victim.read_bytes()
    # Cut short inside the nonce: no key can open it.
    victim.write_bytes(FILE_MAGIC + b"abc")

    failed = rotate(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: new_key})

    assert failed.returncode == ExitCode.STORE_FAILED, failed.stderr
    assert "Traceback" not in failed.stderr
    assert str(victim) in failed.stderr
    assert "原密钥和新密钥都" in failed.stderr
    victim.write_bytes(backup)
    finished = rotate(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: new_key})
    assert finished.returncode == 0, finished.stderr


def test_rotate_damaged_files_left_and_named(populated, monkeypatch):
    new_key = generate_key()
    keys = {KEY_ENV: populated.key, NEW_KEY_ENV: new_key}
    emptied, card_id = last_straight_image(populated)
    content = emptied.read_bytes()
    emptied.write_bytes(b"")
    # A file no row names, such as one a copy to the shared folder left behind.
    stray = populated.data_dir / "images" / "stray.png"
    stray.write_bytes(b"not an image at all")

    failed = rotate(populated, keys)

    assert failed.returncode == ExitCode.STORE_FAILED, failed.stdout + failed.stderr
    assert "Traceback" not in failed.stderr
    assert "2 个文件已损坏" in failed.stderr
    assert f"卡片 {card_id}" in failed.stderr
    assert str(emptied) in failed.stderr
    assert str(stray) in failed.stderr
    assert "--skip-missing" in failed.stderr
    assert emptied.read_bytes() == b""
    assert stray.read_bytes() == b"not an image at all"
    # Everything else moved to the new key, but the rotation stays open for the damaged files.
    assert count_under_key(populated, populated.key) == (0, 0)
    assert_rotation_blocks_open(populated, monkeypatch, [populated.key, new_key])

    skipped = run_cli(["key", "rotate", "--skip-missing", "--config", str(populated.config), *populated.store_args()], keys)

    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "密钥已更换" in skipped.stdout
    assert "已损坏" in skipped.stderr
    assert str(stray) in skipped.stderr
    assert emptied.read_bytes() == b""
    assert stray.read_bytes() == b"not an image at all"

    # The image comes back from a backup made with the old key; the stray file is deleted.
    emptied.write_bytes(content)
    stray.unlink()
    converted = rotate(populated, keys)

    assert converted.returncode == 0, converted.stderr
    assert_only_key_opens(populated, new_key, [populated.key])
    assert_reads_back(populated, monkeypatch, new_key)


def damage_one_value(populated: Populated) -> tuple[str, str]:
    """Replace one encrypted text value with one sealed under an unknown key; return its "table.column id N" and the form."""
    store = Store(url=populated.url, data_dir=populated.data_dir, create=False, check_key=False)
    stranger = StoreKey(generate_key(), KEY_ENV)
    try:
        with store.engine.begin() as connection:
            for table in load_models().sorted_tables:
                for column in table.columns:
                    if not isinstance(column.type, EncryptedText):
                        continue
                    rows = connection.execute(select(table.c.id, cast(column, Text)).order_by(table.c.id)).all()
                    for row_id, stored in rows:
                        if sealed_text(stored) is None:
                            continue
                        damaged = stranger.seal_text("damaged")
                        connection.execute(
                            update(table)
                            .where(table.c.id == row_id)
                            .values({column.name: bindparam("damaged", damaged, type_=Text())})
                        )
                        return f"{table.name}.{column.name} id {row_id}", damaged
    finally:
        store.close()
    raise AssertionError("no encrypted text value to damage")


def raw_value(populated: Populated, where: str) -> str | None:
    return dict(raw_column_values(populated))[where]


def test_rotate_unreadable_value_blocks(populated, monkeypatch):
    new_key = generate_key()
    where, damaged = damage_one_value(populated)

    failed = rotate(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: new_key})

    assert failed.returncode == ExitCode.STORE_FAILED, failed.stderr
    assert where in failed.stderr
    assert "--skip-unreadable" in failed.stderr
    assert damaged not in failed.stderr
    assert_rotation_blocks_open(populated, monkeypatch, [populated.key, new_key])


def test_rotate_skip_unreadable_finishes(populated, monkeypatch):
    new_key = generate_key()
    keys = {KEY_ENV: populated.key, NEW_KEY_ENV: new_key}
    where, damaged = damage_one_value(populated)

    skipped = run_cli(
        ["key", "rotate", "--skip-unreadable", "--config", str(populated.config), *populated.store_args()], keys
    )

    output = skipped.stdout + skipped.stderr
    assert skipped.returncode == 0, output
    assert "密钥已更换" in skipped.stdout
    assert where in skipped.stderr
    assert "--skip-unreadable" in skipped.stderr
    assert "Traceback" not in output
    for secret in (damaged, populated.key, new_key, *PERSONAL_VALUES):
        assert secret not in output
    # The damaged value stays as it was; everything else is under the new key only.
    assert raw_value(populated, where) == damaged
    assert count_under_key(populated, populated.key) == (0, 0)
    monkeypatch.setenv(KEY_ENV, new_key)
    Store(url=populated.url, data_dir=populated.data_dir, create=False).close()


def test_encrypt_existing_skip_unreadable(populated, monkeypatch):
    where, damaged = damage_one_value(populated)
    command = ["key", "encrypt-existing", "--config", str(populated.config), *populated.store_args()]

    failed = run_cli(command, {KEY_ENV: populated.key})
    skipped = run_cli([*command, "--skip-unreadable"], {KEY_ENV: populated.key})

    assert failed.returncode == ExitCode.STORE_FAILED, failed.stderr
    assert where in failed.stderr
    assert "--skip-unreadable" in failed.stderr
    assert skipped.returncode == 0, skipped.stderr
    assert where in skipped.stderr
    assert "除上面列出的文件和数据外" in skipped.stdout
    assert raw_value(populated, where) == damaged
    assert_no_plain_personal_value(populated)


def test_key_help_names_skip_options():
    for command in ("rotate", "encrypt-existing"):
        result = run_cli(["key", command, "--help"], {})

        assert result.returncode == 0, result.stderr
        assert "--skip-unreadable" in result.stdout
        assert "无法解密" in result.stdout
        assert "已损坏" in result.stdout


def test_rotate_rejects_second_rotation_target(populated, monkeypatch):
    new_key = generate_key()
    killed = rotate_killed(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: new_key}, "file", 2)
    assert killed.returncode == -signal.SIGKILL

    other = rotate(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: generate_key()})
    swapped = rotate(populated, {KEY_ENV: new_key, NEW_KEY_ENV: populated.key})
    encrypt = run_cli(["key", "encrypt-existing", *populated.store_args()], {KEY_ENV: populated.key})

    assert other.returncode == ExitCode.CONFIG_INVALID
    assert "未完成的密钥更换" in other.stderr
    assert swapped.returncode == ExitCode.CONFIG_INVALID
    assert "请把原密钥放入" in swapped.stderr
    assert encrypt.returncode == ExitCode.CONFIG_INVALID
    assert "正在更换加密密钥" in encrypt.stderr
    finished = rotate(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: new_key})
    assert finished.returncode == 0, finished.stderr
    assert_reads_back(populated, monkeypatch, new_key)


def test_rotate_busy_while_another_runs(populated, store_backend):
    if store_backend != "sqlite":
        pytest.skip("on PostgreSQL the command waits LOCK_TIMEOUT_S for the lock before it stops")
    store = Store(url=populated.url, data_dir=populated.data_dir, create=False, check_key=False)
    try:
        with _exclusive_run(store):
            result = rotate(populated, {KEY_ENV: populated.key, NEW_KEY_ENV: generate_key()})
    finally:
        store.close()

    assert result.returncode == ExitCode.CONFLICT
    assert "另一个 python -m ocr key 命令" in result.stderr


# Crash safety.


@pytest.mark.parametrize(
    ("point", "count"),
    [
        ("value", 8),  # inside a transaction, after earlier batches of 3 rows committed
        ("temporary", 3),  # a temporary file written, the file it replaces untouched
        ("file", 5),  # five files replaced, the others not
    ],
)
def test_rotate_killed_then_resumed(populated, monkeypatch, point, count):
    new_key = generate_key()
    keys = {KEY_ENV: populated.key, NEW_KEY_ENV: new_key}

    killed = rotate_killed(populated, keys, point, count)

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    values_moved, files_moved = count_under_key(populated, new_key)
    values_left, files_left = count_under_key(populated, populated.key)
    if point == "value":
        assert values_moved > 0
        assert values_left > 0
        assert files_moved == 0
    else:
        assert files_moved == (count if point == "file" else count - 1)
        assert files_left > 0
        assert values_left == 0
    leftovers = list(populated.data_dir.rglob(f"*{TEMPORARY_SUFFIX}")) + list(populated.archive.rglob(f"*{TEMPORARY_SUFFIX}"))
    assert len(leftovers) == (1 if point == "temporary" else 0)
    assert_rotation_blocks_open(populated, monkeypatch, [populated.key, new_key])

    resumed = rotate(populated, keys)

    assert resumed.returncode == 0, resumed.stderr
    assert "密钥已更换" in resumed.stdout
    assert not list(populated.data_dir.rglob(f"*{TEMPORARY_SUFFIX}"))
    assert not list(populated.archive.rglob(f"*{TEMPORARY_SUFFIX}"))
    assert_only_key_opens(populated, new_key, [populated.key])
    assert_no_plain_personal_value(populated)
    assert_reads_back(populated, monkeypatch, new_key)


def test_rotate_killed_twice_then_resumed(populated, monkeypatch):
    new_key = generate_key()
    keys = {KEY_ENV: populated.key, NEW_KEY_ENV: new_key}

    first = rotate_killed(populated, keys, "value", 20)
    second = rotate_killed(populated, keys, "file", 7)
    resumed = rotate(populated, keys)

    assert first.returncode == -signal.SIGKILL, first.stderr
    assert second.returncode == -signal.SIGKILL, second.stderr
    assert resumed.returncode == 0, resumed.stderr
    assert_only_key_opens(populated, new_key, [populated.key])
    assert_reads_back(populated, monkeypatch, new_key)
    verify = run_cli(["audit", "verify", *populated.store_args()], {KEY_ENV: new_key})
    assert verify.returncode == 0, verify.stderr


def test_rotate_killed_after_final_commit(populated, monkeypatch):
    new_key = generate_key()
    keys = {KEY_ENV: populated.key, NEW_KEY_ENV: new_key}

    killed = rotate_killed(populated, keys, "finish", 1)

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # The new key is the store's key already; the old one is rejected.
    assert_reads_back(populated, monkeypatch, new_key)
    monkeypatch.setenv(KEY_ENV, populated.key)
    with pytest.raises(EncryptionError):
        Store(url=populated.url, data_dir=populated.data_dir, create=False)

    resumed = rotate(populated, keys)

    assert resumed.returncode == 0, resumed.stderr
    assert "更换已完成" in resumed.stdout
    assert_only_key_opens(populated, new_key, [populated.key])
    assert_no_plain_personal_value(populated)
    assert_reads_back(populated, monkeypatch, new_key)


# Encryption of a store used without a key.


def test_encrypt_existing_plain_store(plain_populated, monkeypatch):
    key = generate_key()

    result = run_cli(
        ["key", "encrypt-existing", "--config", str(plain_populated.config), *plain_populated.store_args()], {KEY_ENV: key}
    )

    assert result.returncode == 0, result.stderr
    assert "已加密全部数据" in result.stdout
    assert_only_key_opens(plain_populated, key, [])
    assert_no_plain_personal_value(plain_populated)
    assert_reads_back(plain_populated, monkeypatch, key)
    verify = run_cli(["audit", "verify", *plain_populated.store_args()], {KEY_ENV: key})
    check = run_cli(["check", *plain_populated.store_args()], {KEY_ENV: key})
    assert verify.returncode == 0, verify.stderr
    assert check.returncode == 0, check.stdout + check.stderr


def test_encrypt_existing_needs_key_after(plain_populated, monkeypatch):
    key = generate_key()

    result = run_cli(["key", "encrypt-existing", *plain_populated.store_args()], {KEY_ENV: key})
    monkeypatch.delenv(KEY_ENV, raising=False)

    assert result.returncode == 0, result.stderr
    with pytest.raises(EncryptionError) as error:
        Store(url=plain_populated.url, data_dir=plain_populated.data_dir, create=False)
    assert "已加密" in error.value.message_zh


def test_encrypt_existing_mixed_store(populated, monkeypatch):
    # Values written before the key was set are plain until this command runs.
    assert PLAIN_SURNAME in "".join(stored or "" for _where, stored in raw_column_values(populated))

    result = run_cli(["key", "encrypt-existing", "--config", str(populated.config), *populated.store_args()], {KEY_ENV: populated.key})

    assert result.returncode == 0, result.stderr
    assert_only_key_opens(populated, populated.key, [])
    assert_no_plain_personal_value(populated)
    assert_reads_back(populated, monkeypatch, populated.key)


def test_encrypt_existing_key_missing(plain_populated):
    result = run_cli(["key", "encrypt-existing", *plain_populated.store_args()], {})

    assert result.returncode == ExitCode.CONFIG_INVALID
    assert f"没有设置环境变量 {KEY_ENV}" in result.stderr


def test_encrypt_existing_wrong_key(populated):
    result = run_cli(["key", "encrypt-existing", *populated.store_args()], {KEY_ENV: generate_key()})

    assert result.returncode == ExitCode.CONFIG_INVALID
    assert "不是此数据库加密所用的密钥" in result.stderr


def test_encrypt_existing_killed_then_resumed(plain_populated, monkeypatch):
    key = generate_key()
    command = ["key", "encrypt-existing", "--config", str(plain_populated.config), *plain_populated.store_args()]

    killed = subprocess.run(
        [sys.executable, "-c", KILLING_CHILD, "file", "4", "3", *command],
        env=child_env({KEY_ENV: key}),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=COMMAND_TIMEOUT_S,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # The half-encrypted store is usable with the key, and reads the same.
    assert_reads_back(plain_populated, monkeypatch, key)
    resumed = run_cli(command, {KEY_ENV: key})
    assert resumed.returncode == 0, resumed.stderr
    assert_only_key_opens(plain_populated, key, [])
    assert_no_plain_personal_value(plain_populated)
    assert_reads_back(plain_populated, monkeypatch, key)


def test_encrypt_existing_damaged_record_named(plain_populated, monkeypatch):
    key = generate_key()
    command = ["key", "encrypt-existing", "--config", str(plain_populated.config), *plain_populated.store_args()]
    record = sorted(plain_populated.archive.rglob("record_*.json"))[0]
    content = record.read_bytes()
    record.write_bytes(content[: len(content) // 2])
    store = Store(url=plain_populated.url, data_dir=plain_populated.data_dir, create=False, check_key=False)
    try:
        with store.session() as session:
            card_id = session.scalar(select(ArchiveRow.card_id).where(ArchiveRow.folder == str(record.parent)))
    finally:
        store.close()

    failed = run_cli(command, {KEY_ENV: key})

    assert failed.returncode == ExitCode.STORE_FAILED, failed.stdout + failed.stderr
    assert "1 个文件已损坏" in failed.stderr
    assert f"卡片 {card_id}" in failed.stderr
    assert str(record) in failed.stderr
    assert "--skip-missing" in failed.stderr
    assert record.read_bytes() == content[: len(content) // 2]

    record.write_bytes(content)
    finished = run_cli(command, {KEY_ENV: key})

    assert finished.returncode == 0, finished.stderr
    assert_only_key_opens(plain_populated, key, [])
    assert_reads_back(plain_populated, monkeypatch, key)


def test_encrypt_existing_missing_file(plain_populated, monkeypatch):
    key = generate_key()
    command = ["key", "encrypt-existing", "--config", str(plain_populated.config), *plain_populated.store_args()]
    lost, content, card_id = remove_last_straight_image(plain_populated)

    failed = run_cli(command, {KEY_ENV: key})

    assert failed.returncode == ExitCode.STORE_FAILED, failed.stdout + failed.stderr
    assert "1 个图像文件" in failed.stderr
    assert f"卡片 {card_id}" in failed.stderr
    assert "--skip-missing" in failed.stderr
    assert "Traceback" not in failed.stderr
    # The store stays usable with the key while the file is missing.
    monkeypatch.setenv(KEY_ENV, key)
    Store(url=plain_populated.url, data_dir=plain_populated.data_dir, create=False).close()

    lost.write_bytes(content)
    finished = run_cli(command, {KEY_ENV: key})

    assert finished.returncode == 0, finished.stderr
    assert_only_key_opens(plain_populated, key, [])
    assert_no_plain_personal_value(plain_populated)
    assert_reads_back(plain_populated, monkeypatch, key)
