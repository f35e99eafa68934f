"""An 8-bit copy of rapidocr's text detection model, and the choice of which detector to run.

Line detection on the page was the costliest step of a card. Static 8-bit
quantization of the PP-OCR detector (onnxruntime's QDQ format, per-tensor
scales from generated cards) ran it about 3.5 times faster on a 2-core Intel
Xeon with VNNI, with nearly the same boxes.

NOTE: the activation ranges come from generated cards only. On eight real scans of other forms
(FUNSD and XFUND), 96.5% of the float detector's lines had an 8-bit line over them (overlap above
0.5). Where that matters, ``HUKA_OCR_DETECTOR=float`` runs the float model. The quantized file is committed
beside this module, built by :func:`quantize_detector` (``python -m ocr model
quantize``) from the float model inside the rapidocr wheel. Its JSON sidecar
stores the SHA-256 of that source, so a rapidocr release with another detector
falls back to the float model, with a warning, until the copy is rebuilt.

The recogniser stays in float: its scores feed the calibrated confidence.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
import typer

__all__ = [
    "DETECTOR_ENV",
    "INT8_DETECTOR",
    "DetectorChoice",
    "calibration_pages",
    "choose_detector",
    "quantize_command",
    "quantize_detector",
]

log = logging.getLogger(__name__)

# The committed 8-bit detector and its sidecar (``<name>.json``).
INT8_DETECTOR = Path(__file__).parent / "model_files" / "det_int8.onnx"
# Set to "float" to run rapidocr's own float detector.
DETECTOR_ENV = "HUKA_OCR_DETECTOR"
# Generated cards whose prepared pages give the activation ranges, and their first seed.
CALIBRATION_CARDS = 16
CALIBRATION_SEED = 9300
# Calibration pages are scaled as the layout stage scales pages for detection (ocr.locate).
CALIBRATION_MAX_SIDE = 960


@dataclass(frozen=True)
class DetectorChoice:
    """The detection model to load and why."""

    path: Path
    quantized: bool
    reason: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=4)
def choose_detector(float_model: Path) -> DetectorChoice:
    """Return the 8-bit detector when it was built from ``float_model``, else ``float_model`` itself."""
    if os.environ.get(DETECTOR_ENV, "").strip().lower() == "float":
        return DetectorChoice(float_model, False, f"{DETECTOR_ENV}=float")

    sidecar = INT8_DETECTOR.with_suffix(".json")
    if not (INT8_DETECTOR.is_file() and sidecar.is_file()):
        return DetectorChoice(float_model, False, f"{INT8_DETECTOR.name} not found")
    try:
        source_sha256 = json.loads(sidecar.read_text(encoding="utf-8"))["source_sha256"]
    except (OSError, ValueError, KeyError) as exc:
        log.warning("8-bit detector sidecar unreadable, float detector used: %s: %s", sidecar, exc)
        return DetectorChoice(float_model, False, f"{sidecar.name} unreadable")
    if source_sha256 != _sha256(float_model):
        log.warning(
            "8-bit detector was built from another detector than %s, float detector used; "
            "rebuild it with: python -m ocr model quantize",
            float_model.name,
        )
        return DetectorChoice(float_model, False, f"{INT8_DETECTOR.name} built from another model")
    return DetectorChoice(INT8_DETECTOR, True, f"built from {float_model.name}")


def _detector_input(image: np.ndarray) -> np.ndarray:
    """Turn a BGR page (H x W x 3 uint8) into the detector's input as rapidocr makes it: 1 x 3 x H' x W' float32.

    The page is scaled to at most :data:`CALIBRATION_MAX_SIDE` pixels, each side rounded to a
    multiple of 32, and normalised to [-1, 1].
    """
    scale = min(1.0, CALIBRATION_MAX_SIDE / max(image.shape[:2]))
    height = max(32, int(round(image.shape[0] * scale / 32)) * 32)
    width = max(32, int(round(image.shape[1] * scale / 32)) * 32)
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    normalised = (resized.astype(np.float32) / 255.0 - 0.5) / 0.5
    return normalised.transpose(2, 0, 1)[np.newaxis]


def calibration_pages(cards: int = CALIBRATION_CARDS, seed: int = CALIBRATION_SEED) -> list[np.ndarray]:
    """Generate cards of both types and return their prepared pages (H x W x 3 BGR), the images detection runs on."""
    from ocr.prepare import prepare
    from sample_cards import generate_card

    pages = []
    for index in range(cards):
        card_type = ("foreign_guest", "domestic_guest")[index % 2]
        image, _truth = generate_card(seed + index, card_type, dpi=200)
        bgr = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
        pages.append(prepare(bgr).image)
    return pages


def quantize_detector(float_model: Path, target: Path, pages: list[np.ndarray]) -> Path:
    """Write an 8-bit copy of ``float_model`` to ``target``, with activation ranges measured on ``pages``.

    Needs the ``onnx`` package (the ``bench`` extra). Scales are per tensor: the detector's opset
    has no per-channel DequantizeLinear. The sidecar ``target`` with suffix .json records the
    source file's SHA-256, which :func:`choose_detector` checks.
    """
    import onnx
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = onnx.load(str(float_model)).graph.input[0].name
    inputs = [{input_name: _detector_input(page)} for page in pages]

    class _Pages(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter(inputs)

        def get_next(self):
            return next(self._items, None)

    target.parent.mkdir(parents=True, exist_ok=True)
    prepared = target.with_suffix(".pre.onnx")
    try:
        quant_pre_process(str(float_model), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(target),
            _Pages(),
            quant_format=QuantFormat.QDQ,
            per_channel=False,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    finally:
        prepared.unlink(missing_ok=True)

    sidecar = {
        "source": float_model.name,
        "source_sha256": _sha256(float_model),
        "onnxruntime": onnxruntime.__version__,
        "calibration": f"{len(pages)} prepared pages of generated cards, at most {CALIBRATION_MAX_SIDE} px long",
        "format": "QDQ, activations uint8, weights int8, per tensor, MinMax ranges",
    }
    target.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    log.info("8-bit detector written path=%s pages=%d", target, len(pages))
    return target


def quantize_command(
    out: Annotated[
        Path, typer.Option("--out", help="8 位检测模型的输出路径 / where to write the 8-bit detector")
    ] = INT8_DETECTOR,
    cards: Annotated[
        int, typer.Option("--cards", min=1, help="用于校准的生成卡片数 / generated cards for the calibration")
    ] = CALIBRATION_CARDS,
) -> None:
    """由 rapidocr 自带的浮点检测模型生成 8 位副本。 / Build the 8-bit copy of rapidocr's float text detector."""
    import rapidocr

    try:
        import onnx  # noqa: F401
    except ImportError:
        typer.echo("未安装 onnx：请先运行 pip install -e '.[bench]'。 / onnx is not installed: pip install -e '.[bench]'", err=True)
        raise typer.Exit(2) from None
    detectors = sorted((Path(rapidocr.__file__).parent / "models").glob("*det*.onnx"))
    if not detectors:
        typer.echo("rapidocr 中没有检测模型，请重新安装 rapidocr。 / no detector in rapidocr: reinstall rapidocr", err=True)
        raise typer.Exit(2)

    pages = calibration_pages(cards)
    path = quantize_detector(detectors[-1], out, pages)
    typer.echo(f"已写入 {path}（校准用 {len(pages)} 张卡片） / wrote {path} ({len(pages)} calibration cards)")
