"""PaddleOCR 3.x as the third OCR engine, on onnxruntime with the PP-OCR files that rapidocr ships.

The ``paddleocr`` package (optional extra ``paddle``) runs its own pipeline: PP-OCRv6 small
detection, the PP-OCR v2.0 line-direction classifier and PP-OCRv6 small recognition. Its
``onnxruntime`` engine (PaddleOCR 3.5 and later) loads a model from a folder that contains
``inference.onnx`` and ``inference.yml``. The yml file contains the model name, the pre- and
post-processing and, for recognition, the character list. This module builds those folders in a
temporary directory from the ONNX files inside the ``rapidocr`` wheel. The character list comes
from the recognition model's ONNX metadata, where rapidocr reads it too. PaddlePaddle is not
needed, and PaddleOCR is never asked for a model by name alone, so it has nothing to download.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ocr.engines import TextLine, _rect_points
from ocr.errors import EngineUnavailableError

__all__ = ["PaddleOcrEngine", "build_model_dirs", "MIN_PADDLEOCR_VERSION"]

log = logging.getLogger(__name__)

# PaddleOCR 3.5 added the unified ``engine`` option with the ``onnxruntime`` value.
MIN_PADDLEOCR_VERSION = "3.5"

# PaddleX reads these when it is first imported. Without this one, resolving a model by name first
# tests the connection to the model hosts (paddlex 3.7, inference/utils/official_models.py).
_PADDLEX_ENV = {"PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK": "True"}

# Names that PaddleX uses to pick each model's predictor class. PaddleX has no name for the PP-OCR
# v2.0 direction classifier, so it runs under the name of a PaddleX textline orientation model with
# the same two classes (0 and 180 degrees). Its own input size and normalisation are in _direction_yml.
DETECTION_MODEL = "PP-OCRv6_small_det"
RECOGNITION_MODEL = "PP-OCRv6_small_rec"
DIRECTION_MODEL = "PP-LCNet_x0_25_textline_ori"


@dataclass(frozen=True)
class ModelDirs:
    """PaddleX model folders, each with inference.onnx and inference.yml."""

    detection: Path
    recognition: Path
    direction: Path


def _detection_yml() -> dict[str, Any]:
    # PaddleOCR's export of a PP-OCR detection model: BGR input, ImageNet mean and std, DB post-process.
    return {
        "PreProcess": {
            "transform_ops": [
                {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                {"DetLabelEncode": None},
                {"DetResizeForTest": {"resize_long": 960}},
                {
                    "NormalizeImage": {
                        "mean": [0.485, 0.456, 0.406],
                        "std": [0.229, 0.224, 0.225],
                        "scale": "1./255.",
                        "order": "hwc",
                    }
                },
                {"ToCHWImage": None},
                {"KeepKeys": {"keep_keys": ["image", "shape", "polys", "ignore_tags"]}},
            ]
        },
        "PostProcess": {
            "name": "DBPostProcess",
            "thresh": 0.3,
            "box_thresh": 0.6,
            "max_candidates": 1000,
            "unclip_ratio": 1.5,
        },
    }


def _recognition_yml(characters: list[str]) -> dict[str, Any]:
    # PaddleOCR's export of a PP-OCR CTC recognition model, which resizes each line to 48 px high.
    return {
        "PreProcess": {
            "transform_ops": [
                {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                {"MultiLabelEncode": {"gtc_encode": "NRTRLabelEncode"}},
                {"RecResizeImg": {"image_shape": [3, 48, 320]}},
                {"KeepKeys": {"keep_keys": ["image", "label_ctc", "label_gtc", "length", "valid_ratio"]}},
            ]
        },
        "PostProcess": {"name": "CTCLabelDecode", "character_dict": characters},
    }


def _direction_yml() -> dict[str, Any]:
    # The v2.0 classifier takes 48 x 192 crops scaled to [-1, 1], as rapidocr feeds it.
    # NOTE: rapidocr pads a crop to 192 px wide, PaddleX stretches it, so long lines are squeezed.
    return {
        "PreProcess": {
            "transform_ops": [
                {"ResizeImage": {"size": [192, 48]}},
                {
                    "NormalizeImage": {
                        "channel_num": 3,
                        "mean": [0.5, 0.5, 0.5],
                        "std": [0.5, 0.5, 0.5],
                        "scale": 1.0 / 255,
                        "order": "",
                    }
                },
                {"ToCHWImage": None},
            ]
        },
        "PostProcess": {"Topk": {"topk": 1, "label_list": ["0_degree", "180_degree"]}},
    }


def rapidocr_model_files() -> tuple[Path, Path, Path]:
    """Return the (detection, recognition, direction) ONNX files inside the rapidocr wheel."""
    import rapidocr

    model_dir = Path(rapidocr.__file__).parent / "models"
    found = []
    for pattern in ("*det*.onnx", "*rec*.onnx", "*cls*.onnx"):
        matches = sorted(model_dir.glob(pattern))
        if not matches:
            raise EngineUnavailableError(
                f"在 {model_dir} 中找不到 PP-OCR 模型文件 {pattern}。请重新安装 rapidocr。",
                f"PP-OCR model file {pattern} not found in {model_dir}; reinstall rapidocr",
            )
        found.append(matches[-1])
    return found[0], found[1], found[2]


def read_character_list(recognition_onnx: Path) -> list[str]:
    """Read the recognition model's character list from its ONNX metadata key ``character``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Only the metadata is wanted, so skip the graph optimisations.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(recognition_onnx), options, providers=["CPUExecutionProvider"])
    metadata = session.get_modelmeta().custom_metadata_map
    if "character" not in metadata:
        raise EngineUnavailableError(
            f"识别模型 {recognition_onnx} 的 ONNX 元数据中没有字符表（键 character）。请重新安装 rapidocr。",
            f"recognition model {recognition_onnx} has no character list (ONNX metadata key 'character'); "
            "reinstall rapidocr",
        )
    return metadata["character"].splitlines()


