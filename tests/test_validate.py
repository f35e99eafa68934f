"""Tests of ocr.validate: per-field rules, cross-field rules and whole-card validation."""

from __future__ import annotations

import datetime
import json
import random
import re
from pathlib import Path

import pytest

from models.card_type import CardTypeSpec, FieldKind, FieldSpec
from ocr.errors import TemplateError
from ocr.normalize import normalize_value
from ocr.validate import (
    CATEGORY_LABELS_ZH,
    CROSS_RULES,
    Problem,
    guest_category,
    resident_id_check_char,
    validate_card,
    validate_value,
)

CARD_TYPES = Path(__file__).resolve().parent.parent / "ocr" / "card_types"
TODAY = datetime.date(2024, 6, 15)
# A widely published valid sample of a resident ID (Beijing Chaoyang, born 1949-12-31, female).
PUBLISHED_ID = "11010519491231002X"


def load_card_type(name: str) -> CardTypeSpec:
    return CardTypeSpec.model_validate_json((CARD_TYPES / f"{name}.json").read_text(encoding="utf-8"))


def independent_check_char(body: str) -> str:
    """Compute the MOD 11-2 check character from its definition (weight = 2^(17-i) mod 11)."""
    total = sum(int(digit) * (2 ** (17 - index) % 11) for index, digit in enumerate(body))
    return "10X98765432"[total % 11]


def with_check(body: str) -> str:
    return body + independent_check_char(body)


def wrong_check(body: str) -> str:
    right = independent_check_char(body)
    return body + ("0" if right != "0" else "1")


def spec(kind: FieldKind, key: str = "field", required: bool = True) -> FieldSpec:
    return FieldSpec(key=key, label_zh="字段", label_en="Field", kind=kind, required=required)


def codes(problems: list[Problem]) -> list[str]:
    return [problem.code for problem in problems]


def foreign_card(**changes: str) -> dict[str, str]:
    values = {
        "card_serial": "0012345",
        "surname": "SMITH",
        "given_names": "JOHN PAUL",
        "chinese_name": "",
        "sex": "M",
        "date_of_birth": "1985-03-12",
        "nationality": "USA",
        "document_type": "passport",
        "document_number": "E12345678",
        "visa_type": "L",
        "visa_number": "",
        "valid_until": "2024-07-30",
        "entry_date": "2024-06-01",
        "entry_port": "上海浦东",
        "arrival_date": "2024-06-01",
        "departure_date": "2024-06-05",
        "room_number": "A305",
        "purpose_of_stay": "旅游",
        "received_by": "",
        "receptionist": "王芳",
    }
    values.update(changes)
    return values


def domestic_card(**changes: str) -> dict[str, str]:
    values = {
        "card_serial": "0000123",
        "name": "张三",
        "sex": "F",
        "ethnicity": "汉",
        "date_of_birth": "1949-12-31",
        "id_type": "resident_id",
        "id_number": PUBLISHED_ID,
        "address": "北京市朝阳区",
        "arrival_date": "2024-06-14",
        "departure_date": "2024-06-16",
        "room_number": "1208",
    }
    values.update(changes)
    return values


# --- resident ID check character ----------------------------------------------------


def test_check_char_published_sample() -> None:
    assert resident_id_check_char(PUBLISHED_ID[:17]) == "X"


def test_check_char_matches_independent() -> None:
    generator = random.Random(11643)
    for _ in range(2000):
        body = "".join(generator.choice("0123456789") for _ in range(17))
        assert resident_id_check_char(body) == independent_check_char(body), body


@pytest.mark.parametrize("body", ["", "1234567890123456", "123456789012345678", "1101051949123100A", "１１０１０５１９４９１２３１００２"])
def test_check_char_rejects_bad_body(body: str) -> None:
    with pytest.raises(ValueError):
        resident_id_check_char(body)


# --- per-field rules ----------------------------------------------------------------

VALID_2023_PR = with_check("91234119850312001")

