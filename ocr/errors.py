"""Exception classes of the product, each with an exit code and a Chinese message.

The message states what failed, on which file or field, and what to do next.
The command line prints ``message_zh`` (and ``message_en`` with ``--lang en``)
and exits with ``exit_code``.
"""

from __future__ import annotations

import errno

__all__ = [
    "CardCaptureError",
    "ConfigError",
    "DuplicateScanError",
    "EngineUnavailableError",
    "InputFileError",
    "StoreError",
    "StaleVersionError",
    "TemplateError",
    "ExitCode",
    "os_error_reason",
]

# Chinese reasons for the file-system errors a clerk can fix; other errors show the system's text.
_OS_REASONS_ZH = {
    errno.EEXIST: "已有同名的文件",
    errno.ENOTDIR: "路径中的某一级是文件，不是目录",
    errno.EACCES: "没有权限",
    errno.EPERM: "没有权限",
    errno.ENOSPC: "磁盘空间已满",
    errno.EROFS: "所在的文件系统是只读的",
    errno.ENOENT: "目录或文件不存在",
}


class ExitCode:
    OK = 0
    PARTIAL = 2  # some inputs failed, the rest were processed
    BAD_INPUT = 3
    ENGINE_MISSING = 4
    TEMPLATE_INVALID = 5
    STORE_FAILED = 6
    CONFIG_INVALID = 7
    CONFLICT = 8
    OVERDUE = 10
    INTERRUPTED = 130  # 128 + SIGINT, the code a shell reports for a Ctrl-C


class CardCaptureError(Exception):
    """Base class: a failure a user can act on."""

    exit_code = 1

    def __init__(self, message_zh: str, message_en: str = "") -> None:
        super().__init__(message_en or message_zh)
        self.message_zh = message_zh
        self.message_en = message_en or message_zh

    def message(self, lang: str = "zh") -> str:
        return self.message_en if lang == "en" else self.message_zh


class InputFileError(CardCaptureError):
    """A scan cannot be read; the message names the file and the reason."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, path: str, reason_zh: str, reason_en: str) -> None:
        super().__init__(
            f"无法读取文件 {path}：{reason_zh}",
            f"cannot read {path}: {reason_en}",
        )
        self.path = path


class EngineUnavailableError(CardCaptureError):
    exit_code = ExitCode.ENGINE_MISSING


class TemplateError(CardCaptureError):
    exit_code = ExitCode.TEMPLATE_INVALID


class StoreError(CardCaptureError):
    exit_code = ExitCode.STORE_FAILED


class DuplicateScanError(StoreError):
    """A scan page with this content key was stored already, by this run or by another station at the same time.

    ``card_id`` is the card made from the stored page, or None while it waits in the OCR queue.
    """

    def __init__(self, content_key: str, scan_id: int | None, card_id: int | None) -> None:
        super().__init__(
            f"该扫描页已入库（{content_key[:12]}…），未重复保存。",
            f"scan {content_key[:12]}… is stored already",
        )
        self.content_key = content_key
        self.scan_id = scan_id
        self.card_id = card_id


class StaleVersionError(StoreError):
    """A save was based on an older version of the card than the stored one."""

    exit_code = ExitCode.CONFLICT


class ConfigError(CardCaptureError):
    exit_code = ExitCode.CONFIG_INVALID


def os_error_reason(exc: OSError) -> tuple[str, str]:
    """Return the reason of a file-system error in Chinese and English, for a message that names the path."""
    english = exc.strerror or str(exc)
    chinese = _OS_REASONS_ZH.get(exc.errno)
    if chinese is None:
        chinese = f"系统错误（{english}）"
    return chinese, english
