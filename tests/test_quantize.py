"""8-bit text detector: chosen only when built from the installed detector, and finding the same lines."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import rapidocr

from ocr import quantize
from ocr.engines import RapidOcrEngine
from ocr.quantize import DETECTOR_ENV, INT8_DETECTOR, _sha256, choose_detector, quantize_detector

FLOAT_DETECTOR = sorted((Path(rapidocr.__file__).parent / "models").glob("*det*.onnx"))[-1]


@pytest.fixture(autouse=True)
def _fresh_choice(monkeypatch):
    monkeypatch.delenv(DETECTOR_ENV, raising=False)
    choose_detector.cache_clear()
    yield
    choose_detector.cache_clear()


def _fake_pair(folder: Path, source_sha256: str) -> Path:
    model = folder / "det_int8.onnx"
    model.write_bytes(b"not read by choose_detector")
    model.with_suffix(".json").write_text(json.dumps({"source_sha256": source_sha256}), encoding="utf-8")
    return model


def test_committed_detector_matches_installed():
    # A rapidocr release with another detector needs python -m ocr model quantize and a new commit.
    choice = choose_detector(FLOAT_DETECTOR)
    assert choice.quantized, choice.reason
    assert choice.path == INT8_DETECTOR


def test_other_source_falls_back(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(quantize, "INT8_DETECTOR", _fake_pair(tmp_path, "0" * 64))
    with caplog.at_level(logging.WARNING, logger="ocr.quantize"):
        choice = choose_detector(FLOAT_DETECTOR)
    assert not choice.quantized
    assert choice.path == FLOAT_DETECTOR
    assert "python -m ocr model quantize" in caplog.text


def test_matching_source_chosen(tmp_path, monkeypatch):
    model = _fake_pair(tmp_path, _sha256(FLOAT_DETECTOR))
    monkeypatch.setattr(quantize, "INT8_DETECTOR", model)
    choice = choose_detector(FLOAT_DETECTOR)
    assert choice.quantized
    assert choice.path == model


def test_missing_or_broken_sidecar(tmp_path, monkeypatch):
    model = _fake_pair(tmp_path, _sha256(FLOAT_DETECTOR))
    monkeypatch.setattr(quantize, "INT8_DETECTOR", model)
    model.with_suffix(".json").write_text("{not json", encoding="utf-8")
    assert not choose_detector(FLOAT_DETECTOR).quantized

    choose_detector.cache_clear()
    model.with_suffix(".json").unlink()
    assert not choose_detector(FLOAT_DETECTOR).quantized


def test_environment_selects_float(monkeypatch):
    monkeypatch.setenv(DETECTOR_ENV, "float")
    choice = choose_detector(FLOAT_DETECTOR)
    assert not choice.quantized
    assert choice.path == FLOAT_DETECTOR


def _rects(boxes: list[np.ndarray]) -> np.ndarray:
    return np.array([[b[:, 0].min(), b[:, 1].min(), b[:, 0].max(), b[:, 1].max()] for b in boxes])


def _best_overlap(rect: np.ndarray, others: np.ndarray) -> float:
    x0 = np.maximum(rect[0], others[:, 0])
    y0 = np.maximum(rect[1], others[:, 1])
    x1 = np.minimum(rect[2], others[:, 2])
    y1 = np.minimum(rect[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (rect[2] - rect[0]) * (rect[3] - rect[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return float((inter / (area + areas - inter)).max())


def test_int8_finds_float_lines(monkeypatch):
    from sample_cards import generate_card

    image, _truth = generate_card(4242, "foreign_guest", dpi=200)
    page = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
    scale = 960 / max(page.shape[:2])
    page = cv2.resize(page, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)

    quantized = RapidOcrEngine()
    assert quantized.detector.quantized
    monkeypatch.setenv(DETECTOR_ENV, "float")
    choose_detector.cache_clear()
    exact = RapidOcrEngine()
    assert not exact.detector.quantized

    found = _rects(quantized.detect_lines(page))
    expected = _rects(exact.detect_lines(page))
    assert len(expected) >= 30
    assert abs(len(found) - len(expected)) <= 0.05 * len(expected)
    overlaps = [_best_overlap(rect, found) for rect in expected]
    # Every float line has an 8-bit line over it; the edges may move by a pixel or two.
    assert min(overlaps) > 0.5
    assert np.median(overlaps) > 0.85


def test_quantize_writes_model_and_sidecar(tmp_path):
    pytest.importorskip("onnx", reason="the onnx package (bench extra) builds the 8-bit detector")
    import onnxruntime

    pages = quantize.calibration_pages(cards=2)
    target = quantize_detector(FLOAT_DETECTOR, tmp_path / "det_int8.onnx", pages)

    sidecar = json.loads(target.with_suffix(".json").read_text(encoding="utf-8"))
    assert sidecar["source"] == FLOAT_DETECTOR.name
    assert sidecar["source_sha256"] == _sha256(FLOAT_DETECTOR)
    assert not (tmp_path / "det_int8.pre.onnx").exists()
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    output = session.run(None, {session.get_inputs()[0].name: quantize._detector_input(pages[0])})[0]
    assert output.shape[0] == 1
    # The detector's output is a probability map.
    assert float(output.min()) >= 0.0
    assert float(output.max()) <= 1.0
