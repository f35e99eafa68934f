"""Blot check: a solid blot among the characters of a code sends the field to review; clean writing does not."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ocr.confidence import MACHINE_CODES, machine_reason
from ocr.engines import get_engine
from ocr.ingest import Page
from ocr.pipeline import process_page
from ocr.recognize import has_blot
from ocr.registry import load_registry
from sample_cards import generate_card


def _digits(text: str = "E1234567") -> np.ndarray:
    zone = np.full((90, 420, 3), 255, dtype=np.uint8)
    cv2.putText(zone, text, (10, 62), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (30, 30, 30), 3, cv2.LINE_AA)
    return cv2.cvtColor(zone, cv2.COLOR_BGR2GRAY)


def test_clean_digits_are_not_a_blot():
    assert not has_blot(_digits())
    assert not has_blot(np.full((60, 200), 255, dtype=np.uint8))


def test_blot_over_a_digit_is_found():
    zone = _digits()
    cv2.ellipse(zone, (150, 52), (24, 15), 0, 0, 360, 40, -1)
    assert has_blot(zone)


def test_blot_against_red_strokes():
    # A red zone: the blot lies in the card without red print, the strokes in the red layer.
    lone_blot = np.full((90, 420), 255, dtype=np.uint8)
    cv2.ellipse(lone_blot, (150, 52), (18, 12), 0, 0, 360, 40, -1)
    assert not has_blot(lone_blot)
    assert has_blot(lone_blot, strokes=_digits("0080657"))


def test_ink_blot_machine_doubt():
    assert "ink_blot" in MACHINE_CODES
    assert "浓墨" in machine_reason("ink_blot", 0.99, 0.9)


@pytest.mark.parametrize(("seed", "card_type", "style"), [(21, "foreign_guest", "handwriting"), (22, "domestic_guest", "printed")])
def test_clean_card_no_blot(seed, card_type, style):
    image, truth = generate_card(seed, card_type, style, dpi=200)
    bgr = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
    page = Page(source=Path("clean.png"), page=1, page_count=1, file_sha256=f"{seed:064x}", image=bgr, dpi=200.0)

    result = process_page(page, engine=get_engine("rapidocr"), registry=load_registry())

    assert result.extraction.card_type == card_type
    doubted = [key for key, field in result.extraction.fields.items() if "ink_blot" in field.reason_codes]
    assert doubted == []
