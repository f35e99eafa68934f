"""OCR engines: both real engines read rendered text, keep low-score lines and give boxes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ocr.engines import RapidOcrEngine, TesseractEngine, _join_words, get_engine
from ocr.errors import EngineUnavailableError


def _text_image(text: str, width: int = 640, height: int = 90) -> np.ndarray:
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    cv2.putText(image, text, (12, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (20, 20, 20), 3, cv2.LINE_AA)
    return image


@pytest.fixture(scope="module")
def rapid() -> RapidOcrEngine:
    return get_engine("rapidocr")


@pytest.fixture(scope="module")
def tesseract() -> TesseractEngine:
    try:
        return get_engine("tesseract")
    except EngineUnavailableError as exc:
        pytest.skip(exc.message_en)


def test_rapidocr_reads_zone(rapid):
    lines = rapid.read_zone(_text_image("E12345678"))
    text = "".join(line.text for line in lines).replace(" ", "")
    assert text == "E12345678"
    assert 0.5 < lines[0].score <= 1.0


def test_rapidocr_page_lines_have_boxes(rapid):
    page = np.full((300, 700, 3), 255, dtype=np.uint8)
    page[40:130] = _text_image("SMITH JOHN", 700)
    page[170:260] = _text_image("1985-03-12", 700)
    lines = rapid.read_page(page)
    texts = [line.text.replace(" ", "") for line in lines]
    assert "SMITHJOHN" in texts
    assert "1985-03-12" in texts
    first = lines[texts.index("SMITHJOHN")]
    x0, y0, x1, y1 = first.bbox
    assert y0 < 130
    assert y1 > 40
    assert first.points.shape == (4, 2)


def test_rapidocr_blank_zone_reads_nothing(rapid):
    assert rapid.read_zone(np.full((60, 200, 3), 255, dtype=np.uint8)) == []


def test_rapidocr_keeps_low_score_lines(rapid):
    # Heavy noise lowers the score; the engine must still return the line for the pipeline to judge.
    rng = np.random.default_rng(3)
    image = _text_image("A305")
    noisy = np.clip(image.astype(int) + rng.normal(0, 90, image.shape), 0, 255).astype(np.uint8)
    lines = rapid.read_zone(noisy)
    assert lines, "a noisy line was dropped"
    assert all(0.0 <= line.score <= 1.0 for line in lines)


def test_tesseract_reads_zone(tesseract):
    lines = tesseract.read_zone(_text_image("PASSPORT 2026"))
    text = " ".join(line.text for line in lines)
    assert "PASSPORT" in text
    assert "2026" in text
    assert all(0.0 <= line.score <= 1.0 for line in lines)


def test_tesseract_page_boxes(tesseract):
    lines = tesseract.read_page(_text_image("ROOM 1208", 700, 120))
    assert lines
    x0, y0, x1, y1 = lines[0].bbox
    assert x1 > x0
    assert y1 > y0


def test_unknown_engine_rejected():
    with pytest.raises(EngineUnavailableError) as error:
        get_engine("nosuch")
    assert "未知的识别引擎" in error.value.message_zh


def test_cjk_words_joined_without_space():
    assert _join_words(["上海", "浦东"]) == "上海浦东"
    assert _join_words(["JOHN", "PAUL"]) == "JOHN PAUL"
    assert _join_words(["No.", "0012345"]) == "No. 0012345"