def build_model_dirs(root: Path) -> ModelDirs:
    """Create the three PaddleX model folders under ``root`` from the rapidocr ONNX files."""
    import yaml

    detection_onnx, recognition_onnx, direction_onnx = rapidocr_model_files()
    characters = read_character_list(recognition_onnx)
    plan = (
        (DETECTION_MODEL, detection_onnx, _detection_yml()),
        (RECOGNITION_MODEL, recognition_onnx, _recognition_yml(characters)),
        (DIRECTION_MODEL, direction_onnx, _direction_yml()),
    )
    folders = []
    for model_name, onnx_file, config in plan:
        folder = root / model_name
        folder.mkdir(parents=True, exist_ok=True)
        # A link, not a copy: the files are 30 MiB and are only read while the engine loads.
        (folder / "inference.onnx").symlink_to(onnx_file)
        text = yaml.safe_dump({"Global": {"model_name": model_name}, **config}, allow_unicode=True)
        (folder / "inference.yml").write_text(text, encoding="utf-8")
        folders.append(folder)
    log.debug("paddleocr model folders built in %s from %s", root, detection_onnx.parent)
    return ModelDirs(*folders)


def _import_paddleocr():
    """Import paddleocr with PaddleX's model-host check off, or raise if it is missing or too old."""
    for name, value in _PADDLEX_ENV.items():
        os.environ[name] = value
    try:
        import paddleocr
    except ImportError as exc:
        raise EngineUnavailableError(
            "未安装 paddleocr，无法使用 paddleocr 引擎。请运行 pip install 'hukacapture[paddle]'，"
            "或改用 --engine rapidocr。",
            "the paddleocr engine needs the paddleocr package: pip install 'hukacapture[paddle]', "
            "or use --engine rapidocr",
        ) from exc

    from packaging.version import Version

    installed = Version(paddleocr.__version__)
    if installed < Version(MIN_PADDLEOCR_VERSION):
        raise EngineUnavailableError(
            f"paddleocr {installed} 过旧：需要 {MIN_PADDLEOCR_VERSION} 或更高版本才能用 onnxruntime 运行。"
            "请运行 pip install -U 'hukacapture[paddle]'。",
            f"paddleocr {installed} is too old: version {MIN_PADDLEOCR_VERSION} or later is needed to run on "
            "onnxruntime; run pip install -U 'hukacapture[paddle]'",
        )
    return paddleocr


