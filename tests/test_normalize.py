"""Tests of ocr.normalize: raw card text to the clean values of the card specification."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.card_type import CardTypeSpec, FieldKind
from ocr.normalize import normalize_fields, normalize_value, to_half_width

CARD_TYPES = Path(__file__).resolve().parent.parent / "ocr" / "card_types"


def load_card_type(name: str) -> CardTypeSpec:
    return CardTypeSpec.model_validate_json((CARD_TYPES / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("０１２３４５６７８９", "0123456789"),
        ("ＡＢＣ ａｂｃ", "ABC abc"),
        ("１９８５－０３－１２", "1985-03-12"),
        ("Ｅ１２３４５６７８", "E12345678"),
        ("张\u3000三", "张 三"),
        ("（上海浦东）", "(上海浦东)"),
        ("汉族、回族。", "汉族、回族。"),
        ("plain ascii", "plain ascii"),
    ],
)
def test_to_half_width(raw: str, expected: str) -> None:
    assert to_half_width(raw) == expected


@pytest.mark.parametrize("kind", list(FieldKind))
@pytest.mark.parametrize("raw", ["", "   ", "\u3000"])
def test_empty_stays_empty(kind: FieldKind, raw: str) -> None:
    assert normalize_value(kind, raw) == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0012345", "0012345"),
        ("No. 0012345", "0012345"),
        ("NO.0012345", "0012345"),
        ("No０１２３４５", "012345"),
        ("№ 0012345", "0012345"),
        ("编号：0012345", "0012345"),
        ("001 2345", "0012345"),
        # A letter in the serial is kept (no O/0 or I/1 swap) so validation flags it.
        ("No. 00I2345", "00I2345"),
        ("0O12345", "0O12345"),
    ],
)
def test_serial(raw: str, expected: str) -> None:
    assert normalize_value(FieldKind.SERIAL, raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("smith", "SMITH"),
        ("  John   Paul ", "JOHN PAUL"),
        ("O’Brien", "O'BRIEN"),
        ("Smith-Jones", "SMITH-JONES"),
        ("ＳＭＩＴＨ", "SMITH"),
        # Digits stay where OCR put them, and validation rejects them.
        ("SM1TH", "SM1TH"),
    ],
)
def test_latin_name(raw: str, expected: str) -> None:
    assert normalize_value(FieldKind.LATIN_NAME, raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  上海  浦东 ", "上海 浦东"),
        ("ＰＶＧ", "PVG"),
        ("Tourism", "Tourism"),
        ("旅游", "旅游"),
    ],
)
def test_text(raw: str, expected: str) -> None:
    assert normalize_value(FieldKind.TEXT, raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("男", "M"),
        ("女", "F"),
        ("男性", "M"),
        ("女性", "F"),
        ("M", "M"),
        ("f", "F"),
        ("Male", "M"),
        ("FEMALE", "F"),
        ("female", "F"),
        ("男/M", "M"),
        ("Ｆ", "F"),
        ("☑男 □女", "M"),
        ("□男 ☑女", "F"),
        ("√男", "M"),
        ("√女", "F"),
        ("男√ 女□", "M"),
        ("男□ 女✓", "F"),
        ("[X] M [ ] F", "M"),
        ("( ) M (√) F", "F"),
        ("■男 □女", "M"),
        # Not decidable: the printed options without a tick, two ticks, or no option.
        ("男 女", "男 女"),
        ("M/F", "M/F"),
        ("☑男 ☑女", "☑男 ☑女"),
        ("□男 □女", "□男 □女"),
        ("X", "X"),
        ("未知", "未知"),
    ],
)
def test_sex(raw: str, expected: str) -> None:
    assert normalize_value(FieldKind.SEX, raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1985-03-12", "1985-03-12"),
        ("1985-3-12", "1985-03-12"),
        ("1985.03.12", "1985-03-12"),
        ("1985/3/12", "1985-03-12"),
        ("1985 3 12", "1985-03-12"),
        ("1985年3月12日", "1985-03-12"),
        ("1985 年 03 月 12 日", "1985-03-12"),
        ("1985年3月12号", "1985-03-12"),
        ("12/03/1985", "1985-03-12"),
        ("12.03.1985", "1985-03-12"),
        ("12-03-1985", "1985-03-12"),
        ("12 MAR 1985", "1985-03-12"),
        ("12-MAR-1985", "1985-03-12"),
        ("12MAR1985", "1985-03-12"),
        ("12 mar 1985", "1985-03-12"),
        ("12 March 1985", "1985-03-12"),
        ("March 12, 1985", "1985-03-12"),
        ("12 MAR/MARS 1985", "1985-03-12"),
        ("19850312", "1985-03-12"),
        ("１９８５年３月１２日", "1985-03-12"),
        ("１９８５－０３－１２", "1985-03-12"),
        ("2024-05-01 14:30", "2024-05-01"),
        ("2000-02-29", "2000-02-29"),
    ],
)
def test_date_formats(raw: str, expected: str) -> None:
    assert normalize_value(FieldKind.DATE, raw) == expected


@pytest.mark.parametrize(
    ("raw", "day_first", "expected"),
    [
        ("12/03/1985", True, "1985-03-12"),
        ("12/03/1985", False, "1985-12-03"),
        ("03/12/1985", False, "1985-03-12"),
        # Year-first and spelled months do not depend on day_first.
        ("1985-03-12", False, "1985-03-12"),
        ("12 MAR 1985", False, "1985-03-12"),
    ],
)
def test_date_day_first(raw: str, day_first: bool, expected: str) -> None:
    assert normalize_value(FieldKind.DATE, raw, day_first=day_first) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Incomplete: no part is invented.
        ("1985-3", "1985-3"),
        ("1985年3月", "1985年3月"),
        ("MAR 1985", "MAR 1985"),
        ("12 MAR", "12 MAR"),
        ("1985", "1985"),
        # Two-digit years would need a guessed century.
        ("12/03/85", "12/03/85"),
        ("12 MAR 85", "12 MAR 85"),
        ("850312", "850312"),
        # Not a calendar date: returned as written so validation flags it.
        ("1985-02-30", "1985-02-30"),
        ("1985-13-01", "1985-13-01"),
        ("30 FEB 1985", "30 FEB 1985"),
        ("03/13/1985", "03/13/1985"),
        ("19851332", "19851332"),
        ("１９８５－３", "1985-3"),
        ("unknown", "unknown"),
    ],
)
def test_date_unrecognised_kept(raw: str, expected: str) -> None:
    assert normalize_value(FieldKind.DATE, raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("USA", "USA"),
        ("usa", "USA"),
        ("ＪＰＮ", "JPN"),
        ("US", "USA"),
        ("U.S.A.", "USA"),
        ("United States", "USA"),
        ("United States of America", "USA"),
        ("united kingdom", "GBR"),
        ("UK", "GBR"),
        ("Germany", "DEU"),
        ("Korea, Republic of", "KOR"),
        ("South Korea", "KOR"),
        ("Hong Kong", "HKG"),
        ("Macau", "MAC"),
        ("Taiwan", "TWN"),
        ("Viet Nam", "VNM"),
        ("美国", "USA"),
        ("英国", "GBR"),
        ("韩国", "KOR"),
        ("大韩民国", "KOR"),
        ("日本", "JPN"),
        ("德国", "DEU"),
        ("法国", "FRA"),
        ("俄罗斯", "RUS"),
        ("香港", "HKG"),
        ("中国香港", "HKG"),
        ("中国(香港)", "HKG"),
        ("澳门", "MAC"),
        ("中国澳门", "MAC"),
        ("台湾", "TWN"),
        ("中国台湾", "TWN"),
        ("澳大利亚", "AUS"),
        ("柬埔寨", "KHM"),
        ("美國", "USA"),
        ("韓國", "KOR"),
        ("中国", "CHN"),
    ],
)
def test_nationality(raw: str, expected: str) -> None:
    assert normalize_value(FieldKind.NATIONALITY, raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # "Korea" alone is ambiguous (KOR or PRK), so it is not resolved.
        ("Korea", "Korea"),
        ("美困", "美困"),
        ("XYZ", "XYZ"),
        ("  Atlantis  ", "Atlantis"),
    ],
)
def test_nationality_unrecognised_kept(raw: str, expected: str) -> None:
    assert normalize_value(FieldKind.NATIONALITY, raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("护照", "passport"),
        ("外国护照", "passport"),
        ("Passport", "passport"),
        ("PASSPORT", "passport"),
        ("passport", "passport"),
        ("港澳居民来往内地通行证", "hk_macao_permit"),
        ("回乡证", "hk_macao_permit"),
        ("Mainland Travel Permit for Hong Kong and Macao Residents", "hk_macao_permit"),
        ("hk_macao_permit", "hk_macao_permit"),
        ("台湾居民来往大陆通行证", "taiwan_permit"),
        ("台胞证", "taiwan_permit"),
        ("Mainland Travel Permit for Taiwan Residents", "taiwan_permit"),
        ("外国人永久居留身份证", "permanent_residence_id"),
        ("永久居留证", "permanent_residence_id"),
        ("海员证", "other"),
        ("其他", "other"),
        ("ID card", "other"),
        ("other", "other"),
        # A bare 港澳通行证 could be a mainland resident's permit: left for the reviewer.
        ("港澳通行证", "港澳通行证"),
        # A misread word is not mapped to "other".
        ("护昭", "护昭"),
        ("???", "???"),
    ],
)
def test_document_type(raw: str, expected: str) -> None:
    assert normalize_value(FieldKind.DOCUMENT_TYPE, raw) == expected


@pytest.mark.parametrize("kind", [FieldKind.DOCUMENT_NUMBER, FieldKind.VISA_NUMBER])
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("E12345678", "E12345678"),
        ("e1234 5678", "E12345678"),
        ("E-1234-5678", "E12345678"),
        ("Ｅ１２３４５６７８", "E12345678"),
        ("H 1234 5678", "H12345678"),
    ],
)
def test_number(kind: FieldKind, raw: str, expected: str) -> None:
    assert normalize_value(kind, raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (FieldKind.DOCUMENT_NUMBER, "H12345B78"),
        (FieldKind.DOCUMENT_NUMBER, "E1234S678"),
        (FieldKind.DOCUMENT_NUMBER, "O12345678"),
        (FieldKind.DOCUMENT_NUMBER, "1234567Z"),
        (FieldKind.VISA_NUMBER, "I2345678"),
        (FieldKind.RESIDENT_ID, "11010519491231OO2X"),
        (FieldKind.SERIAL, "00B2345"),
        (FieldKind.ROOM, "I2O8"),
    ],
)
def test_lookalikes_not_swapped(kind: FieldKind, raw: str) -> None:
    assert normalize_value(kind, raw) == raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("L", "L"),
        ("l", "L"),
        ("L字", "L"),
        ("Q2签证", "Q2"),
        ("q 2", "Q2"),
        ("J-1", "J1"),
        ("Z VISA", "Z"),
        ("X2", "X2"),
        ("免签", "VISA_FREE"),
        ("免签证", "VISA_FREE"),
        ("Visa free", "VISA_FREE"),
        ("居留许可", "RESIDENCE"),
        ("Residence permit", "RESIDENCE"),
        ("团体签证", "GROUP"),
        ("团签", "GROUP"),
        ("旅游签证", "L"),
        ("VISA_FREE", "VISA_FREE"),
        # Not a Chinese visa category: returned as written.
        ("B1", "B1"),
        ("J3", "J3"),
        ("学习签证", "学习签证"),
    ],
)
def test_visa_type(raw: str, expected: str) -> None:
    assert normalize_value(FieldKind.VISA_TYPE, raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1208", "1208"),
        ("a305", "A305"),
        ("A 305", "A305"),
        ("１２０８", "1208"),
    ],
)
def test_room(raw: str, expected: str) -> None:
    assert normalize_value(FieldKind.ROOM, raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("汉族", "汉"),
        ("汉", "汉"),
        ("回族", "回"),
        ("蒙古族", "蒙古"),
        (" 维吾尔族 ", "维吾尔"),
        ("族", "族"),
    ],
)
def test_ethnicity(raw: str, expected: str) -> None:
    assert normalize_value(FieldKind.ETHNICITY, raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("居民身份证", "resident_id"),
        ("身份证", "resident_id"),
        ("临时居民身份证", "resident_id"),
        ("resident_id", "resident_id"),
        ("外国人永久居留身份证", "other"),
        ("港澳台居民居住证", "other"),
        ("护照", "other"),
        ("军官证", "other"),
        ("其他", "other"),
        ("身分正", "身分正"),
    ],
)
def test_id_type(raw: str, expected: str) -> None:
    assert normalize_value(FieldKind.ID_TYPE, raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("11010519491231002X", "11010519491231002X"),
        ("11010519491231002x", "11010519491231002X"),
        ("110105 19491231 002X", "11010519491231002X"),
        ("１１０１０５１９４９１２３１００２ｘ", "11010519491231002X"),
    ],
)
def test_resident_id(raw: str, expected: str) -> None:
    assert normalize_value(FieldKind.RESIDENT_ID, raw) == expected


def test_normalize_fields_foreign_card() -> None:
    card_type = load_card_type("foreign_guest")
    raw = {
        "card_serial": "No. ００１２３４５",
        "surname": "smith",
        "given_names": "john  paul",
        "sex": "☑M □F",
        "date_of_birth": "12/03/1985",
        "nationality": "美国",
        "document_type": "护照",
        "document_number": "E 1234 5678",
        "visa_type": "L字",
        "arrival_date": "2024年6月1日",
        "departure_date": "5 JUN 2024",
        "room_number": "a305",
        "not_a_field": "ignored",
    }

    clean = normalize_fields(card_type, raw)

    assert set(clean) == set(card_type.keys)
    assert clean["card_serial"] == "0012345"
    assert clean["surname"] == "SMITH"
    assert clean["given_names"] == "JOHN PAUL"
    assert clean["sex"] == "M"
    assert clean["date_of_birth"] == "1985-03-12"
    assert clean["nationality"] == "USA"
    assert clean["document_type"] == "passport"
    assert clean["document_number"] == "E12345678"
    assert clean["visa_type"] == "L"
    assert clean["arrival_date"] == "2024-06-01"
    assert clean["departure_date"] == "2024-06-05"
    assert clean["room_number"] == "A305"
    assert clean["chinese_name"] == ""
    assert clean["valid_until"] == ""
    assert "not_a_field" not in clean


def test_normalize_fields_domestic_card() -> None:
    card_type = load_card_type("domestic_guest")
    raw = {
        "name": " 张三 ",
        "sex": "女",
        "ethnicity": "汉族",
        "date_of_birth": "1949年12月31日",
        "id_type": "居民身份证",
        "id_number": "110105 19491231 002x",
    }

    clean = normalize_fields(card_type, raw)

    assert set(clean) == set(card_type.keys)
    assert clean["name"] == "张三"
    assert clean["sex"] == "F"
    assert clean["ethnicity"] == "汉"
    assert clean["date_of_birth"] == "1949-12-31"
    assert clean["id_type"] == "resident_id"
    assert clean["id_number"] == "11010519491231002X"
    assert clean["card_serial"] == ""


def test_normalize_fields_month_first() -> None:
    card_type = load_card_type("foreign_guest")

    clean = normalize_fields(card_type, {"date_of_birth": "03/12/1985"}, day_first=False)

    assert clean["date_of_birth"] == "1985-03-12"
