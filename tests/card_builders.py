"""Cards built from the committed samples' truth values, for tests where OCR is not the point."""

from __future__ import annotations

import hashlib
import io
import json

from PIL import Image

from models.card import Extraction
from ocr.confidence import decide
from ocr.recognize import ZoneRead
from ocr.registry import load_registry
from ocr.validate import validate_card
from sample_cards import SAMPLES_DIR

REGISTRY = load_registry()

# OCR scores given to the built fields: one above and one below the 0.90 threshold.
HIGH_SCORE = 0.98
LOW_SCORE = 0.62


def truth_values(stem: str) -> dict[str, str]:
    """Return the clean field values of a committed sample card."""
    return json.loads((SAMPLES_DIR / f"{stem}.json").read_text(encoding="utf-8"))["fields"]


def build_extraction(
    card_type: str, values: dict[str, str], source: str, low_confidence: tuple[str, ...] = ()
) -> Extraction:
    """Build the extraction the pipeline would make if OCR had read ``values`` exactly."""
    spec = REGISTRY.card_type(card_type)
    problems = validate_card(spec, values)
    fields = {}
    for field_spec in spec.fields:
        value = values[field_spec.key]
        read = ZoneRead(
            key=field_spec.key,
            raw_text=value,
            score=LOW_SCORE if field_spec.key in low_confidence else HIGH_SCORE,
            box=(10, 10, 200, 40),
            engine="rapidocr",
            ink=0.05 if value else 0.0,
        )
        fields[field_spec.key] = decide(field_spec, read, value, problems[field_spec.key])
    return Extraction(source=source, page=1, card_type=card_type, fields=fields)


def sample_scan_png() -> bytes:
    """Return PNG bytes of a real sample scan, stored as each built card's original and straightened image."""
    buffer = io.BytesIO()
    Image.open(SAMPLES_DIR / "card_01_foreign_printed.jpg").save(buffer, format="PNG")
    return buffer.getvalue()


def card_adder(store, png: bytes, batch: str, prefix: str):
    """Return a function that stores a built card in ``batch`` of ``store`` and returns its id.

    Each call gets its own source file name, ``/scans/<prefix>_<n>.jpg``, so its scan is new.
    """
    count = {"n": 0}

    def add(card_type: str, values: dict[str, str], low_confidence: tuple[str, ...] = ()) -> int:
        count["n"] += 1
        source = f"/scans/{prefix}_{count['n']:03d}.jpg"
        extraction = build_extraction(card_type, values, source, low_confidence)
        return store.add_card(
            batch=batch,
            content_key=f"{hashlib.sha256(source.encode()).hexdigest()}:1",
            extraction=extraction,
            original_png=png,
            straight_png=png,
        )

    return add
