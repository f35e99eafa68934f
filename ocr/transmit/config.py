"""Config file of transmission, deadline watch and archive: ``hukacapture.toml``.

The file is found through ``--config``, then ``$HUKA_CONFIG``, then
``./hukacapture.toml``. Without one, the defaults below apply and ``transmit``
stops with a message, because it has no adapter to deliver through.
Credentials never come from this file or the database: the token is read from
``$HUKA_TRANSMIT_TOKEN`` or from ``credentials_file``, which must be readable
by its owner only.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ocr.errors import ConfigError

__all__ = [
    "ADAPTERS",
    "FILE_FORMATS",
    "ArchiveConfig",
    "Config",
    "DeadlineConfig",
    "HandoverConfig",
    "TransmitConfig",
    "find_config_file",
    "load_config",
    "read_token",
]

ADAPTERS = ("folder", "https", "manual")
FILE_FORMATS = ("csv", "xlsx", "jsonl")
CONFIG_ENV = "HUKA_CONFIG"
TOKEN_ENV = "HUKA_TRANSMIT_TOKEN"
DEFAULT_FILE = Path("hukacapture.toml")


@dataclass(frozen=True)
class TransmitConfig:
    """The ``[transmit]`` table: how batches are written and delivered."""

    adapter: str | None = None
    # File format of a batch's records; the manifest is always JSON.
    file_format: str = "csv"
    # Identifies the sending hotel in file names and manifests, e.g. its police registration code.
    hotel_id: str = "hotel"
    # folder: the drop folder the receiving client reads.
    folder: Path | None = None
    # https: the receiver's URL.
    url: str | None = None
    # https: seconds to wait for a connection and, separately, for the reply.
    timeout: float = 30.0
    # https: attempts per batch and run on network errors and 5xx replies (1 means no retry).
    retries: int = 5
    # https: the first wait between attempts, in seconds; it doubles up to backoff_max.
    backoff: float = 2.0
    backoff_max: float = 60.0
    # https: a file holding the bearer token, mode 0600 or stricter.
    credentials_file: Path | None = None
    # https: CA bundle for a receiver with a private certificate authority; None uses the system store.
    ca_bundle: Path | None = None
    # manual: where batches are put for the clerk to upload by hand.
    manual_folder: Path | None = None
    # Approve auto-accepted cards without flagged fields before transmission, as export does.
    include_auto_accepted: bool = True


@dataclass(frozen=True)
class DeadlineConfig:
    """The ``[deadline]`` table: when a record is due."""

    # A record is due this many hours after the start (00:00) of its arrival date.
    hours: float = 24.0
    # Records due within this many hours are listed as due soon.
    due_soon_hours: float = 6.0
    # Time zone of the arrival dates written on the cards.
    timezone: str = "Asia/Shanghai"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class ArchiveConfig:
    """The ``[archive]`` table: where transmitted cards are kept, and for how long."""

    folder: Path | None = None
    # Days after transmission before ``transmit --purge-expired`` deletes a card's archive folder; None keeps it.
    retention_days: int | None = None


@dataclass(frozen=True)
class HandoverConfig:
    """The ``[handover]`` table: the monthly list of white copies."""

    # A TrueType or TrueType-collection font with Chinese glyphs; None searches the usual Debian fonts.
    font: Path | None = None


@dataclass(frozen=True)
class Config:
    transmit: TransmitConfig = field(default_factory=TransmitConfig)
    deadline: DeadlineConfig = field(default_factory=DeadlineConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    handover: HandoverConfig = field(default_factory=HandoverConfig)
    # The file read, or None when the defaults apply.
    source: Path | None = None


def find_config_file(path: Path | None = None) -> Path | None:
    """Return the config file named by ``path``, ``$HUKA_CONFIG`` or ``./hukacapture.toml``, or None.

    Raises :class:`ConfigError` when a named file does not exist.
    """
    named = path or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if named is not None:
        if not named.is_file():
            raise ConfigError(
                f"找不到配置文件 {named}。请检查 --config 或环境变量 {CONFIG_ENV}。",
                f"config file {named} not found; check --config or ${CONFIG_ENV}",
            )
        return named
    return DEFAULT_FILE if DEFAULT_FILE.is_file() else None


def _is_allowed_url(url: str) -> bool:
    """Return whether records may be sent to ``url``: HTTPS anywhere, plain HTTP only to this computer."""
    parsed = urlsplit(url)
    if parsed.scheme == "https" and parsed.hostname:
        return True
    return parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost", "::1")


def _invalid(source: Path, key: str, value: object, expected_zh: str, expected_en: str) -> ConfigError:
    return ConfigError(
        f"配置文件 {source} 中 {key} = {value!r} 无效：应为{expected_zh}。",
        f"invalid {key} = {value!r} in config file {source}: expected {expected_en}",
    )


def _path(table: dict, key: str, base: Path) -> Path | None:
    """Return the path under ``key``, relative paths taken from the config file's folder."""
    value = table.get(key)
    if value is None:
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else base / path


