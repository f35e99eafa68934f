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
from ocr.registry import load_registry
from sample_cards import generate_card, generate_stack
from sample_cards import fonts as fonts_module
from sample_cards.__main__ import main as cli_main
from sample_cards.generate import SAMPLES_DIR
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
