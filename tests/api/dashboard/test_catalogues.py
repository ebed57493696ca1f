"""The dashboard's gettext catalogues are complete and their .mo files are current."""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from api.dashboard.i18n import DOMAIN, HERE, LOCALE_DIR, LOCALES


def _po(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def _extracted() -> set[str]:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true",
                                     "lstrip_blocks": "true"}}  # fmt: skip
    keywords = {"_": None, "gettext": None, "tr": (2,)}
    found = set()
    for _, _, message, _, _ in extract_from_dir(
        str(HERE), method_map, options_map=options, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_string_of_the_templates_and_modules_is_in_each_catalogue() -> None:
    wanted = _extracted()
    assert len(wanted) > 50
    for locale in LOCALES:
        with _po(locale).open("rb") as f:
            have = {m.id for m in read_po(f) if m.id}
        assert wanted - have == set(), locale


def test_simplified_chinese_translates_every_string() -> None:
    with _po("zh_CN").open("rb") as f:
        untranslated = [m.id for m in read_po(f) if m.id and (not m.string or m.fuzzy)]
    assert untranslated == []


def test_each_mo_is_the_compilation_of_its_po() -> None:
    for locale in LOCALES:
        with _po(locale).open("rb") as f:
            catalog = read_po(f, locale=locale)
        compiled = io.BytesIO()
        write_mo(compiled, catalog, use_fuzzy=True)
        committed = _po(locale).with_suffix(".mo").read_bytes()
        assert compiled.getvalue() == committed, (
            f"{locale}: run python -m api.dashboard.i18n to recompile the catalogues"
        )
