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
review app, export and transmission see plain values. Values and files written
before the key was set stay readable as they are, until ``python -m ocr key
encrypt-existing`` encrypts them. Card states in audit events stay plain,
because queries compare them.

Once a store was opened with a key, it records the key's check value
(an HMAC-SHA256 of a constant under the key) in row 1 of
``encryption_key_check``, and every later open without the key or with another
key stops with :class:`EncryptionError`. ``python -m ocr key rotate``
re-encrypts the store under the key in ``$HUKA_NEW_ENCRYPTION_KEY``. While it
runs, row 2 contains the new key's check value and every other open stops too
(see ocr.keys). The key itself is never stored or logged.
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
    "FILE_MAGIC",
    "KEY_ENV",
    "NEW_KEY_ENV",
    "PLAIN_VALUES",
    "ROTATION_KEY_ROW",
    "STORE_KEY_ROW",
    "TEXT_PREFIX",
    "EncryptedJSON",
    "EncryptedText",
    "EncryptionError",
    "StoreKey",
    "check_store_key",
    "decrypt_file_bytes",
    "encrypt_file_bytes",
    "encryption_enabled",
    "generate_key",
    "load_key",
    "read_stored_file",
]

KEY_ENV = "HUKA_ENCRYPTION_KEY"
# The key that python -m ocr key rotate re-encrypts the store under; read only by that command.
NEW_KEY_ENV = "HUKA_NEW_ENCRYPTION_KEY"
KEY_BYTES = 32
NONCE_BYTES = 12
TEXT_PREFIX = "enc1:"
FILE_MAGIC = b"HUKAENC1"
# Card states are not personal, and queries compare audit values with them, so they stay plain.
PLAIN_VALUES = frozenset(
    {"extracted", "needs_review", "auto_accepted", "approved", "rejected", "exported"}
)
_CHECK_MESSAGE = b"hukacapture key check 1"
# Rows of encryption_key_check: the store's key, and the new key while a rotation runs.
STORE_KEY_ROW = 1
ROTATION_KEY_ROW = 2


class EncryptionError(CardCaptureError):
    """The encryption key is missing, invalid or not the store's key, or data cannot be decrypted."""

    exit_code = ExitCode.CONFIG_INVALID