FIELD_CASES = [
    # (kind, value, expected problem codes)
    (FieldKind.SERIAL, "0012345", []),
    (FieldKind.SERIAL, "00I2345", ["invalid_serial"]),
    (FieldKind.SERIAL, "12-345", ["invalid_serial"]),
    (FieldKind.LATIN_NAME, "SMITH", []),
    (FieldKind.LATIN_NAME, "JOHN PAUL", []),
    (FieldKind.LATIN_NAME, "O'BRIEN", []),
    (FieldKind.LATIN_NAME, "SMITH-JONES", []),
    (FieldKind.LATIN_NAME, "SM1TH", ["invalid_latin_name"]),
    (FieldKind.LATIN_NAME, "Smith", ["invalid_latin_name"]),
    (FieldKind.LATIN_NAME, "MÜLLER", ["invalid_latin_name"]),
    (FieldKind.LATIN_NAME, "史密斯", ["invalid_latin_name"]),
    (FieldKind.LATIN_NAME, "-SMITH", ["invalid_latin_name"]),
    (FieldKind.TEXT, "上海浦东", []),
    (FieldKind.SEX, "M", []),
    (FieldKind.SEX, "F", []),
    (FieldKind.SEX, "男 女", ["invalid_sex"]),
    (FieldKind.SEX, "X", ["invalid_sex"]),
    (FieldKind.DATE, "1985-03-12", []),
    (FieldKind.DATE, "2000-02-29", []),
    (FieldKind.DATE, "1900-02-29", ["invalid_date"]),
    (FieldKind.DATE, "1985-02-30", ["invalid_date"]),
    (FieldKind.DATE, "1985-3-12", ["invalid_date"]),
    (FieldKind.DATE, "1985-3", ["invalid_date"]),
    (FieldKind.DATE, "12/03/85", ["invalid_date"]),
    (FieldKind.NATIONALITY, "USA", []),
    (FieldKind.NATIONALITY, "HKG", []),
    (FieldKind.NATIONALITY, "MAC", []),
    (FieldKind.NATIONALITY, "TWN", []),
    (FieldKind.NATIONALITY, "XYZ", ["unknown_nationality"]),
    (FieldKind.NATIONALITY, "usa", ["unknown_nationality"]),
    (FieldKind.NATIONALITY, "Korea", ["unknown_nationality"]),
    (FieldKind.DOCUMENT_TYPE, "passport", []),
    (FieldKind.DOCUMENT_TYPE, "hk_macao_permit", []),
    (FieldKind.DOCUMENT_TYPE, "taiwan_permit", []),
    (FieldKind.DOCUMENT_TYPE, "permanent_residence_id", []),
    (FieldKind.DOCUMENT_TYPE, "other", []),
    (FieldKind.DOCUMENT_TYPE, "护昭", ["unknown_document_type"]),
    (FieldKind.DOCUMENT_NUMBER, "E12345678", []),
    (FieldKind.DOCUMENT_NUMBER, "E1234S678", []),
    (FieldKind.DOCUMENT_NUMBER, "A1234", []),
    (FieldKind.DOCUMENT_NUMBER, "A" * 17, []),
    (FieldKind.DOCUMENT_NUMBER, "A123", ["invalid_document_number"]),
    (FieldKind.DOCUMENT_NUMBER, "A" * 19, ["invalid_document_number"]),
    (FieldKind.DOCUMENT_NUMBER, "912345199001011234", []),
    (FieldKind.DOCUMENT_NUMBER, "E1234-5678", ["invalid_document_number"]),
    (FieldKind.DOCUMENT_NUMBER, "e12345678", ["invalid_document_number"]),
    (FieldKind.VISA_TYPE, "L", []),
    (FieldKind.VISA_TYPE, "Q2", []),
    (FieldKind.VISA_TYPE, "VISA_FREE", []),
    (FieldKind.VISA_TYPE, "RESIDENCE", []),
    (FieldKind.VISA_TYPE, "GROUP", []),
    (FieldKind.VISA_TYPE, "B1", ["unknown_visa_type"]),
    (FieldKind.VISA_TYPE, "J3", ["unknown_visa_type"]),
    (FieldKind.VISA_NUMBER, "123456789", []),
    (FieldKind.VISA_NUMBER, "12345 6789", ["invalid_number"]),
    (FieldKind.ROOM, "A305", []),
    (FieldKind.ETHNICITY, "汉", []),
    (FieldKind.ETHNICITY, "蒙古", []),
    (FieldKind.ETHNICITY, "Han", ["invalid_ethnicity"]),
    (FieldKind.ETHNICITY, "汊", ["unknown_ethnicity"]),
    (FieldKind.ID_TYPE, "resident_id", []),
    (FieldKind.ID_TYPE, "other", []),
    (FieldKind.ID_TYPE, "身分正", ["unknown_id_type"]),
    (FieldKind.RESIDENT_ID, PUBLISHED_ID, []),
    (FieldKind.RESIDENT_ID, with_check("44030119900101123"), []),
    (FieldKind.RESIDENT_ID, wrong_check("44030119900101123"), ["check_char_mismatch"]),
    (FieldKind.RESIDENT_ID, "11010519491231002", ["invalid_resident_id"]),
    (FieldKind.RESIDENT_ID, "11010519491231OO2X", ["invalid_resident_id"]),
    (FieldKind.RESIDENT_ID, "11010519491231002x", ["invalid_resident_id"]),
    (FieldKind.RESIDENT_ID, with_check("11010519491332002"), ["resident_id_invalid_birth_date"]),
]


