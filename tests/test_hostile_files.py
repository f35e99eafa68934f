"""Broken and hostile input files through ``python -m ocr ingest``, in one run with good files.

Every file is written here, at test time, from code. The run must store every
readable page, give each unreadable file (or page) one Chinese message on
stderr that names it and gives the next step, and end with the partial-success
exit code. The command runs once per module, because every readable page goes
through the real OCR engine.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ocr.errors import ExitCode
from ocr.store import Store
from test_ingest import (
    EXIF_ORIENTATION_TAG,
    encrypted_pdf_bytes,
    make_card_rgb,
    pdf_bytes,
    png_chunk,
    png_with_claimed_size,
)

OCR_TIMEOUT_S = 600
BATCH = "hostile"
CJK = re.compile(r"[\u4e00-\u9fff]")
FAILURE_PREFIX = "无法读取文件 "


def write_rgb48_png(path: Path, rgb: np.ndarray) -> None:
    """Write an H x W x 3 uint8 image as a PNG with 16 bits per channel (colour type 2, depth 16)."""
    height, width = rgb.shape[:2]
    wide = rgb.astype(">u2") * 257  # 255 -> 65535, big-endian as PNG stores samples
    rows = b"".join(b"\x00" + wide[row].tobytes() for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def three_page_pdf_with_broken_middle() -> bytes:
    """Return a three-page PDF whose second page refers to an object the file does not contain."""
    content = b"0 0 0 RG 4 w 10 10 412 268 re S 1 0 0 rg 20 230 40 40 re f BT /F1 36 Tf 80 130 Td (CARD) Tj ET"
    stream = b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 432 288] /Contents 5 0 R /Resources << /Font << /F1 6 0 R >> >> >>"
    return pdf_bytes(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R 99 0 R 4 0 R] /Count 3 >>",
            page,
            page,
            stream,
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def three_page_tiff_with_broken_middle(path: Path) -> None:
    """Write a three-page LZW TIFF and overwrite the compressed strips of page 2 with 0xFF bytes."""
    frames = [make_card_rgb(label=f"PAGE {number}") for number in (1, 2, 3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], compression="tiff_lzw", dpi=(200, 200))
    with Image.open(path) as image:
        image.seek(1)
        offsets = image.tag_v2[273]  # StripOffsets
        counts = image.tag_v2[279]  # StripByteCounts
    data = bytearray(path.read_bytes())
    for offset, count in zip(offsets, counts, strict=True):
        data[offset : offset + count] = b"\xff" * count
    path.write_bytes(bytes(data))


def truncated(path: Path, image: Image.Image, **save_options) -> None:
    """Write ``image`` to ``path`` and keep only the first half of the bytes."""
    image.save(path, **save_options)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def huge_real_png(path: Path) -> None:
    """Write a grey PNG of 10000 x 8200 pixels (82 million, over the 80 million maximum) with real pixel data."""
    gray = np.full((8200, 10000), 255, dtype=np.uint8)
    cv2.rectangle(gray, (100, 100), (9900, 8100), 0, 20)
    cv2.putText(gray, "HUGE", (3000, 4500), cv2.FONT_HERSHEY_SIMPLEX, 40, 0, 60)
    Image.fromarray(gray, "L").save(path, compress_level=1)


def upright_card_stored_rotated(path: Path) -> None:
    """Write the card as a phone camera stores a portrait shot: pixels turned, EXIF orientation 6 to turn them back."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = 6  # display after turning 90 degrees clockwise
    make_card_rgb(label="EXIF").transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)


def palette_with_transparency(path: Path) -> None:
    card = make_card_rgb(label="PALETTE").convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    card.save(path, transparency=0)


def sixteen_bit_gray(path: Path) -> None:
    gray = np.asarray(make_card_rgb(label="DEEP").convert("L"), dtype=np.uint16) * 257
    Image.fromarray(gray).save(path)


