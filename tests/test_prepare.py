"""Tests for ocr.prepare on synthetic card images drawn with OpenCV.

Test images are rotated with Pillow (``Image.rotate``, CCW, expanded canvas),
not with ``rotate_image``, so the angle convention is checked against an
independent implementation.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from ocr.bench_prep import quad_corner_error
from ocr.prepare import (
    CARD_ASPECT,
    Prepared,
    apply_quarter_turn,
    card_dpi,
    crop_to_card,
    estimate_skew,
    find_card_quad,
    normalize_angle,
    prepare,
    quad_skew_deg,
    quality_problems,
    rotate_image,
    sharpness,
    text_axis,
    warp_card,
)
from sample_cards import generate_card

WHITE = (255, 255, 255)
SERIAL_RED_BGR = (0, 0, 220)

FIELD_WORDS = [
    "SURNAME", "SMITH", "GIVEN NAMES", "JOHN PAUL",
    "SEX", "M", "NATIONALITY", "USA",
    "PASSPORT", "E12345678", "VISA TYPE", "L",
    "ARRIVAL", "2024-05-01", "ROOM", "1208",
]  # fmt: skip


def make_card(width: int = 1400, height: int = 1000, table: bool = True) -> np.ndarray:
    """Draw an upright card: a title, a red serial number top right and a 8 x 4 table of text.

    With ``table=False`` only the text is drawn, so skew must come from text lines.
    """
    card = np.full((height, width, 3), 255, dtype=np.uint8)
    margin = 60
    cv2.putText(card, "REGISTRATION FORM OF TEMPORARY RESIDENCE", (margin, 70),
                cv2.FONT_HERSHEY_SIMPLEX, 1.1, (0, 0, 0), 2)  # fmt: skip
    cv2.putText(card, "No. 0012345", (width - 300, 70), cv2.FONT_HERSHEY_SIMPLEX, 1.0, SERIAL_RED_BGR, 2)

    top = 110
    rows = 8
    row_height = (height - top - margin) // rows
    columns = [margin, margin + 260, width // 2, width // 2 + 260, width - margin]
    if table:
        for row in range(rows + 1):
            y = top + row * row_height
            cv2.line(card, (margin, y), (width - margin, y), (0, 0, 0), 2)
        for x in columns:
            cv2.line(card, (x, top), (x, top + rows * row_height), (0, 0, 0), 2)
    for row in range(rows):
        for column in range(4):
            word = FIELD_WORDS[(row * 4 + column) % len(FIELD_WORDS)]
            origin = (columns[column] + 12, top + row * row_height + row_height // 2 + 10)
            cv2.putText(card, word, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
    return card


def pil_rotate(image: np.ndarray, angle_ccw: float, fill=WHITE) -> np.ndarray:
    """Rotate a BGR image CCW with Pillow, expanding the canvas."""
    rgb = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
    rotated = rgb.rotate(angle_ccw, resample=Image.BICUBIC, expand=True, fillcolor=tuple(fill[::-1]))
    return np.ascontiguousarray(np.asarray(rotated)[:, :, ::-1])


def gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def red_mask(image: np.ndarray) -> np.ndarray:
    blue, green, red = (image[:, :, index].astype(int) for index in range(3))
    return (red > 150) & (green < 100) & (blue < 100)


def red_centroid(image: np.ndarray) -> tuple[float, float]:
    """Return the centroid of red pixels as fractions (x, y) of the image size."""
    ys, xs = np.nonzero(red_mask(image))
    assert xs.size > 0, "no red serial number found"
    height, width = image.shape[:2]
    return float(xs.mean()) / width, float(ys.mean()) / height


SKEW_ANGLES = [round(value, 2) for value in np.arange(-8.0, 8.01, 1.3)]


@pytest.fixture(scope="module")
def card() -> np.ndarray:
    return make_card()


# --------------------------------------------------------------------------
# Angles
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("angle", "half_range", "expected"),
    [(0, 45, 0), (45, 45, 45), (-45, 45, 45), (50, 45, -40), (-100, 45, -10), (270, 180, -90), (-180, 180, 180)],
)
def test_normalize_angle(angle, half_range, expected):
    assert normalize_angle(angle, half_range) == pytest.approx(expected)


# --------------------------------------------------------------------------
# Skew
# --------------------------------------------------------------------------


@pytest.mark.parametrize("quarter_turn", [0, 90, 180, 270])
def test_skew_with_table(card, quarter_turn):
    for angle in SKEW_ANGLES:
        scan = pil_rotate(card, quarter_turn + angle)

        estimate = estimate_skew(gray(scan))

        assert abs(normalize_angle(estimate - angle)) <= 0.5, (quarter_turn, angle, estimate)


@pytest.mark.parametrize("quarter_turn", [0, 90])
def test_skew_text_only(quarter_turn):
    text_card = make_card(table=False)
    for angle in (-9.5, -4.2, 0.0, 2.6, 7.1):
        scan = pil_rotate(text_card, quarter_turn + angle)

        estimate = estimate_skew(gray(scan))

        assert abs(normalize_angle(estimate - angle)) <= 0.5, (quarter_turn, angle, estimate)


def test_skew_of_straight_card_zero(card):
    assert abs(estimate_skew(gray(card))) <= 0.1


def test_skew_of_blank_page_zero():
    blank = np.full((800, 600), 250, dtype=np.uint8)

    assert estimate_skew(blank) == 0.0


def test_skew_range_half_open(card):
    scan = pil_rotate(card, 44.0)

    estimate = estimate_skew(gray(scan))

    assert -45.0 < estimate <= 45.0


# --------------------------------------------------------------------------
# Rotation
# --------------------------------------------------------------------------


def test_rotate_matches_pillow_direction(card):
    ours = rotate_image(card, 12.0)
    reference = pil_rotate(card, 12.0)

    assert abs(ours.shape[0] - reference.shape[0]) <= 2
    assert abs(ours.shape[1] - reference.shape[1]) <= 2
    height = min(ours.shape[0], reference.shape[0])
    width = min(ours.shape[1], reference.shape[1])
    difference = np.abs(gray(ours)[:height, :width].astype(int) - gray(reference)[:height, :width].astype(int))
    assert difference.mean() < 8
    # A line rising to the right after a CCW turn is what estimate_skew measures.
    assert abs(estimate_skew(gray(ours)) - 12.0) <= 0.5


@pytest.mark.parametrize("angle", [-37.0, -9.0, 3.3, 30.0, 135.0])
def test_rotate_keeps_all_content(angle):
    image = np.full((300, 500, 3), 255, dtype=np.uint8)
    corners = {
        (0, 0): (0, 0, 255),
        (0, 480): (0, 255, 0),
        (280, 0): (255, 0, 0),
        (280, 480): (0, 0, 0),
    }
    for (top, left), colour in corners.items():
        image[top : top + 20, left : left + 20] = colour

    rotated = rotate_image(image, angle)

    radians = np.radians(angle)
    expected_width = 500 * abs(np.cos(radians)) + 300 * abs(np.sin(radians))
    expected_height = 500 * abs(np.sin(radians)) + 300 * abs(np.cos(radians))
    assert abs(rotated.shape[1] - expected_width) <= 2
    assert abs(rotated.shape[0] - expected_height) <= 2
    for colour in corners.values():
        matches = np.all(np.abs(rotated.astype(int) - np.array(colour)) < 40, axis=2)
        # The interior of each 20 x 20 marker survives interpolation.
        assert matches.sum() >= 250, (colour, int(matches.sum()))


def test_rotate_border_colour():
    image = np.full((100, 200, 3), 128, dtype=np.uint8)

    rotated = rotate_image(image, 20.0, border=(10, 20, 30))

    assert rotated[0, 0].tolist() == [10, 20, 30]


def test_rotate_gray_image():
    image = np.full((100, 200), 128, dtype=np.uint8)

    rotated = rotate_image(image, 20.0)

    assert rotated.ndim == 2
    assert rotated[0, 0] == 255


def test_rotate_there_and_back(card):
    turned = rotate_image(card, 7.0)
    back = rotate_image(turned, -7.0)

    height, width = card.shape[:2]
    top = (back.shape[0] - height) // 2
    left = (back.shape[1] - width) // 2
    restored = back[top : top + height, left : left + width]
    difference = np.abs(gray(restored).astype(int) - gray(card).astype(int))
    assert difference.mean() < 10


def test_quarter_turn_directions():
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    image[0, 0] = (0, 0, 255)  # marker at top left

    turned_ccw = apply_quarter_turn(image, 90)
    turned_half = apply_quarter_turn(image, 180)
    turned_cw = apply_quarter_turn(image, 270)
    unturned = apply_quarter_turn(image, 0)

    assert turned_ccw.shape == (30, 20, 3)
    assert turned_ccw[29, 0].tolist() == [0, 0, 255]  # CCW moves top left to bottom left
    assert turned_half[19, 29].tolist() == [0, 0, 255]
    assert turned_cw[0, 19].tolist() == [0, 0, 255]
    assert np.array_equal(unturned, image)
    assert np.array_equal(apply_quarter_turn(image, -90), turned_cw)
    assert np.array_equal(rotate_image(image, 90.0), turned_ccw)


def test_quarter_turn_rejects_other_angles():
    with pytest.raises(ValueError):
        apply_quarter_turn(np.zeros((4, 4, 3), dtype=np.uint8), 45)


# --------------------------------------------------------------------------
# Text axis
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quarter_turn", "expected"),
    [(0, "horizontal"), (90, "vertical"), (180, "horizontal"), (270, "vertical")],
)
@pytest.mark.parametrize("table", [True, False])
def test_text_axis_after_turns(quarter_turn, expected, table):
    turned = apply_quarter_turn(make_card(table=table), quarter_turn)

    assert text_axis(gray(turned)) == expected


def test_text_axis_blank_defaults_horizontal():
    assert text_axis(np.full((500, 400), 255, dtype=np.uint8)) == "horizontal"


# --------------------------------------------------------------------------
# Cropping
# --------------------------------------------------------------------------


def card_on_background(card: np.ndarray, level: int, angle: float = 0.0) -> np.ndarray:
    """Place ``card`` at (300, 300) on a noisy uniform background and rotate the whole scan."""
    canvas = np.full((card.shape[0] + 600, card.shape[1] + 600, 3), level, dtype=np.uint8)
    canvas[300 : 300 + card.shape[0], 300 : 300 + card.shape[1]] = card
    noise = np.random.default_rng(7).normal(0, 4, canvas.shape)
    noisy = np.clip(canvas.astype(float) + noise, 0, 255).astype(np.uint8)
    return pil_rotate(noisy, angle, fill=(level, level, level))


@pytest.mark.parametrize("level", [20, 100, 170])
def test_crop_dark_background(card, level):
    scan = card_on_background(card, level)

    cropped, (x, y, width, height) = crop_to_card(scan)

    assert cropped.shape[:2] == (height, width)
    # The card spans x 300..1700, y 300..1300, and the margin is 1% of 2000 px.
    assert 270 <= x <= 300
    assert 270 <= y <= 300
    assert 1700 <= x + width <= 1730
    assert 1300 <= y + height <= 1330


def test_crop_white_background_unchanged(card):
    scan = card_on_background(card, 255)

    cropped, box = crop_to_card(scan)

    assert box == (0, 0, scan.shape[1], scan.shape[0])
    assert cropped.shape == scan.shape


def test_crop_content_to_edge_unchanged():
    # Table lines run off every edge, so the border is not uniform.
    image = np.full((800, 1000, 3), 255, dtype=np.uint8)
    image[:, :, :] = 60
    image[::40, :] = 250
    image[:, ::40] = 250

    cropped, box = crop_to_card(image)

    assert box == (0, 0, 1000, 800)
    assert cropped is image


# --------------------------------------------------------------------------
# Whole preparation
# --------------------------------------------------------------------------


@pytest.mark.parametrize("quarter_turn", [0, 90, 180, 270])
@pytest.mark.parametrize("angle", [-8.0, -2.5, 0.0, 4.0, 9.0])
def test_prepare_straightens(card, quarter_turn, angle):
    scan = pil_rotate(card, quarter_turn + angle)

    prepared = prepare(scan)

    assert isinstance(prepared, Prepared)
    assert prepared.image.dtype == np.uint8
    assert prepared.image.ndim == 3
    assert abs(prepared.skew_deg - angle) <= 0.5
    upright_turn = (-quarter_turn) % 360
    assert upright_turn in prepared.quarter_turn_candidates
    expected = [90, 270] if quarter_turn in (90, 270) else [0, 180]
    assert sorted(prepared.quarter_turn_candidates) == expected

    upright = apply_quarter_turn(prepared.image, upright_turn)
    assert upright.shape[1] > upright.shape[0]  # the card is landscape
    assert estimate_skew(gray(upright)) == pytest.approx(0.0, abs=0.5)
    serial_x, serial_y = red_centroid(upright)
    assert serial_x > 0.6
    assert serial_y < 0.25

    reported = prepared.content_rotation_deg(upright_turn)
    assert abs(normalize_angle(reported - (quarter_turn + angle), 180.0)) <= 0.5
    assert -180.0 < reported <= 180.0


def test_prepare_crops_dark_background(card):
    scan = card_on_background(card, 30, angle=6.0)

    prepared = prepare(scan)

    assert abs(prepared.skew_deg - 6.0) <= 0.5
    assert prepared.crop_box != (0, 0, scan.shape[1], scan.shape[0])
    height, width = prepared.image.shape[:2]
    assert abs(width - 1400) <= 60
    assert abs(height - 1000) <= 60
    assert prepared.quarter_turn_candidates == [0, 180]


def test_prepare_straight_card_untouched(card):
    prepared = prepare(card)

    assert prepared.skew_deg == 0.0
    assert prepared.crop_box == (0, 0, 1400, 1000)
    assert np.array_equal(prepared.image, card)


def test_prepare_rejects_gray_input(card):
    with pytest.raises(ValueError):
        prepare(gray(card))


def test_content_rotation_examples():
    prepared = Prepared(image=np.zeros((1, 1, 3), np.uint8), skew_deg=10.0,
                        quarter_turn_candidates=[90, 270], crop_box=(0, 0, 1, 1))  # fmt: skip

    # Content turned 100 degrees CCW: deskew by -10, then turn 270 CCW (90 CW).
    assert prepared.content_rotation_deg(270) == pytest.approx(100.0)
    # Content turned 80 degrees CW: deskew by -10, then turn 90 CCW.
    assert prepared.content_rotation_deg(90) == pytest.approx(-80.0)


# --------------------------------------------------------------------------
# Quality checks
# --------------------------------------------------------------------------


def problem_codes(image: np.ndarray) -> list[str]:
    return [code for code, _, _ in quality_problems(image)]


def test_quality_good_card(card):
    assert problem_codes(gray(card)) == []


def test_quality_blank_page():
    noise = np.random.default_rng(3).normal(0, 6, (1200, 900))
    blank = np.clip(235 + noise, 0, 255).astype(np.uint8)

    problems = quality_problems(blank)

    assert [code for code, _, _ in problems] == ["blank_page"]
    code, message_zh, message_en = problems[0]
    assert "空白" in message_zh
    assert "blank" in message_en


def test_quality_too_dark(card):
    dark = (gray(card).astype(float) * 0.25).astype(np.uint8)

    assert problem_codes(dark) == ["too_dark"]


def test_quality_too_small():
    small = gray(make_card(500, 400))

    problems = quality_problems(small)

    assert [code for code, _, _ in problems] == ["too_small"]
    code, message_zh, message_en = problems[0]
    assert "500 像素" in message_zh
    assert "60 dpi" in message_zh
    assert "120 dpi" in message_en


def test_quality_accepts_bgr(card):
    assert problem_codes(card) == []


def test_quality_small_card_on_black_lid_not_dark(card):
    scan = card_on_background(card, 10)

    prepared = prepare(scan)

    assert problem_codes(prepared.image) == []
    assert problem_codes(scan) == []  # the black lid covers under 90% of the scan


def test_quality_card_on_black_lid_is_cropped_first(card):
    # The card covers under a tenth of the scan, so the whole scan reads as too dark.
    canvas = np.full((3400, 4200, 3), 12, dtype=np.uint8)
    canvas[1200:2200, 1400:2800] = card

    prepared = prepare(canvas)

    assert "too_dark" in problem_codes(canvas)
    assert problem_codes(prepared.image) == []


@pytest.mark.parametrize("blur_mm", [0.6, 1.0])
def test_quality_too_blurred(blur_mm):
    image, _ = generate_card(31, "foreign_guest", dpi=200, degrade=False)
    scan = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)
    blurred = cv2.GaussianBlur(scan, (0, 0), blur_mm * 200 / 25.4)

    problems = quality_problems(prepare(blurred).image)

    assert [code for code, _, _ in problems] == ["too_blurred"]
    assert "模糊" in problems[0][1]
    assert "blurred" in problems[0][2]


def test_quality_mild_blur_accepted():
    # 0.3 mm of blur still reads well, so it must not send the card to review.
    image, _ = generate_card(31, "foreign_guest", dpi=200, degrade=False)
    scan = cv2.GaussianBlur(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR), (0, 0), 0.3 * 200 / 25.4)

    assert problem_codes(prepare(scan).image) == []
    assert sharpness(gray(scan)) > 0.38


def test_quality_not_a_card():
    # Soft dark blobs on paper: ink, but neither table lines nor lines of text.
    rng = np.random.default_rng(5)
    clouds = cv2.resize(rng.uniform(0, 1, (12, 16)), (1600, 1200), interpolation=cv2.INTER_CUBIC)
    picture = np.clip(250 - 160 * np.clip(clouds, 0, 1) ** 3, 0, 255).astype(np.uint8)
    for _ in range(40):
        centre = (int(rng.integers(0, 1600)), int(rng.integers(0, 1200)))
        cv2.circle(picture, centre, int(rng.integers(30, 120)), int(rng.integers(20, 120)), -1)

    problems = quality_problems(picture)

    assert [code for code, _, _ in problems] == ["not_a_card"]
    assert "不是登记卡" in problems[0][1]


def test_quality_text_only_page_is_card_like():
    assert problem_codes(gray(make_card(table=False))) == []


def test_quality_generated_cards_clean():
    for seed in (41, 42, 43):
        image, _ = generate_card(seed, ("foreign_guest", "domestic_guest")[seed % 2], dpi=150, max_skew_deg=45.0)
        prepared = prepare(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR))

        assert problem_codes(prepared.image) == [], seed


def test_card_dpi_from_long_side():
    assert card_dpi(np.zeros((1169, 1654), np.uint8)) == pytest.approx(200.0, abs=0.1)


# --------------------------------------------------------------------------
# Skew over the whole range
# --------------------------------------------------------------------------

WIDE_ANGLES = [-44.6, -38.0, -29.5, -21.2, -12.7, 16.4, 24.9, 33.3, 41.8, 45.0]


@pytest.mark.parametrize("table", [True, False])
def test_skew_whole_range(table):
    base = make_card(table=table)
    for angle in WIDE_ANGLES:
        scan = pil_rotate(base, angle)

        estimate = estimate_skew(gray(scan))

        assert abs(normalize_angle(estimate - angle)) <= 0.3, (angle, estimate)


def generated_scan(seed: int, **options) -> tuple[np.ndarray, dict]:
    image, truth = generate_card(seed, ("foreign_guest", "domestic_guest")[seed % 2], dpi=150, **options)
    return cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR), truth


def upright_turn(prepared: Prepared, rotation_deg: float) -> int:
    """Return the candidate turn whose reported rotation matches the truth, or -1."""
    for turn in prepared.quarter_turn_candidates:
        if abs(normalize_angle(prepared.content_rotation_deg(turn) - rotation_deg, 180.0)) <= 3.0:
            return turn
    return -1


@pytest.mark.parametrize("quarter_turn", [0, 90, 180, 270])
def test_generated_scans_any_turn_and_skew(quarter_turn):
    # Handwritten and printed cards with scanner noise, a seal on some, skew up to 45 degrees.
    for seed in (quarter_turn + 1, quarter_turn + 2):
        scan, truth = generated_scan(seed, max_skew_deg=45.0, quarter_turn=quarter_turn, stamp=seed % 2 == 0)

        prepared = prepare(scan)

        assert abs(normalize_angle(prepared.skew_deg - truth["skew_deg"])) <= 0.15, (seed, prepared.skew_deg, truth)
        assert upright_turn(prepared, truth["rotation_deg"]) != -1, (seed, prepared.quarter_turn_candidates, truth)
        # The red serial number puts the right turn first.
        assert upright_turn(prepared, truth["rotation_deg"]) == prepared.quarter_turn_candidates[0], seed


# --------------------------------------------------------------------------
# Card outline and perspective
# --------------------------------------------------------------------------


def long_line_angles(image: np.ndarray) -> np.ndarray:
    """Return the angles (degrees, modulo 90) of long dark straight segments in ``image``."""
    ink = cv2.adaptiveThreshold(gray(image), 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 31, 15)
    length = min(image.shape[:2]) // 3
    segments = cv2.HoughLinesP(ink, 1, np.pi / 720, length // 2, minLineLength=length, maxLineGap=4)
    assert segments is not None, "no table lines found"
    x1, y1, x2, y2 = segments.reshape(-1, 4).T.astype(float)
    return np.array([normalize_angle(value) for value in np.degrees(np.arctan2(-(y2 - y1), x2 - x1))])


@pytest.mark.parametrize("quarter_turn", [0, 90, 180, 270])
def test_photo_corners_and_upright_warp(quarter_turn):
    seed = 60 + quarter_turn
    image, truth = generate_card(seed, "foreign_guest", dpi=150, capture="photo", max_skew_deg=45.0,
                                 quarter_turn=quarter_turn, stamp=True)  # fmt: skip
    photo = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)

    quad = find_card_quad(photo)
    prepared = prepare(photo)

    assert quad is not None
    assert quad_corner_error(quad, truth["card_corners_px"]) <= 4.0
    assert prepared.perspective_corrected
    assert np.allclose(prepared.card_quad, quad)
    turn = upright_turn(prepared, truth["rotation_deg"])
    assert turn == prepared.quarter_turn_candidates[0], (prepared.quarter_turn_candidates, truth["rotation_deg"])
    upright = apply_quarter_turn(prepared.image, turn)
    height, width = upright.shape[:2]
    assert width / height == pytest.approx(CARD_ASPECT, rel=0.01)
    # Straight table lines: every long segment is horizontal or vertical.
    assert np.max(np.abs(long_line_angles(upright))) <= 0.5
    serial_x, serial_y = red_centroid(upright[: height // 5])
    assert serial_x > 0.6


def test_quad_skew_and_warp_of_rotated_card(card):
    scan = card_on_background(card, 40, angle=-33.0)

    quad = find_card_quad(scan)

    assert quad is not None
    assert quad_skew_deg(quad) == pytest.approx(-33.0, abs=0.2)
    warped = warp_card(scan, quad)
    assert warped.shape[1] > warped.shape[0]
    assert abs(estimate_skew(gray(warped))) <= 0.2


def test_quad_ignores_printed_table(card):
    # A white card on a white bed: the only rectangle is the table, which has paper on both sides.
    assert find_card_quad(card_on_background(card, 255)) is None
    assert find_card_quad(card) is None


def test_quad_rejects_image_without_card():
    rng = np.random.default_rng(11)
    noise = rng.integers(0, 256, (900, 1200, 3), dtype=np.uint8)

    assert find_card_quad(noise) is None


def test_scan_border_and_shadow_cropped():
    scan, truth = generated_scan(71, max_skew_deg=20.0, border_shadow=True)

    prepared = prepare(scan)

    assert prepared.perspective_corrected
    assert quad_corner_error(prepared.card_quad, truth["card_corners_px"]) <= 4.0
    image = gray(prepared.image)
    band = max(2, min(image.shape) // 100)
    for edge in (image[:band], image[-band:], image[:, :band], image[:, -band:]):
        # The dark lid is gone; a shadow on the paper may darken it a little.
        assert np.median(edge) > 150


def test_white_bed_shadow_band_cropped(card):
    # A grey scanner bed with a dark gradient shadow along the card's left edge.
    canvas = np.full((1600, 2000, 3), 200, dtype=np.uint8)
    canvas[300:1300, 300:1700] = card
    shade = np.ones(canvas.shape[:2], dtype=np.float32)
    shade[:, 150:300] = np.linspace(0.95, 0.4, 150)[None, :]
    shaded = (canvas * shade[:, :, None]).astype(np.uint8)
    scan = pil_rotate(shaded, 8.0, fill=(200, 200, 200))

    prepared = prepare(scan)

    assert prepared.perspective_corrected
    assert prepared.skew_deg == pytest.approx(8.0, abs=0.2)
    height, width = prepared.image.shape[:2]
    # A flat scan keeps the card's own size (1400 x 1000 here), with no stretch to A5.
    assert abs(width - 1400) <= 10
    assert abs(height - 1000) <= 10


def test_flat_card_of_other_size_not_stretched():
    # A hotel's own card printed wider than A5 (ratio 1.6) keeps its ratio on a flat scan.
    wide = make_card(width=1600, height=1000)
    prepared = prepare(card_on_background(wide, 40, angle=5.0))
    height, width = prepared.image.shape[:2]
    assert width / height == pytest.approx(1.6, rel=0.02)
