"""Nothing opens a network connection: ``extract`` runs in a network namespace with no network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sample_cards import SAMPLES_DIR

SAMPLE = SAMPLES_DIR / "card_03_domestic_printed.jpg"


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.netns
@pytest.mark.skipif(not _can_unshare(), reason="needs root and unshare to make a network namespace")
def test_extract_runs_without_network(tmp_path):
    # A probe first: inside the namespace no outside address can even be routed.
    probe = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", "import socket; socket.create_connection(('1.1.1.1', 443), timeout=3)"],
        capture_output=True,
        text=True,
    )
    assert probe.returncode != 0
    assert "unreachable" in probe.stderr.lower() or "network" in probe.stderr.lower()

    # No ORT_DISABLE_TELEMETRY here: the product must set it itself before onnxruntime loads.
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    result = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "ocr", "extract", str(SAMPLE), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads((tmp_path / f"{SAMPLE.stem}.json").read_text(encoding="utf-8"))
    truth = json.loads(SAMPLE.with_suffix(".json").read_text(encoding="utf-8"))
    assert output["card_type"] == truth["card_type"]
    assert output["card_type_confidence"] > 0.8
    assert set(output["fields"]) == set(truth["fields"])
    assert output["fields"]["id_number"]["value"] == truth["fields"]["id_number"]


def test_telemetry_disabled_before_onnxruntime_loads():
    code = "import ocr.engines, os; print(os.environ.get('ORT_DISABLE_TELEMETRY'))"
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == "1"


def test_models_load_without_download(monkeypatch):
    from rapidocr.utils import download_file

    from ocr.engines import RapidOcrEngine

    def fail_on_download(*_args, **_kwargs):
        raise AssertionError("rapidocr tried to download a model")

    monkeypatch.setattr(download_file.DownloadFile, "run", classmethod(fail_on_download))
    monkeypatch.setattr(download_file.DownloadFile, "_make_http_request", classmethod(fail_on_download))
    engine = RapidOcrEngine()
    assert engine.read_zone(__import__("numpy").full((40, 120, 3), 255, dtype="uint8")) == []
