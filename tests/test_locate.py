"""Layout stage page reading: few lines recognised, the same fit as a whole-page read, every fallback kept."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from models.card_type import UNKNOWN_CARD_TYPE
from models.template import Template
from ocr.engines import crop_line, get_engine
from ocr.ingest import iter_pages
from ocr.layout import LayoutMatch, match_layout, zone_rect
from ocr.locate import locate, read_page_scaled, row_starts
from ocr.normalize import normalize_value
from ocr.pipeline import process_page
from ocr.prepare import prepare
from ocr.recognize import _merge_rows, read_fields
from ocr.registry import load_registry
from sample_cards import generate_card
from test_recognize import _draw_stamp


@pytest.fixture(scope="module")
def engine():
    return get_engine("rapidocr")


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def _bgr(image: Image.Image) -> np.ndarray:
    bgr = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def _box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


def _max_zone_shift(first: LayoutMatch, second: LayoutMatch, shape: tuple[int, ...]) -> float:
    """Return the largest difference between the value zones two fits place, as a share of the image height."""
    assert first.template is not None
    shifts = [
        max(abs(a - b) for a, b in zip(zone_rect(first, field.value_box, shape), zone_rect(second, field.value_box, shape)))
        for field in first.template.fields
    ]
    return max(shifts) / shape[0]


def test_row_starts_leftmost_per_row():
    boxes = [
        _box(300, 10, 400, 30),  # row 1, right
        _box(20, 12, 90, 32),  # row 1, left
        _box(25, 60, 80, 80),  # row 2, left
        _box(200, 58, 260, 78),  # row 2, middle
        _box(500, 61, 560, 81),  # row 2, right
        _box(400, 120, 470, 140),  # row 3, alone
    ]
    assert row_starts(boxes) == [1, 2, 5]
    assert row_starts([]) == []


def test_merge_rows_joins_split_line():
    rects = [(10, 5, 60, 30), (70, 7, 140, 31), (12, 40, 90, 66)]
    assert _merge_rows(rects) == [(10, 5, 140, 31), (12, 40, 90, 66)]


def test_crop_line_turns_tall_box():
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    assert crop_line(image, _box(10, 10, 110, 40)).shape[:2] == (30, 100)
    assert crop_line(image, _box(10, 10, 30, 90)).shape[:2] == (20, 80)


def test_read_lines_keeps_box_order(engine):
    page = np.full((200, 700, 3), 255, dtype=np.uint8)
    cv2.putText(page, "SMITH 1208", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (20, 20, 20), 3, cv2.LINE_AA)
    cv2.putText(page, "E12345678", (20, 160), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (20, 20, 20), 3, cv2.LINE_AA)
    boxes = [_box(10, 110, 300, 180), _box(400, 20, 690, 80), _box(10, 10, 300, 80)]

    lines = engine.read_lines(page, boxes)

    assert [line.text.replace(" ", "") for line in lines] == ["E12345678", "", "SMITH1208"]
    assert lines[1].score < 0.5
    assert engine.read_lines(page, []) == []


def test_read_lines_upright_skips_turning(engine):
    page = np.full((200, 700, 3), 255, dtype=np.uint8)
    cv2.putText(page, "E12345678", (20, 160), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (20, 20, 20), 3, cv2.LINE_AA)
    box = _box(10, 110, 300, 180)
    # The same line on the page turned by 180 degrees; its crop comes out upside down.
    upside_down = cv2.rotate(page, cv2.ROTATE_180)
    turned_box = _box(699 - 300, 199 - 180, 699 - 10, 199 - 110)

    # Without ``upright`` the direction classifier turns the upside-down line back. With it, the
    # line is read as it lies, so its text no longer matches.
    assert engine.read_lines(upside_down, [turned_box])[0].text.replace(" ", "") == "E12345678"
    assert engine.read_lines(upside_down, [turned_box], upright=True)[0].text.replace(" ", "") != "E12345678"
    assert engine.read_lines(page, [box], upright=True)[0].text.replace(" ", "") == "E12345678"


@pytest.mark.parametrize(("seed", "card_type"), [(11, "foreign_guest"), (12, "domestic_guest")])
def test_locate_reads_labels_only(engine, registry, seed, card_type):
    image, truth = generate_card(seed, card_type, "handwriting", dpi=200)
    prepared = prepare(_bgr(image))

    located = locate(prepared.image, prepared.quarter_turn_candidates, engine, registry)
    whole = match_layout(read_page_scaled(engine, located.image), registry)

    assert located.match.card_type == card_type
    assert located.match.template is not None and located.match.template.name == truth["template"]
    # Value lines are left to the zones: well under the page's lines are recognised.
    assert located.recognised < 0.7 * located.detected
    # Every label the whole-page read fits, the staged read fits too.
    assert located.match.anchors_found >= whole.anchors_found
    assert located.match.residual < 0.01
    assert located.misplaced == []
    # The fit from few labels puts every value zone where the whole-page fit puts it, within 1% of the card height.
    assert _max_zone_shift(located.match, whole, located.image.shape) < 0.01


def test_locate_upside_down_card(engine, registry):
    image, _truth = generate_card(13, "foreign_guest", "printed", dpi=200, max_skew_deg=0.0)
    upside_down = cv2.rotate(_bgr(image), cv2.ROTATE_180)
    prepared = prepare(upside_down)

    located = locate(prepared.image, prepared.quarter_turn_candidates, engine, registry)

    # The labels fit the right way up: the fit has no half turn left in it.
    assert located.match.card_type == "foreign_guest"
    assert abs(located.match.rotation_deg) < 5
    assert located.match.anchors_found >= 15


def test_unknown_page_read_whole(engine, registry):
    page = np.full((900, 1300, 3), 255, dtype=np.uint8)
    for row, text in enumerate(["INVOICE 2024-118", "Customer: ACME LTD", "Total 1,280.00", "Paid by card"]):
        cv2.putText(page, text, (60, 120 + 160 * row), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (20, 20, 20), 3, cv2.LINE_AA)

    located = locate(page, [0], engine, registry)

    assert located.match.card_type == UNKNOWN_CARD_TYPE
    assert located.recognised == located.detected >= 4
    assert any("ACME" in line.text for line in located.lines)


def test_batched_zones_match_single_zones(engine, registry):
    image, truth = generate_card(14, "foreign_guest", "handwriting", dpi=200)
    # A stamp over one value: that zone must be read from its own cleaned crop, not from page lines.
    stamped = _draw_stamp(image, truth, "surname", multiply=True)
    prepared = prepare(_bgr(stamped))
    located = locate(prepared.image, prepared.quarter_turn_candidates, engine, registry)
    spec = registry.card_type("foreign_guest")

    batched = read_fields(located.image, located.match, spec, engine, page_boxes=located.boxes)
    alone = read_fields(located.image, located.match, spec, engine)

    right_batched = sum(
        normalize_value(spec.field(key).kind, read.raw_text) == truth["fields"][key] for key, read in batched.items()
    )
    right_alone = sum(
        normalize_value(spec.field(key).kind, read.raw_text) == truth["fields"][key] for key, read in alone.items()
    )
    assert right_batched >= right_alone - 1
    assert right_batched >= len(spec.fields) - 2
    assert normalize_value(spec.field("surname").kind, batched["surname"].raw_text) == truth["fields"]["surname"]
    assert batched["surname"].raw_text == alone["surname"].raw_text


def _swapped(template: Template, first: str, second: str) -> Template:
    """Return ``template`` with the label and value boxes of two fields exchanged: the same form in another field order."""
    first_field, second_field = template.field(first), template.field(second)
    fields = []
    for field in template.fields:
        if field.key == first:
            field = field.model_copy(update={"label_box": second_field.label_box, "value_box": second_field.value_box})
        elif field.key == second:
            field = field.model_copy(update={"label_box": first_field.label_box, "value_box": first_field.value_box})
        fields.append(field)
    return template.model_copy(update={"fields": fields})


def test_swapped_fields_flag_card(engine, registry, tmp_path):
    standard = registry.templates["foreign_guest_standard"]
    swapped = _swapped(standard, "surname", "given_names")
    image, _truth = generate_card(16, "foreign_guest", "printed", dpi=200, template=swapped)
    image.save(tmp_path / "swapped.jpg", quality=90)
    page = next(iter_pages([tmp_path / "swapped.jpg"]))
    prepared = prepare(page.image)

    located = locate(prepared.image, prepared.quarter_turn_candidates, engine, registry)
    extraction = process_page(page, engine=engine, registry=registry).extraction

    surname_label = standard.field("surname").label_text[0]
    given_label = standard.field("given_names").label_text[0]
    assert (given_label, surname_label) in located.misplaced
    assert (surname_label, given_label) in located.misplaced
    assert any("印刷标签与模板的位置不符" in reason for reason in extraction.card_reasons)
    assert extraction.needs_review
