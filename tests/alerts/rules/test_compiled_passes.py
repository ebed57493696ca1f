"""The compiled row selection and home-protocol pass equal the straightforward numpy versions:
empty segments, single readings, readings after now and received late, implausible and
flagged rows, local days across time zones, DST and the cuff's own offsets."""

from __future__ import annotations

from dataclasses import replace
from datetime import tzinfo
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from alerts.rules import plausibility
from alerts.rules.bp import (
    CHINA_EVENING_H,
    CHINA_MORNING_H,
    ESH_EVENING_H,
    ESH_MORNING_H,
    bp_ok,
)
from alerts.rules.catalog import RULES_BY_ID
from alerts.rules.columns import NO_OFFSET, KindCode, ReadingColumns, build_columns
from alerts.rules.glucose import glucose_ok
from alerts.rules.late import late_rows
from alerts.rules.localtime import LocalClock
from alerts.rules.protocol_pass import HISTORY_S, protocol_stats
from alerts.rules.row_pass import (
    CUFF_ROWS,
    GLUCOSE_ROWS,
    PROTOCOL_ROWS,
    first_after,
    fresh_rows,
    recent_rows,
)
from alerts.rules.segments import distinct_days, first_row, last_row, per_patient_sum
from alerts.rules.window_pass import segment_starts

# 2026-03-29 20:00 UTC: Europe's clocks went forward that morning (a DST day in the window).
NOW_S = 1_774_814_400
DAY_S = 86_400
HOUR_S = 3_600
PROTOCOLS = {
    "esh": ((ESH_MORNING_H, ESH_EVENING_H), True),
    "china": ((CHINA_MORNING_H, CHINA_EVENING_H), True),
    "aha": ((), False),
}


def _columns(seed: int, n: int = 3000, n_patients: int = 40) -> ReadingColumns:
    """Glucose and cuff readings of 12 days (some after now, some received late), some
    implausible, flagged or control-solution, some with their own UTC offset; patient codes
    drawn from more names than appear, so some patients have no rows at all."""
    rng = np.random.default_rng(seed)
    t = NOW_S - rng.integers(-DAY_S, 12 * DAY_S, n)
    kind = rng.choice([KindCode.GLUCOSE, KindCode.BLOOD_PRESSURE, KindCode.HEART_RATE], n)
    cuff = kind == KindCode.BLOOD_PRESSURE
    systolic = np.where(cuff, rng.uniform(40.0, 200.0, n), np.nan)
    diastolic = np.where(cuff, rng.uniform(20.0, 130.0, n), np.nan)
    systolic[cuff & (rng.random(n) < 0.03)] = np.nan  # a cuff reading without its systolic
    offsets = np.where(rng.random(n) < 0.3, rng.choice([-600, -300, 0, 345, 480, 840], n), 0)
    offsets = np.where(rng.random(n) < 0.5, offsets, NO_OFFSET)
    cols = build_columns(
        [f"p{i:02d}" for i in rng.integers(0, n_patients, n)], t, kind,
        glucose_mmol_l=np.where(kind == KindCode.GLUCOSE, rng.uniform(0.3, 40.0, n), np.nan),
        glucose_special=np.where(kind == KindCode.GLUCOSE, rng.choice([0] * 8 + [1, 2, 3], n), 0),
        systolic_mmhg=systolic, diastolic_mmhg=diastolic,
        control_solution=rng.random(n) < 0.05, bp_flagged=rng.random(n) < 0.1,
        received_at_s=t + np.where(rng.random(n) < 0.2, rng.integers(0, 5 * DAY_S, n), 0),
        utc_offset_min=offsets,
    )  # fmt: skip
    rule = RULES_BY_ID[plausibility.RULE_ID]
    limits = {k: np.full(cols.n_patients, v) for k, v in rule.params.items()}
    flagged = plausibility.flag_implausible(cols, limits)
    assert flagged.implausible.any()
    # Codes for patients without rows: a dictionary longer than the patients that appear.
    ids = (*flagged.patient_ids, "zz-no-rows-1", "zz-no-rows-2")
    return replace(flagged, patient_ids=ids)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("which", [GLUCOSE_ROWS, CUFF_ROWS, PROTOCOL_ROWS])
