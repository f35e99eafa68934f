"""Exception classes of the product, each with an exit code and a Chinese message.

The message states what failed, on which file or field, and what to do next.
The command line prints ``message_zh`` (and ``message_en`` with ``--lang en``)
and exits with ``exit_code``.
"""

from __future__ import annotations

__all__ = [
    "CardCaptureError",
    "ConfigError",
    "EngineUnavailableError",
    "InputFileError",
    "StoreError",
    "StaleVersionError",
    "TemplateError",
    "ExitCode",
]


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


class StaleVersionError(StoreError):
    """A save was based on an older version of the card than the stored one."""

    exit_code = ExitCode.CONFLICT


class ConfigError(CardCaptureError):
    exit_code = ExitCode.CONFIG_INVALID
