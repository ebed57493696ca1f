"""The gettext catalogues of the dashboard and of the hub's pairing page are complete and their
.mo files are current (one check, both catalogues)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from api.dashboard import i18n as dashboard
from gateway import i18n as pairing


@dataclass(frozen=True, slots=True)
class Catalogue:
    here: Path  # the package whose templates and modules are extracted
    domain: str
    locales: tuple[str, ...]  # directory names under here/locale
    keywords: tuple[str, ...]  # gettext functions besides _ and gettext
    refresh: str  # how a maintainer recompiles them
    least: int  # fewer strings extracted than this means extraction broke

    def po(self, locale: str) -> Path:
        return self.here / "locale" / locale / "LC_MESSAGES" / f"{self.domain}.po"


CATALOGUES = {
    "dashboard": Catalogue(
        dashboard.HERE, dashboard.DOMAIN, dashboard.LOCALES, ("tr:2",),
        "python -m api.dashboard.i18n", 50,
    ),
    "pairing": Catalogue(
        pairing.HERE, pairing.DOMAIN, pairing.CATALOGUE_LOCALES, ("N_", "tr:2"),
        "the pybabel commands in gateway/i18n.py", 60,
    ),
}  # fmt: skip


def _extracted(catalogue: Catalogue) -> set[str]:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true",
                                     "lstrip_blocks": "true"}}  # fmt: skip
    keywords: dict[str, tuple[int, ...] | None] = {"_": None, "gettext": None}
    for keyword in catalogue.keywords:
        name, _, index = keyword.partition(":")
        keywords[name] = (int(index),) if index else None
    found = set()
    for _, _, message, _, _ in extract_from_dir(
        str(catalogue.here), method_map, options_map=options, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("name", sorted(CATALOGUES))
def test_every_string_of_the_templates_and_modules_is_in_each_catalogue(name: str) -> None:
    catalogue = CATALOGUES[name]
    wanted = _extracted(catalogue)
    assert len(wanted) > catalogue.least
    for locale in catalogue.locales:
        with catalogue.po(locale).open("rb") as f:
            have = {m.id for m in read_po(f) if m.id}
        assert wanted - have == set(), locale


@pytest.mark.parametrize("name", sorted(CATALOGUES))
def test_simplified_chinese_translates_every_string(name: str) -> None:
    with CATALOGUES[name].po("zh_CN").open("rb") as f:
        untranslated = [m.id for m in read_po(f) if m.id and (not m.string or m.fuzzy)]
    assert untranslated == []


@pytest.mark.parametrize("name", sorted(CATALOGUES))
def test_each_mo_is_the_compilation_of_its_po(name: str) -> None:
    catalogue = CATALOGUES[name]
    for locale in catalogue.locales:
        with catalogue.po(locale).open("rb") as f:
            catalog = read_po(f, locale=locale)
        compiled = io.BytesIO()
        write_mo(compiled, catalog, use_fuzzy=True)
        committed = catalogue.po(locale).with_suffix(".mo").read_bytes()
        assert compiled.getvalue() == committed, (
            f"{locale}: run {catalogue.refresh} to recompile the catalogues"
        )
