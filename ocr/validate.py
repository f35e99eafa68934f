"""Validation of clean field values: per-field rules and cross-field rules.

Validation works on the output of :mod:`ocr.normalize` and never changes a value.
Each failed rule becomes a :class:`Problem` with a Chinese message for the reviewer
and an English one alongside. A field with a problem goes to review whatever its
OCR confidence. A cross-field problem is attached to every field it involves, so
the reviewer sees it next to each of them.

Messages may show a date or a single character (a check character, a misread
letter and its position) because the reviewer needs it to act, but never a whole
document number, ID number or name.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from models.card_type import CardTypeSpec, FieldKind, FieldSpec
from ocr.countries import is_country_code
from ocr.errors import TemplateError
from ocr.normalize import DOCUMENT_TYPES, ID_TYPES, VISA_TYPES

__all__ = [
    "CATEGORY_LABELS_ZH",
    "CONFIRMABLE_CODES",
    "CROSS_RULES",
    "ETHNIC_GROUPS",
    "Problem",
    "guest_category",
    "resident_id_check_char",
    "validate_card",
    "validate_value",
]

log = logging.getLogger(__name__)

CATEGORY_LABELS_ZH = {"foreign": "外宾", "hk_macao_taiwan": "港澳台", "group_visa": "团签"}

# The 56 ethnic groups as written on the resident ID card, without the 族 suffix.
ETHNIC_GROUPS = frozenset(
    "汉 蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 高山 拉祜 水 东乡 "
    "纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 普米 塔吉克 怒 乌孜别克 俄罗斯 鄂温克 "
    "德昂 保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺".split()
)

MAX_AGE_YEARS = 120

# Problem codes that a reviewer may confirm as true, with a written reason, so the card can be approved.
# They describe a real situation, not a misreading: a guest's visa or permitted stay can end before
# the booked departure. A departure before arrival, a birth date in the future or an invalid number
# format or check character is never true, so those rules are not listed and must be corrected.
CONFIRMABLE_CODES = frozenset({"valid_until_before_departure"})
PERMIT_TYPES = ("hk_macao_permit", "taiwan_permit")
HK_MACAO_TAIWAN = ("HKG", "MAC", "TWN")

# GB 11643-1999 weights of the 17 body digits (MOD 11-2).
_RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_DOCUMENT_TYPE_NAMES_ZH = {
    "passport": "护照",
    "hk_macao_permit": "港澳居民来往内地通行证",
    "taiwan_permit": "台湾居民来往大陆通行证",
    "permanent_residence_id": "外国人永久居留身份证",
    "other": "其他证件",
}
_LOOKALIKE_HINT_ZH = "注意 O/0、I/1、S/5、B/8、Z/2 等易混字符"
_LOOKALIKE_HINT_EN = "watch for look-alikes O/0, I/1, S/5, B/8, Z/2"

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DIGITS = re.compile(r"[0-9]+")
_LATIN_NAME = re.compile(r"[A-Z][A-Z' \-]*")
_CAPITALS_AND_DIGITS = re.compile(r"[A-Z0-9]+")
_GENERIC_DOCUMENT_NUMBER = re.compile(r"[A-Z0-9]{5,17}")
# Any document the card allows: up to 18 characters for the permanent-residence card issued since 2023-12-01.
# The document-type-specific format is checked by the cross-field rule.
_ANY_DOCUMENT_NUMBER = re.compile(r"[A-Z0-9]{5,18}")
_RESIDENT_ID = re.compile(r"[0-9]{17}[0-9X]")
_HK_MACAO_PERMIT = re.compile(r"[HM][0-9]{8}(?:[0-9]{2})?")
_TAIWAN_PERMIT = re.compile(r"[0-9]{8}(?:[0-9]{2})?")
_PERMANENT_RESIDENCE_2017 = re.compile(r"[A-Z]{3}[0-9]{12}")
_PERMANENT_RESIDENCE_2023 = re.compile(r"9[0-9]{16}[0-9X]")
_CJK = re.compile(r"[\u4e00-\u9fff]+")


@dataclass(frozen=True)
class Problem:
    """A rule that a field value fails, with the message the reviewer reads."""

    code: str
    field: str
    message_zh: str
    message_en: str


# --- shared helpers -----------------------------------------------------------------


def resident_id_check_char(first17: str) -> str:
    """Compute the GB 11643-1999 check character of a resident ID body of 17 digits.

    Check = (12 − Σ digit × weight mod 11) mod 11, and 10 is written ``X``. Raises
    ``ValueError`` when ``first17`` is not exactly 17 ASCII digits.
    """
    if len(first17) != 17 or not _DIGITS.fullmatch(first17):
        raise ValueError("a resident ID body is exactly 17 digits")
    total = sum(int(digit) * weight for digit, weight in zip(first17, _RESIDENT_ID_WEIGHTS))
    check = (12 - total % 11) % 11
    return "X" if check == 10 else str(check)


def _parse_iso(value: str) -> datetime.date | None:
    """Return the date of an ISO ``YYYY-MM-DD`` value, or ``None`` when it is not a real one."""
    if not _ISO_DATE.fullmatch(value):
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def _years_before(day: datetime.date, years: int) -> datetime.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def _digit_hint(value: str, start: int, end: int) -> tuple[str, str]:
    """Describe non-digits at positions ``start``..``end - 1`` that must be digits."""
    wrong = [(index + 1, char) for index, char in enumerate(value[:end]) if index >= start and char not in "0123456789"]
    if not wrong:
        return "", ""
    first_three = wrong[:3]
    zh = "、".join(f"第 {position} 位是 {char}" for position, char in first_three)
    en = ", ".join(f"position {position} is {char}" for position, char in first_three)
    return f"{zh}，此处应为数字；", f"{en} where a digit belongs; "


def _check_char_problems(field: str, number: str, what_zh: str, what_en: str) -> list[Problem]:
    expected = resident_id_check_char(number[:17])
    if number[17] == expected:
        return []
    return [
        Problem(
            "check_char_mismatch",
            field,
            f"{what_zh}校验位错误：应为 {expected}，卡上为 {number[17]}，请核对原卡（常见原因是某一位数字识读错误）",
            f"{what_en} check character is wrong: expected {expected}, the card shows {number[17]}; "
            "check the card, usually one digit was misread",
        )
    ]


def _date_of_birth_problems(field: str, birth: datetime.date, today: datetime.date) -> list[Problem]:
    if birth > today:
        return [
            Problem(
                "date_of_birth_in_future",
                field,
                "出生日期晚于今天，请核对原卡",
                "Date of birth is after today; check the card",
            )
        ]
    if birth < _years_before(today, MAX_AGE_YEARS):
        return [
            Problem(
                "date_of_birth_too_old",
                field,
                f"出生日期早于 {MAX_AGE_YEARS} 年前，请核对原卡",
                f"Date of birth is more than {MAX_AGE_YEARS} years ago; check the card",
            )
        ]
    return []


# --- per-field rules ----------------------------------------------------------------

_ValueRule = Callable[[FieldSpec, str, datetime.date], list[Problem]]


def _check_serial(spec: FieldSpec, value: str, today: datetime.date) -> list[Problem]:
    if _DIGITS.fullmatch(value):
        return []
    hint_zh, hint_en = _digit_hint(value, 0, len(value))
    return [
        Problem(
            "invalid_serial",
            spec.key,
            f"{spec.label_zh}应只含数字：{hint_zh}请核对卡上印刷的编号（{_LOOKALIKE_HINT_ZH}）",
            f"{spec.label_en} must be digits only: {hint_en}check the printed serial ({_LOOKALIKE_HINT_EN})",
        )
    ]


def _check_latin_name(spec: FieldSpec, value: str, today: datetime.date) -> list[Problem]:
    if _LATIN_NAME.fullmatch(value):
        return []
    others = sorted({char for char in value if not re.fullmatch(r"[A-Z' \-]", char)})
    found = " ".join(others[:5])
    return [
        Problem(
            "invalid_latin_name",
            spec.key,
            f"{spec.label_zh}只能含大写字母 A–Z、空格、连字符和撇号，并以字母开头（发现：{found}），"
            "请按证件上的拼写核对",
            f"{spec.label_en} may contain only capitals A-Z, spaces, hyphens and apostrophes, "
            f"starting with a letter (found: {found}); check the spelling on the document",
        )
    ]


def _check_sex(spec: FieldSpec, value: str, today: datetime.date) -> list[Problem]:
    if value in ("M", "F"):
        return []
    return [
        Problem(
            "invalid_sex",
            spec.key,
            f"{spec.label_zh}无法识别：应为 男（M）或 女（F），请核对原卡勾选的选项",
            f"{spec.label_en} not recognised: expected M or F; check which option is ticked on the card",
        )
    ]


def _check_date(spec: FieldSpec, value: str, today: datetime.date) -> list[Problem]:
    parsed = _parse_iso(value)
    if parsed is None:
        return [
            Problem(
                "invalid_date",
                spec.key,
                f"{spec.label_zh}不是有效日期：应为真实的年-月-日（如 1985-03-12），日期不完整或不存在时请核对原卡",
                f"{spec.label_en} is not a valid date: expected a real calendar date as YYYY-MM-DD "
                "(e.g. 1985-03-12); check the card for a missing or impossible part",
            )
        ]
    if spec.key == "date_of_birth":
        return _date_of_birth_problems(spec.key, parsed, today)
    return []


def _check_nationality(spec: FieldSpec, value: str, today: datetime.date) -> list[Problem]:
    if is_country_code(value):
        return []
    return [
        Problem(
            "unknown_nationality",
            spec.key,
            f"{spec.label_zh}无法识别：请核对原卡，并填写 ISO 3166-1 三字母代码（如 USA、JPN、HKG、MAC、TWN）",
            f"{spec.label_en} not recognised: check the card and enter the ISO 3166-1 alpha-3 code "
            "(e.g. USA, JPN, HKG, MAC, TWN)",
        )
    ]


def _check_document_type(spec: FieldSpec, value: str, today: datetime.date) -> list[Problem]:
    if value in DOCUMENT_TYPES:
        return []
    return [
        Problem(
            "unknown_document_type",
            spec.key,
            f"{spec.label_zh}无法识别：请选择护照、港澳居民来往内地通行证、台湾居民来往大陆通行证、外国人永久居留身份证或其他",
            f"{spec.label_en} not recognised: choose passport, HK/Macao permit, Taiwan permit, "
            "permanent residence ID or other",
        )
    ]


def _check_document_number(spec: FieldSpec, value: str, today: datetime.date) -> list[Problem]:
    if _ANY_DOCUMENT_NUMBER.fullmatch(value):
        return []
    return [
        Problem(
            "invalid_document_number",
            spec.key,
            f"{spec.label_zh}应为 5–18 位大写字母或数字，请核对原卡",
            f"{spec.label_en} must be 5-18 capitals or digits; check the card",
        )
    ]


def _check_visa_type(spec: FieldSpec, value: str, today: datetime.date) -> list[Problem]:
    if value in VISA_TYPES:
        return []
    return [
        Problem(
            "unknown_visa_type",
            spec.key,
            f"{spec.label_zh}无法识别：应为 C D F G J1 J2 L M Q1 Q2 R S1 S2 X1 X2 Z 之一，"
            "或免签、居留许可、团体签证，请核对原卡",
            f"{spec.label_en} not recognised: expected one of C D F G J1 J2 L M Q1 Q2 R S1 S2 X1 X2 Z, "
            "visa-free, residence permit or group visa; check the card",
        )
    ]


def _check_capitals_and_digits(spec: FieldSpec, value: str, today: datetime.date) -> list[Problem]:
    if _CAPITALS_AND_DIGITS.fullmatch(value):
        return []
    return [
        Problem(
            "invalid_number",
            spec.key,
            f"{spec.label_zh}只能含大写字母和数字，请核对原卡",
            f"{spec.label_en} may contain only capitals and digits; check the card",
        )
    ]


def _check_resident_id(spec: FieldSpec, value: str, today: datetime.date) -> list[Problem]:
    if not _RESIDENT_ID.fullmatch(value):
        hint_zh, hint_en = _digit_hint(value, 0, 17)
        return [
            Problem(
                "invalid_resident_id",
                spec.key,
                f"{spec.label_zh}应为 18 位：17 位数字加 1 位校验码（数字或 X），卡上为 {len(value)} 位；"
                f"{hint_zh}请核对原卡（{_LOOKALIKE_HINT_ZH}）",
                f"{spec.label_en} must be 18 characters, 17 digits and a check character (digit or X), "
                f"the card has {len(value)}; {hint_en}check the card ({_LOOKALIKE_HINT_EN})",
            )
        ]

    problems = _check_char_problems(spec.key, value, spec.label_zh, spec.label_en)
    birth = value[6:14]
    if _parse_iso(f"{birth[:4]}-{birth[4:6]}-{birth[6:]}") is None:
        problems.append(
            Problem(
                "resident_id_invalid_birth_date",
                spec.key,
                f"{spec.label_zh}第 7–14 位不是有效的出生日期，请核对原卡",
                f"{spec.label_en} digits 7-14 are not a valid date of birth; check the card",
            )
        )
    return problems


def _check_ethnicity(spec: FieldSpec, value: str, today: datetime.date) -> list[Problem]:
    if not _CJK.fullmatch(value):
        return [
            Problem(
                "invalid_ethnicity",
                spec.key,
                f"{spec.label_zh}应填写中文名称（如 汉、回），请核对原卡",
                f"{spec.label_en} must be the Chinese name (e.g. 汉, 回); check the card",
            )
        ]
    if value not in ETHNIC_GROUPS:
        return [
            Problem(
                "unknown_ethnicity",
                spec.key,
                f"{spec.label_zh}不是 56 个民族名称之一，请核对原卡（可能有错字）",
                f"{spec.label_en} is not one of the 56 recognised ethnic groups; check the card for a misread character",
            )
        ]
    return []


def _check_id_type(spec: FieldSpec, value: str, today: datetime.date) -> list[Problem]:
    if value in ID_TYPES:
        return []
    return [
        Problem(
            "unknown_id_type",
            spec.key,
            f"{spec.label_zh}无法识别：请选择居民身份证或其他",
            f"{spec.label_en} not recognised: choose resident ID or other",
        )
    ]


def _no_rule(spec: FieldSpec, value: str, today: datetime.date) -> list[Problem]:
    return []


_VALUE_RULES: dict[FieldKind, _ValueRule] = {
    FieldKind.SERIAL: _check_serial,
    FieldKind.LATIN_NAME: _check_latin_name,
    FieldKind.TEXT: _no_rule,
    FieldKind.SEX: _check_sex,
    FieldKind.DATE: _check_date,
    FieldKind.NATIONALITY: _check_nationality,
    FieldKind.DOCUMENT_TYPE: _check_document_type,
    FieldKind.DOCUMENT_NUMBER: _check_document_number,
    FieldKind.VISA_TYPE: _check_visa_type,
    FieldKind.VISA_NUMBER: _check_capitals_and_digits,
    FieldKind.ROOM: _no_rule,
    FieldKind.ETHNICITY: _check_ethnicity,
    FieldKind.ID_TYPE: _check_id_type,
    FieldKind.RESIDENT_ID: _check_resident_id,
}


def validate_value(spec: FieldSpec, value: str, *, today: datetime.date | None = None) -> list[Problem]:
    """Check one clean value against the rule of its field kind.

    An empty value is a ``missing`` problem when the field is required and passes
    otherwise. ``date_of_birth`` must also lie between 120 years ago and ``today``
    (default: the current date).
    """
    today = today or datetime.date.today()
    if not value.strip():
        if not spec.required:
            return []
        return [
            Problem(
                "missing",
                spec.key,
                f"{spec.label_zh}未填写：此项必填，请按原卡补录；原卡确实空白时请退回前台补填",
                f"{spec.label_en} is required but empty: enter it from the card, "
                "or return the card to the front desk if it is blank there",
            )
        ]
    return _VALUE_RULES[spec.kind](spec, value, today)


# --- cross-field rules --------------------------------------------------------------

_CrossRule = Callable[[dict[str, str], datetime.date], list[Problem]]


def _on_fields(fields: tuple[str, ...], code: str, message_zh: str, message_en: str) -> list[Problem]:
    return [Problem(code, field, message_zh, message_en) for field in fields]


def _rule_date_of_birth_past(values: dict[str, str], today: datetime.date) -> list[Problem]:
    birth = _parse_iso(values.get("date_of_birth", ""))
    if birth is None:
        return []
    return _date_of_birth_problems("date_of_birth", birth, today)


def _rule_departure_after_arrival(values: dict[str, str], today: datetime.date) -> list[Problem]:
    arrival = _parse_iso(values.get("arrival_date", ""))
    departure = _parse_iso(values.get("departure_date", ""))
    if arrival is None or departure is None or departure >= arrival:
        return []
    return _on_fields(
        ("arrival_date", "departure_date"),
        "departure_before_arrival",
        f"离店日期（{departure}）早于抵店日期（{arrival}），请核对",
        f"Date of departure ({departure}) is before the date of arrival ({arrival}); check both",
    )


def _rule_entry_before_arrival(values: dict[str, str], today: datetime.date) -> list[Problem]:
    entry = _parse_iso(values.get("entry_date", ""))
    arrival = _parse_iso(values.get("arrival_date", ""))
    if entry is None or arrival is None or entry <= arrival:
        return []
    return _on_fields(
        ("entry_date", "arrival_date"),
        "entry_after_arrival",
        f"入境日期（{entry}）晚于抵店日期（{arrival}），请核对",
        f"Date of entry ({entry}) is after the date of arrival ({arrival}); check both",
    )


def _rule_valid_until_after_departure(values: dict[str, str], today: datetime.date) -> list[Problem]:
    valid_until = _parse_iso(values.get("valid_until", ""))
    departure = _parse_iso(values.get("departure_date", ""))
    if valid_until is None or departure is None or valid_until >= departure:
        return []
    return _on_fields(
        ("valid_until", "departure_date"),
        "valid_until_before_departure",
        f"签证（停留）有效期至 {valid_until}，早于离店日期 {departure}：请核对原卡；如原卡无误，说明客人的签证或停留期在离店前到期",
        f"Visa or stay valid until {valid_until}, before the date of departure {departure}: "
        "check the card. If the card is right, the guest's visa or stay ends before departure",
    )


def _permit_number_problem(document_type: str, rule_zh: str, rule_en: str, hint: tuple[str, str]) -> list[Problem]:
    name_zh = _DOCUMENT_TYPE_NAMES_ZH[document_type]
    hint_zh, hint_en = hint
    return _on_fields(
        ("document_number", "document_type"),
        "document_number_format",
        f"证件号码与证件种类（{name_zh}）不符：{rule_zh}；{hint_zh}请核对原卡（{_LOOKALIKE_HINT_ZH}，切勿凭猜测修改）",
        f"Document number does not fit the document type {document_type}: {rule_en}; {hint_en}"
        f"check the card ({_LOOKALIKE_HINT_EN}, never change them by guess)",
    )


def _rule_document_number_format(values: dict[str, str], today: datetime.date) -> list[Problem]:
    document_type = values.get("document_type", "")
    number = values.get("document_number", "")
    if not number:
        return []

    if document_type == "hk_macao_permit":
        if _HK_MACAO_PERMIT.fullmatch(number):
            return []
        hint_zh, hint_en = _digit_hint(number, 1, len(number))
        if number[:1] not in ("H", "M"):
            hint_zh = f"第 1 位应为 H 或 M；{hint_zh}"
            hint_en = f"position 1 must be H or M; {hint_en}"
        return _permit_number_problem(
            document_type, "应为 H 或 M 加 8 位或 10 位数字", "expected H or M and 8 or 10 digits", (hint_zh, hint_en)
        )

    if document_type == "taiwan_permit":
        if _TAIWAN_PERMIT.fullmatch(number):
            return []
        return _permit_number_problem(
            document_type, "应为 8 位或 10 位数字", "expected 8 or 10 digits", _digit_hint(number, 0, len(number))
        )

    if document_type == "permanent_residence_id":
        if _PERMANENT_RESIDENCE_2017.fullmatch(number):
            return []
        if _PERMANENT_RESIDENCE_2023.fullmatch(number):
            return _check_char_problems("document_number", number, "永久居留身份证号码", "Permanent residence ID")
        hint = _digit_hint(number, 3, len(number)) if number[:1] != "9" else _digit_hint(number, 0, 17)
        return _permit_number_problem(
            document_type,
            "2017 版为 3 位大写字母加 12 位数字，2023 版为以 9 开头的 18 位号码（17 位数字加校验码）",
            "expected 3 capitals and 12 digits (2017 card) or 18 characters starting with 9 (2023 card)",
            hint,
        )

    if document_type == "passport" and not _GENERIC_DOCUMENT_NUMBER.fullmatch(number):
        return _on_fields(
            ("document_number",),
            "invalid_document_number",
            "护照号码应为 5–17 位大写字母或数字，请核对原卡",
            "Passport number must be 5-17 capitals or digits; check the card",
        )
    return []


def _rule_visa_for_permit_holders(values: dict[str, str], today: datetime.date) -> list[Problem]:
    document_type = values.get("document_type", "")
    visa_type = values.get("visa_type", "")
    nationality = values.get("nationality", "")

    if document_type in PERMIT_TYPES and visa_type:
        return _on_fields(
            ("visa_type", "document_type"),
            "visa_type_for_permit_holder",
            "持港澳或台湾通行证的旅客不办签证，签证(注)种类应为空：请核对证件种类和签证种类",
            "Holders of a HK/Macao or Taiwan permit need no visa, so the type of visa should be empty; "
            "check the type of document and the type of visa",
        )

    foreign_passport = document_type == "passport" and nationality not in (*HK_MACAO_TAIWAN, "CHN")
    if foreign_passport and not visa_type:
        return _on_fields(
            ("visa_type", "document_type"),
            "visa_type_missing",
            "外国护照持有人须填写签证(注)种类（免签入境请填免签），请核对原卡",
            "A foreign passport holder needs a type of visa (enter visa-free for visa-free entry); check the card",
        )
    return []


def _resident_id_applies(values: dict[str, str]) -> bool:
    return values.get("id_type", "") in ("", "resident_id")


def _rule_resident_id_matches(values: dict[str, str], today: datetime.date) -> list[Problem]:
    number = values.get("id_number", "")
    if not _resident_id_applies(values) or not _RESIDENT_ID.fullmatch(number):
        return []

    problems: list[Problem] = []
    birth = _parse_iso(values.get("date_of_birth", ""))
    if birth is not None and number[6:14] != birth.strftime("%Y%m%d"):
        problems += _on_fields(
            ("id_number", "date_of_birth"),
            "resident_id_birth_date_mismatch",
            "身份证号码第 7–14 位的出生日期与出生日期栏不一致，请核对",
            "Digits 7-14 of the resident ID do not match the date of birth; check both",
        )

    sex = values.get("sex", "")
    if sex in ("M", "F"):
        id_sex = "M" if int(number[16]) % 2 == 1 else "F"
        if id_sex != sex:
            id_sex_zh = "男" if id_sex == "M" else "女"
            sex_zh = "男" if sex == "M" else "女"
            problems += _on_fields(
                ("id_number", "sex"),
                "resident_id_sex_mismatch",
                f"身份证号码第 17 位表示性别为{id_sex_zh}，与性别栏（{sex_zh}）不一致，请核对",
                f"Digit 17 of the resident ID means sex {id_sex}, but the sex field is {sex}; check both",
            )
    return problems


CROSS_RULES: dict[str, _CrossRule] = {
    "date_of_birth_past": _rule_date_of_birth_past,
    "departure_after_arrival": _rule_departure_after_arrival,
    "entry_before_arrival": _rule_entry_before_arrival,
    "valid_until_after_departure": _rule_valid_until_after_departure,
    "document_number_format": _rule_document_number_format,
    "visa_for_permit_holders": _rule_visa_for_permit_holders,
    "resident_id_matches": _rule_resident_id_matches,
}


# --- whole card ---------------------------------------------------------------------


def _field_problems(spec: FieldSpec, values: dict[str, str], today: datetime.date) -> list[Problem]:
    value = values.get(spec.key, "")
    # When id_type names another document, the number only has to be capitals and
    # digits, because the GB 11643-1999 rules apply to the resident ID alone.
    if spec.kind is FieldKind.RESIDENT_ID and value and not _resident_id_applies(values):
        return _check_capitals_and_digits(spec, value, today)
    return validate_value(spec, value, today=today)


def validate_card(
    card_type: CardTypeSpec, values: dict[str, str], *, today: datetime.date | None = None
) -> dict[str, list[Problem]]:
    """Check the clean values of one card against its field rules and cross-field rules.

    Returns the problems by field key, with every key of ``card_type`` present and
    an empty list for a field that passes. A problem that two rules report for the
    same field (same code) is listed once. Raises :class:`TemplateError` when the
    card type names a cross-field rule that does not exist.
    """
    today = today or datetime.date.today()
    problems: dict[str, list[Problem]] = {key: [] for key in card_type.keys}
    seen: set[tuple[str, str]] = set()

    def add(problem: Problem) -> None:
        if problem.field not in problems or (problem.field, problem.code) in seen:
            return
        seen.add((problem.field, problem.code))
        problems[problem.field].append(problem)

    for spec in card_type.fields:
        for problem in _field_problems(spec, values, today):
            add(problem)

    for rule_name in card_type.cross_rules:
        rule = CROSS_RULES.get(rule_name)
        if rule is None:
            raise TemplateError(
                f"卡片类型 {card_type.card_type} 引用了不存在的校验规则 {rule_name}，"
                f"可用规则：{', '.join(CROSS_RULES)}。请修改卡片类型文件。",
                f"card type {card_type.card_type} names unknown cross rule {rule_name}; "
                f"known rules: {', '.join(CROSS_RULES)}",
            )
        for problem in rule(values, today):
            add(problem)

    flagged = sum(1 for field_problems in problems.values() if field_problems)
    log.debug("card type %s: %d of %d fields have problems", card_type.card_type, flagged, len(problems))
    return problems


def guest_category(values: dict[str, str]) -> str:
    """Return the exit-entry office category of a foreign-guest card: hk_macao_taiwan, group_visa or foreign.

    HK/Macao and Taiwan guests are recognised by their permit or by nationality HKG,
    MAC or TWN; otherwise a GROUP visa makes the card group_visa.
    """
    if values.get("document_type", "") in PERMIT_TYPES or values.get("nationality", "") in HK_MACAO_TAIWAN:
        return "hk_macao_taiwan"
    if values.get("visa_type", "") == "GROUP":
        return "group_visa"
    return "foreign"