# Files that must be stored: (name in the corpus folder, builder).
GOOD_FILES = {
    "good.jpg": lambda path: make_card_rgb(label="GOOD").save(path, quality=95),
    "really a png.jpg": lambda path: make_card_rgb(label="PNG").save(path, format="PNG"),
    "cmyk.jpg": lambda path: make_card_rgb(label="CMYK").convert("CMYK").save(path, quality=95),
    "cmyk.tif": lambda path: make_card_rgb(label="CMYK").convert("CMYK").save(path, compression="tiff_lzw"),
    "deep_gray.png": sixteen_bit_gray,
    "deep_gray.tif": sixteen_bit_gray,
    "deep_rgb.png": lambda path: write_rgb48_png(path, np.asarray(make_card_rgb(label="RGB48"))),
    "palette_transparent.png": palette_with_transparency,
    "phone_exif6.jpg": upright_card_stored_rotated,
    "-leading dash.jpg": lambda path: make_card_rgb(label="DASH").save(path),
    "前台 扫描.v2/登记卡 第1张.jpg": lambda path: make_card_rgb(label="ONE").save(path),
    "前台 扫描.v2/guest.card.2025.08.13.png": lambda path: make_card_rgb(label="DOTS").save(path),
    "前台 扫描.v2/--two dashes.tiff": lambda path: make_card_rgb(label="TWO").save(path),
}

# Multi-page files with one bad page: the good pages are stored, the bad one is reported.
MIXED_FILES = {
    "three pages.pdf": lambda path: path.write_bytes(three_page_pdf_with_broken_middle()),
    "three pages.tif": three_page_tiff_with_broken_middle,
}


@dataclass(frozen=True)
class BadFile:
    build: Callable[[Path], object] | None  # None for a file that is not written
    reason: str  # part of the Chinese reason the message must contain


BAD_FILES = {
    "zero.jpg": BadFile(lambda path: path.write_bytes(b""), "0 字节"),
    "truncated.png": BadFile(lambda path: truncated(path, make_card_rgb(800, 600)), "数据被截断"),
    "truncated.jpg": BadFile(lambda path: truncated(path, make_card_rgb(800, 600), quality=95), "数据被截断"),
    "truncated.tif": BadFile(
        lambda path: truncated(path, make_card_rgb(800, 600), compression="tiff_lzw"), "文件已损坏或不完整"
    ),
    "张三 护照.jpg": BadFile(lambda path: truncated(path, make_card_rgb(800, 600), quality=95), "数据被截断"),
    "notes.png": BadFile(lambda path: path.write_text("这不是图像 not an image\n", encoding="utf-8"), "不是可识别的图像"),
    "bomb.png": BadFile(lambda path: png_with_claimed_size(path, 30000, 30000), "图像尺寸过大"),
    "huge.png": BadFile(huge_real_png, "10000×8200"),
    "strip.png": BadFile(
        lambda path: Image.new("RGB", (4000, 5), "white").save(path), "图像太小"
    ),
    "ribbon.png": BadFile(
        lambda path: Image.new("RGB", (4000, 300), "white").save(path), "过于细长"
    ),
    "locked.pdf": BadFile(lambda path: path.write_bytes(encrypted_pdf_bytes()), "密码"),
    "broken.pdf": BadFile(
        lambda path: path.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\ngarbage without xref"), "PDF 文件已损坏"
    ),
    "letter.docx": BadFile(lambda path: path.write_bytes(b"PK\x03\x04"), "不支持的文件类型"),
    "absent.jpg": BadFile(None, "文件不存在"),
}


@dataclass
class HostileRun:
    workdir: Path
    corpus: Path
    result: subprocess.CompletedProcess
    failure_lines: list[str]


