"""Colour dropout: flatten tinted paper and separate red print from the writing.

Registration cards come as white originals and yellow or pink carbon copies.
The writing on a copy is faint, and the card carries red print of two kinds:
the pre-printed serial number and the hotel's stamps, which are often put
over a value. This module turns a scan into gray images for OCR:

- :func:`paper_normalize`: all print and writing, dark on white paper;
- :func:`drop_red`: the same with red print removed, keeping blue or black
  ink that lies under it;
- :func:`red_layer`: only the red print, dark on white.

Every function takes an H x W x 3 uint8 BGR image and works on the image it is
given, so the paper estimate is best made on a whole card (or a large part of
one) and cropped afterwards. Outputs are H x W arrays of the same size.

The paper is estimated per colour channel as a smooth upper envelope of the
image (a maximum filter wider than any pen stroke, then a blur), and each
channel is divided by it. On the balanced image paper is 1.0 in every channel
whatever its tint, so red is told apart by channel differences alone: red
print has a high red channel and low green and blue channels, black ink is
low in all three, and blue ink is low in red.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["CardLayers", "balance_paper", "card_layers", "drop_red", "paper_normalize", "red_layer", "red_mask", "red_weight"]

# The paper estimate is made on a copy whose long side is about this many pixels.
_BACKGROUND_LONG_SIDE = 400
# Width of the maximum filter on that copy: 9 px is about 19 mm on an A5 card, wider than any
# pen stroke or printed character, so that every window also covers bare paper.
_BACKGROUND_KERNEL = 9
# The paper levels are measured on every this many pixels in each direction.
_LEVEL_SAMPLE_STEP = 4

# Tone curve of the gray outputs, on balanced values where paper is 1.0: values at or below
# BLACK_POINT become 0, and the rest are stretched and raised to TONE_GAMMA. Carbon-copy writing
# on the generated yellow and pink cards (ink laid at 50-70 % opacity, then blurred) balances to
# about 0.45-0.7 in its strokes, and this curve takes it to about 60-140 of 255.
# rapidocr is sensitive to the curve. A steeper one (black point 0.2, gamma 2) split "Tourism"
# into "Tour ism" on a bundled sample. A white point at 0.96, which clears paper grain, split
# "ROBERTS" into "RO BERTS" on a generated card. Both were read with high scores.
BLACK_POINT = 0.1
TONE_GAMMA = 1.5

# Red chroma, on balanced values: the red channel minus the larger of green and blue.
# Paper of any tint is about 0 after balancing, and black and blue ink are 0 or below. The red
# serial number of the generated cards is about 0.6. JPEG stores colour at half resolution, so
# thin red strokes, such as stamp lettering, keep only about half their chroma: a stamp laid at
# 60 % opacity measures about 0.15-0.2 in its lettering.
RED_CHROMA_LOW = 0.05
RED_CHROMA_HIGH = 0.15
# A pixel whose balanced red channel is under this is ink of another colour seen through red.
RED_MIN_RED_CHANNEL = 0.35


def balance_paper(image: np.ndarray) -> np.ndarray:
    """Divide each channel of a BGR image (H x W x 3 uint8) by its paper estimate.

    Returns H x W x 3 float32 in [0, 1.2]: bare paper is about 1.0 in every channel, so
    yellow and pink paper become neutral and slow light fall-off is flattened.
    """
    _check_bgr(image)
    height, width = image.shape[:2]
    scale = min(1.0, _BACKGROUND_LONG_SIDE / max(height, width))
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1.0 else image
    kernel = np.ones((_BACKGROUND_KERNEL, _BACKGROUND_KERNEL), np.uint8)

    # Maximum filter: the paper around the writing replaces the writing. The median then drops
    # single bright specks, and the blur smooths the blocky result of the filter.
    envelope = cv2.dilate(small, kernel)
    envelope = cv2.medianBlur(envelope, 5)
    envelope = cv2.GaussianBlur(envelope, (0, 0), _BACKGROUND_KERNEL / 2)
    background = cv2.resize(envelope, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    balanced = image.astype(np.float32) / np.maximum(background, 8.0)

    # The envelope lies on top of the paper grain, so paper balances a little under 1. Its
    # median level per channel, over pixels that look like paper, is scaled back to exactly 1.
    # Medians over every fourth pixel each way took half the time of the whole function. On six
    # generated cards they moved the balanced values by at most 1e-4.
    sample = balanced[::_LEVEL_SAMPLE_STEP, ::_LEVEL_SAMPLE_STEP]
    luma = sample.mean(axis=2)
    # At least, not above: on a clean or background-removed scan most pixels have the same level,
    # and "above the 40th percentile" would then select none of them.
    paper = luma >= np.percentile(luma, 40)
    levels = np.array([np.median(sample[:, :, c][paper]) for c in range(3)], dtype=np.float32)
    balanced /= np.maximum(levels, 0.2)
    return np.clip(balanced, 0.0, 1.2)


def _check_bgr(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"expected an H x W x 3 uint8 BGR image, got shape {image.shape} dtype {image.dtype}; "
            "convert gray images with cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected a non-empty image, got shape {image.shape}")


def _tone(values: np.ndarray) -> np.ndarray:
    """Map balanced gray values (paper 1.0) to uint8, darkening faint strokes by the tone curve."""
    stretched = np.clip((values - BLACK_POINT) / (1.0 - BLACK_POINT), 0.0, 1.0)
    return np.round(255.0 * stretched**TONE_GAMMA).astype(np.uint8)


def _luma(balanced: np.ndarray) -> np.ndarray:
    blue, green, red = balanced[:, :, 0], balanced[:, :, 1], balanced[:, :, 2]
    return 0.114 * blue + 0.587 * green + 0.299 * red


def _red_chroma(balanced: np.ndarray) -> np.ndarray:
    """Return the red channel minus the larger of green and blue, smoothed over JPEG's 2 x 2 colour blocks.

    The smoothed chroma is spread over a 3 x 3 neighbourhood by a maximum filter, so that the
    full width of a thin red stroke is covered even where JPEG has blurred its colour.
    """
    chroma = balanced[:, :, 2] - np.maximum(balanced[:, :, 0], balanced[:, :, 1])
    chroma = cv2.blur(chroma, (3, 3))
    return cv2.dilate(chroma, np.ones((3, 3), np.uint8))


def paper_normalize(image: np.ndarray) -> np.ndarray:
    """Flatten the paper of a BGR image (H x W x 3 uint8) to white and return gray H x W uint8.

    All print and writing is kept, red print included (as mid gray). Paper is about 255,
    and faint strokes are darkened by the tone curve (see ``BLACK_POINT``, ``TONE_GAMMA``).
    """
    return _tone(_luma(balance_paper(image)))


def red_weight(image: np.ndarray) -> np.ndarray:
    """Return how much each pixel of a BGR image (H x W x 3 uint8) is red print, H x W float32 in [0, 1]."""
    return _red_weight(balance_paper(image))


def _red_weight(balanced: np.ndarray) -> np.ndarray:
    chroma = _red_chroma(balanced)
    weight = np.clip((chroma - RED_CHROMA_LOW) / (RED_CHROMA_HIGH - RED_CHROMA_LOW), 0.0, 1.0)
    weight[balanced[:, :, 2] < RED_MIN_RED_CHANNEL] = 0.0
    return weight.astype(np.float32)


def red_mask(image: np.ndarray) -> np.ndarray:
    """Return the pixels of red ink or print in a BGR image (H x W x 3 uint8), H x W bool.

    Pink paper is not red: after balancing it is neutral. Black or blue ink under a stamp is
    not red either, because its red channel stays low.
    """
    return _red_weight(balance_paper(image)) >= 0.5


def drop_red(image: np.ndarray) -> np.ndarray:
    """Remove red print from a BGR image (H x W x 3 uint8); return gray H x W uint8 on white paper.

    Away from red print the result equals :func:`paper_normalize`. Where red print lies, the
    gray comes from the red channel, in which red ink is nearly as bright as paper while black
    and blue ink stay dark, so writing under a stamp is kept.
    """
    return _drop_red(balance_paper(image))


def _drop_red(balanced: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    weight = _red_weight(balanced) if weight is None else weight
    red_channel = balanced[:, :, 2]

    # Red print alone reaches only part of the paper level in the red channel: about 0.8 on the
    # generated cards, and down to about 0.65 in thin strokes whose colour JPEG has blurred.
    # That level is measured on the dark, strongly red pixels and scaled up to paper, so the print
    # vanishes while black or blue ink under it, low in the red channel, stays dark. The 10th
    # percentile makes nearly all print pixels reach paper.
    # NOTE: faint carbon writing under dense stamp lettering reaches about the same level as thin
    # lettering strokes, so it is dropped with them (most of all under an alpha-blended stamp).
    strong = (weight >= 0.99) & (balanced[:, :, 1] < 0.8)
    print_level = float(np.percentile(red_channel[strong], 10)) if np.count_nonzero(strong) >= 20 else 0.7
    print_level = min(max(print_level, 0.5), 1.0)
    through_red = np.clip(red_channel / print_level, 0.0, 1.0)

    # JPEG keeps colour at half resolution, so the rim of a red stroke shows little chroma
    # but is still darker than paper. Growing the weight by two pixels takes the rim along.
    weight = cv2.dilate(weight, np.ones((5, 5), np.uint8))
    gray = (1.0 - weight) * _luma(balanced) + weight * through_red
    return _tone(gray)


def red_layer(image: np.ndarray) -> np.ndarray:
    """Return only the red print of a BGR image (H x W x 3 uint8) as dark on white, gray H x W uint8.

    The darkness is the green channel of the red pixels, which is at full JPEG resolution
    unlike the colour difference, so thin digits stay sharp. Everything that is not red is white.
    """
    balanced = balance_paper(image)
    return _red_only(balanced, _red_weight(balanced))


def _red_only(balanced: np.ndarray, weight: np.ndarray) -> np.ndarray:
    green = np.clip(balanced[:, :, 1], 0.0, 1.0)
    gray = 1.0 - weight * (1.0 - green)
    return _tone(gray)


@dataclass
class CardLayers:
    """The gray layers a card's zones are read from, made from one paper estimate of the whole card."""

    # Balanced card, H x W x 3 float32 (see :func:`balance_paper`).
    balanced: np.ndarray
    # How much each pixel is red print, H x W float32 in [0, 1] (see :func:`red_weight`).
    weight: np.ndarray
    # The card without red print, H x W uint8 (see :func:`drop_red`).
    without_red: np.ndarray

    def red_only(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """Return the red print of a region, as :func:`red_layer` gives it for the whole card: (y1-y0) x (x1-x0) uint8."""
        return _red_only(self.balanced[y0:y1, x0:x1], self.weight[y0:y1, x0:x1])

    def red_share(self, x0: int, y0: int, x1: int, y1: int) -> float:
        """Return the share of a region's pixels that are red print (weight at least 0.5), in [0, 1]."""
        region = self.weight[y0:y1, x0:x1]
        return float(np.count_nonzero(region >= 0.5)) / region.size if region.size else 0.0


def card_layers(image: np.ndarray) -> CardLayers:
    """Balance a BGR card (H x W x 3 uint8) once and return its reading layers."""
    balanced = balance_paper(image)
    weight = _red_weight(balanced)
    return CardLayers(balanced, weight, _drop_red(balanced, weight))
