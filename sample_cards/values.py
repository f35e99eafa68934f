"""Field values of a synthetic card: the clean truth and the form written on the card.

Clean values follow the card specification (ISO dates, ``M``/``F``, ISO 3166
alpha-3 nationality, document and visa codes). The written form is what the
guest or clerk puts on paper: ``1985年3月12日``, ``男``, ``美国``, ``护照``,
``免签`` and so on. Values are valid by the specification unless an invalid
value was injected on purpose, and then the key is listed in ``invalid_fields``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from sample_cards import data

__all__ = [
    "CardValues",
    "DATE_FORMATS",
    "REFERENCE_DATE",
    "SUPPORTED_CARD_TYPES",
    "format_date",
    "make_values",
    "resident_id_check_char",
]

# Arrival dates fall in the two years before this fixed day, so the output
# of a seed does not depend on the day the generator runs.
REFERENCE_DATE = date(2026, 6, 30)

SUPPORTED_CARD_TYPES = ("foreign_guest", "domestic_guest")

RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

MONTH_ABBREVIATIONS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

# Written date formats. "dmy_slash" and "dmy_month" are day-first and appear
# only on foreign cards, where the specification reads day-first.
DATE_FORMATS = ("iso", "ymd_short", "ymd_dot", "ymd_cjk", "dmy_slash", "dmy_month")
DAY_FIRST_FORMATS = ("dmy_slash", "dmy_month")

# Format weights per style: a card's writer keeps one main format (see
# _DateWriter), mostly formats that OCR reads without trouble.
DATE_FORMAT_WEIGHTS = {
    "printed": {"iso": 50, "ymd_cjk": 20, "ymd_dot": 15, "dmy_month": 15},
    "handwriting": {"iso": 25, "ymd_short": 20, "ymd_dot": 20, "ymd_cjk": 20, "dmy_slash": 8, "dmy_month": 7},
}

# Chinese visa categories by share among passport holders who need a visa.
VISA_WEIGHTS = {"L": 45, "M": 25, "Z": 8, "RESIDENCE": 8, "F": 5, "Q2": 3, "X1": 3, "S2": 1, "C": 1, "GROUP": 2}
VISA_FREE_COUNTRIES = ("SGP", "JPN", "KOR", "DEU", "FRA", "ITA", "AUS", "THA")
TRANSIT_VISA_FREE_COUNTRIES = ("USA", "CAN", "GBR", "RUS")

PURPOSE_BY_VISA = {
    "L": ("旅游", "旅游", "Tourism"),
    "VISA_FREE": ("旅游", "商务", "Tourism"),
    "GROUP": ("旅游",),
    "M": ("商务", "商务", "Business"),
    "F": ("访问", "交流"),
    "Z": ("工作",),
    "RESIDENCE": ("工作", "居住"),
    "X1": ("学习",),
    "Q2": ("探亲",),
    "S2": ("探亲",),
    "C": ("乘务",),
}

DOCUMENT_TYPE_WRITTEN = {
    "passport": (("护照", 50), ("PASSPORT", 35), ("Passport", 15)),
    # Not "港澳通行证": that name usually means the mainland residents' permit for visiting HK and Macao.
    "hk_macao_permit": (("港澳居民来往内地通行证", 55), ("回乡证", 45)),
    "taiwan_permit": (("台湾居民来往大陆通行证", 40), ("台胞证", 60)),
    "permanent_residence_id": (("外国人永久居留身份证", 60), ("永久居留身份证", 40)),
}
VISA_TYPE_WRITTEN = {
    "VISA_FREE": (("免签", 70), ("VISA FREE", 30)),
    "RESIDENCE": (("居留许可", 70), ("RESIDENCE", 30)),
    "GROUP": (("团体签证", 60), ("团签", 40)),
}
# A temporary resident ID carries the same 18-character number, so it counts as resident_id.
ID_TYPE_WRITTEN = {
    "resident_id": (("居民身份证", 58), ("身份证", 38), ("临时身份证", 4)),
}

# ISO 3166-1 numeric codes, used in the 18-digit permanent-residence ID.
NUMERIC_COUNTRY_CODES = {
    "USA": "840", "JPN": "392", "KOR": "410", "DEU": "276", "GBR": "826", "FRA": "250", "RUS": "643",
    "AUS": "036", "CAN": "124", "SGP": "702", "ITA": "380", "THA": "764",
}

UPPER_NO_IO = "ABCDEFGHJKLMNPRSTUVWXYZ"
# German passport serials use consonants and digits only.
GERMAN_SERIAL_CHARS = "CFGHJKLMNPRTVWXYZ0123456789"


@dataclass
class CardValues:
    """Values of one card: clean truth, written form, and the keys made invalid on purpose."""

    fields: dict[str, str]
    written: dict[str, str]
    invalid_fields: list[str] = field(default_factory=list)
    # Key -> name of the rule its injected value breaks, e.g. "departure_before_arrival".
    invalid_reasons: dict[str, str] = field(default_factory=dict)


def resident_id_check_char(first17: str) -> str:
    """Return the GB 11643-1999 check character for the first 17 digits of an ID number."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError(f"expected 17 digits, got {first17!r}")
    total = sum(int(digit) * weight for digit, weight in zip(first17, RESIDENT_ID_WEIGHTS, strict=True))
    check = (12 - total % 11) % 11
    return "X" if check == 10 else str(check)