@pytest.mark.parametrize(("kind", "value", "expected"), FIELD_CASES)
def test_field_rule(kind: FieldKind, value: str, expected: list[str]) -> None:
    assert codes(validate_value(spec(kind), value, today=TODAY)) == expected


@pytest.mark.parametrize("kind", list(FieldKind))
def test_required_empty_missing(kind: FieldKind) -> None:
    problems = validate_value(spec(kind, required=True), "", today=TODAY)

    assert codes(problems) == ["missing"]
    assert problems[0].field == "field"


@pytest.mark.parametrize("kind", list(FieldKind))
def test_optional_empty_passes(kind: FieldKind) -> None:
    assert validate_value(spec(kind, required=False), "", today=TODAY) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1985-03-12", []),
        ("2024-06-15", []),
        ("2024-06-16", ["date_of_birth_in_future"]),
        ("2030-01-01", ["date_of_birth_in_future"]),
        ("1904-06-15", []),
        ("1904-06-14", ["date_of_birth_too_old"]),
        ("1850-01-01", ["date_of_birth_too_old"]),
    ],
)
def test_date_of_birth_range(value: str, expected: list[str]) -> None:
    birth_spec = spec(FieldKind.DATE, key="date_of_birth")

    assert codes(validate_value(birth_spec, value, today=TODAY)) == expected


def test_other_dates_may_be_future() -> None:
    assert validate_value(spec(FieldKind.DATE, key="departure_date"), "2030-01-01", today=TODAY) == []


def test_wrong_check_char_message() -> None:
    # Valid format and birth date, one digit misread: only the check character reveals it.
    misread = PUBLISHED_ID[:15] + "3" + PUBLISHED_ID[16:]
    expected = independent_check_char(misread[:17])
    assert expected != "X"

    problems = validate_value(spec(FieldKind.RESIDENT_ID), misread, today=TODAY)

    assert codes(problems) == ["check_char_mismatch"]
    assert f"应为 {expected}" in problems[0].message_zh
    assert "卡上为 X" in problems[0].message_zh
    assert misread not in problems[0].message_zh
    assert misread not in problems[0].message_en


def test_resident_id_hint_names_position() -> None:
    problems = validate_value(spec(FieldKind.RESIDENT_ID), "1101051949123100BX", today=TODAY)

    assert codes(problems) == ["invalid_resident_id"]
    assert "第 17 位是 B" in problems[0].message_zh
    assert "position 17 is B" in problems[0].message_en


# --- cross-field rules --------------------------------------------------------------


def test_cross_rule_names_match_card_types() -> None:
    named = set()
    for path in CARD_TYPES.glob("*.json"):
        named.update(json.loads(path.read_text(encoding="utf-8"))["cross_rules"])

    assert set(CROSS_RULES) == named


def fields_of(problems: list[Problem], code: str) -> set[str]:
    return {problem.field for problem in problems if problem.code == code}


