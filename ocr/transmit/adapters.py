"""Delivery adapters: one interface, three ways to hand a batch to the exit-entry office.

- ``folder``: the batch is dropped into a folder that the office's client reads.
- ``https``: the batch is POSTed to a URL with an idempotency key, and the
  receiver's acknowledgement is stored.
- ``manual``: the batch is put into a folder for the clerk, who uploads it by
  hand and records the confirmation with ``python -m ocr confirm``.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import requests
from tenacity import (
    RetryError,
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from ocr.errors import CardCaptureError, ConfigError, ExitCode, os_error_reason
from ocr.transmit.batches import BatchFiles, write_atomically
from ocr.transmit.config import Config, read_token

__all__ = [
    "Adapter",
    "DeliveryError",
    "DeliveryResult",
    "FolderAdapter",
    "HttpsAdapter",
    "ManualAdapter",
    "make_adapter",
]

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
# The part of a receiver's reply kept in the store.
MAX_STORED_REPLY_CHARS = 4000


class DeliveryError(CardCaptureError):
    """A batch could not be delivered in this run; it stays open and the next run sends it again."""

    exit_code = ExitCode.PARTIAL


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome of one delivery: acknowledged or not, and the receiver's reply."""

    # True when the receiver confirmed the batch; False when a person must still confirm it.
    acknowledged: bool
    receipt: str | None = None
    acknowledgement: dict = field(default_factory=dict)


class Adapter(Protocol):
    name: str

    def deliver(self, batch: BatchFiles) -> DeliveryResult:
        """Hand the batch over; raise :class:`DeliveryError` when that failed."""


def _copy_batch(batch: BatchFiles, folder: Path) -> tuple[Path, Path]:
    """Copy the data file, then the manifest, into ``folder``, each under a temporary name first."""
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        data_target = folder / batch.data_file.name
        write_atomically(data_target, batch.data_file.read_bytes())
        manifest_target = folder / batch.manifest_file.name
        write_atomically(manifest_target, batch.manifest_file.read_bytes())
    except OSError as exc:
        reason_zh, reason_en = os_error_reason(exc)
        raise DeliveryError(
            f"无法写入目录 {folder}：{reason_zh}。请检查目录是否存在、是否有写权限、磁盘是否有空间。",
            f"cannot write to folder {folder}: {reason_en}; check that it exists, is writable and has free space",
        ) from exc
    return data_target, manifest_target


class FolderAdapter:
    """Drop the batch into a folder; the rename of the manifest completes the delivery."""

    name = "folder"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def deliver(self, batch: BatchFiles) -> DeliveryResult:
        data_target, manifest_target = _copy_batch(batch, self.folder)
        log.info("transmit batch dropped into folder file=%s", data_target.name)
        return DeliveryResult(
            acknowledged=True,
            acknowledgement={"folder": str(self.folder), "files": [data_target.name, manifest_target.name]},
        )


class ManualAdapter:
    """Put the batch where the clerk picks it up; the batch waits for ``confirm``."""

    name = "manual"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def deliver(self, batch: BatchFiles) -> DeliveryResult:
        data_target, _manifest_target = _copy_batch(batch, self.folder)
        log.info("transmit batch ready for manual upload file=%s", data_target.name)
        return DeliveryResult(acknowledged=False, acknowledgement={"folder": str(self.folder)})