@pytest.mark.parametrize("by_received", [False, True])
def test_recent_rows_equal_the_numpy_selection(seed: int, which: int, by_received: bool) -> None:
    cols = _columns(seed)
    rng = np.random.default_rng(seed)
    after_s = NOW_S - rng.choice([24.0, 6.5, 200.0], cols.n_patients) * HOUR_S  # per patient
    times = cols.received_at_s if by_received else cols.measured_at_s
    sel = np.flatnonzero((times > after_s[cols.patient]) & (times <= NOW_S))  # `recent`
    if which == GLUCOSE_ROWS:
        expected = sel[glucose_ok(cols, sel, NOW_S)]
    else:
        expected = sel[bp_ok(cols, sel, NOW_S)]
        if which == PROTOCOL_ROWS:
            expected = expected[~cols.bp_flagged[expected]]
    got = recent_rows(cols, NOW_S, after_s, which, by_received=by_received)
    assert expected.size
    assert np.array_equal(got, expected)
    if by_received:  # only the rows that arrived more than a (per-patient) delay late
        min_delay_s = rng.choice([0.0, 3600.0, 86_400.5], cols.n_patients)
        delay_s = cols.received_at_s - cols.measured_at_s
        late = expected[delay_s[expected] > min_delay_s[cols.patient[expected]]]
        assert 0 < late.size < expected.size
        got = recent_rows(cols, NOW_S, after_s, which, by_received=True, min_delay_s=min_delay_s)
        assert np.array_equal(got, late)
    # One time for everyone gives the same rows as that time per patient.
    same = np.full(cols.n_patients, after_s[0])
    assert np.array_equal(
        recent_rows(cols, NOW_S, float(after_s[0]), which, by_received=by_received),
        recent_rows(cols, NOW_S, same, which, by_received=by_received),
    )


def test_recent_rows_of_no_rows_and_of_one_reading() -> None:
    empty = build_columns([], [], [])
    assert recent_rows(empty, NOW_S, NOW_S - DAY_S, GLUCOSE_ROWS).shape == (0,)
    one = build_columns(["p"], [NOW_S - 60], [KindCode.GLUCOSE], glucose_mmol_l=[5.0])
    assert recent_rows(one, NOW_S, NOW_S - DAY_S, GLUCOSE_ROWS).tolist() == [0]
    assert recent_rows(one, NOW_S, NOW_S - 60, GLUCOSE_ROWS).tolist() == []  # (after, now]
    assert recent_rows(one, NOW_S - 61, NOW_S - DAY_S, GLUCOSE_ROWS).tolist() == []  # after now
    assert recent_rows(one, NOW_S, NOW_S - DAY_S, CUFF_ROWS).tolist() == []