def format_date(value: date, fmt: str) -> str:
    """Write ``value`` in one of DATE_FORMATS."""
    if fmt == "iso":
        return value.isoformat()
    if fmt == "ymd_short":
        return f"{value.year}-{value.month}-{value.day}"
    if fmt == "ymd_dot":
        return f"{value.year}.{value.month:02d}.{value.day:02d}"
    if fmt == "ymd_cjk":
        return f"{value.year}年{value.month}月{value.day}日"
    if fmt == "dmy_slash":
        return f"{value.day:02d}/{value.month:02d}/{value.year}"
    if fmt == "dmy_month":
        return f"{value.day:02d} {MONTH_ABBREVIATIONS[value.month - 1]} {value.year}"
    raise ValueError(f"unknown date format {fmt!r}; expected one of {', '.join(DATE_FORMATS)}")


def make_values(card_type: str, rng: random.Random, *, style: str, invalid_rate: float = 0.0) -> CardValues:
    """Draw the values of one card of ``card_type`` written in ``style``.

    With probability ``invalid_rate`` one value is replaced by an invalid one
    (wrong resident-ID check character, departure before arrival, ...). The
    truth then contains the invalid value as written and names it in
    ``invalid_fields``.
    """
    if card_type == "foreign_guest":
        clean, dates = _foreign_values(rng)
    elif card_type == "domestic_guest":
        clean, dates = _domestic_values(rng)
    else:
        raise ValueError(
            f"no value generator for card type {card_type!r}; supported: {', '.join(SUPPORTED_CARD_TYPES)}"
        )

    invalid_reasons: dict[str, str] = {}
    if invalid_rate > 0 and rng.random() < invalid_rate:
        invalid_reasons = _inject_invalid(card_type, clean, dates, rng)

    for key, value in dates.items():
        clean[key] = value.isoformat() if value else ""

    written = _written_forms(card_type, clean, dates, rng, style)
    return CardValues(clean, written, sorted(invalid_reasons), invalid_reasons)


def _weighted(rng: random.Random, pairs) -> str:
    items = list(pairs.items()) if isinstance(pairs, dict) else list(pairs)
    values = [item for item, _ in items]
    weights = [weight for _, weight in items]
    return rng.choices(values, weights=weights, k=1)[0]


def _from_pattern(rng: random.Random, pattern: str, letters: str = UPPER_NO_IO) -> str:
    """Expand a pattern: L a capital letter, D a digit, A a letter or digit, other characters as is."""
    out = []
    for symbol in pattern:
        if symbol == "L":
            out.append(rng.choice(letters))
        elif symbol == "D":
            out.append(rng.choice("0123456789"))
        elif symbol == "A":
            out.append(rng.choice(GERMAN_SERIAL_CHARS))
        else:
            out.append(symbol)
    return "".join(out)


def _birth_date(rng: random.Random, on: date, min_age: int, max_age: int) -> date:
    age_days = rng.randint(min_age * 365 + 1, max_age * 365 + 200)
    return on - timedelta(days=age_days)


def _arrival(rng: random.Random) -> date:
    return REFERENCE_DATE - timedelta(days=rng.randint(0, 730))


def _room_number(rng: random.Random) -> str:
    floor = rng.randint(2, 28)
    room = rng.randint(1, 40)
    if rng.random() < 0.2:
        return f"{rng.choice('ABC')}{floor}{room:02d}"
    return f"{floor}{room:02d}"


def _card_serial(rng: random.Random) -> str:
    return f"{rng.randint(1000, 99999):07d}"


def _chinese_given(rng: random.Random, sex: str) -> str:
    return rng.choice(data.CHINESE_GIVEN_MALE if sex == "M" else data.CHINESE_GIVEN_FEMALE)