@pytest.mark.parametrize(
    ("arrival", "departure", "flagged"),
    [
        ("2024-06-01", "2024-06-05", False),
        ("2024-06-01", "2024-06-01", False),
        ("2024-06-05", "2024-06-01", True),
        ("2024-06-05", "", False),
        ("2024-06-05", "2024-6-1", False),
    ],
)
def test_departure_after_arrival(arrival: str, departure: str, flagged: bool) -> None:
    values = {"arrival_date": arrival, "departure_date": departure}

    problems = CROSS_RULES["departure_after_arrival"](values, TODAY)

    expected = {"arrival_date", "departure_date"} if flagged else set()
    assert fields_of(problems, "departure_before_arrival") == expected


@pytest.mark.parametrize(
    ("entry", "arrival", "flagged"),
    [
        ("2024-06-01", "2024-06-01", False),
        ("2024-05-20", "2024-06-01", False),
        ("2024-06-02", "2024-06-01", True),
        ("", "2024-06-01", False),
    ],
)
def test_entry_before_arrival(entry: str, arrival: str, flagged: bool) -> None:
    values = {"entry_date": entry, "arrival_date": arrival}

    problems = CROSS_RULES["entry_before_arrival"](values, TODAY)

    expected = {"entry_date", "arrival_date"} if flagged else set()
    assert fields_of(problems, "entry_after_arrival") == expected


@pytest.mark.parametrize(
    ("valid_until", "departure", "flagged"),
    [
        ("2024-07-30", "2024-06-05", False),
        ("2024-06-05", "2024-06-05", False),
        ("2024-06-04", "2024-06-05", True),
        ("", "2024-06-05", False),
        ("2024-06-04", "", False),
    ],
)
def test_valid_until_after_departure(valid_until: str, departure: str, flagged: bool) -> None:
    values = {"valid_until": valid_until, "departure_date": departure}

    problems = CROSS_RULES["valid_until_after_departure"](values, TODAY)

    expected = {"valid_until", "departure_date"} if flagged else set()
    assert fields_of(problems, "valid_until_before_departure") == expected


@pytest.mark.parametrize(
    ("birth", "expected"),
    [
        ("1985-03-12", []),
        ("2025-01-01", ["date_of_birth_in_future"]),
        ("1900-01-01", ["date_of_birth_too_old"]),
        ("", []),
        ("1985-3", []),
    ],
)
def test_date_of_birth_past(birth: str, expected: list[str]) -> None:
    problems = CROSS_RULES["date_of_birth_past"]({"date_of_birth": birth}, TODAY)

    assert codes(problems) == expected
    assert all(problem.field == "date_of_birth" for problem in problems)


DOCUMENT_NUMBER_CASES = [
    # (document_type, document_number, expected codes on document_number)
    ("hk_macao_permit", "H12345678", []),
    ("hk_macao_permit", "M12345678", []),
    ("hk_macao_permit", "H1234567890", []),
    ("hk_macao_permit", "H12345B78", ["document_number_format"]),
    ("hk_macao_permit", "H1234567", ["document_number_format"]),
    ("hk_macao_permit", "H123456789", ["document_number_format"]),
    ("hk_macao_permit", "K12345678", ["document_number_format"]),
    ("hk_macao_permit", "12345678", ["document_number_format"]),
    ("taiwan_permit", "12345678", []),
    ("taiwan_permit", "1234567890", []),
    ("taiwan_permit", "1234S678", ["document_number_format"]),
    ("taiwan_permit", "123456789", ["document_number_format"]),
    ("taiwan_permit", "T12345678", ["document_number_format"]),
    ("permanent_residence_id", "USA110012345678", []),
    ("permanent_residence_id", VALID_2023_PR, []),
    ("permanent_residence_id", wrong_check("91234119850312001"), ["check_char_mismatch"]),
    ("permanent_residence_id", with_check("81234119850312001"), ["document_number_format"]),
    ("permanent_residence_id", "US1110012345678", ["document_number_format"]),
    ("permanent_residence_id", "USA11001234567", ["document_number_format"]),
    ("passport", "E12345678", []),
    ("passport", "E1234S678", []),
    ("passport", "E123", ["invalid_document_number"]),
    ("other", "AB12", []),
    ("", "H12345B78", []),
]


