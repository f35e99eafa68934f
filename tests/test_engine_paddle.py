"""The optional paddleocr engine: model folders, its errors, reading, the pipeline and no network.

Tests that use the ``paddle`` fixture skip when the ``paddleocr`` package (the extra
``hukacapture[paddle]``) is not installed. The model-folder and error tests always run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from ocr import engine_paddle
from ocr.engine_paddle import PaddleOcrEngine, build_model_dirs, rapidocr_model_files
from ocr.engines import ENGINE_NAMES, get_engine
from ocr.errors import EngineUnavailableError
from ocr.ingest import Page, iter_pages
from ocr.pipeline import process_page
from sample_cards import SAMPLES_DIR

NO_PADDLEOCR = "paddleocr is not installed; install the extra with pip install -e '.[paddle]'"


def _text_image(text: str, width: int = 640, height: int = 90) -> np.ndarray:
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    cv2.putText(image, text, (12, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (20, 20, 20), 3, cv2.LINE_AA)
    return image


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def paddle() -> PaddleOcrEngine:
    pytest.importorskip("paddleocr", reason=NO_PADDLEOCR)
    return get_engine("paddleocr")


def test_paddleocr_is_registered():
    assert "paddleocr" in ENGINE_NAMES


def test_model_dirs_hold_onnx_and_yml(tmp_path):
    dirs = build_model_dirs(tmp_path)
    detection_onnx, recognition_onnx, direction_onnx = rapidocr_model_files()
    expected = {
        dirs.detection: ("PP-OCRv6_small_det", detection_onnx),
        dirs.recognition: ("PP-OCRv6_small_rec", recognition_onnx),
        dirs.direction: ("PP-LCNet_x0_25_textline_ori", direction_onnx),
    }
    for folder, (model_name, onnx_file) in expected.items():
        assert folder.name == model_name
        assert (folder / "inference.onnx").resolve() == onnx_file.resolve()
        config = yaml.safe_load((folder / "inference.yml").read_text(encoding="utf-8"))
        assert config["Global"]["model_name"] == model_name
        assert config["PreProcess"]["transform_ops"]
        assert config["PostProcess"]


def test_character_list_matches_recognition_output(tmp_path):
    import onnxruntime as ort

    dirs = build_model_dirs(tmp_path)
    config = yaml.safe_load((dirs.recognition / "inference.yml").read_text(encoding="utf-8"))
    characters = config["PostProcess"]["character_dict"]
    session = ort.InferenceSession(str(dirs.recognition / "inference.onnx"), providers=["CPUExecutionProvider"])
    classes = session.get_outputs()[0].shape[-1]
    # CTC decoding adds the blank in front and the space at the end.
    assert len(characters) + 2 == classes
    assert "登" in characters
    assert "0" in characters


def test_missing_paddleocr_raises_clear_error(monkeypatch):
    # None in sys.modules makes the import raise ImportError.
    monkeypatch.setitem(sys.modules, "paddleocr", None)
    with pytest.raises(EngineUnavailableError) as caught:
        PaddleOcrEngine()
    assert "paddleocr" in caught.value.message_zh
    assert "pip install" in caught.value.message_zh
    assert "pip install 'hukacapture[paddle]'" in caught.value.message_en
    assert "--engine rapidocr" in caught.value.message_en


def test_old_paddleocr_raises_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "paddleocr", types.SimpleNamespace(__version__="3.4.1"))
    with pytest.raises(EngineUnavailableError) as caught:
        PaddleOcrEngine()
    assert "3.4.1" in caught.value.message_zh
    assert "3.5" in caught.value.message_en
    assert "too old" in caught.value.message_en


def test_model_load_failure_raises_clear_error(monkeypatch):
    def fail_to_load(**_kwargs):
        raise RuntimeError("No valid ONNX model found")

    fake = types.SimpleNamespace(__version__="3.7.0", PaddleOCR=fail_to_load, TextRecognition=fail_to_load)
    monkeypatch.setitem(sys.modules, "paddleocr", fake)
    with pytest.raises(EngineUnavailableError) as caught:
        PaddleOcrEngine()
    assert "No valid ONNX model found" in caught.value.message_zh
    assert "failed to load" in caught.value.message_en


def test_paddleocr_reads_zone(paddle):
    lines = paddle.read_zone(_text_image("E12345678"))
    text = "".join(line.text for line in lines).replace(" ", "")
    assert text == "E12345678"
    assert 0.5 < lines[0].score <= 1.0


def test_paddleocr_page_lines_have_boxes(paddle):
    page = np.full((300, 700, 3), 255, dtype=np.uint8)
    page[40:130] = _text_image("SMITH JOHN", 700)
    page[170:260] = _text_image("1985-03-12", 700)
    lines = paddle.read_page(page)
    texts = [line.text.replace(" ", "") for line in lines]
    assert "SMITHJOHN" in texts
    assert "1985-03-12" in texts
    first = lines[texts.index("SMITHJOHN")]
    x0, y0, x1, y1 = first.bbox
    assert y0 < 130
    assert y1 > 40
    assert first.points.shape == (4, 2)
    assert first.points.dtype == np.float32
    # Clockwise from top-left: the second corner lies right of the first, the fourth below it.
    assert first.points[1, 0] > first.points[0, 0]
    assert first.points[3, 1] > first.points[0, 1]


def test_paddleocr_blank_zone_reads_nothing(paddle):
    assert paddle.read_zone(np.full((60, 200, 3), 255, dtype=np.uint8)) == []


def test_paddleocr_keeps_low_score_lines(paddle):
    rng = np.random.default_rng(3)
    image = _text_image("A305")
    noisy = np.clip(image.astype(int) + rng.normal(0, 90, image.shape), 0, 255).astype(np.uint8)
    lines = paddle.read_zone(noisy)
    assert lines, "a noisy line was dropped"
    assert all(0.0 <= line.score <= 1.0 for line in lines)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["card_01_foreign_printed", "card_04_domestic_handwriting"])
def test_paddleocr_pipeline_on_sample(paddle, name):
    path = SAMPLES_DIR / f"{name}.jpg"
    truth = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    (page,) = [item for item in iter_pages([path]) if isinstance(item, Page)]
    extraction = process_page(page, engine=paddle).extraction
    assert extraction.card_type == truth["card_type"]
    right = [key for key, value in truth["fields"].items() if key in extraction.fields and extraction.fields[key].value == value]
    # On the committed samples paddleocr read 194 of 195 fields right (docs/engines.md).
    assert len(right) >= 0.9 * len(truth["fields"]), f"right: {right}"


@pytest.mark.netns
@pytest.mark.skipif(not _can_unshare(), reason="needs root and unshare to make a network namespace")
def test_paddleocr_runs_without_network():
    pytest.importorskip("paddleocr", reason=NO_PADDLEOCR)
    # An audit hook records every connection attempt and name lookup, which a network namespace alone
    # would only make fail quietly.
    code = """
import sys
attempts = []
sys.addaudithook(lambda event, args: attempts.append(event) if event in ("socket.connect", "socket.getaddrinfo") else None)
import cv2, numpy as np
from ocr.engines import get_engine
image = np.full((90, 640, 3), 255, dtype=np.uint8)
cv2.putText(image, "B1632", (12, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (20, 20, 20), 3, cv2.LINE_AA)
lines = get_engine("paddleocr").read_zone(image)
print("".join(line.text for line in lines))
print("network attempts:", attempts)
"""
    result = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(engine_paddle.__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr
    assert "B1632" in result.stdout
    assert "network attempts: []" in result.stdout