def _numpy_protocol(
    cols: ReadingColumns,
    clock: LocalClock,
    override_min: np.ndarray,
    slots_h: tuple[tuple[int, int], ...],
    drop_first_day: bool,
) -> tuple[np.ndarray, ...]:
    """The protocols' statistics in whole-array numpy (the kernel before it was compiled)."""
    n_pat = cols.n_patients
    t = cols.measured_at_s
    cand = np.flatnonzero((t >= NOW_S - HISTORY_S) & (t <= NOW_S))
    cand = cand[bp_ok(cols, cand, NOW_S) & ~cols.bp_flagged[cand]]
    ps = cols.patient[cand]
    offset_s = clock.offsets_s(ps, t[cand], cols.utc_offset_min[cand], override_min)
    last_offset = np.full(n_pat, NO_OFFSET, dtype=np.int16)
    has_offset = cols.utc_offset_min[cand] != NO_OFFSET
    last_offset[ps[has_offset]] = cols.utc_offset_min[cand][has_offset]
    now_offset_s = clock.offsets_now_s(NOW_S, n_pat, override_min, last_offset)
    local_s = t[cand] + offset_s
    day = local_s // DAY_S
    hour = (local_s % DAY_S) // HOUR_S
    keep = day >= (NOW_S + now_offset_s[ps]) // DAY_S - 6
    if slots_h:
        keep &= np.any([(hour >= a) & (hour <= b) for a, b in slots_h], axis=0)
    if drop_first_day:
        first = first_row(ps, keep, n_pat)
        first_day = np.append(day, np.iinfo(np.int64).max)[first]
        keep &= day > first_day[ps]
    n = np.bincount(ps[keep], minlength=n_pat)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_sys = per_patient_sum(ps[keep], cols.systolic_mmhg[cand[keep]], n_pat) / n
        mean_dia = per_patient_sum(ps[keep], cols.diastolic_mmhg[cand[keep]], n_pat) / n
    rows = np.zeros(len(cols), dtype=np.bool_)
    rows[cand[keep]] = True
    last = last_row(ps, keep, n_pat)
    newest = np.where(last >= 0, np.append(cand, -1)[last], -1)
    days = distinct_days(ps, day, keep, n_pat)
    return n, days, mean_sys, mean_dia, newest, rows


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@pytest.mark.parametrize("zones", ["none", "some"])
@pytest.mark.parametrize("fixed", [False, True])
def test_protocol_pass_equals_the_numpy_version(
    seed: int, protocol: str, zones: str, fixed: bool
) -> None:
    cols = _columns(seed, n=4000, n_patients=30)
    n_pat = cols.n_patients
    rng = np.random.default_rng(seed)
    choices: list[tzinfo | None] = [None]
    choices += [ZoneInfo(z) for z in ("Europe/Berlin", "Asia/Kathmandu", "America/St_Johns")]
    clock = LocalClock(
        [choices[int(k)] for k in rng.integers(0, len(choices), n_pat)] if zones == "some" else []
    )
    override = np.full(n_pat, np.nan)
    if fixed:  # a care plan's fixed offset for some patients
        override[rng.random(n_pat) < 0.4] = rng.choice([-570.0, 0.0, 330.0, 780.0])
    slots_h, drop = PROTOCOLS[protocol]
    got = protocol_stats(
        cols, NOW_S, clock=clock, override_min=override, slots_h=slots_h,
        drop_first_day=drop,
    )  # fmt: skip
    n, days, mean_sys, mean_dia, newest, rows = _numpy_protocol(
        cols, clock, override, slots_h, drop
    )
    assert n.sum() > 0 and (n == 0).any()
    assert np.array_equal(got.count, n)
    assert np.array_equal(got.days, days)
    # The same additions in the same order: the same floats, not merely close ones.
    assert np.array_equal(got.mean_systolic_mmhg, mean_sys, equal_nan=True)
    assert np.array_equal(got.mean_diastolic_mmhg, mean_dia, equal_nan=True)
    assert np.array_equal(got.newest, newest)
    assert np.array_equal(got.evidence, rows)


def test_protocol_local_day_starts_at_local_midnight_across_dst() -> None:
    """Berlin went from UTC+1 to UTC+2 on 2026-03-29: a reading at 22:30 UTC the day before is
    23:30 local (still the 28th); one at 22:30 UTC on the 29th is 00:30 local on the 30th."""
    berlin = ZoneInfo("Europe/Berlin")
    now_s = NOW_S + 4 * HOUR_S  # 2026-03-30 00:00 UTC, 02:00 in Berlin
    t = [NOW_S + 150 * 60 - DAY_S, NOW_S + 150 * 60]  # 22:30 UTC on the 28th and on the 29th
    cols = build_columns(
        ["p", "p"], t, [KindCode.BLOOD_PRESSURE] * 2, systolic_mmhg=[150.0, 130.0],
        diastolic_mmhg=[90.0, 80.0],
    )  # fmt: skip
    got = protocol_stats(
        cols, now_s, clock=LocalClock([berlin]), override_min=np.full(1, np.nan),
        slots_h=(), drop_first_day=True,
    )  # fmt: skip
    # Two local days (28th, 30th): the first is day 1 and dropped, the second is kept.
    assert got.count.tolist() == [1]
    assert got.mean_systolic_mmhg.tolist() == [130.0]
    assert got.newest.tolist() == [1]
    # A care plan's fixed offset of 0 (UTC): the 28th and the 29th, both kept without day 1.
    utc = protocol_stats(
        cols, now_s, clock=LocalClock([berlin]), override_min=np.zeros(1), slots_h=(),
        drop_first_day=False,
    )  # fmt: skip
    assert utc.count.tolist() == [2]
    assert utc.days.tolist() == [2]