def _chinese_name(rng: random.Random, sex: str) -> str:
    surname = rng.choice(("欧阳", "司马", "诸葛")) if rng.random() < 0.03 else rng.choice(data.CHINESE_SURNAMES)
    return surname + _chinese_given(rng, sex)


def _foreign_values(rng: random.Random) -> tuple[dict[str, str], dict[str, date | None]]:
    nationality = _weighted(rng, {code: info["weight"] for code, info in data.COUNTRIES.items()})
    country = data.COUNTRIES[nationality]
    sex = rng.choice("MF")
    surnames, male_names, female_names = data.LATIN_NAMES[country["names"]]
    surname = rng.choice(surnames)
    given_names = rng.choice(male_names if sex == "M" else female_names)

    arrival = _arrival(rng)
    if rng.random() < 0.05:
        birth = _birth_date(rng, arrival, 2, 17)
    else:
        birth = _birth_date(rng, arrival, 18, 82)
    entry_gap = _weighted(rng, {0: 50, 1: 20, 2: 8, 3: 6, 5: 6, 10: 5, 25: 5})
    entry = arrival - timedelta(days=entry_gap)
    nights = _weighted(rng, {1: 25, 2: 25, 3: 18, 4: 10, 5: 8, 7: 8, 10: 4, 14: 2})
    departure = arrival + timedelta(days=nights)

    visa_type = ""
    visa_number = ""
    if nationality in ("HKG", "MAC"):
        document_type = "hk_macao_permit"
        prefix = "H" if nationality == "HKG" else "M"
        digits = 10 if rng.random() < 0.6 else 8
        document_number = prefix + "".join(rng.choice("0123456789") for _ in range(digits))
        valid_until = arrival + timedelta(days=rng.randint(120, 3600))
        ports = data.HONG_KONG_PORTS if nationality == "HKG" else data.MACAO_PORTS
        entry_port = rng.choice(ports)
        purpose = rng.choice(("商务", "探亲", "旅游", "访友"))
    elif nationality == "TWN":
        document_type = "taiwan_permit"
        document_number = "".join(rng.choice("0123456789") for _ in range(8))
        valid_until = arrival + timedelta(days=rng.randint(120, 1800))
        entry_port = rng.choice(data.TAIWAN_PORTS)
        purpose = rng.choice(("商务", "探亲", "旅游", "访友"))
    else:
        entry_port = _foreign_entry_port(rng, nationality)
        if rng.random() < 0.03:
            document_type = "permanent_residence_id"
            document_number = _permanent_residence_id(rng, nationality, birth, sex)
            valid_until = arrival + timedelta(days=rng.randint(200, 3600))
            purpose = rng.choice(("工作", "探亲", "旅游"))
        else:
            document_type = "passport"
            document_number = _from_pattern(rng, rng.choice(country["passport"]))
            visa_type = _visa_type(rng, nationality)
            visa_number, valid_until = _visa_details(rng, visa_type, nationality, entry, arrival)
            if valid_until < arrival:
                # The permitted stay ran out before arrival: move entry closer to arrival.
                entry = arrival - timedelta(days=rng.randint(0, 2))
                visa_number, valid_until = _visa_details(rng, visa_type, nationality, entry, arrival)
            purpose = rng.choice(PURPOSE_BY_VISA[visa_type])
        if valid_until < departure:
            # Guests leave before their permitted stay ends.
            departure = valid_until

    chinese_name = _foreign_chinese_name(rng, nationality, surname, sex)
    received_by = rng.choice(data.RECEIVING_UNITS) if rng.random() < 0.45 else ""

    clean = {
        "card_serial": _card_serial(rng),
        "surname": surname,
        "given_names": given_names,
        "chinese_name": chinese_name,
        "sex": sex,
        "nationality": nationality,
        "document_type": document_type,
        "document_number": document_number,
        "visa_type": visa_type,
        "visa_number": visa_number,
        "entry_port": entry_port,
        "room_number": _room_number(rng),
        "purpose_of_stay": purpose,
        "received_by": received_by,
        "receptionist": _chinese_name(rng, rng.choice("MF")),
    }
    dates = {
        "date_of_birth": birth,
        "valid_until": valid_until,
        "entry_date": entry,
        "arrival_date": arrival,
        "departure_date": departure,
    }
    return clean, dates


def _foreign_entry_port(rng: random.Random, nationality: str) -> str:
    if nationality == "RUS" and rng.random() < 0.15:
        return rng.choice(("绥芬河", "满洲里", "黑河"))
    chinese, code = rng.choice(data.AIRPORTS)
    return code if rng.random() < 0.25 else chinese