def build_corpus(corpus: Path) -> None:
    for name, build in {**GOOD_FILES, **MIXED_FILES}.items():
        path = corpus / name
        path.parent.mkdir(parents=True, exist_ok=True)
        build(path)
    for name, bad in BAD_FILES.items():
        if bad.build is not None:
            bad.build(corpus / name)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> HostileRun:
    """Ingest the whole corpus in one run, from inside the corpus folder.

    Files are named one by one after ``--``, so ``-leading dash.jpg`` is an
    argument that starts with a dash, and the folder of odd names is named as a folder.
    """
    workdir = tmp_path_factory.mktemp("hostile")
    corpus = workdir / "corpus"
    build_corpus(corpus)
    named = [name for name in {**GOOD_FILES, **MIXED_FILES, **BAD_FILES} if "/" not in name]
    env = {k: v for k, v in os.environ.items() if k not in ("HUKA_DATA_DIR", "HUKA_DB_URL", "HUKA_LANG")}
    result = subprocess.run(
        [sys.executable, "-m", "ocr", "ingest", "--batch", BATCH, "--data-dir", "../data", "--", *named, "前台 扫描.v2"],
        cwd=corpus,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=OCR_TIMEOUT_S,
    )
    failure_lines = [line for line in result.stderr.splitlines() if line.startswith(FAILURE_PREFIX)]
    return HostileRun(workdir, corpus, result, failure_lines)


def stored_pages(run: HostileRun) -> dict[tuple[str, int], int]:
    """Return {(source relative to the corpus folder, page): card id} of the stored cards."""
    store = Store(data_dir=run.workdir / "data", create=False)
    try:
        return {(card.source, card.page): card.id for card in store.list_cards(batch=BATCH)}
    finally:
        store.close()


def test_hostile_run_partial_exit_code(hostile_run):
    result = hostile_run.result

    assert result.returncode == ExitCode.PARTIAL, result.stderr
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout


def test_hostile_run_summary(hostile_run):
    failed = len(BAD_FILES) + len(MIXED_FILES)

    assert re.search(rf"读取失败\s*{failed}\s*个", hostile_run.result.stdout), hostile_run.result.stdout


def test_good_files_stored(hostile_run):
    expected = {(name, 1) for name in GOOD_FILES}
    for name in MIXED_FILES:
        expected |= {(name, 1), (name, 3)}

    assert set(stored_pages(hostile_run)) == expected


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_one_message(hostile_run, name):
    lines = [line for line in hostile_run.failure_lines if line.startswith(f"{FAILURE_PREFIX}{name}：")]

    assert len(lines) == 1, hostile_run.result.stderr
    reason = lines[0].split("：", 1)[1]
    assert BAD_FILES[name].reason in reason
    # The reason ends with what to do next.
    assert "请" in reason


@pytest.mark.parametrize("name", sorted(MIXED_FILES))
def test_bad_page_one_message(hostile_run, name):
    lines = [line for line in hostile_run.failure_lines if line.startswith(f"{FAILURE_PREFIX}{name} ")]

    assert len(lines) == 1, hostile_run.result.stderr
    assert lines[0].startswith(f"{FAILURE_PREFIX}{name} 第 2 页：")
    assert "损坏" in lines[0]
    assert "请" in lines[0]


def test_no_other_failures(hostile_run):
    reported = len(BAD_FILES) + len(MIXED_FILES)

    assert len(hostile_run.failure_lines) == reported, hostile_run.result.stderr


def test_exif_rotated_stored_upright(hostile_run):
    card_id = stored_pages(hostile_run)[("phone_exif6.jpg", 1)]
    store = Store(data_dir=hostile_run.workdir / "data", create=False)
    try:
        original = store.get_card(card_id).original_image
    finally:
        store.close()

    # The store keeps the path as the command saw it, relative to the corpus folder.
    image = cv2.imread(str(hostile_run.corpus / original))
    height, width = image.shape[:2]
    assert (height, width) == (300, 400)
    blue, green, red = (int(value) for value in image[30, 30])
    # The red square of make_card_rgb is in the top-left corner of the upright card.
    assert red > 200
    assert green < 60
    assert blue < 60


def test_stderr_only_progress_and_failures(hostile_run):
    progress = re.compile(r"^\[\d+\] .+ p\d+$")
    # libtiff prints its own decoder errors on stderr, under the name Pillow gives
    # the stream. The failure line after such a note is the message for the clerk.
    libtiff_note = re.compile(r"^tempfile\.tif: ")
    other = [
        line
        for line in hostile_run.result.stderr.splitlines()
        if not (line.startswith(FAILURE_PREFIX) or progress.match(line) or libtiff_note.match(line))
    ]

    assert other == []