@pytest.mark.parametrize(("document_type", "number", "expected"), DOCUMENT_NUMBER_CASES)
def test_document_number_format(document_type: str, number: str, expected: list[str]) -> None:
    values = {"document_type": document_type, "document_number": number}

    problems = CROSS_RULES["document_number_format"](values, TODAY)

    on_number = [problem for problem in problems if problem.field == "document_number"]
    assert codes(on_number) == expected


def test_document_number_format_on_both_fields() -> None:
    values = {"document_type": "hk_macao_permit", "document_number": "H12345B78"}

    problems = CROSS_RULES["document_number_format"](values, TODAY)

    assert fields_of(problems, "document_number_format") == {"document_number", "document_type"}


def test_permit_lookalike_flagged_not_fixed() -> None:
    number = normalize_value(FieldKind.DOCUMENT_NUMBER, "H12345B78")

    problems = CROSS_RULES["document_number_format"]({"document_type": "hk_macao_permit", "document_number": number}, TODAY)

    assert number == "H12345B78"
    assert codes(problems)[:1] == ["document_number_format"]
    assert "第 7 位是 B" in problems[0].message_zh
    assert "position 7 is B" in problems[0].message_en
    assert number not in problems[0].message_zh
    assert number not in problems[0].message_en


def test_hk_permit_wrong_first_letter_hint() -> None:
    problems = CROSS_RULES["document_number_format"]({"document_type": "hk_macao_permit", "document_number": "K12345678"}, TODAY)

    assert "第 1 位应为 H 或 M" in problems[0].message_zh


def test_permanent_residence_2023_check_char() -> None:
    body = "91234119850312001"
    expected = independent_check_char(body)
    values = {"document_type": "permanent_residence_id", "document_number": wrong_check(body)}

    problems = CROSS_RULES["document_number_format"](values, TODAY)

    assert codes(problems) == ["check_char_mismatch"]
    assert f"应为 {expected}" in problems[0].message_zh


VISA_CASES = [
    # (document_type, nationality, visa_type, expected codes on visa_type)
    ("hk_macao_permit", "HKG", "", []),
    ("taiwan_permit", "TWN", "", []),
    ("hk_macao_permit", "HKG", "L", ["visa_type_for_permit_holder"]),
    ("taiwan_permit", "TWN", "VISA_FREE", ["visa_type_for_permit_holder"]),
    ("passport", "USA", "L", []),
    ("passport", "USA", "VISA_FREE", []),
    ("passport", "USA", "", ["visa_type_missing"]),
    ("passport", "", "", ["visa_type_missing"]),
    ("passport", "HKG", "", []),
    ("permanent_residence_id", "USA", "", []),
    ("other", "USA", "", []),
]


@pytest.mark.parametrize(("document_type", "nationality", "visa_type", "expected"), VISA_CASES)
def test_visa_for_permit_holders(document_type: str, nationality: str, visa_type: str, expected: list[str]) -> None:
    values = {"document_type": document_type, "nationality": nationality, "visa_type": visa_type}

    problems = CROSS_RULES["visa_for_permit_holders"](values, TODAY)

    on_visa = [problem for problem in problems if problem.field == "visa_type"]
    assert codes(on_visa) == expected
    if expected:
        assert fields_of(problems, expected[0]) == {"visa_type", "document_type"}


MALE_ID = with_check("44030119900101123")  # digit 17 is 3: male
FEMALE_ID = with_check("44030119900101124")  # digit 17 is 4: female

