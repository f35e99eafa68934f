"""Encryption at rest of scans and personal columns, with a key from ``$HUKA_ENCRYPTION_KEY``.

The key is 32 random bytes in URL-safe base64 (44 characters, the format of a
Fernet key), made by ``python -m ocr.crypto genkey``. With the key set, the
store encrypts with AES-256-GCM (the ``cryptography`` package):

- every scan image it writes (original and straightened), whole;
- the personal columns: field values, raw OCR text and candidates, the card's
  full text, the scan's source file name, the old and new values of audit
  events, and the records queued for transmission.

A column value is stored as ``enc1:`` and the base64 of nonce and ciphertext; a
file starts with ``HUKAENC1`` and the nonce. Reading decrypts both, so the
review app, export and transmission see plain values. Values written before the
key was set stay readable as they are (they are not encrypted afterwards), and
card states in audit events stay plain, because queries compare them.

Once a store was opened with a key, it records the key's check value
(an HMAC-SHA256 of a constant under the key), and every later open without
the key or with another key stops with :class:`EncryptionError`. The key
itself is never stored or logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import sys
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import JSON, Engine, Table, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeDecorator

from ocr.errors import CardCaptureError, ExitCode

__all__ = [
    "KEY_ENV",
    "EncryptedJSON",
    "EncryptedText",
    "EncryptionError",
    "check_store_key",
    "decrypt_file_bytes",
    "encrypt_file_bytes",
    "encryption_enabled",
    "generate_key",
    "read_stored_file",
]

KEY_ENV = "HUKA_ENCRYPTION_KEY"
KEY_BYTES = 32
NONCE_BYTES = 12
TEXT_PREFIX = "enc1:"
FILE_MAGIC = b"HUKAENC1"
# Card states are not personal, and queries compare audit values with them, so they stay plain.
PLAIN_VALUES = frozenset(
    {"extracted", "needs_review", "auto_accepted", "approved", "rejected", "exported"}
)
_CHECK_MESSAGE = b"hukacapture key check 1"


class EncryptionError(CardCaptureError):
    """The encryption key is missing, invalid or not the store's key, or data cannot be decrypted."""

    exit_code = ExitCode.CONFIG_INVALID


def generate_key() -> str:
    """Return a new random key in the format ``$HUKA_ENCRYPTION_KEY`` takes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


@lru_cache(maxsize=4)
def _cipher_for(raw: str) -> tuple[AESGCM, str]:
    try:
        key = base64.urlsafe_b64decode(raw.strip().encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise EncryptionError(
            f"环境变量 {KEY_ENV} 的格式无效：应为 32 字节密钥的 URL 安全 base64 编码（44 个字符）。"
            "请用 python -m ocr.crypto genkey 生成密钥。",
            f"${KEY_ENV} is invalid: expected 32 bytes in URL-safe base64 (44 characters); "
            "make a key with python -m ocr.crypto genkey",
        )
    check = hmac.new(key, _CHECK_MESSAGE, hashlib.sha256).hexdigest()
    return AESGCM(key), check


def _cipher() -> tuple[AESGCM, str] | None:
    raw = os.environ.get(KEY_ENV, "")
    if not raw.strip():
        return None
    return _cipher_for(raw)


def encryption_enabled() -> bool:
    """Return whether ``$HUKA_ENCRYPTION_KEY`` is set (and valid), so new data is encrypted."""
    return _cipher() is not None


def _missing_key() -> EncryptionError:
    return EncryptionError(
        f"数据已加密，但没有设置环境变量 {KEY_ENV}。请设置加密时所用的密钥后重试。",
        f"the data is encrypted but ${KEY_ENV} is not set; set the key it was encrypted with and try again",
    )


def _wrong_key() -> EncryptionError:
    return EncryptionError(
        f"无法解密数据：环境变量 {KEY_ENV} 中的密钥不是加密这些数据所用的密钥，或数据已损坏。请检查密钥。",
        f"cannot decrypt the data: the key in ${KEY_ENV} is not the key it was encrypted with, "
        "or the data is damaged; check the key",
    )


def _encrypt(plain: bytes) -> bytes:
    cipher, _check = _cipher()
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + cipher.encrypt(nonce, plain, None)


def _decrypt(sealed: bytes) -> bytes:
    current = _cipher()
    if current is None:
        raise _missing_key()
    cipher, _check = current
    try:
        return cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], None)
    except InvalidTag as exc:
        raise _wrong_key() from exc


def encrypt_file_bytes(data: bytes) -> bytes:
    """Return the bytes to store for a file: encrypted when a key is set, else ``data`` unchanged."""
    if _cipher() is None:
        return data
    return FILE_MAGIC + _encrypt(data)


def decrypt_file_bytes(data: bytes) -> bytes:
    """Return the plain bytes of stored file content, decrypting it when it was encrypted."""
    if not data.startswith(FILE_MAGIC):
        return data
    return _decrypt(data[len(FILE_MAGIC) :])


def read_stored_file(path: str | Path) -> bytes:
    """Read a file the store or the archive wrote, decrypted; every reader of scan images goes through here.

    Raises FileNotFoundError when the file is missing and :class:`EncryptionError` when it cannot be decrypted.
    """
    return decrypt_file_bytes(Path(path).read_bytes())


def _seal_text(value: str) -> str:
    return TEXT_PREFIX + base64.b64encode(_encrypt(value.encode("utf-8"))).decode("ascii")


def _open_text(value: str) -> str:
    try:
        sealed = base64.b64decode(value[len(TEXT_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _wrong_key() from exc
    return _decrypt(sealed).decode("utf-8")


class EncryptedText(TypeDecorator):
    """Text column whose values are encrypted while ``$HUKA_ENCRYPTION_KEY`` is set."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None or value == "" or value in PLAIN_VALUES or _cipher() is None:
            return value
        return _seal_text(value)

    def process_result_value(self, value, dialect):
        if isinstance(value, str) and value.startswith(TEXT_PREFIX):
            return _open_text(value)
        return value


