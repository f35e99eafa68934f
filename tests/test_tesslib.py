"""Tesseract in this process: the same lines as the tesseract program, models loaded once, quiet."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from ocr.engines import TesseractEngine, _tsv_columns
from ocr.errors import EngineUnavailableError
from ocr.tesslib import TessLibrary, TessLibraryError


def _line_image(text: str, width: int = 640, height: int = 90, thickness: int = 3) -> np.ndarray:
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    cv2.putText(image, text, (12, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (20, 20, 20), thickness, cv2.LINE_AA)
    return image


@pytest.fixture(scope="module")
def engine() -> TesseractEngine:
    try:
        engine = TesseractEngine()
    except EngineUnavailableError as exc:
        pytest.skip(exc.message_en)
    if engine._library is None:
        pytest.skip("libtesseract is not installed")
    return engine


def _read(engine: TesseractEngine, image: np.ndarray, psm: int, charset: str | None, *, in_process: bool):
    library = engine._library
    if not in_process:
        engine._library = None
    try:
        lines = engine._lines(image, psm, charset)
    finally:
        engine._library = library
    return [(line.text, line.score, line.points.tolist()) for line in lines]


@pytest.mark.parametrize(
    ("text", "charset"),
    [
        ("E12345678", None),
        ("1985-03-12", "0123456789-"),
        ("SMITH JOHN", "ABCDEFGHIJKLMNOPQRSTUVWXYZ "),
        ("R00M 12O8", "0123456789"),
    ],
)
def test_library_reads_as_program(engine, text, charset):
    # Thin strokes and noise bring low scores, where a rounding or version difference would show.
    rng = np.random.default_rng(len(text))
    image = _line_image(text, thickness=2)
    noisy = np.clip(image.astype(int) + rng.normal(0, 40, image.shape), 0, 255).astype(np.uint8)

    for sample in (image, noisy):
        in_process = _read(engine, sample, 7, charset, in_process=True)
        program = _read(engine, sample, 7, charset, in_process=False)
        assert in_process == program
        assert in_process, f"nothing read from {text!r}"


def test_library_page_reads_as_program(engine):
    page = np.full((420, 900, 3), 255, dtype=np.uint8)
    page[30:120] = _line_image("GUEST REGISTRATION", 900)
    page[180:270] = _line_image("ROOM 1208", 900)
    page[300:390, :450] = _line_image("2026-12-05", 450)

    in_process = _read(engine, page, 11, None, in_process=True)
    program = _read(engine, page, 11, None, in_process=False)
    assert in_process == program
    assert len(in_process) >= 3


def test_whitelist_reset_between_reads(engine):
    # A digits-only read must not leave its whitelist on the handle for the next read.
    digits = engine.read_zone(_line_image("AB 2026"), charset="0123456789")
    assert "AB" not in " ".join(line.text for line in digits)
    letters = engine.read_zone(_line_image("AB 2026"))
    assert "AB" in " ".join(line.text for line in letters)


def test_library_rejects_grey_image(engine):
    with pytest.raises(ValueError, match="H x W x 3"):
        engine._library.tsv(np.zeros((20, 40), dtype=np.uint8), languages="eng", psm=7)


def test_unknown_language_raises():
    try:
        library = TessLibrary()
    except TessLibraryError as exc:
        pytest.skip(str(exc))
    with pytest.raises(TessLibraryError, match="xx_nosuch"):
        library.tsv(_line_image("A"), languages="xx_nosuch", psm=7)


def test_library_silent_and_no_leak_warning(tmp_path):
    # Tesseract prints resolution estimates and, for handles not ended, leak warnings at exit.
    script = tmp_path / "read.py"
    script.write_text(
        "import cv2, numpy as np\n"
        "from ocr.engines import TesseractEngine\n"
        "engine = TesseractEngine()\n"
        "assert engine._library is not None\n"
        "page = np.full((300, 900, 3), 255, np.uint8)\n"
        "cv2.putText(page, 'ROOM 1208', (20, 150), cv2.FONT_HERSHEY_SIMPLEX, 2, (0, 0, 0), 4)\n"
        "print(len(engine.read_page(page)))\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) >= 1
    assert "Estimating resolution" not in done.stderr
    assert "LEAK" not in done.stderr


def test_tsv_columns_as_pytesseract():
    tsv = "1\t1\t0\t0\t0\t0\t0\t0\t640\t90\t-1\t\n5\t1\t1\t1\t1\t1\t12\t30\t200\t40\t96.53\tE12345678\n"
    columns = _tsv_columns(tsv)
    assert columns["text"] == ["", "E12345678"]
    assert columns["conf"] == [-1, 96]
    assert columns["left"] == [0, 12]
    assert columns["line_num"] == [0, 1]