RESIDENT_ID_CASES = [
    # (id_type, id_number, date_of_birth, sex, expected codes)
    ("resident_id", PUBLISHED_ID, "1949-12-31", "F", []),
    ("resident_id", PUBLISHED_ID, "1949-12-30", "F", ["resident_id_birth_date_mismatch"]),
    ("resident_id", PUBLISHED_ID, "1949-12-31", "M", ["resident_id_sex_mismatch"]),
    ("resident_id", MALE_ID, "1990-01-01", "M", []),
    ("resident_id", MALE_ID, "1990-01-01", "F", ["resident_id_sex_mismatch"]),
    ("resident_id", FEMALE_ID, "1990-01-01", "F", []),
    ("resident_id", FEMALE_ID, "1991-01-01", "M", ["resident_id_birth_date_mismatch", "resident_id_sex_mismatch"]),
    ("", MALE_ID, "1990-01-01", "F", ["resident_id_sex_mismatch"]),
    # Not comparable: another document, a malformed number, or empty or unclear fields.
    ("other", MALE_ID, "1991-01-01", "F", []),
    ("resident_id", "4403011990010112", "1991-01-01", "F", []),
    ("resident_id", MALE_ID, "", "", []),
    ("resident_id", MALE_ID, "1991-1-1", "男 女", []),
]


@pytest.mark.parametrize(("id_type", "number", "birth", "sex", "expected"), RESIDENT_ID_CASES)
def test_resident_id_matches(id_type: str, number: str, birth: str, sex: str, expected: list[str]) -> None:
    values = {"id_type": id_type, "id_number": number, "date_of_birth": birth, "sex": sex}

    problems = CROSS_RULES["resident_id_matches"](values, TODAY)

    on_number = [problem for problem in problems if problem.field == "id_number"]
    assert codes(on_number) == expected


def test_resident_id_mismatch_on_both_fields() -> None:
    values = {"id_type": "resident_id", "id_number": PUBLISHED_ID, "date_of_birth": "1949-12-30", "sex": "M"}

    problems = CROSS_RULES["resident_id_matches"](values, TODAY)

    assert fields_of(problems, "resident_id_birth_date_mismatch") == {"id_number", "date_of_birth"}
    assert fields_of(problems, "resident_id_sex_mismatch") == {"id_number", "sex"}


# --- whole card ---------------------------------------------------------------------


def test_valid_foreign_card_passes() -> None:
    card_type = load_card_type("foreign_guest")

    problems = validate_card(card_type, foreign_card(), today=TODAY)

    assert set(problems) == set(card_type.keys)
    assert all(field_problems == [] for field_problems in problems.values()), problems


def test_valid_domestic_card_passes() -> None:
    card_type = load_card_type("domestic_guest")

    problems = validate_card(card_type, domestic_card(), today=TODAY)

    assert set(problems) == set(card_type.keys)
    assert all(field_problems == [] for field_problems in problems.values()), problems


def test_foreign_card_problems_by_field() -> None:
    card_type = load_card_type("foreign_guest")
    values = foreign_card(
        surname="",
        departure_date="2024-05-30",
        document_type="hk_macao_permit",
        document_number="H12345B78",
        nationality="HKG",
    )

    problems = validate_card(card_type, values, today=TODAY)

    assert codes(problems["surname"]) == ["missing"]
    assert codes(problems["arrival_date"]) == ["departure_before_arrival"]
    assert "departure_before_arrival" in codes(problems["departure_date"])
    assert "valid_until_before_departure" not in codes(problems["departure_date"])
    assert codes(problems["document_number"]) == ["document_number_format"]
    assert codes(problems["visa_type"]) == ["visa_type_for_permit_holder"]
    assert set(codes(problems["document_type"])) == {"document_number_format", "visa_type_for_permit_holder"}
    assert problems["given_names"] == []


def test_missing_keys_treated_as_empty() -> None:
    card_type = load_card_type("foreign_guest")

    problems = validate_card(card_type, {}, today=TODAY)

    assert set(problems) == set(card_type.keys)
    assert codes(problems["surname"]) == ["missing"]
    assert problems["chinese_name"] == []


def test_date_of_birth_problem_listed_once() -> None:
    card_type = load_card_type("foreign_guest")

    problems = validate_card(card_type, foreign_card(date_of_birth="2030-01-01"), today=TODAY)

    assert codes(problems["date_of_birth"]) == ["date_of_birth_in_future"]


def test_passport_number_problem_listed_once() -> None:
    card_type = load_card_type("foreign_guest")

    problems = validate_card(card_type, foreign_card(document_number="E12"), today=TODAY)

    assert codes(problems["document_number"]) == ["invalid_document_number"]


