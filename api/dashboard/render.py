"""Pages from templates, in the user's language, glucose unit and the patient's time zone.

Templates use gettext (`{% trans %}`, `_()`), so every string is in the catalogues; charts come
from `api.dashboard.charts` (pure) with translated labels. Times are shown in the patient's own
IANA time zone, formatted by Babel for the user's locale.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np
from babel.dates import format_datetime
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from api.dashboard import charts
from api.dashboard.i18n import TEMPLATE_DIR, GlucoseUnit, Locale, translations
from api.dashboard.views import PatientPage
from devices.units import MG_DL_PER_MMOL_L


@cache
def environment(locale: Locale) -> Environment:
    """The template environment of one locale (gettext installed, autoescaped)."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(("html",)),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=False)  # type: ignore[attr-defined]
    return env


def render(locale: Locale, template: str, context: Mapping[str, object]) -> str:
    """A page as HTML."""
    return environment(locale).get_template(template).render({**context, "locale": locale})


def tr(locale: Locale, message: str) -> str:
    """One string in the user's language."""
    return str(translations(locale).gettext(message))


def local_time(at: datetime | None, zone: str, locale: Locale, pattern: str = "medium") -> str:
    """`at` in the patient's time zone, as the user's locale writes it ("" for None)."""
    if at is None:
        return ""
    return str(format_datetime(at.astimezone(ZoneInfo(zone)), pattern, locale=locale))


def glucose(value_mmol_l: float, unit: GlucoseUnit) -> float:
    """A glucose value in the user's unit (mg/dL rounded to whole numbers)."""
    if unit == "mg/dL":
        return float(round(value_mmol_l * MG_DL_PER_MMOL_L))
    return round(value_mmol_l, 1)


def glucose_text(value_mmol_l: float, unit: GlucoseUnit) -> str:
    """A glucose value as the user reads it: whole mg/dL, or mmol/L to one decimal."""
    value = glucose(value_mmol_l, unit)
    return f"{value:.0f}" if unit == "mg/dL" else f"{value:.1f}"


def bp_svg(page: PatientPage, locale: Locale, now: datetime) -> Markup:
    """The blood-pressure chart of a page (empty text when there is nothing to draw)."""
    zone = ZoneInfo(page.profile.timezone)
    cols = page.readings.get("blood_pressure")
    points = []
    if cols is not None:
        for at_s, sys_, dia in zip(
            cols.measured_at_s, cols.systolic_mmhg, cols.diastolic_mmhg, strict=True
        ):
            if np.isfinite(sys_) and np.isfinite(dia):
                at = datetime.fromtimestamp(float(at_s), zone)
                points.append(charts.BpPoint(at, float(sys_), float(dia)))
    _ = translations(locale).gettext
    labels = charts.BpLabels(
        title=_("Blood pressure, last 14 days"),
        systolic=_("Systolic"),
        diastolic=_("Diastolic"),
        mean_7d=_("7-day home average"),
        threshold=_("Home threshold"),
        empty=_("No blood-pressure readings in the last 14 days."),
    )
    local_now = now.astimezone(zone)
    svg = charts.bp_chart(
        points,
        start=local_now - timedelta(days=14),
        end=local_now,
        systolic_threshold_mmhg=page.systolic_threshold_mmhg,
        diastolic_threshold_mmhg=page.diastolic_threshold_mmhg,
        labels=labels,
    )
    return Markup(svg)  # noqa: S704 - built by charts, which escapes every text it writes


def glucose_points(page: PatientPage, unit: GlucoseUnit) -> list[charts.GlucosePoint]:
    """The page's numeric glucose readings, in the user's unit, at local times."""
    zone = ZoneInfo(page.profile.timezone)
    cols = page.readings.get("glucose")
    if cols is None:
        return []
    out = []
    for at_s, value, control in zip(
        cols.measured_at_s, cols.glucose_mmol_l, cols.control_solution, strict=True
    ):
        if np.isfinite(value) and not control:
            out.append(
                charts.GlucosePoint(
                    datetime.fromtimestamp(float(at_s), zone), glucose(float(value), unit)
                )
            )
    return out


def agp_svg(page: PatientPage, locale: Locale, unit: GlucoseUnit) -> Markup:
    """The glucose profile chart of a page."""
    _ = translations(locale).gettext
    labels = charts.AgpLabels(
        title=_("Glucose by time of day, last 14 days"),
        median=_("Median"),
        band_25_75=_("25-75 %"),
        band_5_95=_("5-95 %"),
        target=_("Target range"),
        empty=_("No glucose readings in the last 14 days."),
    )
    svg = charts.agp_chart(
        glucose_points(page, unit),
        target_low=glucose(page.glucose_low_mmol_l, unit),
        target_high=glucose(page.glucose_high_mmol_l, unit),
        unit=unit,
        labels=labels,
    )
    return Markup(svg)  # noqa: S704 - built by charts, which escapes every text it writes


def glucose_shares(page: PatientPage, unit: GlucoseUnit) -> charts.RangeShares:
    """Readings below, in and above the target range."""
    return charts.range_shares(
        [p.value for p in glucose_points(page, unit)],
        glucose(page.glucose_low_mmol_l, unit),
        glucose(page.glucose_high_mmol_l, unit),
    )
