"""OCR engines behind one interface.

``rapidocr`` (PaddleOCR's PP-OCR models run on onnxruntime, shipped in the
wheel) is the default; Tesseract is the second engine, read through the system's
libtesseract in this process (:mod:`ocr.tesslib`), or through the ``tesseract``
program and ``pytesseract`` where the library cannot be loaded.
Both return every text line they find with its score and its box. No line is
dropped for a low score here, so the later stages see everything.

Images are H x W x 3 uint8 BGR arrays. Boxes are four (x, y) corner points in
pixels of the image that was passed in.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ocr.errors import EngineUnavailableError
from ocr.prepare import remove_rules
from ocr.quantize import choose_detector
from ocr.tesslib import TessLibrary, TessLibraryError

__all__ = [
    "ENGINE_NAMES",
    "OcrEngine",
    "RapidOcrEngine",
    "TesseractEngine",
    "TextLine",
    "crop_line",
    "get_engine",
]

log = logging.getLogger(__name__)

# Minimum recognition width, in pixels at the recogniser's 48 px height, for page lines (labels).
LINE_MIN_WIDTH = 160

# Must be set before onnxruntime loads: its Linux wheel sends telemetry otherwise.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

ENGINE_NAMES = ("rapidocr", "tesseract", "paddleocr")


@dataclass(frozen=True)
class TextLine:
    """One line of text found by an engine."""

    text: str
    # Engine's own confidence in [0, 1].
    score: float
    # 4 x 2 float array of corner points (x, y) in pixels, clockwise from top-left.
    points: np.ndarray

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """Return the axis-aligned (x0, y0, x1, y1) of the line."""
        xs, ys = self.points[:, 0], self.points[:, 1]
        return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.bbox
        return (x0 + x1) / 2, (y0 + y1) / 2


class OcrEngine(Protocol):
    """Interface of an OCR engine as the pipeline uses it."""

    name: str

    def read_page(self, image: np.ndarray) -> list[TextLine]:
        """Find and read every text line of a whole page."""
        ...

    def read_zone(self, image: np.ndarray) -> list[TextLine]:
        """Read the text of one field zone (a small crop, usually one line)."""
        ...


def _rect_points(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


class RapidOcrEngine:
    """PP-OCR detection, direction and recognition models through ``rapidocr`` on onnxruntime."""

    name = "rapidocr"

    def __init__(self) -> None:
        try:
            import rapidocr
            from rapidocr import RapidOCR
        except ImportError as exc:  # pragma: no cover - rapidocr is a hard dependency
            raise EngineUnavailableError(
                "未安装 rapidocr。请运行 pip install rapidocr onnxruntime。",
                "rapidocr is not installed: pip install rapidocr onnxruntime",
            ) from exc

        # Point at the model files inside the wheel, so that rapidocr never tries to fetch one.
        model_dir = Path(rapidocr.__file__).parent / "models"
        det = sorted(model_dir.glob("*det*.onnx"))
        rec = sorted(model_dir.glob("*rec*.onnx"))
        cls = sorted(model_dir.glob("*cls*.onnx"))
        if not (det and rec and cls):
            raise EngineUnavailableError(
                f"在 {model_dir} 中找不到 PP-OCR 模型文件（det/rec/cls .onnx）。请重新安装 rapidocr。",
                f"PP-OCR model files (det/rec/cls .onnx) not found in {model_dir}; reinstall rapidocr",
            )
        # The committed 8-bit copy of the detector when it was built from this one (ocr.quantize).
        detector = choose_detector(det[-1])
        params = {
            "Global.log_level": "error",
            # Keep every recognised line; the confidence stage decides what to trust.
            "Global.text_score": 0.0,
            "Det.model_path": str(detector.path),
            "Rec.model_path": str(rec[-1]),
            "Cls.model_path": str(cls[-1]),
        }
        threads = os.environ.get("HUKA_OCR_THREADS")
        if threads:
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = int(threads)
        # The recogniser pads the crops of a batch to the widest of them, and to at least 320 px at its
        # 48 px height. Most labels are a few characters, so page lines are recognised one per batch
        # and padded to 160 px only. On the lines of 12 generated cards that took 3.6 s of CPU where
        # the library's settings (6 per batch, 320 px) took 7.6 s, and one of 265 lines read
        # differently (a space in a footnote).
        self._ocr = RapidOCR(
            params={**params, "Rec.rec_img_shape": [3, 48, LINE_MIN_WIDTH], "Rec.rec_batch_num": 1}
        )
        # Field zones are small crops: the page setting (shorter side scaled up to at least 736 px)
        # would enlarge a 100 x 500 crop about sevenfold, so zones keep their size up to 960 px. Zone
        # crops keep the library's recognition width: the calibration was fitted on those scores.
        # Padding zone lines to 160 px read them in 60% of the CPU, with 1,379 of 1,395 fields right
        # on 90 generated cards against 1,380 at 320 px. But a calibration fitted again on 160 px
        # reads accepted 81% of 3,720 fields out of fold, against 88% at 320 px.
        self._zone_ocr = RapidOCR(params={**params, "Det.limit_type": "max", "Det.limit_side_len": 960})
        log.info(
            "rapidocr engine ready models=%s,%s detector=%s (%s)",
            det[-1].name,
            rec[-1].name,
            "8-bit" if detector.quantized else "float",
            detector.reason,
        )
        self.detector = detector

    @staticmethod
    def _lines(result) -> list[TextLine]:
        if result.txts is None:
            return []
        return [
            TextLine(text=text, score=float(score), points=np.asarray(box, dtype=np.float32))
            for text, score, box in zip(result.txts, result.scores, result.boxes)
        ]

    def read_page(self, image: np.ndarray) -> list[TextLine]:
        return self._lines(self._ocr(image, use_det=True, use_cls=True, use_rec=True))

    def detect_lines(self, image: np.ndarray) -> list[np.ndarray]:
        """Find the text lines of a page without reading them: 4 x 2 corner arrays in pixels of ``image``."""
        # The zone engine keeps the image's size (up to 960 px), where the page engine would scale
        # its shorter side up to 736 px: the caller chooses the size detection runs at.
        result = self._zone_ocr(image, use_det=True, use_cls=False, use_rec=False)
        boxes = getattr(result, "boxes", None)
        if boxes is None:
            return []
        return [np.asarray(box, dtype=np.float32) for box in boxes]

    def read_lines(self, image: np.ndarray, boxes: list[np.ndarray], *, upright: bool = False) -> list[TextLine]:
        """Read the line in each box of ``image`` (4 x 2 corners in its pixels); one TextLine per box, in order.

        The direction classifier turns upside-down lines first, as in :meth:`read_page`, unless
        ``upright`` says the page is known to be the right way up. A box that contains nothing
        readable gives a line with empty text and score 0.
        """
        if not boxes:
            return []
        crops = [crop_line(image, box) for box in boxes]
        if not upright:
            crops, _ = self._ocr.cls_and_rotate(crops)
        reads = _recognise(self._ocr, crops)
        return [
            TextLine(text=text, score=score, points=np.asarray(box, dtype=np.float32))
            for (text, score), box in zip(reads, boxes)
        ]

    def read_crops(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """Recognise each zone crop (H x W x 3, one text line) as a whole; return (text, score) per crop, in order."""
        return _recognise(self._zone_ocr, crops)

    def read_zone(self, image: np.ndarray) -> list[TextLine]:
        # Detection first, because a value may be offset in its cell or wrap onto two lines.
        lines = self._lines(self._zone_ocr(image, use_det=True, use_cls=False, use_rec=True))
        if lines:
            return lines

        # Faint or tiny writing can escape detection: recognise the whole crop as one line.
        result = self._zone_ocr(image, use_det=False, use_cls=False, use_rec=True)
        text = (result.txts or ("",))[0]
        score = float((result.scores or (0.0,))[0])
        if not text.strip():
            return []
        height, width = image.shape[:2]
        return [TextLine(text=text, score=score, points=_rect_points(0, 0, width, height))]


def _recognise(ocr, crops: list[np.ndarray]) -> list[tuple[str, float]]:
    """Run the recogniser of a RapidOCR instance on crops; return (text, score) per crop, in order."""
    if not crops:
        return []
    result = ocr.recognize_txt(crops)
    texts = result.txts or ("",) * len(crops)
    scores = result.scores or (0.0,) * len(crops)
    return [(text, float(score)) for text, score in zip(texts, scores)]


def crop_line(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Cut one text line out of ``image`` (H x W x 3) along its 4 x 2 corners, clockwise from top-left.

    The crop is straightened to the line's own direction. A box much taller than wide (vertical
    text) is turned a quarter counter-clockwise, so that the recogniser reads it left to right.
    """
    corners = np.asarray(box, dtype=np.float32)
    width = int(round(max(np.linalg.norm(corners[0] - corners[1]), np.linalg.norm(corners[3] - corners[2]))))
    height = int(round(max(np.linalg.norm(corners[0] - corners[3]), np.linalg.norm(corners[1] - corners[2]))))
    width, height = max(width, 1), max(height, 1)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(corners, target)
    crop = cv2.warpPerspective(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    if height >= 1.5 * width:
        crop = cv2.rotate(crop, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return crop


class TesseractEngine:
    """Tesseract 5 with the chi_sim and eng models: in this process, or through ``pytesseract`` and the program."""

    name = "tesseract"

    def __init__(self, languages: str = "chi_sim+eng") -> None:
        try:
            import pytesseract
        except ImportError as exc:  # pragma: no cover - pytesseract is a hard dependency
            raise EngineUnavailableError(
                "未安装 pytesseract。请运行 pip install pytesseract。",
                "pytesseract is not installed: pip install pytesseract",
            ) from exc
        if shutil.which("tesseract") is None:
            raise EngineUnavailableError(
                "找不到 tesseract 程序。请安装 Debian 软件包：apt-get install tesseract-ocr tesseract-ocr-chi-sim",
                "tesseract not found: apt-get install tesseract-ocr tesseract-ocr-chi-sim",
            )
        available = set(pytesseract.get_languages(config=""))
        missing = [lang for lang in languages.split("+") if lang not in available]
        if missing:
            raise EngineUnavailableError(
                f"Tesseract 缺少语言模型 {', '.join(missing)}。请安装 tesseract-ocr-chi-sim。",
                f"Tesseract language data missing: {', '.join(missing)}; install tesseract-ocr-chi-sim",
            )
        self._tess = pytesseract
        self.languages = languages
        self._library = _tess_library()

    def _lines(self, image: np.ndarray, psm: int, charset: str | None = None) -> list[TextLine]:
        config = f"--psm {psm}"
        languages = self.languages
        # Tesseract 4.1 and later apply the whitelist to the LSTM decoder too. On the command line
        # the value is one shell-split token, so a space in it would end the option: spaces are never listed.
        whitelist = charset.replace(" ", "") if charset else ""
        if whitelist:
            config += f" -c tessedit_char_whitelist={whitelist}"
        if charset and charset.isascii():
            # Without Chinese characters to read, chi_sim only adds look-alike CJK readings of digits.
            languages = "eng"

        if self._library is not None:
            tsv = self._library.tsv(image[:, :, ::-1], languages=languages, psm=psm, whitelist=whitelist)
            data = _tsv_columns(tsv)
        else:
            data = self._tess.image_to_data(
                image[:, :, ::-1],  # pytesseract expects RGB
                lang=languages,
                config=config,
                output_type=self._tess.Output.DICT,
            )
        grouped: dict[tuple[int, int, int], list[int]] = {}
        for i, word in enumerate(data["text"]):
            if not word.strip():
                continue
            key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
            grouped.setdefault(key, []).append(i)

        lines = []
        for indices in grouped.values():
            words = [data["text"][i] for i in indices]
            confs = [max(float(data["conf"][i]), 0.0) / 100.0 for i in indices]
            x0 = min(data["left"][i] for i in indices)
            y0 = min(data["top"][i] for i in indices)
            x1 = max(data["left"][i] + data["width"][i] for i in indices)
            y1 = max(data["top"][i] + data["height"][i] for i in indices)
            lines.append(
                TextLine(
                    text=_join_words(words),
                    # The weakest word bounds how much the whole line can be trusted.
                    score=min(confs),
                    points=_rect_points(x0, y0, x1, y1),
                )
            )
        return lines

    def read_page(self, image: np.ndarray) -> list[TextLine]:
        # Tesseract's page layout analysis merges a table row into one line, label, value and the
        # next label alike. With the printed rules painted out and sparse-text mode (psm 11), each
        # label comes out as its own line, which the layout stage needs.
        gray = remove_rules(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        return self._lines(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), psm=11)

    def read_zone(self, image: np.ndarray, charset: str | None = None) -> list[TextLine]:
        """Read one zone as a single text line (psm 7), only from the characters in ``charset`` when given."""
        return self._lines(image, psm=7, charset=charset)


TSV_COLUMNS = ("level", "page_num", "block_num", "par_num", "line_num", "word_num", "left", "top", "width", "height", "conf", "text")


def _tsv_columns(tsv: str) -> dict[str, list]:
    """Turn Tesseract's TSV rows (no header) into columns, as ``pytesseract.image_to_data`` returns them."""
    columns: dict[str, list] = {name: [] for name in TSV_COLUMNS}
    for row in tsv.splitlines():
        cells = row.split("\t")
        if len(cells) < len(TSV_COLUMNS):
            # A row without a word has no text cell.
            cells += [""] * (len(TSV_COLUMNS) - len(cells))
        for name, cell in zip(TSV_COLUMNS[:-2], cells):
            columns[name].append(int(cell))
        # Whole percents, as pytesseract gives them: the confidence stage is calibrated on those.
        columns["conf"].append(int(float(cells[10])))
        columns["text"].append(cells[11])
    return columns


@lru_cache(maxsize=1)
def _tess_library() -> TessLibrary | None:
    """Return the in-process Tesseract, or None when libtesseract cannot be loaded (the program is used then)."""
    try:
        return TessLibrary()
    except TessLibraryError as exc:
        log.warning("tesseract library not loaded, the tesseract program is used per zone: %s", exc)
        return None


def _join_words(words: list[str]) -> str:
    """Join Tesseract words: no space between two CJK words, one space otherwise."""
    text = ""
    for word in words:
        if text and not (_is_cjk(text[-1]) and _is_cjk(word[0])):
            text += " "
        text += word
    return text


def _is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff"


@lru_cache(maxsize=4)
def get_engine(name: str = "rapidocr") -> OcrEngine:
    """Return a shared engine instance by name ("rapidocr", "tesseract" or "paddleocr")."""
    if name == "rapidocr":
        return RapidOcrEngine()
    if name == "tesseract":
        return TesseractEngine()
    if name == "paddleocr":
        # Imported here because the paddleocr package is an optional extra.
        from ocr.engine_paddle import PaddleOcrEngine

        return PaddleOcrEngine()
    raise EngineUnavailableError(
        f"未知的识别引擎 {name!r}。可选：{', '.join(ENGINE_NAMES)}。",
        f"unknown OCR engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}",
    )
