"""Tests of the synthetic card generator in sample_cards."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocr.normalize import normalize_fields
from ocr.registry import Registry, load_registry
from ocr.validate import validate_card
from sample_cards import generate_card, generate_stack
from sample_cards import fonts as fonts_module
from sample_cards.__main__ import main as cli_main
from sample_cards.generate import SAMPLE_DPI, SAMPLE_INVALID_SEEDS, SAMPLE_PLAN, SAMPLES_DIR
from sample_cards.layouts import alternative_template
from sample_cards.values import resident_id_check_char

CARD_TYPES = ("foreign_guest", "domestic_guest")
SEEDS = range(40)
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
VISA_CODES = {"C", "D", "F", "G", "J1", "J2", "L", "M", "Q1", "Q2", "R", "S1", "S2", "X1", "X2", "Z"}
VISA_CODES |= {"VISA_FREE", "RESIDENCE", "GROUP"}
DOCUMENT_TYPES = {"passport", "hk_macao_permit", "taiwan_permit", "permanent_residence_id", "other"}
MONTHS = {m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)}


def expected_check_char(first17: str) -> str:
    """GB 11643-1999 check character, written out independently of the generator."""
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def parse_written_date(text: str) -> date:
    """Read the date formats the card specification allows."""
    if m := re.fullmatch(r"(\d{4})[-.](\d{1,2})[-.](\d{1,2})", text):
        return date(int(m[1]), int(m[2]), int(m[3]))
    if m := re.fullmatch(r"(\d{4})年(\d{1,2})月(\d{1,2})日", text):
        return date(int(m[1]), int(m[2]), int(m[3]))
    if m := re.fullmatch(r"(\d{2})/(\d{2})/(\d{4})", text):
        return date(int(m[3]), int(m[2]), int(m[1]))
    if m := re.fullmatch(r"(\d{2}) ([A-Z]{3}) (\d{4})", text):
        return date(int(m[3]), MONTHS[m[2]], int(m[1]))
    raise AssertionError(f"unreadable written date {text!r}")


def iso(value: str) -> date:
    return date.fromisoformat(value)


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def truths() -> dict[str, list[dict]]:
    """Truth of 40 small cards per card type (75 dpi keeps this fast)."""
    return {
        card_type: [generate_card(seed, card_type, dpi=75, degrade=False)[1] for seed in SEEDS]
        for card_type in CARD_TYPES
    }


def test_same_seed_same_truth_and_pixels():
    first_image, first_truth = generate_card(7, "foreign_guest", dpi=100, quarter_turns=True, invalid_rate=0.5)
    second_image, second_truth = generate_card(7, "foreign_guest", dpi=100, quarter_turns=True, invalid_rate=0.5)
    assert first_truth == second_truth
    assert first_image.size == second_image.size
    assert first_image.tobytes() == second_image.tobytes()


def test_different_seeds_differ():
    first_image, first_truth = generate_card(1, "domestic_guest", dpi=100)
    second_image, second_truth = generate_card(2, "domestic_guest", dpi=100)
    assert first_truth["fields"] != second_truth["fields"]
    assert first_image.tobytes() != second_image.tobytes()


@pytest.mark.parametrize("card_type", CARD_TYPES)
def test_truth_keys_equal_card_type_keys(card_type, truths, registry):
    keys = registry.card_type(card_type).keys
    for truth in truths[card_type]:
        assert list(truth["fields"]) == keys
        assert list(truth["written"]) == keys
        assert truth["card_type"] == card_type
        assert truth["template"] in registry.templates


@pytest.mark.parametrize("card_type", CARD_TYPES)
def test_truth_descriptors_valid(card_type, truths):
    for truth in truths[card_type]:
        assert truth["style"] in ("printed", "handwriting")
        assert truth["paper"] in ("white", "yellow", "pink")
        assert truth["ink"] in ("blue", "black")
        assert -180 < truth["rotation_deg"] <= 180
        assert isinstance(truth["seed"], int)
        assert isinstance(truth["degradations"], list)
        assert truth["invalid_fields"] == []


@pytest.mark.parametrize("card_type", CARD_TYPES)
def test_common_values_valid(card_type, truths):
    today = date.today()
    for truth in truths[card_type]:
        fields = truth["fields"]
        assert re.fullmatch(r"\d{7}", fields["card_serial"])
        assert fields["sex"] in ("M", "F")
        assert re.fullmatch(r"[A-Z]?\d{3,4}", fields["room_number"])
        birth = iso(fields["date_of_birth"])
        assert birth < today
        assert birth.year > today.year - 120
        assert iso(fields["arrival_date"]) <= iso(fields["departure_date"])


def test_resident_id_valid(truths):
    for truth in truths["domestic_guest"]:
        fields = truth["fields"]
        id_number = fields["id_number"]
        assert re.fullmatch(r"\d{17}[\dX]", id_number), id_number
        assert id_number[17] == expected_check_char(id_number[:17])
        assert id_number[6:14] == fields["date_of_birth"].replace("-", "")
        assert int(id_number[16]) % 2 == (1 if fields["sex"] == "M" else 0)
        assert fields["id_type"] in ("resident_id", "other")
        assert not fields["ethnicity"].endswith("族")
        assert fields["name"] and fields["address"]


def test_check_char_known_example():
    # Widely published example number 11010519491231002X.
    assert resident_id_check_char("11010519491231002") == "X"
    assert expected_check_char("11010519491231002") == "X"


def test_foreign_dates_ordered(truths):
    for truth in truths["foreign_guest"]:
        fields = truth["fields"]
        assert iso(fields["entry_date"]) <= iso(fields["arrival_date"])
        assert iso(fields["departure_date"]) <= iso(fields["valid_until"])


def test_foreign_documents_match_nationality(truths):
    for truth in truths["foreign_guest"]:
        fields = truth["fields"]
        nationality, number = fields["nationality"], fields["document_number"]
        assert fields["document_type"] in DOCUMENT_TYPES
        assert re.fullmatch(r"[A-Z]+", fields["surname"].replace(" ", ""))
        assert re.fullmatch(r"[A-Z]+( [A-Z]+)*", fields["given_names"])
        if nationality in ("HKG", "MAC"):
            assert fields["document_type"] == "hk_macao_permit"
            assert re.fullmatch(r"[HM](\d{8}|\d{10})", number), number
            assert number[0] == ("H" if nationality == "HKG" else "M")
            assert fields["visa_type"] == ""
        elif nationality == "TWN":
            assert fields["document_type"] == "taiwan_permit"
            assert re.fullmatch(r"\d{8}", number), number
            assert fields["visa_type"] == ""
        elif fields["document_type"] == "passport":
            assert re.fullmatch(r"[A-Z0-9]{5,17}", number), number
            assert fields["visa_type"] in VISA_CODES


def test_foreign_nationalities_varied():
    nationalities = {generate_card(seed, "foreign_guest", dpi=60, degrade=False)[1]["fields"]["nationality"] for seed in range(150)}
    for code in ("USA", "JPN", "KOR", "DEU", "GBR", "FRA", "RUS", "AUS", "CAN", "SGP", "HKG", "MAC", "TWN"):
        assert code in nationalities, code


@pytest.mark.parametrize("card_type", CARD_TYPES)
def test_written_forms_agree_with_truth(card_type, truths):
    date_keys = ("date_of_birth", "valid_until", "entry_date", "arrival_date", "departure_date")
    for truth in truths[card_type]:
        fields, written = truth["fields"], truth["written"]
        for key in date_keys:
            if key in fields and fields[key]:
                assert parse_written_date(written[key]) == iso(fields[key]), (key, written[key])
        assert written["sex"] in {"M": ("M", "男"), "F": ("F", "女")}[fields["sex"]]
        assert written["card_serial"] == fields["card_serial"]
        if card_type == "domestic_guest":
            assert written["ethnicity"] in (fields["ethnicity"], fields["ethnicity"] + "族")
            assert written["id_number"] == fields["id_number"]
        else:
            assert written["surname"].upper() == fields["surname"]
            assert written["document_number"] == fields["document_number"]


@pytest.mark.parametrize("card_type", CARD_TYPES)
def test_written_forms_normalise_to_truth(card_type, truths, registry):
    spec = registry.card_type(card_type)
    for truth in truths[card_type]:
        normalised = normalize_fields(spec, truth["written"], day_first=card_type == "foreign_guest")
        for key, value in truth["fields"].items():
            assert normalised.get(key, "") == value, (key, truth["written"][key])


@pytest.mark.parametrize("card_type", CARD_TYPES)
def test_invalid_values_marked(card_type):
    for seed in range(12):
        truth = generate_card(seed, card_type, dpi=60, degrade=False, invalid_rate=1.0)[1]
        fields = truth["fields"]
        assert len(truth["invalid_fields"]) == 1
        key = truth["invalid_fields"][0]
        rule = truth["invalid_reasons"][key]
        if rule == "departure_before_arrival":
            assert iso(fields["departure_date"]) < iso(fields["arrival_date"])
        elif rule == "entry_after_arrival":
            assert iso(fields["entry_date"]) > iso(fields["arrival_date"])
        elif rule == "valid_until_before_departure":
            assert iso(fields["valid_until"]) < iso(fields["departure_date"])
        elif rule == "document_number_format":
            assert len(fields["document_number"]) < 5
        elif rule == "resident_id_check":
            assert fields["id_number"][17] != expected_check_char(fields["id_number"][:17])
        else:
            pytest.fail(f"unexpected rule {rule}")


@pytest.mark.parametrize(("dpi", "size"), [(200, (1654, 1166)), (150, (1240, 874))])
def test_image_size_matches_dpi(dpi, size):
    image, truth = generate_card(3, "foreign_guest", dpi=dpi, degrade=False)
    assert image.size == size
    assert truth["card_size_px"] == list(size)
    assert truth["image_size_px"] == list(size)
    assert truth["rotation_deg"] == 0


def test_quarter_turn_is_counter_clockwise():
    upright, _ = generate_card(4, "domestic_guest", dpi=80, degrade=False, quarter_turn=0)
    turned, truth = generate_card(4, "domestic_guest", dpi=80, degrade=False, quarter_turn=90)
    assert truth["rotation_deg"] == 90
    assert turned.tobytes() == upright.transpose(Image.Transpose.ROTATE_90).tobytes()


def test_rotation_recorded():
    skews = []
    for seed in range(20):
        _, truth = generate_card(seed, "foreign_guest", dpi=60, quarter_turns=True)
        expected = truth["quarter_turn_deg"] + truth["skew_deg"]
        expected = expected - 360 if expected > 180 else expected
        assert truth["rotation_deg"] == pytest.approx(expected, abs=1e-6)
        assert abs(truth["skew_deg"]) <= 4.0
        assert truth["quarter_turn_deg"] in (0, 90, 180, 270)
        skews.append(truth["skew_deg"])
    assert any(abs(skew) > 0.5 for skew in skews)


def red_pixels(image: Image.Image) -> np.ndarray:
    pixels = np.asarray(image, dtype=np.int16)
    red = (pixels[:, :, 0] > 140) & (pixels[:, :, 1] < 110) & (pixels[:, :, 2] < 110)
    return np.argwhere(red)  # rows of (y, x)


@pytest.mark.parametrize("turn", [0, 90, 180, 270])
def test_card_corners_locate_serial(turn, registry):
    image, truth = generate_card(11, "foreign_guest", dpi=100, quarter_turn=turn, max_skew_deg=4.0)
    box = registry.templates[truth["template"]].field("card_serial").value_box
    top_left, top_right, _, bottom_left = (np.array(corner) for corner in truth["card_corners_px"])
    points = red_pixels(image)
    assert len(points) > 50
    found = points.mean(axis=0)[::-1]  # (x, y)
    # The digits sit in the left part of the serial box, around its vertical middle.
    u = box.x0 + (box.x1 - box.x0) * 0.4
    v = (box.y0 + box.y1) / 2
    expected = top_left + u * (top_right - top_left) + v * (bottom_left - top_left)
    card_width = np.linalg.norm(top_right - top_left)
    assert np.linalg.norm(found - expected) < 0.05 * card_width


@pytest.mark.parametrize("card_type", CARD_TYPES)
def test_values_stay_inside_value_boxes(card_type, registry):
    for seed in range(4):
        image, truth = generate_card(
            seed, card_type, "handwriting", dpi=100, degrade=False, ink="blue", paper="white"
        )
        template = registry.templates[truth["template"]]
        pixels = np.asarray(image, dtype=np.int16)
        blue = (pixels[:, :, 2] - pixels[:, :, 0] > 50) & (pixels[:, :, 2] - pixels[:, :, 1] > 40)
        inside = np.zeros_like(blue)
        for spec in template.fields:
            x0, y0, x1, y1 = spec.value_box.to_pixels(*image.size)
            inside[y0:y1, x0:x1] = True
        assert blue.sum() > 500
        assert not (blue & ~inside).any()

        serial_box = template.field("card_serial").value_box.to_pixels(*image.size)
        red = red_pixels(image)
        assert len(red) > 50
        assert red[:, 1].min() >= serial_box[0]
        assert red[:, 1].max() < serial_box[2]
        assert red[:, 0].min() >= serial_box[1]
        assert red[:, 0].max() < serial_box[3]


def test_committed_samples_present_and_valid(registry):
    images = sorted(SAMPLES_DIR.glob("*.jpg"))
    assert len(images) == 12
    truths = []
    for image_path in images:
        truth_path = image_path.with_suffix(".json")
        assert truth_path.is_file(), truth_path
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        assert list(truth["fields"]) == registry.card_type(truth["card_type"]).keys
        assert image_path.stat().st_size < 200_000
        with Image.open(image_path) as image:
            assert list(image.size) == truth["image_size_px"]
        assert truth["card_type"].removesuffix("_guest") in image_path.stem
        assert truth["style"] in image_path.stem
        assert abs(truth["skew_deg"]) <= 4.0
        truths.append(truth)
    assert {t["card_type"] for t in truths} == set(CARD_TYPES)
    assert {t["style"] for t in truths} == {"printed", "handwriting"}
    assert {t["paper"] for t in truths} == {"white", "yellow", "pink"}
    assert sum(t["quarter_turn_deg"] in (90, 180, 270) for t in truths) >= 2


def test_generate_stack_writes_image_and_truth(tmp_path: Path):
    paths = generate_stack(tmp_path, 3, seed=5, dpi=60, progress=False)
    assert len(paths) == 3
    assert [p.suffix for p in paths] == [".jpg"] * 3
    card_types = []
    for path in paths:
        truth = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        card_types.append(truth["card_type"])
        assert truth["seed"] in (5, 6, 7)
    assert card_types == ["foreign_guest", "domestic_guest", "foreign_guest"]


def test_cli_writes_cards(tmp_path: Path):
    code = cli_main([str(tmp_path), "--count", "2", "--seed", "9", "--dpi", "60", "--card-type", "domestic_guest",
                     "--style", "printed", "--quarter-turns", "--quiet"])
    assert code == 0
    truths = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(tmp_path.glob("*.json"))]
    assert len(truths) == 2
    assert {t["card_type"] for t in truths} == {"domestic_guest"}
    assert {t["style"] for t in truths} == {"printed"}


def test_cli_rejects_bad_dpi(tmp_path: Path, capsys):
    assert cli_main([str(tmp_path / "out"), "--dpi", "10", "--quiet"]) == 2
    assert "dpi" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs",
    [{"seed": -1}, {"style": "typed"}, {"card_type": "hotel"}, {"invalid_rate": 2.0}, {"quarter_turn": 45}],
)
def test_rejects_invalid_arguments(kwargs):
    arguments = {"seed": 1, **kwargs}
    with pytest.raises(ValueError):
        generate_card(**arguments)


def test_template_of_other_card_type_rejected(registry):
    domestic = registry.templates_for("domestic_guest")[0]
    with pytest.raises(ValueError, match="card_type"):
        generate_card(1, "foreign_guest", template=domestic)


def test_missing_fonts_named_in_error(monkeypatch):
    monkeypatch.setattr(fonts_module, "_installed_font_files", lambda: {})
    fonts_module.load_fonts.cache_clear()
    try:
        with pytest.raises(fonts_module.FontNotFoundError, match="fonts-arphic-ukai"):
            fonts_module.load_fonts()
    finally:
        monkeypatch.undo()
        fonts_module.load_fonts.cache_clear()


# --- capture modes, stamp, blank cards, other layouts and card types ---------------------------------


def card_homography(corners) -> np.ndarray:
    """Return the 3x3 homography that maps relative card coordinates (u, v) in [0, 1] to image pixels."""
    unit = ((0, 0), (1, 0), (1, 1), (0, 1))
    rows, values = [], []
    for (u, v), (x, y) in zip(unit, corners):
        rows.append([u, v, 1, 0, 0, 0, -x * u, -x * v])
        values.append(x)
        rows.append([0, 0, 0, u, v, 1, -y * u, -y * v])
        values.append(y)
    h = np.linalg.solve(np.array(rows, dtype=float), np.array(values, dtype=float))
    return np.append(h, 1.0).reshape(3, 3)


def to_card(homography: np.ndarray, points_xy: np.ndarray) -> np.ndarray:
    """Map image pixels (x, y) back to relative card coordinates (u, v)."""
    inverse = np.linalg.inv(homography)
    ones = np.ones((len(points_xy), 1))
    mapped = np.hstack([points_xy, ones]) @ inverse.T
    return mapped[:, :2] / mapped[:, 2:3]


def strong_red_pixels(image: Image.Image) -> np.ndarray:
    """Red relative to the other channels, so dimmed red under uneven light still counts."""
    pixels = np.asarray(image, dtype=np.int16)
    red = (pixels[:, :, 0] - pixels[:, :, 1] > 55) & (pixels[:, :, 0] - pixels[:, :, 2] > 45)
    return np.argwhere(red)[:, ::-1].astype(float)  # rows of (x, y)


def assert_serial_where_corners_say(image: Image.Image, truth: dict, serial_box) -> None:
    """The red serial number, found by colour inside the card, lies where the card corners put it."""
    homography = card_homography(truth["card_corners_px"])
    points = strong_red_pixels(image)
    card_uv = to_card(homography, points)
    on_card = (card_uv >= 0).all(axis=1) & (card_uv <= 1).all(axis=1)
    assert on_card.sum() > 40
    found = card_uv[on_card].mean(axis=0)
    # The digits sit in the left part of the serial box, around its vertical middle.
    expected = (serial_box.x0 + (serial_box.x1 - serial_box.x0) * 0.4, (serial_box.y0 + serial_box.y1) / 2)
    assert abs(found[0] - expected[0]) < 0.05
    assert abs(found[1] - expected[1]) < 0.05


def test_large_skew_corners_locate_serial(registry):
    large = []
    for seed in range(30):
        image, truth = generate_card(seed, "foreign_guest", "printed", dpi=80, max_skew_deg=45.0)
        if abs(truth["skew_deg"]) > 25:
            large.append((image, truth))
        if len(large) == 2:
            break
    assert len(large) == 2
    box = registry.templates["foreign_guest_standard"].field("card_serial").value_box
    for image, truth in large:
        assert abs(truth["skew_deg"]) <= 45.0
        assert truth["rotation_deg"] == pytest.approx(truth["skew_deg"], abs=1e-6)
        (x0, y0), (x1, y1) = truth["card_corners_px"][:2]
        top_edge_deg = np.degrees(np.arctan2(y0 - y1, x1 - x0))
        assert top_edge_deg == pytest.approx(truth["rotation_deg"], abs=0.05)
        assert_serial_where_corners_say(image, truth, box)


def test_max_skew_over_45_rejected():
    with pytest.raises(ValueError, match="max_skew_deg"):
        generate_card(1, max_skew_deg=46.0)


def test_photo_deterministic_and_recorded():
    first_image, first_truth = generate_card(21, "domestic_guest", dpi=70, photo=True)
    second_image, second_truth = generate_card(21, "domestic_guest", dpi=70, capture="photo")
    assert first_truth == second_truth
    assert first_image.tobytes() == second_image.tobytes()
    assert first_truth["capture"] == "photo"
    for effect in ("photo", "lighting", "edge_shadow", "blur", "noise", "jpeg"):
        assert effect in first_truth["degradations"]
    params = first_truth["degradation_params"]
    assert params["photo"]["background"] in ("wood", "grey", "cloth")
    assert 1 <= len(params["edge_shadow"]["edges"]) <= 2
    assert "capture" not in generate_card(21, "domestic_guest", dpi=70)[1]


@pytest.mark.parametrize("turn", [0, 90, 270])
def test_photo_corners_locate_serial(turn, registry):
    image, truth = generate_card(
        13 + turn, "foreign_guest", "printed", dpi=90, photo=True, quarter_turn=turn, max_skew_deg=20.0
    )
    assert truth["quarter_turn_deg"] == turn
    assert truth["rotation_deg"] == pytest.approx(
        (truth["quarter_turn_deg"] + truth["skew_deg"] + 180) % 360 - 180, abs=1e-3
    )
    corners = np.array(truth["card_corners_px"])
    width, height = image.size
    assert (corners >= 0).all()
    assert (corners[:, 0] <= width).all()
    assert (corners[:, 1] <= height).all()
    # The corners are not a rectangle: the homography moved them.
    sides = [np.linalg.norm(corners[i] - corners[(i + 1) % 4]) for i in range(4)]
    assert abs(sides[0] - sides[2]) > 1.0 or abs(sides[1] - sides[3]) > 1.0
    box = registry.templates["foreign_guest_standard"].field("card_serial").value_box
    assert_serial_where_corners_say(image, truth, box)


def test_photo_card_brighter_than_desk_edge():
    image, truth = generate_card(3, "foreign_guest", dpi=70, photo=True, degrade=False, paper="white")
    homography = card_homography(truth["card_corners_px"])
    grey = np.asarray(image.convert("L"), dtype=float)
    centre = homography @ np.array([0.5, 0.93, 1.0])
    x, y = (centre[:2] / centre[2]).round().astype(int)
    # A blank strip at the card foot next to the footer is paper, lit at least half as bright as white.
    assert grey[y, x] > 110
    assert "blur" not in truth["degradations"]


def test_border_shadow_recorded_and_dark():
    image, truth = generate_card(8, "domestic_guest", dpi=80, degrade=False, border_shadow=True)
    assert truth["border_shadow"] is True
    assert "scanner_border" in truth["degradations"]
    shadow = truth["degradation_params"]["scanner_shadow"]
    assert shadow["edge"] in ("top", "right", "bottom", "left")
    grey = np.asarray(image.convert("L"), dtype=float)
    (left, top), _, (right, bottom), _ = truth["card_corners_px"]
    left, top, right, bottom = round(left), round(top), round(right), round(bottom)
    assert grey[: max(1, top - 2), :].mean() < 80  # the lid border above the card is dark
    strips = {
        "top": grey[top + 1 : top + 4, left + 10 : right - 10],
        "bottom": grey[bottom - 4 : bottom - 1, left + 10 : right - 10],
        "left": grey[top + 10 : bottom - 10, left + 1 : left + 4],
        "right": grey[top + 10 : bottom - 10, right - 4 : right - 1],
    }
    opposite = {"top": "bottom", "bottom": "top", "left": "right", "right": "left"}[shadow["edge"]]
    assert strips[shadow["edge"]].mean() < strips[opposite].mean() - 30


def test_stamp_red_and_over_recorded_zone(registry):
    plain_image, plain_truth = generate_card(31, "foreign_guest", "handwriting", dpi=100, degrade=False, ink="black")
    image, truth = generate_card(31, "foreign_guest", "handwriting", dpi=100, degrade=False, ink="black", stamp=True)
    assert truth["fields"] == plain_truth["fields"]
    assert truth == generate_card(31, "foreign_guest", "handwriting", dpi=100, degrade=False, ink="black", stamp=True)[1]
    template = registry.templates[truth["template"]]
    stamp = truth["stamp"]
    assert truth["stamp_field"] == stamp["field"] != "card_serial"
    assert truth["fields"][truth["stamp_field"]] != ""

    width, height = image.size
    serial = template.field("card_serial").value_box.to_pixels(width, height)
    red = strong_red_pixels(image)  # (x, y)
    in_serial = (red[:, 0] >= serial[0]) & (red[:, 0] < serial[2]) & (red[:, 1] >= serial[1]) & (red[:, 1] < serial[3])
    red = red[~in_serial]
    assert len(red) > 300
    x0, y0, x1, y1 = (stamp["box"][0] * width, stamp["box"][1] * height, stamp["box"][2] * width, stamp["box"][3] * height)
    assert red[:, 0].min() >= x0 - 2
    assert red[:, 0].max() <= x1 + 2
    assert red[:, 1].min() >= y0 - 2
    assert red[:, 1].max() <= y1 + 2

    zone = template.field(truth["stamp_field"]).value_box.to_pixels(width, height)
    in_zone = (red[:, 0] >= zone[0]) & (red[:, 0] < zone[2]) & (red[:, 1] >= zone[1]) & (red[:, 1] < zone[3])
    assert in_zone.sum() > 100

    # The writing under the seal stays dark: the seal ink multiplies with the paper.
    plain = np.asarray(plain_image.convert("L"), dtype=float)[zone[1] : zone[3], zone[0] : zone[2]]
    stamped = np.asarray(image.convert("L"), dtype=float)[zone[1] : zone[3], zone[0] : zone[2]]
    ink = plain < 100
    assert ink.sum() > 50
    assert (stamped[ink] < 110).mean() > 0.97


def test_blank_card_has_no_values(registry):
    filled = generate_card(17, "foreign_guest", dpi=90, degrade=False)[1]
    image, truth = generate_card(17, "foreign_guest", dpi=90, degrade=False, blank=True)
    assert truth["blank"] is True
    assert truth["fields"]["card_serial"] == filled["fields"]["card_serial"]
    assert {key: value for key, value in truth["fields"].items() if key != "card_serial"} == {
        key: "" for key in truth["fields"] if key != "card_serial"
    }
    assert truth["written"]["card_serial"] == filled["written"]["card_serial"]

    template = registry.templates[truth["template"]]
    grey = np.asarray(image.convert("L"), dtype=float)
    for spec in template.fields:
        x0, y0, x1, y1 = spec.value_box.to_pixels(*image.size)
        inner = grey[y0 + 3 : y1 - 3, x0 + 3 : x1 - 3]
        if spec.key == "card_serial":
            assert inner.min() < 150, "the pre-printed serial number is missing"
        else:
            assert inner.min() > 200, spec.key
    assert len(red_pixels(image)) > 50


@pytest.mark.parametrize("card_type", CARD_TYPES)
def test_alternative_layout_differs_and_holds_values(card_type, registry):
    built_in = registry.templates_for(card_type)[0]
    layout = alternative_template(card_type, 4)
    assert layout == alternative_template(card_type, 4)
    assert layout != alternative_template(card_type, 5)
    assert {f.key for f in layout.fields} == set(registry.card_type(card_type).keys)
    assert [f.key for f in layout.fields] != [f.key for f in built_in.fields]
    assert layout.title_box != built_in.title_box
    moved = [f.key for f in layout.fields if f.value_box != built_in.field(f.key).value_box]
    assert len(moved) == len(layout.fields)
    # The registry accepts the layout as a template of the card type.
    Registry(registry.card_types, {layout.name: layout})

    for seed in range(2):
        image, truth = generate_card(
            seed, card_type, "handwriting", dpi=90, degrade=False, ink="blue", paper="white", template=layout
        )
        assert truth["template"] == layout.name
        pixels = np.asarray(image, dtype=np.int16)
        blue = (pixels[:, :, 2] - pixels[:, :, 0] > 50) & (pixels[:, :, 2] - pixels[:, :, 1] > 40)
        inside = np.zeros_like(blue)
        for spec in layout.fields:
            x0, y0, x1, y1 = spec.value_box.to_pixels(*image.size)
            inside[y0:y1, x0:x1] = True
            if truth["written"][spec.key] and spec.key != "card_serial":
                assert blue[y0:y1, x0:x1].sum() > 10, spec.key
        assert not (blue & ~inside).any()


def test_layout_seed_option_uses_alternative_layout():
    _, truth = generate_card(2, "domestic_guest", dpi=60, degrade=False, layout_seed=7)
    assert truth["template"] == alternative_template("domestic_guest", 7).name


CUSTOM_CARD_TYPES = {
    "hotel_checkin": {
        "card_type": "hotel_checkin",
        "title_zh": "宾馆入住登记单",
        "title_en": "Check-in Slip",
        "fields": [
            {"key": "card_serial", "label_zh": "单号", "label_en": "No.", "kind": "serial"},
            {"key": "guest_name", "label_zh": "姓名", "label_en": "Name", "kind": "text"},
            {"key": "sex", "label_zh": "性别", "label_en": "Sex", "kind": "sex"},
            {"key": "ethnicity", "label_zh": "民族", "label_en": "Ethnicity", "kind": "ethnicity"},
            {"key": "date_of_birth", "label_zh": "出生日期", "label_en": "Date of birth", "kind": "date"},
            {"key": "id_type", "label_zh": "证件类型", "label_en": "Type of ID", "kind": "id_type"},
            {"key": "id_number", "label_zh": "证件号码", "label_en": "ID No.", "kind": "resident_id"},
            {"key": "phone", "label_zh": "联系电话", "label_en": "Phone", "kind": "text"},
            {"key": "plate", "label_zh": "车牌号", "label_en": "Car plate", "kind": "text", "required": False},
            {"key": "check_in", "label_zh": "入住日期", "label_en": "Check-in", "kind": "date"},
            {"key": "check_out", "label_zh": "退房日期", "label_en": "Check-out", "kind": "date"},
            {"key": "room", "label_zh": "房号", "label_en": "Room", "kind": "room"},
        ],
        "cross_rules": ["date_of_birth_past", "resident_id_matches"],
    },
    "visitor_slip": {
        "card_type": "visitor_slip",
        "title_zh": "境外旅客入住单",
        "title_en": "Foreign Visitor Slip",
        "fields": [
            {"key": "card_serial", "label_zh": "编号", "label_en": "No.", "kind": "serial"},
            {"key": "family_name", "label_zh": "姓", "label_en": "Surname", "kind": "latin_name"},
            {"key": "first_names", "label_zh": "名", "label_en": "Given names", "kind": "latin_name"},
            {"key": "sex", "label_zh": "性别", "label_en": "Sex", "kind": "sex"},
            {"key": "date_of_birth", "label_zh": "出生日期", "label_en": "Date of birth", "kind": "date"},
            {"key": "nationality", "label_zh": "国籍", "label_en": "Nationality", "kind": "nationality"},
            {"key": "document_type", "label_zh": "证件种类", "label_en": "Document", "kind": "document_type"},
            {"key": "document_number", "label_zh": "证件号码", "label_en": "Document No.", "kind": "document_number"},
            {"key": "visa_type", "label_zh": "签证种类", "label_en": "Visa", "kind": "visa_type", "required": False},
            {"key": "visa_number", "label_zh": "签证号码", "label_en": "Visa No.", "kind": "visa_number",
             "required": False},
            {"key": "valid_until", "label_zh": "有效期至", "label_en": "Valid until", "kind": "date"},
            {"key": "entry_date", "label_zh": "入境日期", "label_en": "Date of entry", "kind": "date"},
            {"key": "arrival_date", "label_zh": "抵店日期", "label_en": "Date of arrival", "kind": "date"},
            {"key": "departure_date", "label_zh": "离店日期", "label_en": "Date of departure", "kind": "date"},
            {"key": "room_number", "label_zh": "房号", "label_en": "Room No.", "kind": "room"},
            {"key": "remarks", "label_zh": "备注", "label_en": "Remarks", "kind": "text"},
        ],
        "cross_rules": [
            "date_of_birth_past", "departure_after_arrival", "entry_before_arrival", "valid_until_after_departure",
            "document_number_format", "visa_for_permit_holders",
        ],
    },
}


@pytest.fixture(scope="module")
def custom_registry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("card_types")
    for name, spec in CUSTOM_CARD_TYPES.items():
        (folder / f"{name}.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    return load_registry([str(folder)])


@pytest.mark.parametrize("card_type", sorted(CUSTOM_CARD_TYPES))
def test_custom_card_type_values_valid(card_type, custom_registry):
    spec = custom_registry.card_type(card_type)
    for seed in range(8):
        image, truth = generate_card(seed, card_type, dpi=60, degrade=False, registry=custom_registry)
        fields = truth["fields"]
        assert list(fields) == spec.keys
        assert truth["template"] == f"{card_type}_alt0"
        problems = validate_card(spec, fields, today=date(2026, 7, 1))
        assert {key: found for key, found in problems.items() if found} == {}, (seed, fields)
        assert normalize_fields(spec, truth["written"]) == fields
        if card_type == "hotel_checkin":
            assert fields["check_in"] <= fields["check_out"]
            assert re.fullmatch(r"1\d{10}", fields["phone"])
        else:
            assert fields["family_name"] != fields["first_names"]
        assert image.size == tuple(truth["image_size_px"])


def test_custom_card_type_from_spec_without_registry(custom_registry):
    spec = custom_registry.card_type("hotel_checkin")
    first = generate_card(3, "hotel_checkin", dpi=60, card_type_spec=spec, photo=True, stamp=True)
    second = generate_card(3, "hotel_checkin", dpi=60, card_type_spec=spec, photo=True, stamp=True)
    assert first[1] == second[1]
    assert first[0].tobytes() == second[0].tobytes()
    assert first[1]["stamp_field"] in spec.keys
    with pytest.raises(ValueError, match="invalid_rate"):
        generate_card(3, "hotel_checkin", card_type_spec=spec, invalid_rate=0.5)


def test_sample_truths_unchanged_by_new_options(tmp_path: Path):
    # The new options are off by default, so committed samples come out with the same truth.
    for number, (seed, card_type, style, paper, turn) in enumerate(SAMPLE_PLAN, start=1):
        if number not in (7, 12):
            continue
        _, truth = generate_card(
            seed, card_type, style, dpi=SAMPLE_DPI, paper=paper, quarter_turn=turn,
            invalid_rate=1.0 if seed in SAMPLE_INVALID_SEEDS else 0.0,
        )
        committed = next(SAMPLES_DIR.glob(f"card_{number:02d}_*.json"))
        assert json.dumps(truth, ensure_ascii=False, indent=2) + "\n" == committed.read_text(encoding="utf-8")


def test_cli_new_flags(tmp_path: Path):
    code = cli_main([str(tmp_path / "a"), "--count", "2", "--seed", "4", "--dpi", "60", "--photo", "--stamp",
                     "--max-skew", "45", "--quiet"])
    assert code == 0
    truths = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((tmp_path / "a").glob("*.json"))]
    assert len(truths) == 2
    assert [t["capture"] for t in truths] == ["photo", "photo"]
    assert all(t["stamp_field"] for t in truths)

    code = cli_main([str(tmp_path / "b"), "--count", "1", "--dpi", "60", "--blank", "--border-shadow",
                     "--alternative-layout", "2", "--card-type", "domestic_guest", "--quiet"])
    assert code == 0
    truth = json.loads(next((tmp_path / "b").glob("*.json")).read_text(encoding="utf-8"))
    assert truth["blank"] is True
    assert truth["border_shadow"] is True
    assert truth["template"] == "domestic_guest_alt2"


def test_cli_rejects_skew_over_45(tmp_path: Path, capsys):
    assert cli_main([str(tmp_path / "out"), "--max-skew", "60", "--quiet"]) == 2
    assert "max_skew_deg" in capsys.readouterr().err
