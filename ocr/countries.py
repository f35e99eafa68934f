"""Country and region lookup: ISO 3166-1 alpha-3 codes from codes, English or Chinese names.

The table is built once from pycountry: every alpha-2 and alpha-3 code, the English
``name``, ``official_name`` and ``common_name``, and their translations in pycountry's
``zh_CN``, ``zh_TW`` and ``zh_HK`` gettext catalogues. ``SHORT_FORMS`` adds the forms
guests and front desks actually write where these differ from the official ones
(韩国, 中国香港, UK, Macau, ...).

Lookup compares a folded form of the text (half-width, case-folded, without spaces,
dots, commas, hyphens, apostrophes or brackets), so ``U.S.A.``, ``usa`` and ``Ｕ Ｓ Ａ``
match the same entry. A folded name that two countries share is dropped, so an
ambiguous name never resolves (``KOREA`` alone, for example, is not in the table).
"""

from __future__ import annotations

import gettext
import logging
import re
import unicodedata
from functools import lru_cache

import pycountry

__all__ = ["SHORT_FORMS", "country_code", "is_country_code"]

log = logging.getLogger(__name__)

# Forms that pycountry's names and translations do not cover, or cover with a
# different wording (zh_CN calls KOR 大韩民国 and spells KHM 柬埔塞, for example).
SHORT_FORMS: dict[str, str] = {
    # Chinese short forms.
    "美国": "USA",
    "美利坚": "USA",
    "英国": "GBR",
    "韩国": "KOR",
    "南韩": "KOR",
    "朝鲜": "PRK",
    "北韩": "PRK",
    "日本": "JPN",
    "德国": "DEU",
    "法国": "FRA",
    "俄罗斯": "RUS",
    "俄国": "RUS",
    "俄罗斯联邦": "RUS",
    "香港": "HKG",
    "中国香港": "HKG",
    "香港特区": "HKG",
    "香港特别行政区": "HKG",
    "中国香港特区": "HKG",
    "澳门": "MAC",
    "中国澳门": "MAC",
    "澳门特区": "MAC",
    "澳门特别行政区": "MAC",
    "中国澳门特区": "MAC",
    "台湾": "TWN",
    "中国台湾": "TWN",
    "台湾地区": "TWN",
    "臺灣": "TWN",
    "中國臺灣": "TWN",
    "中國香港": "HKG",
    "中國澳門": "MAC",
    "韓國": "KOR",
    "南韓": "KOR",
    "北韓": "PRK",
    "澳洲": "AUS",
    "印尼": "IDN",
    "越南": "VNM",
    "老挝": "LAO",
    "伊朗": "IRN",
    "叙利亚": "SYR",
    "玻利维亚": "BOL",
    "委内瑞拉": "VEN",
    "摩尔多瓦": "MDA",
    "坦桑尼亚": "TZA",
    "柬埔寨": "KHM",
    "沙特": "SAU",
    "阿联酋": "ARE",
    "孟加拉国": "BGD",
    "吉尔吉斯斯坦": "KGZ",
    "吉尔吉斯": "KGZ",
    "捷克共和国": "CZE",
    "英格兰": "GBR",
    "苏格兰": "GBR",
    # English short forms and demonyms common on handwritten cards.
    "America": "USA",
    "United States of America": "USA",
    "American": "USA",
    "UK": "GBR",
    "Great Britain": "GBR",
    "Britain": "GBR",
    "British": "GBR",
    "England": "GBR",
    "Scotland": "GBR",
    "South Korea": "KOR",
    "Republic of Korea": "KOR",
    "Korea (South)": "KOR",
    "North Korea": "PRK",
    "Japanese": "JPN",
    "German": "DEU",
    "French": "FRA",
    "Russia": "RUS",
    "Russian": "RUS",
    "Canadian": "CAN",
    "Australian": "AUS",
    "Hong Kong SAR": "HKG",
    "HKSAR": "HKG",
    "Hong Kong China": "HKG",
    "China Hong Kong": "HKG",
    "Macau": "MAC",
    "Macao SAR": "MAC",
    "Macau SAR": "MAC",
    "Macao China": "MAC",
    "Macau China": "MAC",
    "China Macao": "MAC",
    "China Macau": "MAC",
    "Taiwan": "TWN",
    "Taiwan China": "TWN",
    "China Taiwan": "TWN",
    "Vietnam": "VNM",
    "Laos": "LAO",
    "Iran": "IRN",
    "Syria": "SYR",
    "Turkey": "TUR",
    "Holland": "NLD",
    "Czech Republic": "CZE",
}

_CATALOGUE_LOCALES = ("zh_CN", "zh_TW", "zh_HK")
_SEPARATORS = re.compile(r"[\s.,·・'’\-‐–—()（）\[\]【】]+")


def _fold(text: str) -> str:
    """Fold a name for lookup: half-width, case-folded, separators and brackets removed."""
    text = unicodedata.normalize("NFKC", text)
    return _SEPARATORS.sub("", text).casefold()


def _catalogues() -> list[gettext.NullTranslations]:
    catalogues: list[gettext.NullTranslations] = []
    for locale in _CATALOGUE_LOCALES:
        try:
            catalogues.append(gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[locale]))
        except OSError:
            # NOTE: a pycountry build without this catalogue loses only that locale's names.
            log.warning("pycountry has no %s catalogue for iso3166-1; its Chinese names are skipped", locale)
    return catalogues


@lru_cache(maxsize=1)
def _table() -> dict[str, str]:
    """Build the folded-name → alpha-3 table, dropping names that two countries share."""
    claims: dict[str, set[str]] = {}

    def claim(name: str, code: str) -> None:
        key = _fold(name)
        if key:
            claims.setdefault(key, set()).add(code)

    catalogues = _catalogues()
    for country in pycountry.countries:
        code = country.alpha_3
        claim(code, code)
        claim(country.alpha_2, code)
        for attribute in ("name", "official_name", "common_name"):
            english = getattr(country, attribute, None)
            if not english:
                continue
            claim(english, code)
            for catalogue in catalogues:
                claim(catalogue.gettext(english), code)

    table = {key: next(iter(codes)) for key, codes in claims.items() if len(codes) == 1}
    ambiguous = len(claims) - len(table)
    if ambiguous:
        log.debug("country table: %d names claimed by more than one country were dropped", ambiguous)

    # The hand-written short forms decide over anything pycountry produced.
    for name, code in SHORT_FORMS.items():
        table[_fold(name)] = code
    return table


@lru_cache(maxsize=1)
def _alpha3_codes() -> frozenset[str]:
    return frozenset(country.alpha_3 for country in pycountry.countries)


def is_country_code(code: str) -> bool:
    """Check that ``code`` is a current ISO 3166-1 alpha-3 code (HKG, MAC and TWN included)."""
    return code in _alpha3_codes()


def country_code(text: str) -> str | None:
    """Look up the alpha-3 code for a code, English name or Chinese name, or return ``None`` when unknown."""
    key = _fold(text)
    if not key:
        return None
    return _table().get(key)