class EncryptedJSON(TypeDecorator):
    """JSON column whose documents are stored as one encrypted JSON string while a key is set."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None or _cipher() is None:
            return value
        return _seal_text(json.dumps(value, ensure_ascii=False))

    def process_result_value(self, value, dialect):
        if isinstance(value, str) and value.startswith(TEXT_PREFIX):
            return json.loads(_open_text(value))
        return value


def check_store_key(engine: Engine, table: Table) -> None:
    """Compare the key with the one the store was first encrypted with; record it on first use.

    ``table`` is the ``encryption_key_check`` table. Raises :class:`EncryptionError`
    when the store is encrypted and the key is missing or another key.
    """
    current = _cipher()
    with engine.begin() as connection:
        stored = connection.execute(select(table.c.key_check).where(table.c.id == 1)).scalar_one_or_none()
    if stored is None and current is None:
        return
    if current is None:
        raise _missing_key()
    _cipher_object, check = current
    if stored is None:
        try:
            with engine.begin() as connection:
                connection.execute(
                    table.insert().values(id=1, key_check=check, created_at=datetime.now(UTC).replace(tzinfo=None))
                )
            return
        except IntegrityError:
            # Another station recorded its key at the same moment; compare with that one.
            with engine.begin() as connection:
                stored = connection.execute(select(table.c.key_check).where(table.c.id == 1)).scalar_one()
    if not hmac.compare_digest(stored, check):
        raise EncryptionError(
            f"环境变量 {KEY_ENV} 中的密钥不是此数据库加密所用的密钥。请设置正确的密钥；没有正确的密钥，已加密的数据无法读取。",
            f"the key in ${KEY_ENV} is not the key this store was encrypted with; set the right key, "
            "because the encrypted data cannot be read without it",
        )


def _main(argv: list[str]) -> int:
    """``genkey`` prints a new key; ``decrypt IN OUT`` writes the plain content of a stored file."""
    if argv == ["genkey"]:
        print(generate_key())
        return 0
    if len(argv) == 3 and argv[0] == "decrypt":
        try:
            plain = read_stored_file(argv[1])
        except EncryptionError as exc:
            print(exc.message_zh, file=sys.stderr)
            return exc.exit_code
        descriptor = os.open(argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "wb") as handle:
            handle.write(plain)
        return 0
    print("usage: python -m ocr.crypto genkey | decrypt STORED_FILE PLAIN_FILE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