def _number(table: dict, key: str, default: float, source: Path, *, minimum: float, integer: bool = False):
    value = table.get(key, default)
    valid_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not valid_type or value < minimum:
        kind_zh = "整数" if integer else "数字"
        raise _invalid(source, key, value, f"不小于 {minimum} 的{kind_zh}", f"a number of at least {minimum}")
    return value


def load_config(path: Path | None = None) -> Config:
    """Read the config file (see :func:`find_config_file`) or return the defaults.

    Raises :class:`ConfigError` naming the file and key of an invalid value.
    """
    source = find_config_file(path)
    if source is None:
        return Config()
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"无法读取配置文件 {source}：{exc}。请检查 TOML 格式。",
            f"cannot read config file {source}: {exc}; check the TOML syntax",
        ) from exc
    base = source.resolve().parent
    transmit = data.get("transmit", {})
    deadline = data.get("deadline", {})
    archive = data.get("archive", {})

    adapter = transmit.get("adapter")
    if adapter is not None and adapter not in ADAPTERS:
        raise _invalid(source, "transmit.adapter", adapter, "、".join(ADAPTERS) + " 之一", "one of " + ", ".join(ADAPTERS))
    file_format = transmit.get("format", "csv")
    if file_format not in FILE_FORMATS:
        raise _invalid(
            source, "transmit.format", file_format, "、".join(FILE_FORMATS) + " 之一", "one of " + ", ".join(FILE_FORMATS)
        )
    url = transmit.get("url")
    if url is not None and not _is_allowed_url(str(url)):
        raise _invalid(
            source,
            "transmit.url",
            url,
            "以 https:// 开头的地址（http:// 只可用于本机测试）",
            "an https:// URL (http:// only for a receiver on this computer)",
        )
    hotel_id = str(transmit.get("hotel_id", "hotel"))
    if not hotel_id.replace("-", "").replace("_", "").isalnum():
        raise _invalid(source, "transmit.hotel_id", hotel_id, "字母、数字、- 或 _", "letters, digits, - or _")

    timezone = str(deadline.get("timezone", "Asia/Shanghai"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _invalid(source, "deadline.timezone", timezone, "时区名称，如 Asia/Shanghai", "a time zone name such as Asia/Shanghai") from exc

    retention = archive.get("retention_days")
    if retention is not None:
        retention = _number(archive, "retention_days", 0, source, minimum=1, integer=True)

    return Config(
        transmit=TransmitConfig(
            adapter=adapter,
            file_format=file_format,
            hotel_id=hotel_id,
            folder=_path(transmit, "folder", base),
            url=url,
            timeout=_number(transmit, "timeout", 30.0, source, minimum=0.1),
            retries=_number(transmit, "retries", 5, source, minimum=1, integer=True),
            backoff=_number(transmit, "backoff", 2.0, source, minimum=0),
            backoff_max=_number(transmit, "backoff_max", 60.0, source, minimum=0),
            credentials_file=_path(transmit, "credentials_file", base),
            ca_bundle=_path(transmit, "ca_bundle", base),
            manual_folder=_path(transmit, "manual_folder", base),
            include_auto_accepted=bool(transmit.get("include_auto_accepted", True)),
        ),
        deadline=DeadlineConfig(
            hours=_number(deadline, "hours", 24.0, source, minimum=1),
            due_soon_hours=_number(deadline, "due_soon_hours", 6.0, source, minimum=0),
            timezone=timezone,
        ),
        archive=ArchiveConfig(folder=_path(archive, "folder", base), retention_days=retention),
        handover=HandoverConfig(font=_path(data.get("handover", {}), "font", base)),
        source=source,
    )


def read_token(config: TransmitConfig) -> str | None:
    """Return the bearer token from ``$HUKA_TRANSMIT_TOKEN`` or the credentials file, or None.

    Raises :class:`ConfigError` when the credentials file is missing, empty, or
    readable or writable by group or others.
    """
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    path = config.credentials_file
    if path is None:
        return None
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(
            f"找不到凭据文件 {path}：{exc.strerror or exc}。请检查 transmit.credentials_file。",
            f"credentials file {path} not found: {exc.strerror or exc}; check transmit.credentials_file",
        ) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"凭据文件 {path} 的权限过宽（{stat.filemode(mode)}），同组或其他用户可以读取，已拒绝使用。"
            f"请运行 chmod 600 {path} 后重试。",
            f"credentials file {path} is accessible by group or others ({stat.filemode(mode)}) and was rejected; "
            f"run chmod 600 {path}",
        )
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise ConfigError(f"凭据文件 {path} 是空的。", f"credentials file {path} is empty")
    return token
