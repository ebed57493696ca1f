"""The pairing page's languages (English, Simplified Chinese): gettext catalogues (Babel), and
glucose units per locale.

Every string the page shows is an English gettext message id, in the templates (``_()``) or
marked in the modules (``_``/``N_``); the translations live in
`gateway/locale/<locale>/LC_MESSAGES/pairing.po`, compiled to `.mo` next to them (committed),
laid out and checked as the dashboard's are (`tests/api/dashboard/test_catalogues.py` covers
both: every string in each catalogue, Simplified Chinese complete, each `.mo` the compilation
of its `.po`). Refresh them with Babel's own command line, from the repository root::

    pybabel extract -F gateway/babel.cfg -k N_ -k tr:2 -o /tmp/pairing.pot --no-location \
        --omit-header gateway
    pybabel update -i /tmp/pairing.pot -d gateway/locale -D pairing --ignore-obsolete
    pybabel compile -d gateway/locale -D pairing --use-fuzzy

The language comes from an explicit choice (the switch on the page, kept in a cookie), else
from the browser's Accept-Language (RFC 9110 12.5.4, quality values honoured), else English.
Glucose is shown in mmol/L (the unit used in China and most of the world) unless the patient
chose mg/dL, or the browser asks for US English, where mg/dL is the customary unit.
"""

from __future__ import annotations

from functools import cache
from gettext import NullTranslations
from pathlib import Path
from typing import Final, Literal

from babel.support import Translations

Locale = Literal["en", "zh-CN"]
GlucoseUnit = Literal["mmol/L", "mg/dL"]
LOCALES: Final[tuple[Locale, ...]] = ("en", "zh-CN")
UNITS: Final[tuple[GlucoseUnit, ...]] = ("mmol/L", "mg/dL")
DOMAIN: Final = "pairing"
HERE: Final = Path(__file__).parent
LOCALE_DIR: Final = HERE / "locale"
CATALOGUE_LOCALES: Final = ("en", "zh_CN")  # the catalogues' directory names


def N_(message: str) -> str:  # gettext's conventional name
    """Mark `message` for extraction; it is translated where it is shown."""
    return message


@cache
def translations(locale: Locale) -> NullTranslations:
    """The compiled catalogue of `locale` (English is the source language; its catalogue is
    shipped too, so every locale goes through the same path)."""
    return Translations.load(str(LOCALE_DIR), [locale.replace("-", "_")], DOMAIN)


def tr(locale: Locale, message: str, **values: object) -> str:
    """`message` in `locale`, with its ``%(name)s`` placeholders filled from `values`."""
    text = str(translations(locale).gettext(message))
    return text % values if values else text


# What each kind of device is called (the page names a device by its kind when it advertises
# no name).
KIND_NAMES: Final[dict[str, str]] = {
    "glucose": N_("Glucose meter"),
    "blood_pressure": N_("Blood-pressure cuff"),
    "heart_rate": N_("Heart-rate strap"),
    "spo2": N_("Pulse oximeter"),
    "cgm_glucose": N_("Continuous glucose monitor"),
    "body_temperature": N_("Thermometer"),
    "body_weight": N_("Scale"),
}


def _ranges(accept_language: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            ranges.append((tag.strip().lower(), quality))
    return sorted(ranges, key=lambda r: -r[1])


def choose_locale(accept_language: str | None, chosen: str | None) -> Locale:
    """The page language: the patient's choice, else the browser's preference, else English."""
    if chosen in LOCALES:
        return chosen  # type: ignore[return-value]
    for tag, quality in _ranges(accept_language or ""):
        if quality <= 0:
            continue
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "en"


def choose_unit(accept_language: str | None, chosen: str | None) -> GlucoseUnit:
    """The glucose unit: the patient's choice, else mg/dL for US English, else mmol/L."""
    if chosen in UNITS:
        return chosen  # type: ignore[return-value]
    ranges = [tag for tag, q in _ranges(accept_language or "") if q > 0]
    return "mg/dL" if ranges and ranges[0] == "en-us" else "mmol/L"