class _ServerError(Exception):
    """A 5xx reply: the receiver failed, so the same request may succeed later."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def _is_retryable(exc: BaseException) -> bool:
    # A certificate error will not pass on a retry; connection errors, timeouts and 5xx may.
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, _ServerError))


class HttpsAdapter:
    """POST the batch as one JSON document; retry network errors and 5xx with exponential backoff, never 4xx.

    The body is ``{"manifest": {...}, "file_name": ..., "content_base64": ...}``
    and the header ``Idempotency-Key`` carries the batch's key, the same on
    every attempt and every run. Any 2xx reply is the acknowledgement; a
    ``receipt`` or ``receipt_number`` in a JSON reply is stored as the receipt.
    """

    name = "https"

    def __init__(self, config: Config, session: requests.Session | None = None) -> None:
        transmit = config.transmit
        if not transmit.url:
            raise ConfigError(
                "上报方式为 https，但配置文件中没有 transmit.url。",
                "adapter https needs transmit.url in the config file",
            )
        self.url = transmit.url
        self.timeout = (transmit.timeout, transmit.timeout)
        self.attempts = transmit.retries
        self.backoff = transmit.backoff
        self.backoff_max = transmit.backoff_max
        self.verify: bool | str = _checked_ca_bundle(config) if transmit.ca_bundle else True
        self.session = session or requests.Session()
        token = read_token(transmit)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _post_once(self, body: bytes, key: str) -> requests.Response:
        response = self.session.post(
            self.url,
            data=body,
            headers={"Content-Type": "application/json; charset=utf-8", IDEMPOTENCY_HEADER: key},
            timeout=self.timeout,
            verify=self.verify,
        )
        if response.status_code >= 500:
            raise _ServerError(response.status_code)
        return response

    def deliver(self, batch: BatchFiles) -> DeliveryResult:
        key = batch.manifest["idempotency_key"]
        body = json.dumps(
            {
                "manifest": batch.manifest,
                "file_name": batch.data_file.name,
                "content_base64": base64.b64encode(batch.data_file.read_bytes()).decode("ascii"),
            },
            ensure_ascii=False,
        ).encode("utf-8")
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff, max=self.backoff_max),
            retry=retry_if_exception(_is_retryable),
            before_sleep=before_sleep_log(log, logging.WARNING),
        )
        try:
            response = retrying(self._post_once, body, key)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            reason_zh, reason_en = _describe(last)
            raise DeliveryError(
                f"上报失败：{self.attempts} 次尝试均未成功（最后一次：{reason_zh}）。批次保留，下次运行 transmit 会重发。",
                f"delivery failed after {self.attempts} attempts (last: {reason_en}); "
                "the batch is kept and the next transmit run sends it again",
            ) from last
        except (requests.RequestException, _ServerError) as exc:
            reason_zh, reason_en = _describe(exc)
            raise DeliveryError(
                f"上报失败：{reason_zh}。批次保留，下次运行 transmit 会重发。",
                f"delivery failed: {reason_en}; the batch is kept and the next transmit run sends it again",
            ) from exc

        if not 200 <= response.status_code < 300:
            # A 4xx reply is not retried: the request itself is wrong (credentials, URL, content).
            raise DeliveryError(
                f"接收方拒绝了批次（HTTP {response.status_code}）。请检查地址、凭据和接收方的说明，然后重新运行 transmit。",
                f"the receiver rejected the batch (HTTP {response.status_code}); check the URL, the credentials "
                "and the receiver's reply, then run transmit again",
            )
        reply: object
        try:
            reply = response.json()
        except ValueError:
            reply = response.text[:MAX_STORED_REPLY_CHARS]
        receipt = None
        if isinstance(reply, dict):
            value = reply.get("receipt") or reply.get("receipt_number")
            receipt = str(value) if value is not None else None
        log.info("transmit batch acknowledged over https status=%s", response.status_code)
        return DeliveryResult(
            acknowledged=True, receipt=receipt, acknowledgement={"http_status": response.status_code, "reply": reply}
        )


def _checked_ca_bundle(config: Config) -> str:
    """Return ``transmit.ca_bundle`` as text; raise :class:`ConfigError` naming the key when the file is missing or contains no certificate.

    Without this check requests reports a missing bundle only when the first batch is sent, as an
    OSError about "a suitable TLS CA certificate bundle" that names neither the key nor the file.
    """
    path = config.transmit.ca_bundle
    source = config.source or "hukacapture.toml"
    if not path.is_file():
        raise ConfigError(
            f"配置文件 {source} 中 transmit.ca_bundle 指向的 CA 证书文件 {path} 不存在或不是文件。"
            "请把它改为出入境管理部门提供的 CA 证书文件（PEM 格式）的路径；接收方使用公认证书时可删除此项。",
            f"transmit.ca_bundle in config file {source} names the CA certificate file {path}, which does not "
            "exist or is not a file; set it to the PEM file of the exit-entry office's certificate authority, or "
            "remove the key when the receiver has a publicly trusted certificate",
        )
    try:
        # Loading shows a file with no certificate in it (empty, garbage, a key file) before any batch is sent.
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"配置文件 {source} 中 transmit.ca_bundle 指向的文件 {path} 中没有可用的 CA 证书（应为 PEM 格式，"
            "以 -----BEGIN CERTIFICATE----- 开头）。请换成出入境管理部门提供的 CA 证书文件。",
            f"transmit.ca_bundle in config file {source} names {path}, which holds no usable CA certificate "
            f"({exc}); it must be a PEM file starting with -----BEGIN CERTIFICATE-----, such as the one the "
            "exit-entry office provides",
        ) from exc
    return str(path)


def _describe(exc: BaseException | None) -> tuple[str, str]:
    """Return what went wrong with a request, in Chinese and English."""
    if isinstance(exc, _ServerError):
        return f"HTTP {exc.status}", f"HTTP {exc.status}"
    if isinstance(exc, requests.exceptions.SSLError):
        # Verification failures are the common case: a receiver whose certificate comes from the office's own CA.
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return (
                "接收方的证书不受信任。请在配置文件的 [transmit] 中把 ca_bundle 设为出入境管理部门提供的 CA 证书文件",
                "the receiver's certificate is not trusted; set ca_bundle under [transmit] in the config file to "
                "the exit-entry office's CA certificate file",
            )
        return f"TLS 连接失败（{type(exc).__name__}）", f"TLS handshake failed ({type(exc).__name__})"
    if isinstance(exc, requests.Timeout):
        return "等待应答超时", "timed out"
    if isinstance(exc, requests.ConnectionError):
        return f"连接失败（{type(exc).__name__}）", f"connection failed ({type(exc).__name__})"
    name = type(exc).__name__ if exc is not None else "?"
    return name, name


def make_adapter(config: Config, data_dir: Path) -> Adapter:
    """Return the adapter chosen by ``transmit.adapter``.

    Raises :class:`ConfigError` when none is chosen or its folder or URL is missing.
    """
    transmit = config.transmit
    if transmit.adapter is None:
        raise ConfigError(
            "尚未配置上报方式。请在配置文件 hukacapture.toml 的 [transmit] 中设置 adapter = \"folder\"、\"https\" 或 \"manual\"，"
            "并用 --config 或环境变量 HUKA_CONFIG 指定该文件。说明见 docs/transmission.md。",
            "no delivery adapter is configured; set adapter = \"folder\", \"https\" or \"manual\" under [transmit] "
            "in hukacapture.toml and name the file with --config or $HUKA_CONFIG (see docs/transmission.md)",
        )
    if transmit.adapter == "folder":
        if transmit.folder is None:
            raise ConfigError(
                "上报方式为 folder，但配置文件中没有 transmit.folder（交换目录）。",
                "adapter folder needs transmit.folder (the drop folder) in the config file",
            )
        return FolderAdapter(transmit.folder)
    if transmit.adapter == "manual":
        return ManualAdapter(transmit.manual_folder or data_dir / "manual-upload")
    return HttpsAdapter(config)
