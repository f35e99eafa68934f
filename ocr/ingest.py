"""Read scanned cards from image and PDF files into page images.

Every page comes out as an H x W x 3 ``uint8`` numpy array in OpenCV's BGR
channel order, with the EXIF orientation already applied, so the stages after
this one never see file formats, colour modes or alpha channels.

One bad file never stops a batch: ``iter_pages`` yields an ``IngestFailure``
that names the file (and page) and gives the reason in Chinese and English,
then goes on with the next file. The file format is sniffed from the content,
so a PNG saved as ``.jpg`` still reads. The suffix only decides which files a
folder scan reads, and which it reports as unsupported.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageOps, UnidentifiedImageError

from ocr.errors import InputFileError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_ASPECT_RATIO",
    "MIN_SIDE_PX",
    "SUPPORTED_SUFFIXES",
    "IngestFailure",
    "Page",
    "collect_files",
    "iter_pages",
]

log = logging.getLogger(__name__)

# 80 million pixels is an A3 page at 600 dpi (7016 x 9921 = 70 M) with room to
# spare. A larger image is far beyond any card scan and is treated as damaged
# or hostile (a decompression bomb) instead of being decoded.
DEFAULT_MAX_PIXELS = 80_000_000

# A card scan is at least this many pixels on its shorter side: a card 10 cm
# across at 25 dpi. Anything smaller is a thumbnail or an icon with nothing to read.
MIN_SIDE_PX = 100
# Longer side over shorter side. Cards are about 1.4 and a sheet of two cards side
# by side about 2.8. rapidocr's page detector (config.yaml: limit_type min,
# limit_side_len 736) scales the shorter side up to 736 pixels. A 5 x 4000 pixel
# strip thus became 736 x 588800 pixels and took 219 s of CPU, so such a strip
# is rejected instead.
MAX_ASPECT_RATIO = 8.0

_BASE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".pdf"}
_OPTIONAL_SUFFIXES = {".bmp", ".webp"}


def _pillow_readable_suffixes() -> set[str]:
    extensions = Image.registered_extensions()
    return {suffix for suffix in _OPTIONAL_SUFFIXES if suffix in extensions}


# Lower-case suffixes that a folder scan picks up. Matching is case-insensitive.
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_BASE_SUFFIXES | _pillow_readable_suffixes())

# Pillow decoders that may run on input files. The list keeps Pillow away from
# formats such as EPS, which it would hand to Ghostscript. The JPEG opener also
# returns the MPO files of many phone cameras.
Image.init()
_PILLOW_FORMATS = tuple(name for name in ("JPEG", "PNG", "TIFF", "BMP", "WEBP") if name in Image.OPEN)

# Formats whose frames are separate scanned pages. An MPO or animated WebP/PNG
# keeps only its first frame because the other frames are previews or depth
# maps, not further pages.
_MULTI_PAGE_FORMATS = {"TIFF"}

_PDF_MAGIC = b"%PDF-"
# Signatures of the image formats read here. A file that starts with one of
# them but that Pillow cannot identify is a damaged image, not a wrong suffix.
_IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"BM": "BMP",
}
_POINTS_PER_INCH = 72.0


@dataclass
class Page:
    """One page of an input file, decoded into a BGR image."""

    source: Path
    page: int  # 1-based page (or TIFF frame) number within the file
    page_count: int
    file_sha256: str
    image: np.ndarray = field(repr=False)  # H x W x 3 uint8, BGR
    dpi: float | None  # horizontal resolution stored in the file, or the PDF render dpi

    @property
    def key(self) -> str:
        """Content identity of the page: the same bytes under two names give the same key."""
        return f"{self.file_sha256}:{self.page}"


@dataclass
class IngestFailure:
    """A file, or one page of it, that could not be read."""

    source: Path
    reason_zh: str
    reason_en: str
    page: int | None = None  # set when only this page of a multi-page file failed

    def _location(self) -> str:
        if self.page is None:
            return str(self.source)
        return f"{self.source} (page {self.page})"

    def _location_zh(self) -> str:
        if self.page is None:
            return str(self.source)
        return f"{self.source} 第 {self.page} 页"

    def message(self, lang: str = "zh") -> str:
        """Format the failure for a user, in Chinese unless ``lang`` is ``"en"``."""
        return self.to_error().message(lang)

    def to_error(self) -> InputFileError:
        """Convert the failure into the exception the command line reports."""
        error = InputFileError(self._location_zh(), self.reason_zh, self.reason_en)
        error.message_en = f"cannot read {self._location()}: {self.reason_en}"
        return error


# --------------------------------------------------------------------------
# Collecting files
# --------------------------------------------------------------------------


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


# Photo formats of phones: iPhones save HEIC unless the camera is set to "Most Compatible".
_PHONE_PHOTO_SUFFIXES = frozenset({".heic", ".heif"})
# Files that a browser, a copy tool or a scanner is still writing.
_PARTIAL_SUFFIXES = frozenset({".part", ".crdownload", ".download", ".partial", ".tmp"})
# Files a folder of scans often contains that are no scan: a folder walk passes them over
# without a report. Every other unsupported file in a folder is reported as skipped.
_UNRELATED_SUFFIXES = frozenset(
    {".txt", ".md", ".csv", ".json", ".xml", ".log", ".ini", ".toml", ".yaml", ".yml", ".db", ".lnk", ".url"}
)
_UNRELATED_NAMES = frozenset({"thumbs.db", "desktop.ini"})


def _unsupported_failure(path: Path) -> IngestFailure:
    suffix = path.suffix or "（无扩展名）"
    suffix_en = path.suffix or "(no suffix)"
    lower = path.suffix.lower()
    if lower in _PHONE_PHOTO_SUFFIXES:
        return IngestFailure(
            path,
            f"不支持手机照片格式 {suffix}：请在手机上将照片导出为 JPEG 后重新导入，"
            "或在 iPhone 的“设置-相机-格式”中选择“兼容性最佳”后重新拍摄",
            f"the phone photo format {suffix_en} is not supported: export the photo as JPEG on the phone and "
            "import it again, or set Settings > Camera > Formats to Most Compatible on the iPhone and take it again",
        )
    if lower in _PARTIAL_SUFFIXES:
        return IngestFailure(
            path,
            f"文件尚未下载或复制完成（{suffix}）：请等待下载或复制完成后重新运行同一命令",
            f"the file is not completely downloaded or copied yet ({suffix_en}): wait until it is complete "
            "and run the same command again",
        )
    return IngestFailure(
        path,
        f"不支持的文件类型 {suffix}，请另存为 JPEG、PNG、TIFF 或 PDF 文件后重新导入",
        f"unsupported file type {suffix_en}; save it as a JPEG, PNG, TIFF or PDF file and import it again",
    )


def _is_unrelated(name: str) -> bool:
    """Return whether a file in a scan folder is evidently no scan, so skipping it needs no report."""
    return name.lower() in _UNRELATED_NAMES or Path(name).suffix.lower() in _UNRELATED_SUFFIXES


def _walk_folder(folder: Path) -> list[Path | IngestFailure]:
    """List the files under ``folder`` to read, and a failure for each unsupported one, sorted by path.

    Hidden files and folders are passed over, and so are files that are evidently
    no scan (see ``_is_unrelated``). Every other file with an unsupported suffix
    becomes an ``IngestFailure``, so a photo in a format this reader lacks is
    reported, not lost. Symbolic links to folders are not followed, so a link
    loop cannot make the scan run forever.
    """
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [name for name in dirs if not _is_hidden(name)]
        for name in files:
            if _is_hidden(name):
                continue
            path = Path(root) / name
            if path.suffix.lower() in SUPPORTED_SUFFIXES or not _is_unrelated(name):
                found.append(path)
    return [
        path if path.suffix.lower() in SUPPORTED_SUFFIXES else _unsupported_failure(path)
        for path in sorted(found)
    ]


def _collect_in_order(paths: Iterable[str | Path]) -> list[Path | IngestFailure]:
    """Expand ``paths`` into files and failures, in input order, each file once."""
    items: list[Path | IngestFailure] = []
    seen: set[Path] = set()

    def add(item: Path | IngestFailure) -> None:
        resolved = (item.source if isinstance(item, IngestFailure) else item).resolve()
        if resolved in seen:
            return
        seen.add(resolved)
        items.append(item)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for found in _walk_folder(path):
                add(found)
        elif not path.exists():
            items.append(IngestFailure(path, "文件不存在，请检查路径", "file not found; check the path"))
        elif path.suffix.lower() not in SUPPORTED_SUFFIXES:
            # A file named explicitly is reported even where a folder walk would pass it over.
            add(_unsupported_failure(path))
        else:
            add(path)
    return items


def collect_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[IngestFailure]]:
    """Expand files and folders into the list of input files to read.

    Folders are searched recursively, in sorted path order. Hidden files and
    folders (names starting with ".") and files that are evidently no scan
    (notes, spreadsheets, ``Thumbs.db``) are skipped there. Any other file with
    an unsupported suffix, in a folder or named explicitly, and a missing file
    named explicitly, becomes an ``IngestFailure``. A file reached twice (for
    example named directly and inside a listed folder) is listed once, where it
    first appears.

    Returns ``(files, failures)``.
    """
    files: list[Path] = []
    failures: list[IngestFailure] = []
    for item in _collect_in_order(paths):
        if isinstance(item, IngestFailure):
            failures.append(item)
        else:
            files.append(item)
    return files, failures


# --------------------------------------------------------------------------
# Reading pages
# --------------------------------------------------------------------------


class _FileProblem(Exception):
    """A reason to give up on a file or a page, carried to ``iter_pages``."""

    def __init__(self, reason_zh: str, reason_en: str, code: str) -> None:
        super().__init__(reason_en)
        self.reason_zh = reason_zh
        self.reason_en = reason_en
        self.code = code  # short tag for the log, which must not contain file names
        self.sha256: str | None = None  # set once the file has been hashed


def _too_many_pixels(width: int, height: int, max_pixels: int) -> _FileProblem:
    return _FileProblem(
        f"图像尺寸过大（{width}×{height} 像素，上限 {max_pixels} 像素），"
        "文件可能已损坏或不是扫描件；请以较低分辨率重新扫描",
        f"image too large ({width}x{height} pixels, maximum {max_pixels}); "
        "the file may be damaged or not a scan; scan it again at a lower resolution",
        "too_many_pixels",
    )


def _bad_shape(width: int, height: int) -> _FileProblem | None:
    """Return the problem with an image of this size that is no card scan, or None when it can be one."""
    short_side, long_side = min(width, height), max(width, height)
    if short_side < MIN_SIDE_PX:
        return _FileProblem(
            f"图像太小（{width}×{height} 像素，短边不足 {MIN_SIDE_PX} 像素），不是卡片扫描件；"
            "请以 200 dpi 重新扫描整张卡片",
            f"image too small ({width}x{height} pixels, shorter side under {MIN_SIDE_PX}); "
            "it is not a card scan; scan the whole card again at 200 dpi",
            "too_small",
        )
    if long_side > MAX_ASPECT_RATIO * short_side:
        return _FileProblem(
            f"图像过于细长（{width}×{height} 像素，长宽比超过 {MAX_ASPECT_RATIO:g}），不是卡片扫描件；"
            "请检查扫描仪的纸张尺寸设置后重新扫描",
            f"image too narrow ({width}x{height} pixels, side ratio over {MAX_ASPECT_RATIO:g}); "
            "it is not a card scan; check the scanner's paper size and scan it again",
            "bad_aspect_ratio",
        )
    return None


def _damaged(format_name: str, exc: BaseException) -> _FileProblem:
    text = str(exc).lower()
    if "truncated" in text or "premature end" in text or "eof" in text:
        return _FileProblem(
            f"文件已损坏或不完整（{format_name} 数据被截断），请重新扫描",
            f"the file is damaged or incomplete ({format_name} data is truncated); scan it again",
            "truncated",
        )
    return _FileProblem(
        f"文件已损坏（{format_name} 数据无法解码），请重新扫描",
        f"the file is damaged ({format_name} data cannot be decoded); scan it again",
        "undecodable",
    )


def _sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _read_magic(path: Path, size: int = 8) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def _composite_on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _scale_to_uint8(values: np.ndarray, full_scale: float) -> np.ndarray:
    scaled = values.astype(np.float32) * (255.0 / full_scale)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _wide_gray_to_uint8(image: Image.Image) -> np.ndarray:
    """Convert a 16-bit, 32-bit integer or float grey image to 8 bits.

    Pillow's own ``convert("L")`` clips 16-bit values at 255 instead of
    scaling them, which turns a normal 16-bit scan almost white.
    """
    values = np.asarray(image)
    if image.mode == "F":
        peak = float(np.nanmax(values)) if values.size else 0.0
        if peak <= 1.0:
            full_scale = 1.0
        elif peak <= 255.0:
            full_scale = 255.0
        else:
            full_scale = 65535.0
        return _scale_to_uint8(np.nan_to_num(values), full_scale)
    if image.mode.startswith("I;16"):
        return _scale_to_uint8(values, 65535.0)
    # Mode "I" stores 32-bit integers. Pillow uses it for some 16-bit files, so
    # the range is judged from the data.
    peak = int(values.max()) if values.size else 0
    if peak <= 255:
        full_scale = 255.0
    elif peak <= 65535:
        full_scale = 65535.0
    else:
        full_scale = float(peak)
    return _scale_to_uint8(values, full_scale)


def _to_bgr(image: Image.Image) -> np.ndarray:
    """Convert a Pillow image of any mode into an H x W x 3 uint8 BGR array."""
    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        gray = _wide_gray_to_uint8(image)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))

    has_alpha = mode in ("RGBA", "LA", "La", "RGBa", "PA") or (
        mode == "P" and "transparency" in image.info
    ) or (mode in ("L", "RGB") and "transparency" in image.info)
    if has_alpha:
        rgb = _composite_on_white(image)
    elif mode == "RGB":
        rgb = image
    else:
        # Covers "1", "L", "P", "CMYK", "YCbCr" and "LAB".
        # NOTE: Pillow 13 decodes every CMYK JPEG with Adobe's inverted
        # convention, which Adobe software and Pillow itself write. A CMYK
        # JPEG from another writer may come out with inverted colours.
        rgb = image.convert("RGB")

    array = np.asarray(rgb, dtype=np.uint8)
    return np.ascontiguousarray(array[:, :, ::-1])


def _file_dpi(image: Image.Image) -> float | None:
    """Return the horizontal dpi stored in the file, or None when absent or invalid."""
    dpi = image.info.get("dpi")
    if not dpi:
        return None
    try:
        value = float(dpi[0])
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        return None
    # Under 10 dpi is no real scan resolution, so the value is treated as absent.
    # NOTE: Pillow reports 72 dpi for a JPEG whose EXIF resolution is
    # unreadable, and phone cameras write 72. Neither is the physical resolution.
    if not np.isfinite(value) or value < 10:
        return None
    # PNG stores dots per metre, so 300 dpi reads back as 299.9994.
    return round(value, 1)


def _image_signature(path: Path) -> str | None:
    """Return the image format whose signature starts the file, or None."""
    magic = _read_magic(path)
    for prefix, name in _IMAGE_MAGIC.items():
        if magic.startswith(prefix):
            return name
    return None


def _open_image(path: Path, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings(record=True) as caught:
            # The size check in _decode_frame replaces Pillow's warning for large
            # images, and warnings about damaged metadata are only counted.
            warnings.simplefilter("always")
            image = Image.open(path, formats=_PILLOW_FORMATS)
        if caught:
            log.debug("decoder warnings ignored: count=%d", len(caught))
    except Image.DecompressionBombError as exc:
        log.debug("Pillow rejected an image as a decompression bomb: %s", exc)
        raise _FileProblem(
            f"图像尺寸过大（超过上限 {max_pixels} 像素），文件可能已损坏或不是扫描件；"
            "请以较低分辨率重新扫描",
            f"image too large (over the maximum of {max_pixels} pixels); "
            "the file may be damaged or not a scan; scan it again at a lower resolution",
            "too_many_pixels",
        ) from exc
    except UnidentifiedImageError as exc:
        signature = _image_signature(path)
        if signature is not None:
            # The header is cut off or broken, so Pillow cannot tell the format.
            raise _FileProblem(
                f"文件已损坏或不完整（{signature} 文件头或数据无法解析），请重新扫描",
                f"the file is damaged or incomplete (the {signature} header or data cannot be parsed); scan it again",
                "damaged_header",
            ) from exc
        raise _FileProblem(
            "文件内容不是可识别的图像或 PDF（扩展名与内容不符，或文件已损坏），请检查文件",
            "the content is not a recognised image or PDF "
            "(the suffix does not match the content, or the file is damaged); check the file",
            "unidentified",
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise _damaged(path.suffix.lstrip(".").upper() or "image", exc) from exc
    return image


def _decode_frame(image: Image.Image, max_pixels: int) -> np.ndarray:
    width, height = image.size
    if width * height > max_pixels:
        raise _too_many_pixels(width, height, max_pixels)
    shape_problem = _bad_shape(width, height)
    if shape_problem is not None:
        raise shape_problem
    format_name = image.format or "image"
    try:
        with warnings.catch_warnings(record=True) as caught:
            # Pillow warns about damaged EXIF or metadata on stderr; the page
            # still decodes, so the warnings are only counted in the log.
            warnings.simplefilter("always")
            image.load()
            upright = ImageOps.exif_transpose(image)
            pixels = _to_bgr(upright)
        if caught:
            log.debug("decoder warnings ignored: count=%d", len(caught))
        return pixels
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(width, height, max_pixels) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _damaged(format_name, exc) from exc


def _iter_image_pages(path: Path, sha256: str, max_pixels: int) -> Iterator[Page | IngestFailure]:
    image = _open_image(path, max_pixels)
    with image:
        format_name = image.format or ""
        frame_count = getattr(image, "n_frames", 1) if format_name in _MULTI_PAGE_FORMATS else 1

        for index in range(frame_count):
            page_number = index + 1
            try:
                if index:
                    image.seek(index)
                pixels = _decode_frame(image, max_pixels)
            except _FileProblem as problem:
                if frame_count == 1:
                    raise
                _log_failure(problem.code, sha256)
                yield IngestFailure(path, problem.reason_zh, problem.reason_en, page=page_number)
                continue
            except EOFError as exc:
                # The file header lists more frames than the data contains.
                problem = _damaged(format_name, exc)
                _log_failure(problem.code, sha256)
                yield IngestFailure(path, problem.reason_zh, problem.reason_en, page=page_number)
                return

            yield Page(
                source=path,
                page=page_number,
                page_count=frame_count,
                file_sha256=sha256,
                image=pixels,
                dpi=_file_dpi(image),
            )


def _open_pdf(path: Path) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        if exc.err_code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
            raise _FileProblem(
                "PDF 文件有密码保护或加密，请先去除密码再导入",
                "the PDF is password-protected or encrypted; remove the password and import it again",
                "pdf_password",
            ) from exc
        raise _FileProblem(
            "PDF 文件已损坏或格式无效，请重新导出或重新扫描",
            "the PDF is damaged or invalid; export or scan it again",
            "pdf_invalid",
        ) from exc


def _render_pdf_page(pdf: pdfium.PdfDocument, index: int, pdf_dpi: int, max_pixels: int) -> np.ndarray:
    scale = pdf_dpi / _POINTS_PER_INCH
    try:
        page = pdf[index]
    except pdfium.PdfiumError as exc:
        raise _FileProblem(
            "PDF 页面已损坏，无法读取；请重新导出或重新扫描该页",
            "the PDF page is damaged and cannot be read; export or scan the page again",
            "pdf_page_invalid",
        ) from exc
    try:
        width_points, height_points = page.get_size()
        width = int(np.ceil(width_points * scale))
        height = int(np.ceil(height_points * scale))
        if width * height > max_pixels:
            raise _FileProblem(
                f"PDF 页面按 {pdf_dpi} dpi 渲染后为 {width}×{height} 像素，超过上限 {max_pixels} 像素；"
                "请降低 PDF 渲染分辨率",
                f"the PDF page rendered at {pdf_dpi} dpi is {width}x{height} pixels, "
                f"over the maximum of {max_pixels}; lower the PDF render dpi",
                "too_many_pixels",
            )
        if width <= 0 or height <= 0:
            raise _FileProblem(
                "PDF 页面尺寸为零；请重新导出或重新扫描该页",
                "the PDF page has zero size; export or scan the page again",
                "pdf_page_invalid",
            )
        shape_problem = _bad_shape(width, height)
        if shape_problem is not None:
            raise shape_problem
        try:
            bitmap = page.render(scale=scale, fill_color=(255, 255, 255, 255))
        except pdfium.PdfiumError as exc:
            raise _FileProblem(
                "PDF 页面无法渲染，文件可能已损坏，请重新导出",
                "the PDF page cannot be rendered; the file may be damaged; export it again",
                "pdf_render_failed",
            ) from exc
        try:
            # The default render format is 3-byte BGR, the order OpenCV uses.
            return np.array(bitmap.to_numpy(), dtype=np.uint8, copy=True)
        finally:
            bitmap.close()
    finally:
        page.close()


def _iter_pdf_pages(
    path: Path, sha256: str, pdf_dpi: int, max_pixels: int
) -> Iterator[Page | IngestFailure]:
    pdf = _open_pdf(path)
    try:
        page_count = len(pdf)
        if page_count == 0:
            raise _FileProblem(
                "PDF 文件没有页面；请重新导出或重新扫描",
                "the PDF has no pages; export or scan it again",
                "pdf_empty",
            )
        for index in range(page_count):
            try:
                pixels = _render_pdf_page(pdf, index, pdf_dpi, max_pixels)
            except _FileProblem as problem:
                _log_failure(problem.code, sha256)
                yield IngestFailure(path, problem.reason_zh, problem.reason_en, page=index + 1)
                continue
            yield Page(
                source=path,
                page=index + 1,
                page_count=page_count,
                file_sha256=sha256,
                image=pixels,
                dpi=float(pdf_dpi),
            )
    finally:
        pdf.close()


def _log_failure(code: str, sha256: str | None) -> None:
    # File names can contain guest names, so the log identifies a file only by
    # the start of its content hash.
    log.warning("input rejected: reason=%s file_sha256=%s", code, (sha256 or "-")[:12])


def _iter_file_pages(
    path: Path, pdf_dpi: int, max_pixels: int
) -> Iterator[Page | IngestFailure]:
    """Yield the pages of one file. Raise ``_FileProblem`` when the whole file fails."""
    try:
        size = path.stat().st_size
        if size == 0:
            raise _FileProblem(
                "文件为空（0 字节），请重新扫描或重新导出",
                "the file is empty (0 bytes); scan or export it again",
                "empty",
            )
        sha256 = _sha256_of(path)
        magic = _read_magic(path)
    except PermissionError as exc:
        raise _FileProblem(
            "没有读取权限，请检查文件权限", "permission denied; check the file permissions", "permission"
        ) from exc
    except IsADirectoryError as exc:
        raise _FileProblem(
            "这是一个文件夹，不是文件；请给出文件夹本身的路径或其中的文件",
            "the path is a folder, not a file; give the folder path or a file in it",
            "is_directory",
        ) from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _FileProblem(
            f"读取失败（{reason}）；请检查磁盘或网络共享后重试",
            f"read failed ({reason}); check the disk or network share and try again",
            "os_error",
        ) from exc

    # The content decides the reader, so a misnamed file still reads.
    try:
        if magic.startswith(_PDF_MAGIC):
            yield from _iter_pdf_pages(path, sha256, pdf_dpi, max_pixels)
        else:
            yield from _iter_image_pages(path, sha256, max_pixels)
    except _FileProblem as problem:
        problem.sha256 = sha256
        raise


def iter_pages(
    paths: Iterable[str | Path],
    *,
    pdf_dpi: int = 200,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[Page | IngestFailure]:
    """Yield every page of the given files and folders, or a failure in its place.

    Files are read in the order ``collect_files`` gives (folders recursively,
    sorted). A multi-page TIFF yields one page per frame and a PDF one page per
    page, rendered at ``pdf_dpi``. An image or rendered page of more than
    ``max_pixels`` pixels is not decoded and becomes a failure. A file that
    cannot be read yields one ``IngestFailure`` and the next file follows, so
    this generator raises for no single input file.
    """
    if pdf_dpi <= 0:
        raise ValueError(f"pdf_dpi must be positive, got {pdf_dpi}")
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")

    page_total = 0
    failure_total = 0
    file_total = 0
    for item in _collect_in_order(paths):
        if isinstance(item, IngestFailure):
            failure_total += 1
            _log_failure("not_found_or_unsupported", None)
            yield item
            continue

        file_total += 1
        try:
            for result in _iter_file_pages(item, pdf_dpi, max_pixels):
                if isinstance(result, Page):
                    page_total += 1
                else:
                    failure_total += 1
                yield result
        except _FileProblem as problem:
            failure_total += 1
            _log_failure(problem.code, problem.sha256)
            yield IngestFailure(item, problem.reason_zh, problem.reason_en)

    log.info("ingest finished: files=%d pages=%d failures=%d", file_total, page_total, failure_total)
