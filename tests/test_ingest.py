"""Tests for ocr.ingest on files written here with Pillow, numpy and OpenCV."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ocr.errors import InputFileError
from ocr.ingest import (
    SUPPORTED_SUFFIXES,
    IngestFailure,
    Page,
    collect_files,
    iter_pages,
)

EXIF_ORIENTATION_TAG = 0x0112


def make_card_rgb(width: int = 400, height: int = 300, label: str = "CARD") -> Image.Image:
    """Return a white RGB card with a black frame, a red square and some text.

    The red square sits in the top-left corner so tests can check orientation
    and channel order.
    """
    array = np.full((height, width, 3), 255, dtype=np.uint8)
    cv2.rectangle(array, (5, 5), (width - 6, height - 6), (0, 0, 0), 2)
    array[10:50, 10:50] = (255, 0, 0)  # red in RGB order
    cv2.putText(array, label, (70, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 3)
    return Image.fromarray(array, "RGB")


def assert_red(pixel: np.ndarray, min_red: int = 200, max_other: int = 60) -> None:
    blue, green, red = (int(value) for value in pixel)
    assert red > min_red, pixel
    assert green < max_other, pixel
    assert blue < max_other, pixel


def read_all(paths, **kwargs) -> list[Page | IngestFailure]:
    return list(iter_pages(paths, **kwargs))


def only_page(results) -> Page:
    assert len(results) == 1, results
    assert isinstance(results[0], Page), results[0]
    return results[0]


def only_failure(results) -> IngestFailure:
    assert len(results) == 1, results
    assert isinstance(results[0], IngestFailure), results[0]
    return results[0]


def assert_bgr_image(image: np.ndarray, height: int, width: int) -> None:
    assert image.dtype == np.uint8
    assert image.ndim == 3
    assert image.shape == (height, width, 3)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """Return one PNG chunk: length, type, data and CRC."""
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png_with_claimed_size(path: Path, width: int, height: int) -> None:
    """Write a PNG whose header claims ``width`` x ``height`` but whose data is a few bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")
    )