def generate_key() -> str:
    """Return a new random key in the format ``$HUKA_ENCRYPTION_KEY`` takes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


@lru_cache(maxsize=4)
def _cipher_for(raw: str, env_name: str = KEY_ENV) -> tuple[AESGCM, str]:
    try:
        key = base64.urlsafe_b64decode(raw.strip().encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise EncryptionError(
            f"环境变量 {env_name} 的格式无效：应为 32 字节密钥的 URL 安全 base64 编码（44 个字符）。"
            "请用 python -m ocr.crypto genkey 生成密钥。",
            f"${env_name} is invalid: expected 32 bytes in URL-safe base64 (44 characters); "
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


def _encrypt_with(cipher: AESGCM, plain: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + cipher.encrypt(nonce, plain, None)


def _decrypt_with(cipher: AESGCM, sealed: bytes) -> bytes:
    """Return the plain bytes; raises InvalidTag when ``cipher`` is not the key or the data is damaged."""
    if len(sealed) < NONCE_BYTES:
        # A truncated value or file: AESGCM would raise ValueError for the short nonce.
        raise InvalidTag()
    return cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], None)


def _encrypt(plain: bytes) -> bytes:
    cipher, _check = _cipher()
    return _encrypt_with(cipher, plain)


def _decrypt(sealed: bytes) -> bytes:
    current = _cipher()
    if current is None:
        raise _missing_key()
    cipher, _check = current
    try:
        return _decrypt_with(cipher, sealed)
    except InvalidTag as exc:
        raise _wrong_key() from exc


class StoreKey:
    """One key given explicitly, for the key commands that read with one key and write with another.

    The store's own reads and writes take the key from ``$HUKA_ENCRYPTION_KEY``
    instead. The ``open_*`` methods return None when the data was not
    encrypted with this key (or is damaged), so a caller can try another key.
    """

    def __init__(self, raw: str, env_name: str) -> None:
        """Parse ``raw`` (a key from ``env_name``); raises :class:`EncryptionError` naming ``env_name`` when invalid."""
        self._cipher, self.check = _cipher_for(raw, env_name)

    def seal_text(self, plain: str) -> str:
        """Return the stored form of a column value: ``enc1:`` and the base64 of nonce and ciphertext."""
        sealed = _encrypt_with(self._cipher, plain.encode("utf-8"))
        return TEXT_PREFIX + base64.b64encode(sealed).decode("ascii")

    def open_text(self, stored: str) -> str | None:
        """Return the plain value of an ``enc1:`` column value, or None when this key does not open it."""
        try:
            sealed = base64.b64decode(stored[len(TEXT_PREFIX) :], validate=True)
            return _decrypt_with(self._cipher, sealed).decode("utf-8")
        except (binascii.Error, ValueError, InvalidTag):
            return None

    def seal_file(self, plain: bytes) -> bytes:
        """Return the stored form of a file: ``HUKAENC1``, the nonce and the ciphertext."""
        return FILE_MAGIC + _encrypt_with(self._cipher, plain)

    def open_file(self, stored: bytes) -> bytes | None:
        """Return the plain content of an encrypted file, or None when this key does not open it."""
        try:
            return _decrypt_with(self._cipher, stored[len(FILE_MAGIC) :])
        except InvalidTag:
            return None


def load_key(env_name: str = KEY_ENV) -> StoreKey | None:
    """Return the key in the environment variable ``env_name``, or None when it is unset or empty.

    Raises :class:`EncryptionError` naming the variable when the value is not a valid key.
    """
    raw = os.environ.get(env_name, "")
    if not raw.strip():
        return None
    return StoreKey(raw, env_name)


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


def _rotation_running() -> EncryptionError:
    return EncryptionError(
        "此数据库正在更换加密密钥，更换尚未完成，在完成之前不能使用。请停止其他使用此数据库的程序，"
        f"把原密钥放入环境变量 {KEY_ENV}、新密钥放入 {NEW_KEY_ENV}，再运行一次 python -m ocr key rotate。",
        "a key rotation of this store started and has not finished, and the store cannot be used until it does; "
        f"stop the other programs that use the store, put the old key in ${KEY_ENV} and the new key in "
        f"${NEW_KEY_ENV}, and run python -m ocr key rotate again",
    )


def check_store_key(engine: Engine, table: Table) -> None:
    """Compare the key with the one the store was first encrypted with; record it on first use.

    ``table`` is the ``encryption_key_check`` table. Raises :class:`EncryptionError`
    when the store is encrypted and the key is missing or another key, and
    while a key rotation of the store has not finished.
    """
    current = _cipher()
    with engine.begin() as connection:
        rows = dict(connection.execute(select(table.c.id, table.c.key_check)).all())
    if ROTATION_KEY_ROW in rows:
        raise _rotation_running()
    stored = rows.get(STORE_KEY_ROW)
    if stored is None and current is None:
        return
    if current is None:
        raise _missing_key()
    _cipher_object, check = current
    if stored is None:
        try:
            with engine.begin() as connection:
                connection.execute(
                    table.insert().values(
                        id=STORE_KEY_ROW, key_check=check, created_at=datetime.now(UTC).replace(tzinfo=None)
                    )
                )
            return
        except IntegrityError:
            # Another station recorded its key at the same moment; compare with that one.
            with engine.begin() as connection:
                stored = connection.execute(
                    select(table.c.key_check).where(table.c.id == STORE_KEY_ROW)
                ).scalar_one()
    if not hmac.compare_digest(stored, check):
        raise EncryptionError(
            f"环境变量 {KEY_ENV} 中的密钥不是此数据库加密所用的密钥。请设置正确的密钥；没有正确的密钥，已加密的数据无法读取。",
            f"the key in ${KEY_ENV} is not the key this store was encrypted with; set the right key, "
            "because the encrypted data cannot be read without it",
        )


# Command line: python -m ocr.crypto genkey | decrypt STORED_FILE PLAIN_FILE.

_USAGE_ZH = """用法：python -m ocr.crypto 命令 [--lang zh|en]

命令：
  genkey                      生成一个新密钥（44 个字符），放入环境变量 HUKA_ENCRYPTION_KEY 使用
  decrypt 加密文件 输出文件    用 $HUKA_ENCRYPTION_KEY 解密数据目录或归档目录中的一个文件，
                              把明文写入输出文件（仅所有者可读写）
"""
_USAGE_EN = """usage: python -m ocr.crypto COMMAND [--lang zh|en]

commands:
  genkey                          print a new key (44 characters) for $HUKA_ENCRYPTION_KEY
  decrypt STORED_FILE PLAIN_FILE  decrypt one file of the data or archive folder with $HUKA_ENCRYPTION_KEY
                                  and write the plain content to PLAIN_FILE (owner-only)
