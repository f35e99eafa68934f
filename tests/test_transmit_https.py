"""HTTPS adapter against a real HTTP server on 127.0.0.1: outages, 5xx, 4xx, timeouts, slow and lost
acknowledgements, and a sender killed while its request is in flight.

After each case every approved record must be acknowledged, and the receiver's
own count (it dedupes by Idempotency-Key) must show each record exactly once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from ocr.errors import ConfigError, ExitCode
from ocr.store import OutboxRow, Store
from ocr.transmit import outbox
from ocr.transmit.config import load_config
from ocr.transmit.runner import run_transmit
from test_transmit_support import REGISTRY, REVIEWER, Cards, Receiver, ReceiverServer, foreign_values, sample_png, write_config

DAY = "2025-12-15"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUBPROCESS_TIMEOUT_S = 60
TOKEN = "test-token-123"


@pytest.fixture(scope="module")
def png() -> bytes:
    return sample_png()


@pytest.fixture()
def cards(tmp_path: Path, png: bytes, monkeypatch) -> Cards:
    monkeypatch.setenv("HUKA_TRANSMIT_TOKEN", TOKEN)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    store = Store(data_dir=tmp_path / "data")
    cards = Cards(store, png)
    cards.add(foreign_values("0012345", DAY))
    cards.add(foreign_values("0012346", DAY))
    cards.add(foreign_values("0012347", "2025-12-16"))
    return cards


def https_config(tmp_path: Path, url: str, **overrides):
    values = {"adapter": "https", "url": url, "timeout": 2.0, "retries": 3, "backoff": 0.01, "backoff_max": 0.05, "hotel_id": "H001"}
    values.update(overrides)
    return load_config(write_config(tmp_path / "hukacapture.toml", **values))


def entry_states(store: Store) -> dict[int, str]:
    with store.session() as session:
        return {row.id: row.state for row in session.scalars(select(OutboxRow)).all()}


def assert_each_record_once(store: Store, receiver: Receiver) -> None:
    states = entry_states(store)
    assert set(states.values()) == {"acknowledged"}, states
    assert receiver.count_by_record() == {record_id: 1 for record_id in states}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_https_delivers_and_stores_receipt(tmp_path: Path, cards: Cards):
    with ReceiverServer() as server:
        report = run_transmit(cards.store, https_config(tmp_path, server.url), registry=REGISTRY)

    assert report.failed == []
    assert len(report.acknowledged) == 2
    assert_each_record_once(cards.store, server.state)
    for batch in outbox.list_batches(cards.store):
        assert batch.receipt == f"R-{batch.idempotency_key[-8:]}"
        assert batch.acknowledged_by == "https"
    assert all(h["Authorization"] == f"Bearer {TOKEN}" for h in server.state.headers)


def test_rerun_sends_nothing_new(tmp_path: Path, cards: Cards):
    with ReceiverServer() as server:
        config = https_config(tmp_path, server.url)
        run_transmit(cards.store, config, registry=REGISTRY)
        requests_before = server.state.requests
        report = run_transmit(cards.store, config, registry=REGISTRY)

    assert report.formed == 0
    assert server.state.requests == requests_before


def test_outage_then_recovery(tmp_path: Path, cards: Cards):
    port = free_port()
    config = https_config(tmp_path, f"http://127.0.0.1:{port}/batches")

    down = run_transmit(cards.store, config, registry=REGISTRY)

    assert len(down.failed) == 2
    assert "连接失败" in down.failed[0][1]
    assert set(entry_states(cards.store).values()) == {"batched"}
    with ReceiverServer(port=port) as server:
        up = run_transmit(cards.store, config, registry=REGISTRY)
    assert up.formed == 0
    assert len(up.acknowledged) == 2
    assert_each_record_once(cards.store, server.state)


def test_server_errors_retried(tmp_path: Path, cards: Cards):
    with ReceiverServer(Receiver(script=["500", "500"])) as server:
        report = run_transmit(cards.store, https_config(tmp_path, server.url), registry=REGISTRY)

    assert report.failed == []
    assert server.state.requests == 4
    assert_each_record_once(cards.store, server.state)


def test_server_errors_past_retries_fail(tmp_path: Path, cards: Cards):
    with ReceiverServer(Receiver(script=["500"] * 3)) as server:
        config = https_config(tmp_path, server.url)
        report = run_transmit(cards.store, config, registry=REGISTRY)

        assert len(report.failed) == 1
        assert "HTTP 500" in report.failed[0][2]
        rerun = run_transmit(cards.store, config, registry=REGISTRY)

    assert rerun.failed == []
    assert_each_record_once(cards.store, server.state)


def test_client_error_not_retried(tmp_path: Path, cards: Cards):
    with ReceiverServer(Receiver(script=["400"])) as server:
        config = https_config(tmp_path, server.url)
        report = run_transmit(cards.store, config, registry=REGISTRY)

        assert len(report.failed) == 1
        assert "HTTP 400" in report.failed[0][1]
        assert server.state.requests == 2
        rerun = run_transmit(cards.store, config, registry=REGISTRY)

    assert rerun.failed == []
    assert_each_record_once(cards.store, server.state)


def test_timeout_then_retry(tmp_path: Path, cards: Cards):
    # The first reply comes after the client gave up; the receiver stored the batch, so the retry is a duplicate.
    with ReceiverServer(Receiver(script=["delay:3"])) as server:
        report = run_transmit(cards.store, https_config(tmp_path, server.url, timeout=0.5), registry=REGISTRY)

    assert report.failed == []
    assert server.state.duplicates == 1
    assert_each_record_once(cards.store, server.state)


def test_slow_acknowledgement_within_timeout(tmp_path: Path, cards: Cards):
    with ReceiverServer(Receiver(script=["delay:0.8", "delay:0.8"])) as server:
        report = run_transmit(cards.store, https_config(tmp_path, server.url, timeout=3.0), registry=REGISTRY)

    assert report.failed == []
    assert server.state.requests == 2
    assert server.state.duplicates == 0
    assert_each_record_once(cards.store, server.state)


def test_lost_acknowledgement_deduped(tmp_path: Path, cards: Cards):
    with ReceiverServer(Receiver(script=["store_then_500", "drop"])) as server:
        report = run_transmit(cards.store, https_config(tmp_path, server.url), registry=REGISTRY)

    assert report.failed == []
    assert server.state.duplicates >= 1
    assert_each_record_once(cards.store, server.state)


def test_duplicate_acknowledgement_keeps_first(tmp_path: Path, cards: Cards):
    with ReceiverServer() as server:
        run_transmit(cards.store, https_config(tmp_path, server.url), registry=REGISTRY)
    batch = outbox.list_batches(cards.store)[0]

    again = outbox.mark_acknowledged(cards.store, batch.id, by="https", receipt="OTHER", acknowledgement={})

    assert again is False
    assert outbox.get_batch(cards.store, str(batch.id)).receipt == batch.receipt
    assert_each_record_once(cards.store, server.state)


def test_correction_refers_to_first_send(tmp_path: Path, cards: Cards):
    from ocr.review import correct_fields

    with ReceiverServer() as server:
        config = https_config(tmp_path, server.url)
        run_transmit(cards.store, config, registry=REGISTRY)
        card_id = 1
        correct_fields(
            cards.store, card_id, {"room_number": "2201"}, actor=REVIEWER,
            expected_version=cards.store.get_card(card_id).version, registry=REGISTRY,
        )
        report = run_transmit(cards.store, config, registry=REGISTRY)

    assert report.formed == 1
    corrections = [r for r in server.state.records() if r["record_kind"] == "correction"]
    assert len(corrections) == 1
    originals = {r["card_id"]: r["record_id"] for r in server.state.records() if r["record_kind"] == "original"}
    assert corrections[0]["corrects_record_id"] == str(originals[card_id])
    assert corrections[0]["room_number"] == "2201"
    assert_each_record_once(cards.store, server.state)


def run_cli(args: list[str], cwd: Path, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), HUKA_LANG="zh")
    return subprocess.Popen(
        [sys.executable, "-m", "ocr", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def test_sender_killed_in_flight(tmp_path: Path, cards: Cards):
    cards.store.close()
    receiver = Receiver(script=["delay:30"])
    with ReceiverServer(receiver) as server:
        config_file = write_config(
            tmp_path / "hukacapture.toml", adapter="https", url=server.url, timeout=20.0, retries=2, backoff=0.01, hotel_id="H001"
        )
        args = ["transmit", "--config", str(config_file), "--data-dir", str(tmp_path / "data")]
        sender = run_cli(args, tmp_path)
        try:
            assert receiver.received.wait(SUBPROCESS_TIMEOUT_S), "the receiver got no request"
            sender.send_signal(signal.SIGKILL)
            sender.wait(timeout=SUBPROCESS_TIMEOUT_S)
        finally:
            if sender.poll() is None:
                sender.kill()
                sender.wait()
        assert sender.returncode == -signal.SIGKILL

        store = Store(data_dir=tmp_path / "data")
        assert "acknowledged" not in set(entry_states(store).values())
        assert len(receiver.batches) == 1

        rerun = run_cli(args, tmp_path)
        stdout, stderr = rerun.communicate(timeout=SUBPROCESS_TIMEOUT_S)

    assert rerun.returncode == 0, stderr
    assert "已确认 2 个" in stdout
    assert receiver.duplicates == 1
    assert_each_record_once(store, receiver)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1 and its key; the certificate is its own CA bundle."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test receiver")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = folder / "receiver.pem"
    key_file = folder / "receiver.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def tls_receiver(cert_file: Path, key_file: Path) -> ReceiverServer:
    import ssl

    server = ReceiverServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    return server


def test_untrusted_certificate_names_ca_bundle(tmp_path: Path, cards: Cards):
    cert_file, key_file = self_signed_certificate(tmp_path)
    with tls_receiver(cert_file, key_file) as server:
        url = server.url.replace("http://", "https://")
        untrusted = run_transmit(cards.store, https_config(tmp_path, url), registry=REGISTRY)
        trusted = run_transmit(cards.store, https_config(tmp_path, url, ca_bundle=str(cert_file)), registry=REGISTRY)

    assert len(untrusted.failed) == 2
    _batch, message_zh, message_en = untrusted.failed[0]
    assert "接收方的证书不受信任" in message_zh
    assert "ca_bundle" in message_zh
    assert "certificate is not trusted" in message_en
    assert trusted.failed == []
    assert_each_record_once(cards.store, server.state)


def test_missing_ca_bundle_is_config_error(tmp_path: Path, cards: Cards):
    missing = tmp_path / "office-ca.pem"
    config_file = write_config(
        tmp_path / "hukacapture.toml", adapter="https", url="https://127.0.0.1:9/batches", hotel_id="H001", ca_bundle=str(missing)
    )
    cards.store.close()

    with pytest.raises(ConfigError) as raised:
        run_transmit(Store(data_dir=tmp_path / "data"), load_config(config_file), registry=REGISTRY)
    result = run_cli(["transmit", "--config", str(config_file), "--data-dir", str(tmp_path / "data")], tmp_path)
    _stdout, stderr = result.communicate(timeout=SUBPROCESS_TIMEOUT_S)

    assert "transmit.ca_bundle" in raised.value.message_zh
    assert str(missing) in raised.value.message_zh
    assert str(config_file) in raised.value.message_zh
    assert result.returncode == ExitCode.CONFIG_INVALID
    assert "transmit.ca_bundle" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("content", [b"", b"garbage\n"], ids=["empty", "garbage"])
def test_invalid_ca_bundle_is_config_error(tmp_path: Path, cards: Cards, content: bytes):
    bundle = tmp_path / "office-ca.pem"
    bundle.write_bytes(content)
    config_file = write_config(
        tmp_path / "hukacapture.toml", adapter="https", url="https://127.0.0.1:9/batches", hotel_id="H001", ca_bundle=str(bundle)
    )
    cards.store.close()

    result = run_cli(["transmit", "--config", str(config_file), "--data-dir", str(tmp_path / "data")], tmp_path)
    _stdout, stderr = result.communicate(timeout=SUBPROCESS_TIMEOUT_S)

    assert result.returncode == ExitCode.CONFIG_INVALID, stderr
    assert "transmit.ca_bundle" in stderr
    assert "没有可用的 CA 证书" in stderr
    assert "Traceback" not in stderr
