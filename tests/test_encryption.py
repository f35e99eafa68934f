"""Encryption at rest on SQLite and PostgreSQL: the raw database and files hide personal values, the app reads them.

Cards are built from sample truth values with a distinctive name and passport
number, stored, approved and sent through the folder adapter (which archives
them), all with ``$HUKA_ENCRYPTION_KEY`` set. The tests then read the raw
bytes of the database and the files, read everything back through the store,
the review app's image loader, export and the archive, and open the store
without the key and with another key.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from ocr.audit import verify_chain
from ocr.crypto import FILE_MAGIC, KEY_ENV, EncryptionError, generate_key, read_stored_file
from ocr.errors import ExitCode
from ocr.export import export_batch
from ocr.store import Store
from ocr.transmit.config import load_config
from ocr.transmit.runner import run_transmit
from review_app.scan_images import load_scan
from test_transmit_support import REGISTRY, Cards, build_extraction, foreign_values, sample_png, write_config

DAY = "2025-12-15"
SURNAME = "ZYWIECKA"
PASSPORT = "E98765432"
SOURCE_NAME = "QUORLEVANT"
COMMAND_TIMEOUT_S = 60
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CJK_TEXT = re.compile(r"[\u4e00-\u9fff]")


class Encrypted:
    """A store written with a key, and what was put into it."""

    def __init__(self, store: Store, key: str, tmp_path: Path, card_id: int) -> None:
        self.store = store
        self.key = key
        self.tmp_path = tmp_path
        self.card_id = card_id
        self.url = store.engine.url.render_as_string(hide_password=False)


@pytest.fixture()
def encrypted(store_url, tmp_path, monkeypatch, caplog) -> Encrypted:
    key = generate_key()
    monkeypatch.setenv(KEY_ENV, key)
    caplog.set_level(logging.DEBUG)
    store = Store(url=store_url, data_dir=tmp_path / "data")
    cards = Cards(store, sample_png())
    values = foreign_values("0020001", DAY, surname=SURNAME, document_number=PASSPORT)
    card_id = cards.add(values)
    # A clerk may name the scan after the guest, so the source column is personal too.
    source = f"/scans/{SOURCE_NAME} front desk.jpg"
    store.add_card(
        batch=DAY,
        content_key=f"{'f' * 64}:1",
        extraction=build_extraction("foreign_guest", foreign_values("0020009", DAY), source),
        original_png=cards.png,
        straight_png=cards.png,
    )
    config = load_config(write_config(tmp_path / "hukacapture.toml", adapter="folder", folder=tmp_path / "drop"))
    report = run_transmit(store, config, registry=REGISTRY)
    assert report.acknowledged
    built = Encrypted(store, key, tmp_path, card_id)
    yield built
    store.close()


def raw_database_text(store: Store) -> str:
    """Return every row of every table as the database stores it, with no decryption."""
    if store.engine.dialect.name == "sqlite":
        database = Path(store.engine.url.database)
        parts = [path.read_bytes() for path in (database, Path(f"{database}-wal")) if path.exists()]
        return b"".join(parts).decode("utf-8", errors="replace")
    lines = []
    with store.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            lines += connection.execute(text(f'SELECT t::text FROM "{table}" t')).scalars().all()
    return "\n".join(lines)


def stored_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def test_database_hides_personal_values(encrypted):
    raw = raw_database_text(encrypted.store)

    assert "enc1:" in raw
    assert SURNAME not in raw
    assert PASSPORT not in raw
    assert SOURCE_NAME not in raw


def test_store_reads_values_back(encrypted):
    card = encrypted.store.get_card(encrypted.card_id)
    events = encrypted.store.audit_events(encrypted.card_id)

    assert card.fields["surname"].value == SURNAME
    assert card.fields["document_number"].value == PASSPORT
    assert card.fields["document_number"].raw_text == PASSPORT
    assert any(event.new_value == PASSPORT for event in events)
    assert any(event.new_value == "approved" for event in events)


def test_scan_images_encrypted(encrypted):
    card = encrypted.store.get_card(encrypted.card_id)
    images = stored_files(encrypted.store.image_dir)

    assert len(images) == 4
    for path in images:
        assert path.read_bytes().startswith(FILE_MAGIC)
    scan = load_scan(card.straight_image)
    assert scan is not None
    assert scan.size == (1240, 874)


def test_archive_encrypted_and_readable(encrypted):
    archive = encrypted.tmp_path / "archive"
    files = stored_files(archive)
    records = [path for path in files if path.name.startswith("record_")]

    # Transmission approved the second, auto-accepted card too: two cards of three files.
    assert len(files) == 6
    for path in files:
        content = path.read_bytes()
        assert content.startswith(FILE_MAGIC)
        assert SURNAME.encode() not in content
    assert any(SURNAME in read_stored_file(record).decode("utf-8") for record in records)
    assert read_stored_file(archive.rglob("original.png").__next__()).startswith(PNG_MAGIC)


def test_export_reads_plain_values(encrypted):
    # The card was sent, so it is approved; export writes plain values for the office.
    files = export_batch(encrypted.store, DAY, "csv", encrypted.tmp_path / "export", actor="clerk", registry=REGISTRY)

    content = files[0].read_text(encoding="utf-8-sig")
    assert SURNAME in content
    assert PASSPORT in content


def test_audit_chain_verifies_encrypted(encrypted):
    report = verify_chain(encrypted.store)

    assert report.intact, report.reason_en
    assert report.events > 20


def test_key_never_logged(encrypted, caplog):
    encrypted.store.get_card(encrypted.card_id)

    # The fixture wrote the store, so most records are from the setup phase.
    records = caplog.get_records("setup") + caplog.get_records("call")
    assert len(records) > 5
    assert not any(encrypted.key in record.getMessage() for record in records)


def test_missing_key_stops_open(encrypted, monkeypatch):
    monkeypatch.delenv(KEY_ENV)

    with pytest.raises(EncryptionError) as error:
        Store(url=encrypted.url, data_dir=encrypted.tmp_path / "data")

    assert KEY_ENV in error.value.message_zh
    assert "已加密" in error.value.message_zh


def test_wrong_key_stops_open(encrypted, monkeypatch):
    monkeypatch.setenv(KEY_ENV, generate_key())

    with pytest.raises(EncryptionError) as error:
        Store(url=encrypted.url, data_dir=encrypted.tmp_path / "data")

    assert "不是此数据库加密所用的密钥" in error.value.message_zh


def test_wrong_key_on_scan_is_clear(encrypted, monkeypatch):
    card = encrypted.store.get_card(encrypted.card_id)
    monkeypatch.setenv(KEY_ENV, generate_key())

    with pytest.raises(EncryptionError) as error:
        load_scan(card.straight_image)

    assert "无法解密" in error.value.message_zh


def test_invalid_key_format(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, "not-a-key")

    with pytest.raises(EncryptionError) as error:
        Store(data_dir=tmp_path / "data")

    assert "genkey" in error.value.message_zh


def test_plain_values_readable_after_key_set(store_url, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    store = Store(url=store_url, data_dir=tmp_path / "data")
    cards = Cards(store, sample_png())
    plain_id = cards.add(foreign_values("0020002", DAY, surname="PLAINWRITE"), approve=False)
    store.close()

    monkeypatch.setenv(KEY_ENV, generate_key())
    store = Store(url=store_url, data_dir=tmp_path / "data")
    cards = Cards(store, sample_png())
    encrypted_id = cards.add(foreign_values("0020003", DAY, surname=SURNAME), approve=False)
    raw = raw_database_text(store)
    plain = store.get_card(plain_id)
    sealed = store.get_card(encrypted_id)
    store.close()

    assert plain.fields["surname"].value == "PLAINWRITE"
    assert sealed.fields["surname"].value == SURNAME
    assert "PLAINWRITE" in raw
    assert SURNAME not in raw


def run_cli(args: list[str], env_changes: dict[str, str | None]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HUKA_DATA_DIR", "HUKA_DB_URL", "HUKA_LANG", KEY_ENV)}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    return subprocess.run(
        [sys.executable, "-m", "ocr", *args],
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=COMMAND_TIMEOUT_S,
    )


def test_cli_without_key_is_clear(encrypted):
    store_args = ["--db", encrypted.url, "--data-dir", str(encrypted.tmp_path / "data")]

    without = run_cli(["audit", "verify", *store_args], {})
    wrong = run_cli(["audit", "verify", *store_args], {KEY_ENV: generate_key()})
    right = run_cli(["audit", "verify", *store_args], {KEY_ENV: encrypted.key})

    assert without.returncode == ExitCode.CONFIG_INVALID, without.stderr
    assert KEY_ENV in without.stderr
    assert "Traceback" not in without.stderr
    assert wrong.returncode == ExitCode.CONFIG_INVALID, wrong.stderr
    assert "密钥" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert right.returncode == 0, right.stderr
    assert encrypted.key not in right.stdout + right.stderr


def test_crypto_decrypt_command(encrypted, tmp_path):
    record = encrypted.tmp_path / "archive" / DAY / "外宾" / f"card_{encrypted.card_id}"
    record = next(record.glob("record_*.json"))
    out = tmp_path / "plain.json"

    result = subprocess.run(
        [sys.executable, "-m", "ocr.crypto", "decrypt", str(record), str(out)],
        env=dict(os.environ, **{KEY_ENV: encrypted.key}),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )

    assert result.returncode == 0, result.stderr
    assert SURNAME in out.read_text(encoding="utf-8")
    assert out.stat().st_mode & 0o777 == 0o600


def run_crypto(args: list[str], env_changes: dict[str, str | None], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``python -m ocr.crypto ARGS`` in ``cwd`` with Chinese messages and only the key in ``env_changes``."""
    env = {k: v for k, v in os.environ.items() if k not in ("HUKA_LANG", KEY_ENV)}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    return subprocess.run(
        [sys.executable, "-m", "ocr.crypto", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=COMMAND_TIMEOUT_S,
    )


CRYPTO_USAGE_ERRORS = [
    ([], "缺少命令", "missing command"),
    (["bogus"], "没有命令 'bogus'", "no such command 'bogus'"),
    (["genkey", "extra"], "genkey 不接受参数", "genkey takes no arguments"),
    (["decrypt", "only-one"], "decrypt 需要两个参数", "decrypt takes two arguments"),
    (["genkey", "--lang", "fr"], "选项 '--lang' 的值 'fr' 无效", "invalid value 'fr' for '--lang'"),
]


@pytest.mark.parametrize(("args", "described", "detail"), CRYPTO_USAGE_ERRORS, ids=[str(case[0]) for case in CRYPTO_USAGE_ERRORS])
def test_crypto_usage_error_chinese_first(tmp_path, args, described, detail):
    result = run_crypto(args, {}, tmp_path)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    first_line, _, rest = result.stderr.partition("\n")
    assert first_line.startswith("命令用法有误："), result.stderr
    assert described in first_line
    assert "运行 python -m ocr.crypto --help 查看用法" in first_line
    assert rest.startswith(f"usage error: {detail}"), result.stderr
    assert result.stdout == ""


def test_crypto_help_chinese_then_english(tmp_path):
    result = run_crypto(["--help"], {}, tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("用法：python -m ocr.crypto")
    assert result.stdout.index("用法：") < result.stdout.index("usage: python -m ocr.crypto")
    assert "decrypt" in result.stdout


def test_crypto_decrypt_missing_file(tmp_path):
    result = run_crypto(["decrypt", "missing.png", "out.png"], {KEY_ENV: generate_key()}, tmp_path)

    assert result.returncode == ExitCode.BAD_INPUT, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("无法读取文件 missing.png：文件或其所在文件夹不存在")
    assert not (tmp_path / "out.png").exists()


def test_crypto_decrypt_folder_given(tmp_path):
    (tmp_path / "images").mkdir()
    result = run_crypto(["decrypt", "images", "out.png"], {KEY_ENV: generate_key()}, tmp_path)

    assert result.returncode == ExitCode.BAD_INPUT, result.stderr
    assert "Traceback" not in result.stderr
    assert "这是一个文件夹" in result.stderr


def test_crypto_decrypt_unwritable_output(encrypted, tmp_path):
    stored = stored_files(encrypted.tmp_path / "data" / "images")[0]

    result = run_crypto(["decrypt", str(stored), "no-such-folder/out.png"], {KEY_ENV: encrypted.key}, tmp_path)

    assert result.returncode == ExitCode.BAD_INPUT, result.stderr
    assert "Traceback" not in result.stderr
    assert "无法写入文件 no-such-folder/out.png" in result.stderr


def test_crypto_decrypt_refuses_same_file(encrypted, tmp_path):
    stored = stored_files(encrypted.tmp_path / "data" / "images")[0]
    content = stored.read_bytes()

    result = run_crypto(["decrypt", str(stored), str(stored)], {KEY_ENV: encrypted.key}, tmp_path)

    assert result.returncode == ExitCode.BAD_INPUT, result.stderr
    assert "与加密文件相同" in result.stderr
    assert stored.read_bytes() == content


@pytest.mark.parametrize(
    ("content", "key"),
    [(FILE_MAGIC + b"abc", "right"), (FILE_MAGIC + bytes(40), "right"), (None, "wrong"), (None, "none"), (None, "invalid")],
    ids=["truncated", "damaged", "wrong-key", "no-key", "invalid-key"],
)
def test_crypto_decrypt_key_problems(encrypted, tmp_path, content, key):
    stored = stored_files(encrypted.tmp_path / "data" / "images")[0]
    if content is not None:
        stored = tmp_path / "damaged.png"
        stored.write_bytes(content)
    keys = {"right": encrypted.key, "wrong": generate_key(), "none": None, "invalid": "not-a-key"}

    result = run_crypto(["decrypt", str(stored), "out.png"], {KEY_ENV: keys[key]}, tmp_path)

    assert result.returncode == ExitCode.CONFIG_INVALID, result.stderr
    assert "Traceback" not in result.stderr
    assert KEY_ENV in result.stderr
    assert CJK_TEXT.search(result.stderr.splitlines()[0]), result.stderr
    assert not (tmp_path / "out.png").exists()


def test_crypto_decrypt_english(tmp_path):
    result = run_crypto(["decrypt", "missing.png", "out.png", "--lang", "en"], {KEY_ENV: generate_key()}, tmp_path)

    assert result.returncode == ExitCode.BAD_INPUT, result.stderr
    assert result.stderr.strip() == "cannot read missing.png: the file or its folder does not exist; check the path"


def test_data_files_owner_only(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    previous = os.umask(0o022)
    try:
        store = Store(data_dir=tmp_path / "data")
        Cards(store, sample_png()).add(foreign_values("0020004", DAY))
        database = Path(store.engine.url.database)
        # The WAL file exists while a connection is open, so the modes are read before closing.
        written = [database, Path(f"{database}-wal"), *stored_files(store.image_dir)]
        file_modes = {path: path.stat().st_mode & 0o777 for path in written}
        folder_modes = {folder: folder.stat().st_mode & 0o777 for folder in (store.data_dir, store.image_dir)}
        store.close()
    finally:
        os.umask(previous)

    assert len(file_modes) == 4
    for path, mode in file_modes.items():
        assert mode & 0o077 == 0, (path, oct(mode))
    for folder, mode in folder_modes.items():
        assert mode == 0o700, (folder, oct(mode))
