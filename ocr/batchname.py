"""Batch names: which ones a new batch may take, and the file-name stem that exports build from one.

A batch name becomes part of export file names, and exports often go to a
Windows share. So a new batch name may not contain a path separator, a
character that Windows forbids in file names, or a control character, and is
at most :data:`MAX_BATCH_NAME_LENGTH` characters and
:data:`MAX_BATCH_NAME_BYTES` bytes of UTF-8 long. Chinese text, spaces
and dashes are fine ("2026-12-04 早班").
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["MAX_BATCH_NAME_BYTES", "MAX_BATCH_NAME_LENGTH", "batch_file_stem", "check_batch_name"]

MAX_BATCH_NAME_LENGTH = 64
# 64 common Chinese characters are 192 bytes in UTF-8. That leaves room for an export file's card
# type, kind, time stamp and extension within the 255 bytes of a Linux file name. Rarer characters
# take 4 bytes each, so the bytes are limited too.
MAX_BATCH_NAME_BYTES = 192
# Path separators, and the characters that Windows forbids in file names.
_FORBIDDEN = '/\\<>:"|?*'
_FORBIDDEN_RUN = re.compile("[" + re.escape(_FORBIDDEN) + "]+")


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf")


def check_batch_name(name: str) -> str:
    """Return ``name`` without surrounding spaces; raise ValueError "中文 / English" when a new batch may not take it."""
    stripped = name.strip()
    if not stripped:
        raise ValueError("批次名不能为空 / the batch name is empty")
    if len(stripped) > MAX_BATCH_NAME_LENGTH:
        raise ValueError(
            f"批次名有 {len(stripped)} 个字符，最多 {MAX_BATCH_NAME_LENGTH} 个 / the batch name has {len(stripped)} "
            f"characters, at most {MAX_BATCH_NAME_LENGTH} are allowed"
        )
    size = len(stripped.encode("utf-8"))
    if size > MAX_BATCH_NAME_BYTES:
        raise ValueError(
            f"批次名太长（UTF-8 编码 {size} 字节，最多 {MAX_BATCH_NAME_BYTES} 字节，约 64 个常用汉字），请缩短 / the "
            f"batch name is {size} bytes long in UTF-8, at most {MAX_BATCH_NAME_BYTES} are allowed; shorten it"
        )
    forbidden = sorted({char for char in stripped if char in _FORBIDDEN or _is_control(char)})
    if forbidden:
        shown = " ".join(repr(char) for char in forbidden)
        raise ValueError(
            f"批次名不能包含 {shown}（导出文件名会用到批次名），日期请写成 2026-12-04 / the batch name must not "
            f"contain {shown}, because export file names include it; write dates as 2026-12-04"
        )
    if stripped.startswith("."):
        raise ValueError(
            "批次名不能以 . 开头（导出文件会成为隐藏文件） / the batch name must not start with a dot, "
            "because its export files would be hidden"
        )
    return stripped


def batch_file_stem(name: str) -> str:
    """Return a file-name stem for batch ``name``: forbidden and control characters as "_", leading dots dropped, cut to length.

    Batches stored before names were checked may contain any of them, and their exports must
    still land inside the output folder.
    """
    stem = "".join("_" if _is_control(char) else char for char in name.strip())
    stem = _FORBIDDEN_RUN.sub("_", stem).lstrip(".").strip()
    stem = stem[:MAX_BATCH_NAME_LENGTH]
    while len(stem.encode("utf-8")) > MAX_BATCH_NAME_BYTES:
        stem = stem[:-1]
    return stem or "batch"
