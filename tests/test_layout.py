"""Layout: card-type classification and alignment from printed labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.card_type import UNKNOWN_CARD_TYPE
from ocr.engines import TextLine
from ocr.layout import TEMPLATE_HEIGHT, label_similarity, match_layout, zone_rect
from ocr.registry import load_registry


def _label_lines(template_name: str, scale: float, angle_deg: float, shift: tuple[float, float]) -> list[TextLine]:
    """Place every printed label of a template as an OCR line, moved by a known similarity transform."""
    registry = load_registry()
    template = registry.templates[template_name]
    width, height = TEMPLATE_HEIGHT * template.aspect_ratio, TEMPLATE_HEIGHT
    cos, sin = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))

    def move(x: float, y: float) -> tuple[float, float]:
        return scale * (cos * x - sin * y) + shift[0], scale * (sin * x + cos * y) + shift[1]

    lines = []
    for spec in template.fields:
        if spec.label_box is None:
            continue
        center_x, center_y = spec.label_box.center
        x0, y0 = center_x * width - 30, center_y * height - 10
        corners = [move(x0, y0), move(x0 + 60, y0), move(x0 + 60, y0 + 20), move(x0, y0 + 20)]
        lines.append(TextLine(" ".join(spec.label_text), 0.95, np.array(corners, dtype=np.float32)))
    title = template.title_box
    lines.append(
        TextLine(
            template.title_text[0],
            0.99,
            np.array([move(title.x0 * width, title.y0 * height)] * 4, dtype=np.float32),
        )
    )
    # Handwriting and noise that must not disturb the fit.
    lines.append(TextLine("SMITH", 0.9, np.array([move(500, 500)] * 4, dtype=np.float32)))
    return lines


@pytest.mark.parametrize("template_name", ["foreign_guest_standard", "domestic_guest_standard"])
def test_card_type_from_labels(template_name):
    registry = load_registry()
    match = match_layout(_label_lines(template_name, 1.3, 0.0, (40, 25)), registry)
    assert match.card_type == registry.templates[template_name].card_type
    assert match.template.name == template_name
    assert match.score > 0.9
    assert match.residual < 0.005


def test_transform_recovered():
    match = match_layout(_label_lines("foreign_guest_standard", 1.7, 2.0, (120, -30)), load_registry())
    assert match.transform is not None
    assert math.hypot(match.transform[0, 0], match.transform[1, 0]) == pytest.approx(1.7, rel=0.01)
    assert match.rotation_deg == pytest.approx(2.0, abs=0.1)
    assert match.transform[0, 2] == pytest.approx(120, abs=2)


def test_upside_down_page_shows_half_turn():
    match = match_layout(_label_lines("domestic_guest_standard", 1.2, 180.0, (2000, 1400)), load_registry())
    assert abs(match.rotation_deg) == pytest.approx(180.0, abs=0.5)


def test_unrelated_text_is_unknown():
    lines = [
        TextLine(text, 0.99, np.array([[0, i * 30], [100, i * 30], [100, i * 30 + 20], [0, i * 30 + 20]], np.float32))
        for i, text in enumerate(["纾困申请表", "姓名：夏艳辰", "电话", "邮政地址", "Maribyrnong"])
    ]
    match = match_layout(lines, load_registry())
    assert match.card_type == UNKNOWN_CARD_TYPE
    assert match.template is None
    assert "未能识别卡片类型" in match.reasons[0]


def test_zone_rect_maps_and_clips():
    registry = load_registry()
    match = match_layout(_label_lines("foreign_guest_standard", 2.0, 0.0, (0, 0)), registry)
    box = match.template.field("surname").value_box
    x0, y0, x1, y1 = zone_rect(match, box, (2000, 2838, 3))
    width = TEMPLATE_HEIGHT * match.template.aspect_ratio
    assert x0 == pytest.approx(box.x0 * width * 2, abs=3)
    assert y1 == pytest.approx(box.y1 * TEMPLATE_HEIGHT * 2, abs=3)
    # A tiny image clips the zone to its edges.
    assert zone_rect(match, box, (100, 100, 3))[2] <= 100


@pytest.mark.parametrize(
    ("label", "line", "low", "high"),
    [
        ("抵店日期", "抵店日期 Date of arrival", 1.0, 1.0),
        ("抵店日期", "离店日期", 0.5, 0.79),
        ("Surname", "英文姓 Sur name", 1.0, 1.0),
        ("签证号码", "", 0.0, 0.0),
    ],
)
def test_label_similarity(label, line, low, high):
    assert low <= label_similarity(label, line) <= high


def _line(text: str, x: float, y: float, width: float = 200, height: float = 30) -> TextLine:
    return TextLine(text, 0.95, np.array([[x, y], [x + width, y], [x + width, y + height], [x, y + height]], np.float32))


def test_labelled_value_on_same_line():
    from ocr.layout import read_labelled_values

    found = {v.key: v.line.text for v in read_labelled_values([_line("姓名：夏艳辰", 0, 0), _line("出生日期：1983-06-08", 0, 40)])}
    assert found == {"name": "夏艳辰", "date_of_birth": "1983-06-08"}


def test_labelled_value_right_of_label():
    from ocr.layout import read_labelled_values

    lines = [_line("证件号码/护照号码/其他）", 0, 100), _line("430913198201144511", 400, 80), _line("联系电话", 0, 300)]
    (found,) = read_labelled_values(lines)
    assert (found.key, found.line.text) == ("id_number", "430913198201144511")


def test_labelled_value_below_label():
    from ocr.layout import read_labelled_values

    (found,) = read_labelled_values([_line("邮政地址：", 0, 0), _line("湖南省怀化市市辖区", 10, 36)])
    assert (found.key, found.line.text) == ("address", "湖南省怀化市市辖区")


def test_english_label_needs_colon():
    from ocr.layout import read_labelled_values

    assert read_labelled_values([_line("NAME OF ACCOUNT", 0, 0)]) == []
    (found,) = read_labelled_values([_line("Name: John Smith", 0, 0)])
    assert found.line.text == "John Smith"


def test_label_joined_with_number():
    from ocr.layout import _label_centre

    # "No." and the serial detected as one line: the label is at the line's start.
    points = np.array([[0, 0], [900, 0], [900, 40], [0, 40]], dtype=np.float32)
    x, y = _label_centre(TextLine("No. 0082036", 0.9, points), "No.")
    assert x == pytest.approx(100.0)
    assert y == pytest.approx(20.0)

    # The same line upside down: its text's top-left corner is the image's bottom-right.
    turned = np.array([[900, 40], [0, 40], [0, 0], [900, 0]], dtype=np.float32)
    x, _ = _label_centre(TextLine("No. 0082036", 0.9, turned), "No.")
    assert x == pytest.approx(800.0)


def test_label_with_english_keeps_centre():
    from ocr.layout import _label_centre

    points = np.array([[0, 0], [900, 0], [900, 40], [0, 40]], dtype=np.float32)
    assert _label_centre(TextLine("姓名 Surname", 0.9, points), "姓名") == (450.0, 20.0)
    assert _label_centre(TextLine("No.", 0.9, points), "No.") == (450.0, 20.0)


def test_unknown_layout_reason_joined_once():
    # A value read beside a label on an unknown layout, which also fails its rule: one clean reason text.
    from ocr.pipeline import _labelled_fields
    from ocr.registry import load_registry

    fields = _labelled_fields([_line("出生日期：1883-13-45", 0, 0)], load_registry())

    reason = fields["date_of_birth"].reason
    assert reason.startswith("卡片类型未知")
    assert "。；" not in reason
    assert "；" in reason
    assert reason.endswith("。")