def _permanent_residence_id(rng: random.Random, nationality: str, birth: date, sex: str) -> str:
    if rng.random() < 0.6:
        # 2017 card: nationality letters + 12 digits.
        return nationality + "".join(rng.choice("0123456789") for _ in range(12))
    # Card issued from 2023-12-01: 9, region, numeric country code, birth date,
    # serial with sex parity, check character as in the resident ID.
    first17 = (
        "9"
        + rng.choice(("11", "31", "44"))
        + NUMERIC_COUNTRY_CODES[nationality]
        + birth.strftime("%Y%m%d")
        + f"{rng.randint(0, 99):02d}"
        + rng.choice("13579" if sex == "M" else "02468")
    )
    return first17 + resident_id_check_char(first17)


def _visa_type(rng: random.Random, nationality: str) -> str:
    if nationality in VISA_FREE_COUNTRIES and rng.random() < 0.5:
        return "VISA_FREE"
    if nationality in TRANSIT_VISA_FREE_COUNTRIES and rng.random() < 0.1:
        return "VISA_FREE"
    if nationality == "RUS" and rng.random() < 0.25:
        return "GROUP"
    return _weighted(rng, VISA_WEIGHTS)


def _visa_details(
    rng: random.Random, visa_type: str, nationality: str, entry: date, arrival: date
) -> tuple[str, date]:
    """Return (visa number, last day of permitted stay) for a passport holder."""
    if visa_type == "VISA_FREE":
        # 240-hour transit for the transit countries, 30 days for unilateral visa-free entry.
        allowed = 10 if nationality in TRANSIT_VISA_FREE_COUNTRIES else 30
        return "", entry + timedelta(days=allowed)
    if visa_type in ("Z", "RESIDENCE", "X1"):
        number = _from_pattern(rng, rng.choice("EDF") + "DDDDDDDD")
        return number, arrival + timedelta(days=rng.randint(90, 1500))
    if visa_type == "GROUP":
        number = _from_pattern(rng, "TDDDDDDD") if rng.random() < 0.5 else ""
        return number, entry + timedelta(days=rng.choice((15, 30)))
    number = _from_pattern(rng, rng.choice("EDF") + "DDDDDDDD")
    return number, entry + timedelta(days=rng.choice((30, 30, 60, 90)))


def _foreign_chinese_name(rng: random.Random, nationality: str, surname: str, sex: str) -> str:
    chinese_surname = data.CHINESE_SURNAME_FOR_LATIN.get(surname)
    if nationality in ("HKG", "MAC", "TWN", "SGP") and chinese_surname and rng.random() < 0.85:
        return chinese_surname + _chinese_given(rng, sex)
    if nationality == "JPN" and surname in data.KANJI_SURNAMES and rng.random() < 0.3:
        return data.KANJI_SURNAMES[surname] + _chinese_given(rng, sex)
    if rng.random() < 0.05:
        # Long-term residents often have a Chinese name of their own.
        return _chinese_name(rng, sex)
    return ""


def _domestic_values(rng: random.Random) -> tuple[dict[str, str], dict[str, date | None]]:
    sex = rng.choice("MF")
    arrival = _arrival(rng)
    birth = _birth_date(rng, arrival, 2, 17) if rng.random() < 0.05 else _birth_date(rng, arrival, 18, 80)
    nights = _weighted(rng, {0: 5, 1: 40, 2: 25, 3: 12, 4: 8, 5: 5, 7: 5})
    region_code, region_name = rng.choice(data.ADDRESS_REGIONS)

    first17 = region_code + birth.strftime("%Y%m%d") + f"{rng.randint(0, 99):02d}"
    first17 += rng.choice("13579" if sex == "M" else "02468")
    id_number = first17 + resident_id_check_char(first17)

    clean = {
        "card_serial": _card_serial(rng),
        "name": _chinese_name(rng, sex),
        "sex": sex,
        "ethnicity": _weighted(rng, data.ETHNICITIES),
        # NOTE: "other" documents (passport, officer's ID) are never generated because the
        # id_number field is checked as an 18-character resident ID.
        "id_type": "resident_id",
        "id_number": id_number,
        "address": region_name + _street_address(rng),
        "room_number": _room_number(rng),
    }
    dates = {
        "date_of_birth": birth,
        "arrival_date": arrival,
        "departure_date": arrival + timedelta(days=nights),
    }
    return clean, dates