class PaddleOcrEngine:
    """PaddleOCR's OCR pipeline on onnxruntime, with the PP-OCR models of the rapidocr wheel."""

    name = "paddleocr"

    def __init__(self) -> None:
        paddleocr = _import_paddleocr()
        # PaddleX logs each model it creates at INFO level on stderr.
        logging.getLogger("paddlex").setLevel(logging.WARNING)

        engine_config: dict[str, Any] = {"device_type": "cpu"}
        threads = os.environ.get("HUKA_OCR_THREADS")
        if threads:
            engine_config["intra_op_num_threads"] = int(threads)

        # The ONNX sessions and the yml settings are loaded here, so the folders can go afterwards.
        with tempfile.TemporaryDirectory(prefix="hukacapture-paddleocr-") as tmp:
            dirs = build_model_dirs(Path(tmp))
            try:
                self._ocr = paddleocr.PaddleOCR(
                    text_detection_model_name=DETECTION_MODEL,
                    text_detection_model_dir=str(dirs.detection),
                    text_recognition_model_name=RECOGNITION_MODEL,
                    text_recognition_model_dir=str(dirs.recognition),
                    textline_orientation_model_name=DIRECTION_MODEL,
                    textline_orientation_model_dir=str(dirs.direction),
                    # ocr.prepare already turns and deskews the page, and these two models are not installed.
                    use_doc_orientation_classify=False,
                    use_doc_unwarping=False,
                    use_textline_orientation=True,
                    # Keep every recognised line, because the confidence stage decides what to trust.
                    text_rec_score_thresh=0.0,
                    engine="onnxruntime",
                    engine_config=engine_config,
                )
                # Recognition alone, for a zone in which detection finds no line.
                self._recognizer = paddleocr.TextRecognition(
                    model_name=RECOGNITION_MODEL,
                    model_dir=str(dirs.recognition),
                    engine="onnxruntime",
                    engine_config=engine_config,
                )
            except (RuntimeError, ValueError, KeyError, OSError) as exc:
                raise EngineUnavailableError(
                    f"paddleocr {paddleocr.__version__} 无法用 onnxruntime 加载 PP-OCR 模型：{exc}",
                    f"paddleocr {paddleocr.__version__} failed to load the PP-OCR models on onnxruntime: {exc}",
                ) from exc
        log.info(
            "paddleocr engine ready version=%s models=%s,%s", paddleocr.__version__, DETECTION_MODEL, RECOGNITION_MODEL
        )

    def _read(self, image: np.ndarray, *, use_direction: bool) -> list[TextLine]:
        (result,) = self._ocr.predict(image, use_textline_orientation=use_direction)
        return [
            TextLine(text=text, score=float(score), points=np.asarray(poly, dtype=np.float32))
            for text, score, poly in zip(result["rec_texts"], result["rec_scores"], result["rec_polys"])
        ]

    def read_page(self, image: np.ndarray) -> list[TextLine]:
        return self._read(image, use_direction=True)

    def read_zone(self, image: np.ndarray) -> list[TextLine]:
        # Detection first, because a value may be offset in its cell or wrap onto two lines.
        lines = self._read(image, use_direction=False)
        if lines:
            return lines

        # Faint or tiny writing can escape detection: recognise the whole crop as one line.
        (result,) = self._recognizer.predict(image)
        text = result["rec_text"]
        if not text.strip():
            return []
        height, width = image.shape[:2]
        return [TextLine(text=text, score=float(result["rec_score"]), points=_rect_points(0, 0, width, height))]