"""
# Exit code of a usage error, as in python -m ocr.
_USAGE_EXIT_CODE = 2


class _UsageError(Exception):
    def __init__(self, reason_zh: str, reason_en: str) -> None:
        super().__init__(reason_en)
        self.reason_zh = reason_zh
        self.reason_en = reason_en


def _take_lang(argv: list[str]) -> tuple[str, list[str]]:
    """Return the message language, from ``--lang`` anywhere in ``argv`` or ``$HUKA_LANG``, and the other arguments."""
    lang = os.environ.get("HUKA_LANG", "zh")
    rest: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--lang" and index + 1 < len(argv):
            lang = argv[index + 1]
            index += 2
            continue
        if arg.startswith("--lang="):
            lang = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        index += 1
    lowered = lang.lower()
    if lowered in ("zh", "en") or lowered.startswith(("zh-", "zh_", "en-", "en_")):
        return lowered[:2], rest
    raise _UsageError(f"选项 '--lang' 的值 '{lang}' 无效，只能是 zh 或 en", f"invalid value '{lang}' for '--lang': use zh or en")


class _FileError(CardCaptureError):
    """A file of ``decrypt`` cannot be read or written, or the output would overwrite the input."""

    exit_code = ExitCode.BAD_INPUT


def _file_reason(exc: OSError) -> tuple[str, str]:
    """Return the Chinese and English reason of a failed read or write of a file."""
    if isinstance(exc, FileNotFoundError):
        return "文件或其所在文件夹不存在，请检查路径", "the file or its folder does not exist; check the path"
    if isinstance(exc, IsADirectoryError):
        return "这是一个文件夹，不是文件，请给出文件路径", "it is a folder, not a file; give a file path"
    if isinstance(exc, PermissionError):
        return "没有权限，请检查文件与文件夹的权限", "permission denied; check the permissions of the file and its folder"
    detail = exc.strerror or type(exc).__name__
    return f"系统错误（{detail}），请检查路径与磁盘", f"system error ({detail}); check the path and the disk"


def _decrypt_command(stored: str, plain_file: str) -> None:
    """Write the plain content of the stored file ``stored`` to ``plain_file``, readable by its owner only."""
    if Path(plain_file).resolve() == Path(stored).resolve():
        raise _FileError(
            f"输出文件 {plain_file} 与加密文件相同，未写入任何内容。请给出另一个输出文件，以免加密文件被明文覆盖。",
            f"the output file {plain_file} is the stored file itself, so nothing was written; give another output "
            "file, so that the encrypted file is not overwritten with plain text",
        )
    try:
        plain = read_stored_file(stored)
    except OSError as exc:
        reason_zh, reason_en = _file_reason(exc)
        raise _FileError(f"无法读取文件 {stored}：{reason_zh}。", f"cannot read {stored}: {reason_en}") from exc
    try:
        descriptor = os.open(plain_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "wb") as handle:
            handle.write(plain)
    except OSError as exc:
        reason_zh, reason_en = _file_reason(exc)
        raise _FileError(f"无法写入文件 {plain_file}：{reason_zh}。", f"cannot write {plain_file}: {reason_en}") from exc


def _run(args: list[str], lang: str) -> int:
    if args in (["-h"], ["--help"], ["help"]):
        print(_USAGE_EN if lang == "en" else f"{_USAGE_ZH}\n{_USAGE_EN}", end="")
        return 0
    if not args:
        raise _UsageError("缺少命令 genkey 或 decrypt", "missing command genkey or decrypt")
    command, operands = args[0], args[1:]
    if command == "genkey":
        if operands:
            raise _UsageError(f"genkey 不接受参数：{' '.join(operands)}", f"genkey takes no arguments: {' '.join(operands)}")
        print(generate_key())
        return 0
    if command == "decrypt":
        if len(operands) != 2:
            raise _UsageError(
                f"decrypt 需要两个参数：加密文件和输出文件，实际给出 {len(operands)} 个",
                f"decrypt takes two arguments, STORED_FILE and PLAIN_FILE, but got {len(operands)}",
            )
        _decrypt_command(*operands)
        return 0
    raise _UsageError(f"没有命令 '{command}'，可用的命令：genkey、decrypt", f"no such command '{command}'; use genkey or decrypt")


def _main(argv: list[str]) -> int:
    """Run ``genkey`` or ``decrypt IN OUT``; print errors without a traceback and return the exit code.

    As in ``python -m ocr``, messages are Chinese unless ``--lang en`` or ``$HUKA_LANG=en`` is given. A
    usage error prints the Chinese reason and click-style English detail and returns 2. A product error
    returns its ``exit_code``: 7 for a missing, invalid or wrong key or damaged data, 3 for a file that
    cannot be read or written.
    """
    lang = "zh"
    try:
        lang, args = _take_lang(argv)
        return _run(args, lang)
    except _UsageError as exc:
        hint = "python -m ocr.crypto --help"
        if lang == "en":
            print(f"usage error: {exc.reason_en}; run {hint}", file=sys.stderr)
        else:
            print(f"命令用法有误：{exc.reason_zh}。运行 {hint} 查看用法。\nusage error: {exc.reason_en}", file=sys.stderr)
        return _USAGE_EXIT_CODE
    except CardCaptureError as exc:
        print(exc.message(lang), file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
