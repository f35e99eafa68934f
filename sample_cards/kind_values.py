"""Field values for card types defined in a data file, chosen by each field's kind and label.

The built-in card types get their values from :mod:`sample_cards.values`.
Any other card type gets one coherent guest (a foreign guest when the card
has a foreign-document field, else a domestic guest) whose values are mapped
onto the card's fields by kind. Key and label words pick the role within a
kind, e.g. which date is the date of birth. Every value passes the rule of its
kind in ``ocr.validate``, and the dates pass the cross-field rules that the
built-in card types use (birth in the past, entry <= arrival <= departure <=
valid until).
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from models.card_type import CardTypeSpec, FieldKind, FieldSpec
from sample_cards import data
from sample_cards.values import (
    DOCUMENT_TYPE_WRITTEN,
    ID_TYPE_WRITTEN,
    VISA_TYPE_WRITTEN,
    CardValues,
    _card_serial,
    _chinese_name,
    _DateWriter,
    _domestic_values,
    _foreign_values,
    _room_number,
    _street_address,
    _weighted,
    _written_nationality,
    resident_id_check_char,
)

__all__ = ["make_values_by_kind"]

# Kinds that only a foreign guest's card carries, and kinds of a mainland resident's card.
FOREIGN_KINDS = frozenset(
    {
        FieldKind.LATIN_NAME,
        FieldKind.NATIONALITY,
        FieldKind.DOCUMENT_TYPE,
        FieldKind.DOCUMENT_NUMBER,
        FieldKind.VISA_TYPE,
        FieldKind.VISA_NUMBER,
    }
)

# Words in a field's key or label that give a text field its role, first match wins.
TEXT_ROLES = (
    ("address", ("address", "住址", "地址", "户籍")),
    ("phone", ("phone", "tel", "mobile", "电话", "手机")),
    ("plate", ("plate", "车牌")),
    ("purpose", ("purpose", "object", "事由", "目的")),
    ("port", ("port", "口岸")),
    ("company", ("received", "company", "employer", "unit", "单位", "公司")),
    ("companions", ("companion", "同行", "人数")),
    ("name", ("name", "clerk", "receptionist", "姓名", "接待员", "经办", "签名")),
)
# Words that pick the date a date field holds, first match wins; other dates are the arrival date.
DATE_ROLES = (
    ("date_of_birth", ("birth", "出生")),
    ("departure_date", ("depart", "check_out", "checkout", "离店", "退房")),
    ("entry_date", ("entry", "入境")),
    ("valid_until", ("valid", "expir", "有效")),
    ("issue_date", ("issue", "签发")),
    ("arrival_date", ("arriv", "check_in", "checkin", "抵店", "入住")),
)
REMARKS = ("无", "商务出差", "公司预订", "会议", "同行两人", "续住")
PLATE_PROVINCES = "京沪粤浙苏川鄂陕"
PLATE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def make_values_by_kind(card_type: CardTypeSpec, rng: random.Random, *, style: str) -> CardValues:
    """Draw plausible values for every field of ``card_type`` from the field kinds and labels.

    Returns clean values as the card specification writes them and the written
    forms (``男``, ``1985年3月12日``, ``护照`` ...). Dates are written year first,
    so they read the same whether a reader takes slashes as day first or not.
    """
    foreign = any(spec.kind in FOREIGN_KINDS for spec in card_type.fields)
    if foreign:
        guest, dates = _foreign_values(rng)
        guest["address"] = rng.choice(data.ADDRESS_REGIONS)[1] + _street_address(rng)
    else:
        guest, dates = _domestic_values(rng)
    dates = _complete_dates(dates, rng)
    guest.setdefault("id_number", _resident_id(rng, dates["date_of_birth"], guest["sex"]))

    clean: dict[str, str] = {}
    written: dict[str, str] = {}
    writer = _DateWriter(rng, style, day_first_allowed=False)
    serial_used = False
    for spec in card_type.fields:
        if spec.kind is FieldKind.DATE:
            day = dates[_role(spec, DATE_ROLES, "arrival_date")]
            clean[spec.key] = day.isoformat()
            written[spec.key] = writer.write(day)
            continue
        if spec.kind is FieldKind.SERIAL:
            # The first serial field is the card's pre-printed number, the others are numbers of their own.
            value = guest["card_serial"] if not serial_used else _card_serial(rng)
            serial_used = True
        else:
            value = _clean_value(spec, guest, rng)
        clean[spec.key] = value
        written[spec.key] = _written_form(spec.kind, value, rng, style)
    return CardValues(clean, written)


def _words(spec: FieldSpec) -> str:
    return f"{spec.key} {spec.label_zh} {spec.label_en}".lower()


def _role(spec: FieldSpec, roles: tuple[tuple[str, tuple[str, ...]], ...], default: str) -> str:
    words = _words(spec)
    for role, hints in roles:
        if any(hint in words for hint in hints):
            return role
    return default


def _complete_dates(dates: dict[str, date | None], rng: random.Random) -> dict[str, date]:
    """Add the dates a domestic guest lacks, keeping entry <= arrival <= departure <= valid until."""
    arrival = dates["arrival_date"]
    departure = dates["departure_date"]
    complete = {key: value for key, value in dates.items() if value is not None}
    complete.setdefault("entry_date", arrival - timedelta(days=rng.randint(0, 3)))
    complete.setdefault("valid_until", departure + timedelta(days=rng.randint(30, 1800)))
    complete["issue_date"] = arrival - timedelta(days=rng.randint(200, 3000))
    return complete


def _resident_id(rng: random.Random, birth: date, sex: str) -> str:
    region_code = rng.choice(data.ADDRESS_REGIONS)[0]
    first17 = region_code + birth.strftime("%Y%m%d") + f"{rng.randint(0, 99):02d}"
    first17 += rng.choice("13579" if sex == "M" else "02468")
    return first17 + resident_id_check_char(first17)


def _clean_value(spec: FieldSpec, guest: dict[str, str], rng: random.Random) -> str:
    kind = spec.kind
    if kind is FieldKind.LATIN_NAME:
        return _latin_name(spec, guest, rng)
    if kind is FieldKind.TEXT:
        return _text_value(spec, guest, rng)
    if kind is FieldKind.NATIONALITY:
        return guest.get("nationality", "CHN")
    if kind is FieldKind.DOCUMENT_TYPE:
        return guest.get("document_type", "passport")
    if kind is FieldKind.ETHNICITY:
        return guest.get("ethnicity") or _weighted(rng, data.ETHNICITIES)
    if kind is FieldKind.ID_TYPE:
        return "resident_id"
    if kind is FieldKind.ROOM:
        return guest["room_number"]
    if kind is FieldKind.SEX:
        return guest["sex"]
    if kind is FieldKind.RESIDENT_ID:
        return guest["id_number"]
    # The rest are document and visa numbers, which only the foreign guest has.
    if kind is FieldKind.DOCUMENT_NUMBER:
        return guest["document_number"]
    if kind is FieldKind.VISA_TYPE:
        return guest["visa_type"]
    if kind is FieldKind.VISA_NUMBER:
        return guest["visa_number"]
    raise ValueError(f"no value generator for field kind {kind!r} of field {spec.key!r}")


def _latin_name(spec: FieldSpec, guest: dict[str, str], rng: random.Random) -> str:
    given = any(hint in _words(spec) for hint in ("given", "first", "英文名"))
    if "surname" in guest:
        return guest["given_names"] if given else guest["surname"]
    # A mainland guest's romanised name: the Wade-Giles list is the closest one in the word lists.
    surnames, male, female = data.LATIN_NAMES["taiwanese"]
    if given:
        return rng.choice(male if guest["sex"] == "M" else female)
    return rng.choice(surnames)


def _text_value(spec: FieldSpec, guest: dict[str, str], rng: random.Random) -> str:
    role = _role(spec, TEXT_ROLES, "remark")
    if role == "address":
        return guest["address"]
    if role == "phone":
        return "1" + rng.choice("3589") + "".join(rng.choice("0123456789") for _ in range(9))
    if role == "plate":
        return rng.choice(PLATE_PROVINCES) + "".join(rng.choice(PLATE_CHARS) for _ in range(6))
    if role == "purpose":
        return guest.get("purpose_of_stay") or rng.choice(("旅游", "商务", "探亲", "会议"))
    if role == "port":
        return guest.get("entry_port") or rng.choice(data.AIRPORTS)[0]
    if role == "company":
        return rng.choice(data.RECEIVING_UNITS)
    if role == "companions":
        return str(rng.randint(0, 3))
    if role == "name":
        if spec.key in ("name", "chinese_name") and (guest.get("name") or guest.get("chinese_name")):
            return guest.get("name") or guest["chinese_name"]
        return _chinese_name(rng, rng.choice("MF"))
    return rng.choice(REMARKS)


def _written_form(kind: FieldKind, value: str, rng: random.Random, style: str) -> str:
    if kind is FieldKind.SEX:
        if rng.random() < 0.4:
            return value
        return "男" if value == "M" else "女"
    if kind is FieldKind.NATIONALITY:
        if value in data.COUNTRIES:
            return _written_nationality(rng, value, style)
        return rng.choice((value, "中国")) if value == "CHN" else value
    if kind is FieldKind.DOCUMENT_TYPE and value in DOCUMENT_TYPE_WRITTEN:
        return _weighted(rng, DOCUMENT_TYPE_WRITTEN[value])
    if kind is FieldKind.VISA_TYPE and value in VISA_TYPE_WRITTEN:
        return _weighted(rng, VISA_TYPE_WRITTEN[value])
    if kind is FieldKind.ID_TYPE:
        return _weighted(rng, ID_TYPE_WRITTEN[value])
    if kind is FieldKind.ETHNICITY:
        return value + "族" if rng.random() < 0.5 else value
    return value
