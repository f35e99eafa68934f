"""Candidates: look-alike swaps and other engines' readings offered to the reviewer, never applied."""

from __future__ import annotations

import json

import pytest

from ocr.candidates import MAX_CANDIDATES, candidates_for
from ocr.registry import load_registry
from ocr.validate import resident_id_check_char
from sample_cards import SAMPLES_DIR


@pytest.fixture(scope="module")
def foreign():
    return load_registry().card_type("foreign_guest")


@pytest.fixture(scope="module")
def domestic():
    return load_registry().card_type("domestic_guest")


def _truth(stem: str) -> dict[str, str]:
    return json.loads((SAMPLES_DIR / f"{stem}.json").read_text(encoding="utf-8"))["fields"]


def test_month_name_zero_for_o(foreign):
    values = dict(_truth("card_01_foreign_printed"), date_of_birth="13 0CT 1983")
    assert candidates_for(foreign, "date_of_birth", "13 0CT 1983", values) == ["1983-10-13"]


def test_digit_among_digits_ranked_first(foreign):
    values = dict(_truth("card_01_foreign_printed"), document_number="CW464S765")
    found = candidates_for(foreign, "document_number", "CW464S765", values)
    assert found[0] == "CW4645765"
    assert len(found) <= MAX_CANDIDATES


def test_resident_id_check_char_from_lookalike(domestic):
    values = _truth("card_03_domestic_printed")
    lookalikes = {"5": "S", "8": "B", "0": "O", "2": "Z"}
    # Vary the sequence digits (keeping the sex digit's parity) until the check character has a look-alike.
    original = values["id_number"]
    for sequence in range(10, 100):
        body = original[:14] + f"{sequence:02d}" + original[16]
        if resident_id_check_char(body) in lookalikes:
            break
    check = resident_id_check_char(body)
    misread = body + lookalikes[check]
    found = candidates_for(domestic, "id_number", misread, dict(values, id_number=misread))
    assert found[0] == body + check


def test_x_read_as_chinese_character(domestic):
    body = "11010519491231002"
    assert resident_id_check_char(body) == "X"
    values = dict(_truth("card_03_domestic_printed"), date_of_birth="1949-12-31", sex="F", id_number=body + "乂")
    assert candidates_for(domestic, "id_number", body + "乂", values) == [body + "X"]


def test_candidate_must_pass_cross_rules(domestic):
    values = _truth("card_03_domestic_printed")
    good = values["id_number"]
    # A swap inside the birth date digits would make a valid check character but a wrong birth date.
    for candidate in candidates_for(domestic, "id_number", good[:17] + "Z", dict(values, id_number=good[:17] + "Z")):
        assert candidate[6:14] == values["date_of_birth"].replace("-", "")


def test_current_value_never_offered(foreign):
    values = _truth("card_01_foreign_printed")
    found = candidates_for(foreign, "document_number", values["document_number"], values)
    assert values["document_number"] not in found


def test_other_engine_reading_first(foreign):
    values = dict(_truth("card_01_foreign_printed"), room_number="B1G32")
    found = candidates_for(foreign, "room_number", "B1G32", values, other_reads=["B1632"])
    assert found[0] == "B1632"


def test_free_text_gets_no_swaps(foreign):
    values = dict(_truth("card_01_foreign_printed"), surname="T0NAKA")
    assert candidates_for(foreign, "surname", "T0NAKA", values) == []


def test_invalid_swaps_not_offered(foreign):
    values = dict(_truth("card_01_foreign_printed"), arrival_date="2025-I2-15")
    for candidate in candidates_for(foreign, "arrival_date", "2025-I2-15", values):
        assert candidate <= values["departure_date"]


def test_nationality_near_miss_offered(foreign):
    values = dict(_truth("card_01_foreign_printed"), nationality="UNTIED STATES")
    assert candidates_for(foreign, "nationality", "UNTIED STATES", values)[0] == "USA"


def test_visa_type_near_miss_offered(foreign):
    truth = _truth("card_01_foreign_printed")
    assert truth["document_type"] == "passport"
    values = dict(truth, visa_type="VISA FRE")
    assert "VISA_FREE" in candidates_for(foreign, "visa_type", "VISA FRE", values)


def test_vocabulary_never_replaces_value(foreign):
    """A near miss is normalised to itself, so validation flags it and only the candidate list holds the entry."""
    from ocr.normalize import normalize_value
    from ocr.validate import validate_value

    spec = foreign.field("nationality")
    value = normalize_value(spec.kind, "UNTIED STATES")
    assert value == "UNTIED STATES"
    assert validate_value(spec, value)
    assert normalize_value(spec.kind, "United States") == "USA"


def test_far_read_gets_no_vocabulary_entry():
    from models.card_type import FieldKind
    from ocr.vocab import nearest_entries

    assert nearest_entries(FieldKind.NATIONALITY, "XQZW") == []
    assert nearest_entries(FieldKind.VISA_TYPE, "") == []
    assert nearest_entries(FieldKind.DOCUMENT_NUMBER, "USA") == []
