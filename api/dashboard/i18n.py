"""The dashboard's languages and units: gettext catalogues (Babel), preferences per user.

Catalogues live in `api/dashboard/locale/<locale>/LC_MESSAGES/dashboard.po`, compiled to `.mo`
next to them (committed; `tests/api/dashboard/test_catalogues.py` fails when a `.mo` is not the
compilation of its `.po`, when a template string is missing from a catalogue, or when a
Simplified Chinese string is left untranslated). Refresh them with
``python -m api.dashboard.i18n`` (extract, update, compile).

A user's language and glucose unit are their own choice, kept in a cookie of the dashboard;
without one, the browser's Accept-Language decides (RFC 9110 section 12.5.4), and glucose is
shown in mmol/L except for US English, where mg/dL is customary.
"""

from __future__ import annotations

import sys
from functools import cache
from gettext import NullTranslations
from pathlib import Path
from typing import Final, Literal

from babel.support import Translations

Locale = Literal["en", "zh_CN"]
GlucoseUnit = Literal["mmol/L", "mg/dL"]
LOCALES: Final[tuple[Locale, ...]] = ("en", "zh_CN")
UNITS: Final[tuple[GlucoseUnit, ...]] = ("mmol/L", "mg/dL")
DOMAIN: Final = "dashboard"
HERE: Final = Path(__file__).parent
LOCALE_DIR: Final = HERE / "locale"
TEMPLATE_DIR: Final = HERE / "templates"


@cache
def translations(locale: Locale) -> NullTranslations:
    """The compiled catalogue of `locale` (English is the source language: no catalogue
    needed, but one is shipped so every locale goes through the same path)."""
    return Translations.load(str(LOCALE_DIR), [locale], DOMAIN)


def _ranges(accept_language: str) -> list[tuple[str, float]]:
    out = []
    for item in accept_language.split(","):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            out.append((tag.strip().lower(), quality))
    return sorted(out, key=lambda r: -r[1])


def choose_locale(accept_language: str | None, chosen: str | None) -> Locale:
    """The user's choice when it is one we have, else the browser's best, else English."""
    if chosen in LOCALES:
        return chosen  # type: ignore[return-value]
    for tag, quality in _ranges(accept_language or ""):
        if quality <= 0:
            continue
        if tag.startswith("zh") and not tag.startswith(("zh-tw", "zh-hk", "zh-hant")):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return "en"


def choose_unit(accept_language: str | None, chosen: str | None) -> GlucoseUnit:
    """The user's choice, else mg/dL for US English, else mmol/L."""
    if chosen in UNITS:
        return chosen  # type: ignore[return-value]
    ranges = _ranges(accept_language or "")
    return "mg/dL" if ranges and ranges[0][0] == "en-us" else "mmol/L"


def refresh_catalogues() -> None:  # pragma: no cover - a maintainer's command
    """Extract the templates' and modules' strings, update each .po, compile each .mo."""
    from babel.messages.frontend import CommandLineInterface  # noqa: PLC0415

    pot = str(HERE / "dashboard.pot")
    cfg = str(HERE / "babel.cfg")
    run = CommandLineInterface().run
    extract = ["pybabel", "extract", "-F", cfg, "-o", pot, "--no-location", "--omit-header"]
    run([*extract, "-k", "tr:2", str(HERE)])  # type: ignore[no-untyped-call]
    for locale in LOCALES:
        po = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
        verb = "update" if po.exists() else "init"
        args = ["pybabel", verb, "-i", pot, "-d", str(LOCALE_DIR), "-D", DOMAIN, "-l", locale]
        run(args)  # type: ignore[no-untyped-call]
    compile_ = ["pybabel", "compile", "-d", str(LOCALE_DIR), "-D", DOMAIN, "--use-fuzzy"]
    run(compile_)  # type: ignore[no-untyped-call]
    Path(pot).unlink()


if __name__ == "__main__":  # pragma: no cover
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        print("usage: python -m api.dashboard.i18n\n\nExtract the dashboard's strings, update")
        print("api/dashboard/locale/*/LC_MESSAGES/dashboard.po and compile the .mo files.")
        raise SystemExit(0)
    refresh_catalogues()