@pytest.mark.parametrize("seed", range(4))
def test_segment_starts_equal_searchsorted(seed: int) -> None:
    """Patients without rows (first, middle, last codes), one row, long segments, no rows."""
    rng = np.random.default_rng(seed)
    sizes = rng.choice([0, 0, 1, 2, 7, 180, 1000], 60)
    patient = np.repeat(np.arange(60, dtype=np.int64), sizes)
    cols = build_columns(
        [f"p{i:02d}" for i in patient], NOW_S - np.arange(patient.size), patient * 0
    )
    ids = tuple(f"p{i:02d}" for i in range(60))  # every code, with rows or not
    cols = replace(cols, patient_ids=ids, patient=patient)
    expected = np.searchsorted(patient, np.arange(61))
    assert np.array_equal(segment_starts(cols), expected)
    assert segment_starts(replace(cols, patient=patient[:0])).tolist() == [0] * 61


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("rule_id", ["glucose.hypo_l2", "bp.crisis"])
def test_fresh_rows_keep_every_row_a_late_finding_keeps(seed: int, rule_id: str) -> None:
    """Late: the rows `late.late_rows` keeps (delay over max_age_h, at most late_max_age_d)
    are all among `fresh_rows`, which are all among the numpy selection (received within
    max_age_h, the row filter); live: exactly the numpy selection."""
    rng = np.random.default_rng(seed)
    n = 4000
    measured = NOW_S - rng.integers(-DAY_S, 25 * DAY_S, n)
    delay = np.where(rng.random(n) < 0.5, rng.integers(0, 20 * DAY_S, n), 0)
    kind = rng.choice([KindCode.GLUCOSE, KindCode.BLOOD_PRESSURE], n)
    cols = build_columns(
        [f"p{i}" for i in rng.integers(0, 30, n)], measured, kind,
        glucose_mmol_l=np.where(kind == KindCode.GLUCOSE, rng.uniform(1.0, 20.0, n), np.nan),
        systolic_mmhg=np.where(kind == KindCode.BLOOD_PRESSURE, 150.0, np.nan),
        diastolic_mmhg=np.where(kind == KindCode.BLOOD_PRESSURE, 90.0, np.nan),
        received_at_s=measured + delay,
    )  # fmt: skip
    rule = RULES_BY_ID[rule_id]
    params = {k: np.full(cols.n_patients, v) for k, v in rule.params.items()}
    params["max_age_h"][::3] = 6.5  # per patient
    which = GLUCOSE_ROWS if rule_id.startswith("glucose") else CUFF_ROWS
    ok = glucose_ok if which == GLUCOSE_ROWS else bp_ok
    age_s = params["max_age_h"][cols.patient] * HOUR_S
    for late in (False, True):
        times = cols.received_at_s if late else cols.measured_at_s
        sel = np.flatnonzero((times > NOW_S - age_s) & (times <= NOW_S))
        sel = sel[ok(cols, sel, NOW_S)]
        got = fresh_rows(cols, NOW_S, which, params, late=late)
        if not late:
            assert np.array_equal(got, sel)
            continue
        kept = sel[late_rows(cols, NOW_S, params, sel)]
        assert kept.size and got.size < sel.size
        assert np.isin(kept, got).all()
        assert np.isin(got, sel).all()
        assert np.array_equal(got, np.sort(got))


def test_first_after_equals_searchsorted() -> None:
    """The galloping search back: every range and threshold, duplicates, none or all after."""
    rng = np.random.default_rng(5)
    t = np.sort(rng.integers(0, 50, 200)).astype(np.int64)
    for lo, hi in ((0, 200), (0, 0), (17, 18), (30, 190), (199, 200)):
        for x in (-1.0, 0.0, 7.0, 24.5, 49.0, 60.0, *t[lo:hi:7].astype(float)):
            expected = lo + int(np.searchsorted(t[lo:hi], x, side="right"))
            assert first_after(t, lo, hi, x) == expected, (lo, hi, x)