def _street_address(rng: random.Random) -> str:
    street = rng.choice(data.STREET_NAMES) + f"{rng.randint(1, 399)}号"
    layout = rng.random()
    if layout < 0.45:
        return street + f"{rng.randint(1, 30)}栋{rng.randint(1, 6)}单元{rng.randint(1, 28)}{rng.randint(1, 4):02d}室"
    if layout < 0.75:
        return street + f"{rng.randint(1, 12)}{rng.randint(1, 4):02d}室"
    return street


def _inject_invalid(
    card_type: str, clean: dict[str, str], dates: dict[str, date | None], rng: random.Random
) -> dict[str, str]:
    """Replace one value with an invalid one and return {key: broken rule}."""
    choices = ["departure_before_arrival"]
    if card_type == "domestic_guest":
        choices.append("resident_id_check")
    else:
        choices += ["entry_after_arrival", "valid_until_before_departure", "document_number_format"]
    rule = rng.choice(choices)

    arrival = dates["arrival_date"]
    if rule == "departure_before_arrival":
        dates["departure_date"] = arrival - timedelta(days=rng.randint(1, 5))
        return {"departure_date": rule}
    if rule == "entry_after_arrival":
        dates["entry_date"] = arrival + timedelta(days=rng.randint(1, 10))
        return {"entry_date": rule}
    if rule == "valid_until_before_departure":
        dates["valid_until"] = dates["departure_date"] - timedelta(days=rng.randint(1, 30))
        return {"valid_until": rule}
    if rule == "document_number_format":
        # Too short for any document: a passport number is 5-17 characters,
        # a permit a letter and 8 or 10 digits.
        clean["document_number"] = clean["document_number"][:4]
        return {"document_number": rule}
    wrong = [c for c in "0123456789X" if c != clean["id_number"][-1]]
    clean["id_number"] = clean["id_number"][:17] + rng.choice(wrong)
    return {"id_number": rule}


class _DateWriter:
    """One writer's date habit: a main format, with an occasional different one."""

    def __init__(self, rng: random.Random, style: str, day_first_allowed: bool) -> None:
        weights = dict(DATE_FORMAT_WEIGHTS[style])
        if not day_first_allowed:
            for fmt in DAY_FIRST_FORMATS:
                weights.pop(fmt, None)
        self.weights = weights
        self.main = _weighted(rng, weights)
        self.rng = rng

    def write(self, value: date | None) -> str:
        if value is None:
            return ""
        fmt = self.main if self.rng.random() < 0.85 else _weighted(self.rng, self.weights)
        return format_date(value, fmt)


def _written_forms(
    card_type: str, clean: dict[str, str], dates: dict[str, date | None], rng: random.Random, style: str
) -> dict[str, str]:
    written = dict(clean)
    writer = _DateWriter(rng, style, day_first_allowed=card_type == "foreign_guest")
    for key, value in dates.items():
        written[key] = writer.write(value)

    if card_type == "domestic_guest":
        written["sex"] = "男" if clean["sex"] == "M" else "女"
        ethnicity = clean["ethnicity"]
        written["ethnicity"] = ethnicity + "族" if rng.random() < 0.5 else ethnicity
        written["id_type"] = _weighted(rng, ID_TYPE_WRITTEN[clean["id_type"]])
        return written

    if rng.random() < 0.5:
        written["sex"] = clean["sex"]
    else:
        written["sex"] = "男" if clean["sex"] == "M" else "女"
    written["nationality"] = _written_nationality(rng, clean["nationality"], style)
    written["document_type"] = _weighted(rng, DOCUMENT_TYPE_WRITTEN[clean["document_type"]])
    if clean["visa_type"] in VISA_TYPE_WRITTEN:
        written["visa_type"] = _weighted(rng, VISA_TYPE_WRITTEN[clean["visa_type"]])
    if style == "handwriting" and rng.random() < 0.15:
        # Some guests ignore "block letters" and write their name in mixed case.
        written["surname"] = clean["surname"].title()
        written["given_names"] = clean["given_names"].title()
    return written


def _written_nationality(rng: random.Random, code: str, style: str) -> str:
    country = data.COUNTRIES[code]
    choice = _weighted(rng, {"code": 40, "en": 25, "zh": 30, "alias": 5})
    if choice == "code":
        return code
    if choice == "en":
        english = country["en"]
        return english.title() if style == "handwriting" and rng.random() < 0.4 else english
    if choice == "alias" and code in data.NATIONALITY_ALIASES:
        return rng.choice(data.NATIONALITY_ALIASES[code])
    return country["zh"]