def pdf_bytes(objects: list[bytes], trailer_entries: str = "") -> bytes:
    """Return a PDF of ``objects`` (numbered from 1, object 1 the catalogue) with a valid cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref_offset = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R {trailer_entries}>>\nstartxref\n{xref_offset}\n%%EOF\n"
    ).encode()
    return bytes(out)


def encrypted_pdf_bytes() -> bytes:
    """Return a one-page PDF with a standard security handler whose password is unknown.

    The /O and /U entries are random, so no password (the empty one included)
    opens the file, which is all a reader sees of a password-protected PDF.
    """
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        b"<< /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> /P -4 >>",
    ]
    return pdf_bytes(objects, f"/Encrypt 4 0 R /ID [<{'ab' * 16}> <{'ab' * 16}>] ")


# --------------------------------------------------------------------------
# Supported formats and colour modes
# --------------------------------------------------------------------------


def test_supported_suffixes_lowercase():
    assert {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".pdf"} <= SUPPORTED_SUFFIXES
    assert all(suffix == suffix.lower() for suffix in SUPPORTED_SUFFIXES)


def test_jpeg_reads_as_bgr_with_dpi(tmp_path):
    path = tmp_path / "card.jpg"
    make_card_rgb().save(path, quality=95, dpi=(300, 300))

    page = only_page(read_all([path]))

    assert_bgr_image(page.image, 300, 400)
    assert page.page == 1
    assert page.page_count == 1
    assert page.dpi == pytest.approx(300)
    assert page.source == path
    assert_red(page.image[30, 30])


def test_png_without_dpi_has_none(tmp_path):
    path = tmp_path / "card.png"
    make_card_rgb().save(path)

    page = only_page(read_all([path]))

    assert page.dpi is None


def test_png_dpi_rounded(tmp_path):
    path = tmp_path / "card.png"
    make_card_rgb().save(path, dpi=(300, 300))

    page = only_page(read_all([path]))

    assert page.dpi == 300.0


@pytest.mark.parametrize(
    ("orientation", "expected_shape", "red_corner"),
    [
        (1, (300, 400), "top_left"),
        (3, (300, 400), "bottom_right"),
        (6, (400, 300), "top_right"),
        (8, (400, 300), "bottom_left"),
    ],
)
def test_exif_orientation_applied(tmp_path, orientation, expected_shape, red_corner):
    path = tmp_path / f"rotated_{orientation}.png"
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = orientation
    make_card_rgb().save(path, exif=exif)

    page = only_page(read_all([path]))

    assert page.image.shape[:2] == expected_shape
    height, width = expected_shape
    corners = {
        "top_left": page.image[30, 30],
        "top_right": page.image[30, width - 31],
        "bottom_left": page.image[height - 31, 30],
        "bottom_right": page.image[height - 31, width - 31],
    }
    for name, pixel in corners.items():
        is_red = pixel[2] > 200 and pixel[0] < 60
        assert is_red == (name == red_corner), (name, pixel)


def test_exif_orientation_in_jpeg(tmp_path):
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = 6
    make_card_rgb().save(path, exif=exif, quality=95)

    page = only_page(read_all([path]))

    assert page.image.shape[:2] == (400, 300)


def test_multipage_tiff_yields_each_page(tmp_path):
    path = tmp_path / "batch.tif"
    frames = [make_card_rgb(label=f"P{number}") for number in range(1, 4)]
    frames[1] = frames[1].convert("L")
    frames[0].save(path, save_all=True, append_images=frames[1:], compression="tiff_lzw", dpi=(200, 200))

    results = read_all([path])

    assert len(results) == 3
    assert all(isinstance(result, Page) for result in results)
    assert [page.page for page in results] == [1, 2, 3]
    assert {page.page_count for page in results} == {3}
    assert len({page.key for page in results}) == 3
    for page in results:
        assert_bgr_image(page.image, 300, 400)
        assert page.dpi == pytest.approx(200)
    assert not np.array_equal(results[0].image, results[2].image)


def test_pdf_pages_rendered_at_dpi(tmp_path):
    path = tmp_path / "two pages.pdf"
    # Pillow writes each image as one page sized pixels / resolution inches.
    first = make_card_rgb(600, 400, "ONE")
    second = make_card_rgb(600, 400, "TWO")
    first.save(path, save_all=True, append_images=[second], resolution=100.0)

    results = read_all([path], pdf_dpi=150)

    assert len(results) == 2
    assert all(isinstance(result, Page) for result in results)
    assert [page.page for page in results] == [1, 2]
    for page in results:
        assert page.page_count == 2
        assert page.dpi == 150
        # 6 x 4 inches at 150 dpi.
        height, width = page.image.shape[:2]
        assert abs(width - 900) <= 1
        assert abs(height - 600) <= 1
        assert page.image.dtype == np.uint8
        assert page.image.shape[2] == 3
    # Channel order survives rendering: the red square is red in BGR.
    assert_red(results[0].image[45, 45])


def test_pdf_default_dpi_is_200(tmp_path):
    path = tmp_path / "one.pdf"
    make_card_rgb(300, 200).save(path, resolution=100.0)

    page = only_page(read_all([path]))

    assert page.dpi == 200
    assert abs(page.image.shape[1] - 600) <= 1
    assert abs(page.image.shape[0] - 400) <= 1


def test_cmyk_jpeg_converted(tmp_path):
    path = tmp_path / "cmyk.jpg"
    make_card_rgb().convert("CMYK").save(path, quality=95)

    page = only_page(read_all([path]))

    assert_bgr_image(page.image, 300, 400)
    assert page.image[150, 390].min() > 220  # white paper stays white
    assert_red(page.image[30, 30], min_red=180, max_other=80)


def test_16bit_gray_png_scaled(tmp_path):
    path = tmp_path / "deep.png"
    values = np.full((120, 160), 65535, dtype=np.uint16)
    values[:, :40] = 0
    values[:, 40:80] = 32768
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")

    page = only_page(read_all([path]))

    assert_bgr_image(page.image, 120, 160)
    assert page.image[60, 10].tolist() == [0, 0, 0]
    assert abs(int(page.image[60, 60, 0]) - 128) <= 1
    assert page.image[60, 150].tolist() == [255, 255, 255]


def test_palette_transparency_on_white(tmp_path):
    path = tmp_path / "palette.png"
    palette_image = Image.new("P", (200, 160), 0)
    palette_image.putpalette([0, 0, 0] + [0, 0, 255] + [0, 0, 0] * 254)
    palette_image.paste(1, (0, 0, 100, 160))
    palette_image.info["transparency"] = 0
    palette_image.save(path, transparency=0)

    page = only_page(read_all([path]))

    assert_bgr_image(page.image, 160, 200)
    assert page.image[80, 180].tolist() == [255, 255, 255]  # transparent black became white
    assert page.image[80, 20].tolist() == [255, 0, 0]  # opaque blue, BGR order


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_composited_on_white(tmp_path, mode):
    path = tmp_path / f"alpha_{mode}.png"
    array = np.zeros((120, 120, 4), dtype=np.uint8)
    array[:, :60, 3] = 255  # left half opaque black, right half fully transparent
    Image.fromarray(array, "RGBA").convert(mode).save(path)

    page = only_page(read_all([path]))

    assert page.image[60, 20].tolist() == [0, 0, 0]
    assert page.image[60, 100].tolist() == [255, 255, 255]


def test_bilevel_tiff_converted(tmp_path):
    path = tmp_path / "fax.tif"
    array = np.full((100, 120), 255, dtype=np.uint8)
    array[40:60, :] = 0
    Image.fromarray(array).convert("1").save(path, compression="group4")

    page = only_page(read_all([path]))

    assert_bgr_image(page.image, 100, 120)
    assert page.image[50, 60].tolist() == [0, 0, 0]
    assert page.image[10, 60].tolist() == [255, 255, 255]


def test_bmp_read_when_supported(tmp_path):
    if ".bmp" not in SUPPORTED_SUFFIXES:
        pytest.skip("this Pillow build has no BMP reader")
    path = tmp_path / "card.bmp"
    make_card_rgb().save(path)

    page = only_page(read_all([path]))

    assert_bgr_image(page.image, 300, 400)


# --------------------------------------------------------------------------
# Bad files
# --------------------------------------------------------------------------


def test_zero_byte_file_fails(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")

    failure = only_failure(read_all([path]))

    assert failure.source == path
    assert "0 字节" in failure.reason_zh
    assert "empty" in failure.reason_en


def test_truncated_jpeg_fails(tmp_path):
    whole = tmp_path / "whole.jpg"
    make_card_rgb(800, 600).save(whole, quality=95)
    data = whole.read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])

    failure = only_failure(read_all([path]))

    assert failure.reason_zh == "文件已损坏或不完整（JPEG 数据被截断），请重新扫描"
    assert "truncated" in failure.reason_en
    assert "cut.jpg" in failure.message("zh")
    assert "cut.jpg" in failure.message("en")


def test_truncated_png_fails(tmp_path):
    whole = tmp_path / "whole.png"
    make_card_rgb(800, 600).save(whole)
    data = whole.read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])

    failure = only_failure(read_all([path]))

    assert "PNG" in failure.reason_zh
    assert "请重新扫描" in failure.reason_zh


def test_png_named_jpg_reads(tmp_path):
    path = tmp_path / "really_png.jpg"
    make_card_rgb().save(path, format="PNG")

    page = only_page(read_all([path]))

    assert_bgr_image(page.image, 300, 400)


def test_pdf_named_png_reads(tmp_path):
    path = tmp_path / "really_pdf.png"
    make_card_rgb(300, 200).save(path, format="PDF", resolution=100.0)

    page = only_page(read_all([path], pdf_dpi=100))

    assert abs(page.image.shape[1] - 300) <= 1


def test_text_named_png_fails(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("这不是图像 not an image\n", encoding="utf-8")

    failure = only_failure(read_all([path]))

    assert "不是可识别的图像" in failure.reason_zh
    assert "not a recognised image" in failure.reason_en


def test_eps_content_not_decoded(tmp_path):
    # Pillow would pass EPS to Ghostscript; the reader accepts only scan formats.
    path = tmp_path / "drawing.jpg"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")

    failure = only_failure(read_all([path]))

    assert "不是可识别的图像" in failure.reason_zh


def test_broken_pdf_fails(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\ngarbage without xref")

    failure = only_failure(read_all([path]))

    assert "PDF" in failure.reason_zh
    assert "损坏" in failure.reason_zh


def test_password_pdf_fails(tmp_path):
    path = tmp_path / "locked.pdf"
    path.write_bytes(encrypted_pdf_bytes())

    failure = only_failure(read_all([path]))

    assert "密码" in failure.reason_zh
    assert "password" in failure.reason_en


def test_huge_claimed_size_rejected(tmp_path):
    path = tmp_path / "bomb.png"
    png_with_claimed_size(path, 30000, 30000)

    failure = only_failure(read_all([path]))

    assert "图像尺寸过大" in failure.reason_zh
    assert "too large" in failure.reason_en


def test_claimed_size_over_limit_rejected(tmp_path):
    # 9000 x 9000 = 81 M pixels: over the 80 M default but under the point
    # where Pillow raises on its own, so the reader's own check must catch it.
    path = tmp_path / "big_header.png"
    png_with_claimed_size(path, 9000, 9000)

    failure = only_failure(read_all([path]))

    assert "9000×9000" in failure.reason_zh


def test_lowered_max_pixels_rejects(tmp_path):
    path = tmp_path / "card.png"
    make_card_rgb(400, 300).save(path)

    failure = only_failure(read_all([path], max_pixels=100_000))
    page = only_page(read_all([path], max_pixels=120_000))

    assert "400×300" in failure.reason_zh
    assert "100000" in failure.reason_zh
    assert_bgr_image(page.image, 300, 400)


def test_pdf_page_over_max_pixels_fails(tmp_path):
    path = tmp_path / "poster.pdf"
    make_card_rgb(300, 200).save(path, resolution=10.0)  # 30 x 20 inches

    failure = only_failure(read_all([path], pdf_dpi=300, max_pixels=1_000_000))

    assert failure.page == 1
    assert "300 dpi" in failure.reason_zh


def test_missing_file_fails(tmp_path):
    path = tmp_path / "absent.jpg"

    failure = only_failure(read_all([path]))

    assert "不存在" in failure.reason_zh


def test_unsupported_named_file_fails(tmp_path):
    path = tmp_path / "letter.docx"
    path.write_bytes(b"PK\x03\x04")

    failure = only_failure(read_all([path]))

    assert ".docx" in failure.reason_zh
    assert "unsupported" in failure.reason_en


def test_failure_message_and_error(tmp_path):
    failure = IngestFailure(tmp_path / "a.pdf", "原因", "reason", page=2)

    error = failure.to_error()

    assert isinstance(error, InputFileError)
    assert failure.message("zh") == f"无法读取文件 {tmp_path / 'a.pdf'} 第 2 页：原因"
    assert failure.message("en") == f"cannot read {tmp_path / 'a.pdf'} (page 2): reason"


# --------------------------------------------------------------------------
# Names, identity and folders
# --------------------------------------------------------------------------


def test_chinese_name_with_spaces(tmp_path):
    folder = tmp_path / "前台 扫描"
    folder.mkdir()
    image_path = folder / "登记卡 第1张.jpg"
    pdf_path = folder / "登记卡 合订本.pdf"
    make_card_rgb().save(image_path)
    make_card_rgb().save(pdf_path, resolution=100.0)

    results = read_all([image_path, pdf_path])

    assert [type(result) for result in results] == [Page, Page]
    assert results[0].source == image_path
    assert results[1].source == pdf_path


def test_same_bytes_same_key(tmp_path):
    first = tmp_path / "scan.jpg"
    make_card_rgb().save(first)
    second = tmp_path / "scan copy.jpeg"
    shutil.copyfile(first, second)
    other = tmp_path / "other.jpg"
    make_card_rgb(label="OTHER").save(other)

    pages = read_all([first, second, other])

    assert pages[0].key == pages[1].key
    assert pages[0].key != pages[2].key
    assert pages[0].key.endswith(":1")
    assert len(pages[0].file_sha256) == 64


def test_folder_mix_yields_pages_and_failures(tmp_path):
    folder = tmp_path / "inbox"
    (folder / "sub").mkdir(parents=True)
    (folder / ".cache").mkdir()
    make_card_rgb().save(folder / "a_card.jpg")
    (folder / "b_empty.png").write_bytes(b"")
    make_card_rgb().save(folder / "c_doc.pdf", save_all=True, append_images=[make_card_rgb()])
    (folder / "d_notes.txt").write_text("skipped in a folder")
    make_card_rgb().save(folder / "sub" / "e_card.PNG")
    make_card_rgb().save(folder / ".hidden.jpg")
    make_card_rgb().save(folder / ".cache" / "f.jpg")

    first_run = read_all([folder])
    second_run = read_all([folder])

    summary = [
        (result.source.relative_to(folder).as_posix(), type(result).__name__, getattr(result, "page", None))
        for result in first_run
    ]
    assert summary == [
        ("a_card.jpg", "Page", 1),
        ("b_empty.png", "IngestFailure", None),
        ("c_doc.pdf", "Page", 1),
        ("c_doc.pdf", "Page", 2),
        ("sub/e_card.PNG", "Page", 1),
    ]
    assert [result.source for result in second_run] == [result.source for result in first_run]


def test_folder_reports_unsupported_scans(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    make_card_rgb().save(folder / "a_card.jpg")
    (folder / "IMG_0002.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    make_card_rgb().save(folder / "palette.gif")
    (folder / "x.jpeg.part").write_bytes(b"\xff\xd8\xff")
    (folder / "scan.avif").write_bytes(b"\x00")
    (folder / "notes.txt").write_text("not a scan")
    (folder / "Thumbs.db").write_bytes(b"\x00")
    (folder / ".IMG_0003.HEIC").write_bytes(b"\x00")

    results = read_all([folder])

    summary = [(result.source.name, type(result).__name__) for result in results]
    assert summary == [
        ("IMG_0002.HEIC", "IngestFailure"),
        ("a_card.jpg", "Page"),
        ("palette.gif", "IngestFailure"),
        ("scan.avif", "IngestFailure"),
        ("x.jpeg.part", "IngestFailure"),
    ]
    heic, gif, avif, part = [result for result in results if isinstance(result, IngestFailure)]
    assert "设置-相机-格式" in heic.reason_zh
    assert "兼容性最佳" in heic.reason_zh
    assert "JPEG" in heic.reason_zh
    assert "Most Compatible" in heic.reason_en
    assert ".gif" in gif.reason_zh
    assert "JPEG" in gif.reason_zh
    assert ".avif" in avif.reason_zh
    assert "下载或复制完成" in part.reason_zh
    assert "not completely downloaded" in part.reason_en


def test_collect_files_lists_folder_skips_once(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    heic = folder / "IMG_0002.heic"
    heic.write_bytes(b"\x00")

    files, failures = collect_files([folder, heic, folder])

    assert files == []
    assert [failure.source for failure in failures] == [heic]


def test_collect_files_dedupes_and_reports(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    card = folder / "card.jpg"
    make_card_rgb().save(card)
    note = tmp_path / "note.txt"
    note.write_text("x")

    files, failures = collect_files([card, folder, str(card), note, tmp_path / "missing.png"])

    assert files == [card]
    assert [failure.source for failure in failures] == [note, tmp_path / "missing.png"]


def test_bad_file_does_not_stop_batch(tmp_path):
    good_first = tmp_path / "1.jpg"
    bad = tmp_path / "2.jpg"
    good_last = tmp_path / "3.png"
    make_card_rgb().save(good_first)
    bad.write_bytes(b"\xff\xd8\xff\xe0 broken")
    make_card_rgb().save(good_last)

    results = read_all([good_first, bad, good_last])

    assert [type(result) for result in results] == [Page, IngestFailure, Page]


def test_invalid_arguments_raise():
    with pytest.raises(ValueError):
        list(iter_pages([], pdf_dpi=0))
    with pytest.raises(ValueError):
        list(iter_pages([], max_pixels=0))


def test_log_has_counts_not_names(tmp_path, caplog):
    secret_name = tmp_path / "ZHANG SAN 张三.jpg"
    secret_name.write_bytes(b"")
    good = tmp_path / "good.png"
    make_card_rgb().save(good)

    with caplog.at_level("DEBUG", logger="ocr.ingest"):
        read_all([secret_name, good])

    assert "pages=1" in caplog.text
    assert "failures=1" in caplog.text
    assert "张三" not in caplog.text
    assert "ZHANG" not in caplog.text