def test_domestic_other_id_type_relaxes_rules() -> None:
    card_type = load_card_type("domestic_guest")
    values = domestic_card(id_type="other", id_number="810000199408230021")

    problems = validate_card(card_type, values, today=TODAY)

    assert problems["id_number"] == []


def test_domestic_other_id_type_still_checks_characters() -> None:
    card_type = load_card_type("domestic_guest")

    problems = validate_card(card_type, domestic_card(id_type="other", id_number="A12 345"), today=TODAY)

    assert codes(problems["id_number"]) == ["invalid_number"]


def test_domestic_wrong_check_char_flagged() -> None:
    card_type = load_card_type("domestic_guest")
    values = domestic_card(id_number=wrong_check(PUBLISHED_ID[:17]))

    problems = validate_card(card_type, values, today=TODAY)

    assert codes(problems["id_number"]) == ["check_char_mismatch"]


def test_unknown_cross_rule_raises() -> None:
    card_type = load_card_type("domestic_guest").model_copy(update={"cross_rules": ("no_such_rule",)})

    with pytest.raises(TemplateError) as raised:
        validate_card(card_type, domestic_card(), today=TODAY)

    assert "no_such_rule" in raised.value.message_zh


def test_default_today_is_current_date() -> None:
    card_type = load_card_type("domestic_guest")
    tomorrow = datetime.date.today() + datetime.timedelta(days=1)

    problems = validate_card(card_type, domestic_card(date_of_birth=tomorrow.isoformat()))

    assert "date_of_birth_in_future" in codes(problems["date_of_birth"])


# --- messages -----------------------------------------------------------------------

_HAS_CJK = re.compile(r"[\u4e00-\u9fff]")


def all_problems() -> list[Problem]:
    foreign = validate_card(
        load_card_type("foreign_guest"),
        {
            "card_serial": "00I2345",
            "surname": "SM1TH",
            "sex": "男 女",
            "date_of_birth": "2030-01-01",
            "nationality": "XYZ",
            "document_type": "hk_macao_permit",
            "document_number": "H12345B78",
            "visa_type": "B1",
            "visa_number": "12 34",
            "valid_until": "2024-06-01",
            "entry_date": "2024-06-09",
            "arrival_date": "2024-06-08",
            "departure_date": "2024-06-02",
        },
        today=TODAY,
    )
    domestic = validate_card(
        load_card_type("domestic_guest"),
        domestic_card(id_number=wrong_check("44030119900101123"), ethnicity="汊", id_type="身分正"),
        today=TODAY,
    )
    return [problem for result in (foreign, domestic) for field_problems in result.values() for problem in field_problems]


def test_messages_bilingual() -> None:
    problems = all_problems()

    assert len(problems) > 15
    for problem in problems:
        assert _HAS_CJK.search(problem.message_zh), problem
        assert not _HAS_CJK.search(problem.message_en.replace("汉", "").replace("回", "")), problem
        assert problem.message_en, problem


def test_messages_hide_numbers_and_names() -> None:
    secrets = ["H12345B78", "44030119900101123", "SM1TH", "00I2345"]

    for problem in all_problems():
        for secret in secrets:
            assert secret not in problem.message_zh, problem
            assert secret not in problem.message_en, problem


# --- guest category -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"document_type": "hk_macao_permit", "nationality": "HKG", "visa_type": ""}, "hk_macao_taiwan"),
        ({"document_type": "taiwan_permit", "nationality": "", "visa_type": ""}, "hk_macao_taiwan"),
        ({"document_type": "passport", "nationality": "MAC", "visa_type": "GROUP"}, "hk_macao_taiwan"),
        ({"document_type": "passport", "nationality": "USA", "visa_type": "GROUP"}, "group_visa"),
        ({"document_type": "passport", "nationality": "USA", "visa_type": "L"}, "foreign"),
        ({"document_type": "permanent_residence_id", "nationality": "DEU", "visa_type": ""}, "foreign"),
        ({}, "foreign"),
    ],
)
def test_guest_category(values: dict[str, str], expected: str) -> None:
    assert guest_category(values) == expected


def test_category_labels() -> None:
    assert CATEGORY_LABELS_ZH == {"foreign": "外宾", "hk_macao_taiwan": "港澳台", "group_visa": "团签"}
