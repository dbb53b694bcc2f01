"""`_core.CronSpec` against a brute-force oracle written here, in pure Python.

The oracle knows nothing of the core's bit sets or its field-by-field jumps. It has:

* its own reading of uWSGI's five integers (SPEC.md section 6: `-1` any, `-N` "value divisible
  by N", weekday 7 = Sunday, day/weekday ORed only when both are `>= 0`, out-of-range values
  never match) and its own crontab parser (Vixie/cronie: ranges, lists, `*/n`, `a-b/n`, `a/n` =
  `a` to the end every `n`, month and weekday names, weekday 7 = Sunday, macros, OR of day and
  weekday when neither field starts with `*`);
* a minute-by-minute scan for the next match (a day that fails the date part is skipped whole,
  which is the same as scanning its 1440 minutes; inside a day every minute is checked);
* a time-zone rule built on zoneinfo: every matching wall-clock minute fires once, at
  `datetime(minute, tzinfo=zone, fold=0).timestamp()` -- the first occurrence of a repeated
  minute, and for a minute skipped by a gap the instant shifted forward by the gap (PEP 495's
  fold=0 reading, which is jiff's "compatible" rule named in src/cron/tz.rs). `next_fire(after)`
  is the earliest such instant strictly after `after`.

Regression cases found by these properties (now fixed in the core) are kept as plain tests at
the bottom: gaps shorter or longer than an hour (Lord Howe, Troll), a minute shifted past
`after`, `a/1`, and a next fire past year 9999.

Profiles: tests/conftest.py (`fast` default, `ci` = 200 examples). HYPOTHESIS_PROFILE=ci.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import pytest
from hypothesis import example, given, note, settings
from hypothesis import strategies as st
from uwsgidecorators import _core

ONE_DAY = dt.timedelta(days=1)
ONE_MIN = dt.timedelta(minutes=1)
UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1)

# Real zones with the interesting shapes: whole-hour DST (Berlin, New York), 30-minute DST
# (Lord Howe), half-hour and 45-minute offsets (Kolkata, St John's, Kathmandu, Chatham), a
# 24-hour jump over the date line (Apia, 2011-12-30), DST at midnight (Havana, Santiago),
# a 2-hour DST (Troll), negative DST in the tz source (Dublin), none at all (UTC).
ZONES = [
    'UTC',
    'Europe/Berlin',
    'America/New_York',
    'Australia/Lord_Howe',
    'Asia/Kolkata',
    'America/St_Johns',
    'Asia/Kathmandu',
    'Pacific/Chatham',
    'Pacific/Apia',
    'America/Havana',
    'America/Santiago',
    'Antarctica/Troll',
    'Europe/Dublin',
]


@functools.cache
def zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def sunday0(d: dt.date) -> int:
    """0 = Sunday .. 6 = Saturday."""
    return d.isoweekday() % 7


# --------------------------------------------------------------------------------------------
# the oracle: matching


class Oracle:
    """A cron entry as the oracle understands it: `date_ok(date)` and `time_ok(hour, minute)`."""

    label: str

    def date_ok(self, d: dt.date) -> bool:
        raise NotImplementedError

    def time_ok(self, hour: int, minute: int) -> bool:
        raise NotImplementedError

    def matches(self, y: int, mo: int, d: int, h: int, mi: int) -> bool:
        return self.time_ok(h, mi) and self.date_ok(dt.date(y, mo, d))

    @functools.cached_property
    def any_time(self) -> bool:
        return any(self.time_ok(h, m) for h in range(24) for m in range(60))

    @functools.cached_property
    def any_date(self) -> bool:
        # 400 Gregorian years are exactly 20871 weeks: every (date, weekday) pair is in there.
        d = dt.date(2000, 1, 1)
        for _ in range(146097):
            if self.date_ok(d):
                return True
            d += ONE_DAY
        return False

    def never(self) -> bool:
        return not self.any_time or not self.any_date

    def refused(self) -> bool:
        """The core must refuse this spec (ValueError): it could never fire."""
        return self.never()

    def core(self):
        raise NotImplementedError


def _uwsgi_field(v: int, x: int) -> bool:
    return x == v if v >= 0 else x % -v == 0


@dataclass(frozen=True)
class UwsgiOracle(Oracle):
    minute: int
    hour: int
    day: int
    month: int
    weekday: int

    @property
    def label(self) -> str:
        return f'from_uwsgi({self.minute}, {self.hour}, {self.day}, {self.month}, {self.weekday})'

    def time_ok(self, hour, minute):
        return _uwsgi_field(self.minute, minute) and _uwsgi_field(self.hour, hour)

    def date_ok(self, d):
        if not _uwsgi_field(self.month, d.month):
            return False
        wd = 0 if self.weekday == 7 else self.weekday
        dom = _uwsgi_field(self.day, d.day)
        dow = _uwsgi_field(wd, sunday0(d))
        if self.day >= 0 and self.weekday >= 0:
            return dom or dow
        return dom and dow

    def refused(self) -> bool:
        # A value >= 0 outside its field is refused even where an ORed weekday would rescue it.
        ranges = ((self.minute, 0, 59), (self.hour, 0, 23), (self.day, 1, 31), (self.month, 1, 12), (self.weekday, 0, 7))
        return any(v >= 0 and not lo <= v <= hi for v, lo, hi in ranges) or self.never()

    def core(self):
        return _core.CronSpec.from_uwsgi(self.minute, self.hour, self.day, self.month, self.weekday)


MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']
DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']
MACROS = {
    '@yearly': '0 0 1 1 *',
    '@annually': '0 0 1 1 *',
    '@monthly': '0 0 1 * *',
    '@weekly': '0 0 * * 0',
    '@daily': '0 0 * * *',
    '@midnight': '0 0 * * *',
    '@hourly': '0 * * * *',
}
# (low, high, names, value of the first name); weekday runs to 7 (= Sunday), as in cronie.
DOMAINS = [(0, 59, None, 0), (0, 23, None, 0), (1, 31, None, 0), (1, 12, MONTH_NAMES, 1), (0, 7, DAY_NAMES, 0)]


def _value(text: str, names, base: int) -> int:
    if names and text.lower() in names:
        return names.index(text.lower()) + base
    return int(text)


def _crontab_field(text: str, lo: int, hi: int, names, base: int) -> frozenset[int]:
    out: set[int] = set()
    for item in text.split(','):
        rng, slash, step_text = item.partition('/')
        step = int(step_text) if slash else 1
        if rng == '*':
            a, b = lo, hi
        elif '-' in rng:
            a_text, b_text = rng.split('-')
            a, b = _value(a_text, names, base), _value(b_text, names, base)
        else:
            a = _value(rng, names, base)
            b = hi if slash else a  # `a/n`: from a to the end, every n
        out.update(range(a, b + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class CrontabOracle(Oracle):
    text: str

    @property
    def label(self) -> str:
        return f'CronSpec({self.text!r})'

    @functools.cached_property
    def _fields(self):
        t = self.text.strip()
        if t.startswith('@'):
            t = MACROS[t.lower()]
        parts = t.split()
        assert len(parts) == 5, parts
        sets = [_crontab_field(p, *dom) for p, dom in zip(parts, DOMAINS)]
        sets[4] = frozenset(x % 7 for x in sets[4])
        use_or = not parts[2].startswith('*') and not parts[4].startswith('*')
        return sets, use_or

    def time_ok(self, hour, minute):
        sets, _ = self._fields
        return minute in sets[0] and hour in sets[1]

    def date_ok(self, d):
        (_, _, days, months, weekdays), use_or = self._fields
        if d.month not in months:
            return False
        dom, dow = d.day in days, sunday0(d) in weekdays
        return (dom or dow) if use_or else (dom and dow)

    def core(self):
        return _core.CronSpec(self.text)


# --------------------------------------------------------------------------------------------
# the oracle: next match, civil


def oracle_next_after(o: Oracle, start: tuple, max_days: int):
    """First matching civil minute strictly after `start`, scanning at most `max_days` days."""
    if not o.any_time:
        return None
    y, mo, d, h, mi = start
    day = dt.date(y, mo, d)
    first = h * 60 + mi + 1
    for _ in range(max_days + 1):
        if o.date_ok(day):
            for mod in range(first, 1440):
                if o.time_ok(mod // 60, mod % 60):
                    return (day.year, day.month, day.day, mod // 60, mod % 60)
        first = 0
        day += ONE_DAY
    return None


def oracle_matches_between(o: Oracle, lo: dt.datetime, hi: dt.datetime):
    """Every matching civil minute m with lo <= m < hi (naive datetimes), minute by minute."""
    out = []
    m = lo
    while m < hi:
        if o.date_ok(m.date()):
            if o.time_ok(m.hour, m.minute):
                out.append(m)
            m += ONE_MIN
        else:  # the whole day fails: same as checking its minutes one by one
            m = dt.datetime.combine(m.date() + ONE_DAY, dt.time())
    return out


# --------------------------------------------------------------------------------------------
# the oracle: next fire, in a time zone

# Every real UTC offset lies within these (LMT included), so a civil minute m fires within
# [naive(m) - MAX_OFF, naive(m) - MIN_OFF], seen as if naive were UTC.
MIN_OFF = dt.timedelta(hours=-13)
MAX_OFF = dt.timedelta(hours=15)


def fire_instant(m: dt.datetime, zname: str) -> float:
    """When civil minute m fires in the zone: first occurrence, or shifted forward by a gap."""
    return m.replace(tzinfo=zone(zname), fold=0).timestamp()


def naive_utc(m: dt.datetime) -> float:
    return (m - EPOCH).total_seconds()


def civil_exists(m: dt.datetime, zname: str) -> bool:
    z = zone(zname)
    back = dt.datetime.fromtimestamp(m.replace(tzinfo=z, fold=0).timestamp(), z)
    return back.replace(tzinfo=None) == m


def oracle_fires(o: Oracle, after: float, zname: str, horizon: float, earliest_civil=None):
    """Yield (instant, civil minute) for matching minutes in civil order, from the first civil
    minute that can fire after `after` up to naive time `horizon`; only those firing > after."""
    lo = EPOCH + dt.timedelta(seconds=after) + MIN_OFF
    lo = lo.replace(second=0, microsecond=0)
    if earliest_civil is not None:
        lo = max(lo, earliest_civil)
    m = lo
    while naive_utc(m) <= horizon:
        if o.date_ok(m.date()):
            if o.time_ok(m.hour, m.minute):
                t = fire_instant(m, zname)
                if t > after:
                    yield t, m
            m += ONE_MIN
        else:
            m = dt.datetime.combine(m.date() + ONE_DAY, dt.time())


def oracle_next_fire(o: Oracle, after: float, zname: str, horizon_days: int):
    """(instant, civil minute) of the earliest fire strictly after `after`, or None if no civil
    minute up to `horizon_days` days past `after` fires."""
    if not o.any_time:
        return None
    horizon = after + horizon_days * 86400
    best = None
    for t, m in oracle_fires(o, after, zname, horizon):
        if best is None or t < best[0]:
            best = (t, m)
        # a later civil minute cannot fire before best any more
        if naive_utc(m) - MAX_OFF.total_seconds() > best[0]:
            break
    return best


# --------------------------------------------------------------------------------------------
# strategies

uwsgi_values = st.one_of(
    st.just(-1),
    st.just(-1),
    st.integers(-12, -2),
    st.integers(-70, -13),
    st.integers(0, 70),
)


@st.composite
def wide_uwsgi_specs(draw):
    """Any integers, refused ones included (out of range, dates that never occur)."""
    return UwsgiOracle(
        draw(uwsgi_values),
        draw(uwsgi_values),
        draw(uwsgi_values),
        draw(uwsgi_values),
        draw(st.one_of(uwsgi_values, st.integers(-8, 8))),
    )


def _in_range(lo: int, hi: int):
    return st.one_of(st.just(-1), st.just(-1), st.integers(-12, -2), st.integers(-70, -13), st.integers(lo, hi))


@st.composite
def uwsgi_specs(draw, dense: bool = False):
    if dense:  # mostly matching, for the time-zone tests
        minute = draw(st.one_of(st.integers(-20, -1), st.integers(0, 59)))
        hour = draw(st.one_of(st.just(-1), st.integers(-4, -2), st.integers(0, 4), st.integers(0, 23)))
        rest = st.one_of(st.just(-1), st.just(-1), st.integers(-3, -2))
        return UwsgiOracle(minute, hour, draw(rest), draw(rest), draw(st.one_of(rest, st.integers(0, 7))))
    return UwsgiOracle(
        draw(_in_range(0, 59)),
        draw(_in_range(0, 23)),
        draw(_in_range(1, 31)),
        draw(_in_range(1, 12)),
        draw(st.one_of(_in_range(0, 7), st.integers(-8, 8))),
    )


def _render(draw, v: int, names, base: int) -> str:
    if names and v - base < len(names) and v >= base and draw(st.booleans()):
        n = names[v - base]
        return draw(st.sampled_from([n, n.upper(), n.capitalize()]))
    return f'{v:02d}' if draw(st.integers(0, 9)) == 0 else str(v)


@st.composite
def crontab_field(draw, idx: int, star_bias: int = 3) -> str:
    lo, hi, names, base = DOMAINS[idx]
    if draw(st.integers(0, 9)) < star_bias:
        return draw(st.sampled_from(['*', '*', f'*/{draw(st.integers(1, hi - lo + 2))}']))
    items = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(['value', 'range', 'range_step', 'from_step', 'star_step']))
        a = draw(st.integers(lo, hi))
        if kind == 'value':
            items.append(_render(draw, a, names, base))
        elif kind in ('range', 'range_step'):
            b = draw(st.integers(a, hi))
            text = f'{_render(draw, a, names, base)}-{_render(draw, b, names, base)}'
            if kind == 'range_step':
                text += f'/{draw(st.integers(1, hi - lo + 2))}'
            items.append(text)
        elif kind == 'from_step':
            items.append(f'{_render(draw, a, names, base)}/{draw(st.integers(1, hi - lo + 2))}')
        else:
            items.append(f'*/{draw(st.integers(1, hi - lo + 2))}')
    return ','.join(items)


@st.composite
def crontab_specs(draw, dense: bool = False):
    if draw(st.integers(0, 9)) == 0:
        m = draw(st.sampled_from(sorted(MACROS)))
        return CrontabOracle(draw(st.sampled_from([m, m.upper(), f'  {m} '])))
    if dense:
        fields = [
            draw(crontab_field(0, star_bias=2)),
            draw(st.one_of(st.sampled_from(['*', '*/2', '0-3', '1,2', '2', '3', '0', '1-4/2']), crontab_field(1))),
            draw(crontab_field(2, star_bias=8)),
            draw(crontab_field(3, star_bias=8)),
            draw(crontab_field(4, star_bias=7)),
        ]
    else:
        fields = [draw(crontab_field(i)) for i in range(5)]
    sep = draw(st.sampled_from([' ', '  ', '\t']))
    return CrontabOracle(sep.join(fields))


def any_specs(dense: bool = False):
    """Specs the core accepts (those that can fire)."""
    return st.one_of(uwsgi_specs(dense), crontab_specs(dense)).filter(lambda o: not o.refused())


@st.composite
def civil_minutes(draw, lo_year=1600, hi_year=9000):
    d = dt.date(draw(st.integers(lo_year, hi_year)), 1, 1) + dt.timedelta(days=draw(st.integers(0, 365)))
    return (d.year, d.month, d.day, draw(st.integers(0, 23)), draw(st.integers(0, 59)))


@functools.cache
def transitions(zname: str, year: int) -> tuple[int, ...]:
    """Unix seconds at which the zone's UTC offset changes during `year` (bisected)."""
    z = zone(zname)

    def off(t):
        return dt.datetime.fromtimestamp(t, z).utcoffset()

    t0 = int(dt.datetime(year, 1, 1, tzinfo=UTC).timestamp())
    t1 = int(dt.datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
    out = []
    step = 3 * 3600
    prev = off(t0)
    t = t0
    while t < t1:
        nxt = min(t + step, t1)
        o = off(nxt)
        if o != prev:
            a, b = t, nxt
            while b - a > 1:
                mid = (a + b) // 2
                if off(mid) == prev:
                    a = mid
                else:
                    b = mid
            out.append(b)
            prev = o
        t = nxt
    return tuple(out)


@st.composite
def instants(draw, zname: str):
    """An instant: uniform over 1900-2200, or within a few hours of one of the zone's offset
    changes (gaps and folds), with a random fraction of a second."""
    frac = draw(st.sampled_from([0.0, 0.0, 0.5, 0.999]))
    year = draw(st.one_of(st.integers(1970, 2040), st.integers(1900, 2200)))
    ts = transitions(zname, year)
    if ts and draw(st.integers(0, 3)) > 0:
        t = draw(st.sampled_from(ts)) + draw(st.integers(-3 * 3600, 3 * 3600))
        return t + frac
    t0 = int(dt.datetime(year, 1, 1, tzinfo=UTC).timestamp())
    return t0 + draw(st.integers(0, 365 * 86400)) + frac


# --------------------------------------------------------------------------------------------
# civil properties

# Each example costs a few ms: run 4x the profile's count (fast: 100, ci: 800).
MORE = settings(max_examples=4 * settings.default.max_examples)


@MORE
@given(any_specs(), st.lists(civil_minutes(), min_size=1, max_size=50))
def test_matches_equals_oracle(o, minutes):
    spec = o.core()
    note(o.label)
    for c in minutes:
        assert spec.matches(*c) == o.matches(*c), (o.label, c)


MONTH_SCAN_SPECS = any_specs()


@MORE
@given(MONTH_SCAN_SPECS, st.integers(1600, 9000), st.integers(1, 12))
def test_next_after_chain_over_a_month_equals_minute_scan(o, year, month):
    """Every minute of one month, minute by minute: the chain of next_after from the last
    minute before the month is exactly the oracle's list of matching minutes."""
    note(o.label)
    spec = o.core()
    first = dt.datetime(year, month, 1)
    end = dt.datetime(year + (month == 12), month % 12 + 1, 1)
    expected = oracle_matches_between(o, first, end)
    got = []
    cur = first - ONE_MIN
    while True:
        n = spec.next_after(cur.year, cur.month, cur.day, cur.hour, cur.minute)
        if n is None:
            break
        nd = dt.datetime(*n)
        assert nd > cur
        if nd >= end:
            break
        got.append(nd)
        cur = nd
    assert got == expected, o.label
    for m in expected[:5] + expected[-5:]:
        assert spec.matches(m.year, m.month, m.day, m.hour, m.minute)


WINDOW_DAYS = 30 * 366


@MORE
@given(any_specs(), civil_minutes())
@example(UwsgiOracle(0, 0, 29, 2, 1), (2026, 3, 1, 0, 0))  # Feb 29 that is a Monday: 2044
@example(UwsgiOracle(0, 0, -2, -1, 1), (2026, 11, 28, 10, 7))  # even-dated Mondays
@example(UwsgiOracle(0, 0, 1, -1, 5), (2026, 11, 28, 10, 7))  # 1st OR Friday
@example(UwsgiOracle(-7, -1, -1, -1, -1), (2026, 1, 1, 0, 56))
@example(UwsgiOracle(0, 0, -1, -1, -7), (2026, 1, 1, 0, 0))  # weekday -7: Sundays
@example(CrontabOracle('0 0 29 feb mon'), (2026, 3, 1, 0, 0))  # OR: any Monday or Feb 29
@example(CrontabOracle('0 0 */29 feb MON'), (2026, 3, 1, 0, 0))  # AND (day starts with *)
@example(CrontabOracle('59 23 31 12 5-7'), (2026, 12, 31, 23, 58))
@example(CrontabOracle('@weekly'), (9000, 12, 31, 23, 59))
def test_next_after_equals_oracle(o, start):
    note(o.label)
    spec = o.core()
    got = spec.next_after(*start)
    want = oracle_next_after(o, start, WINDOW_DAYS)
    if want is not None:
        assert got == want, o.label
        return
    if got is None:
        # the core says "never": the oracle must agree over a whole 400-year cycle
        assert o.never(), (o.label, 'core says never, oracle finds a match')
        return
    # the oracle saw nothing in its window: the answer must lie past it and match
    limit = dt.datetime(*start) + dt.timedelta(days=WINDOW_DAYS)
    assert dt.datetime(*got) > limit, (o.label, got)
    assert o.matches(*got), (o.label, got)
    assert spec.matches(*got)


# --------------------------------------------------------------------------------------------
# time zones

HORIZON_DAYS = 3 * 366


def _fmt(t, zname):
    if t is None:
        return None
    return f'{t} = {dt.datetime.fromtimestamp(t, zone(zname)).isoformat()}'


def check_next_fire(o: Oracle, spec, after: float, zname: str):
    """Compare one next_fire; return the instant ours answered (or None)."""
    got = spec.next_fire(after, zname)
    want = oracle_next_fire(o, after, zname, HORIZON_DAYS)
    ctx = f'{o.label} tz={zname} after={_fmt(after, zname)} got={_fmt(got, zname)}'
    if want is None:
        if got is None:
            assert o.never(), f'{ctx}: core says never, oracle matches somewhere'
        else:
            assert got > after + HORIZON_DAYS * 86400 - 86400, ctx
            c = dt.datetime.fromtimestamp(got, zone(zname)).replace(tzinfo=None, second=0)
            sources = oracle_matches_between(o, c - 2 * ONE_DAY, c + ONE_MIN)
            assert any(fire_instant(m, zname) == got for m in sources), f'{ctx}: no matching minute fires then'
        return got
    want_t, want_m = want
    if got == want_t:
        return got
    raise AssertionError(f'{ctx} oracle={_fmt(want_t, zname)} from civil {want_m}')


@st.composite
def tz_cases(draw):
    zname = draw(st.sampled_from(ZONES))
    return zname, draw(instants(zname))


@MORE
@given(any_specs(dense=True), tz_cases(), st.integers(1, 6))
@example(CrontabOracle('30 2 * * *'), ('Europe/Berlin', 1774699200.0), 3)  # 2026-03-28 12:00Z: gap
@example(CrontabOracle('30 2 * * *'), ('Europe/Berlin', 1792843200.0), 3)  # 2026-10-24 12:00Z: fold
@example(CrontabOracle('*/30 * * * *'), ('Europe/Berlin', 1792886400.0), 6)  # 2026-10-25 00:00Z
@example(CrontabOracle('0,10 2 * * *'), ('Australia/Lord_Howe', 1759579200.0), 3)  # 2025-10-05 gap
@example(CrontabOracle('*/20 1,2 * * *'), ('Australia/Lord_Howe', 1775307600.0), 6)  # 2026-04-05 fold
@example(CrontabOracle('0 12 * * *'), ('Pacific/Apia', 1325160000.0), 3)  # skipped 2011-12-30
@example(UwsgiOracle(0, -1, -1, -1, -1), ('America/Havana', 1741489200.0), 4)  # 2025-03-09 gap at 00:00
@example(UwsgiOracle(-15, -1, -1, -1, -1), ('UTC', 0.5), 4)
def test_next_fire_chain_equals_oracle(o, case, n_fires):
    """Several successive fires, each the oracle's earliest fire after the previous one: so
    no matching first-occurrence minute lies strictly between consecutive fires."""
    zname, after = case
    note(o.label)
    spec = o.core()
    t = after
    for _ in range(n_fires):
        got = check_next_fire(o, spec, t, zname)
        if got is None:
            break
        assert got > t
        t = got


@MORE
@given(any_specs(dense=True), st.sampled_from(ZONES), st.integers(1970, 2100))
def test_next_fire_over_dst_days_fires_every_minute_once(o, zname, year):
    """Around each offset change of a year: all fires in +-1 day are exactly the set of
    first-occurrence-or-shifted instants of the matching civil minutes."""
    note(o.label)
    spec = o.core()
    for tr in transitions(zname, year)[:2]:
        lo, hi = tr - 86400, tr + 86400
        fires = []
        t = lo
        while True:
            n = spec.next_fire(t, zname)
            if n is None or n > hi:
                break
            fires.append(n)
            t = n
        naive_lo = dt.datetime.fromtimestamp(lo, UTC).replace(tzinfo=None) + MIN_OFF
        naive_hi = dt.datetime.fromtimestamp(hi, UTC).replace(tzinfo=None) + MAX_OFF
        expected = sorted(
            {
                f
                for m in oracle_matches_between(o, naive_lo.replace(second=0, microsecond=0), naive_hi)
                if lo < (f := fire_instant(m, zname)) <= hi
            }
        )
        assert fires == expected, (o.label, zname, _fmt(tr, zname))


# --------------------------------------------------------------------------------------------
# fixed cases and the known divergences


def test_uwsgi_spec_table():
    """SPEC.md section 6's example table, via the oracle and the core."""
    start = (2026, 11, 28, 10, 7)  # a Saturday
    table = {
        (-1, -1, -1, -1, -1): (2026, 11, 28, 10, 8),
        (-5, -1, -1, -1, -1): (2026, 11, 28, 10, 10),
        (0, -2, -1, -1, -1): (2026, 11, 28, 12, 0),
        (30, 3, -1, -1, -1): (2026, 11, 29, 3, 30),
        (0, 9, -1, -1, 1): (2026, 11, 30, 9, 0),
        (0, 9, -1, -1, 7): (2026, 11, 29, 9, 0),
        (0, 0, 1, -1, -1): (2026, 12, 1, 0, 0),
        (0, 0, 1, -1, 5): (2026, 12, 1, 0, 0),
        (0, 0, -10, -1, -1): (2026, 11, 30, 0, 0),
        (0, 0, -2, -1, 1): (2026, 11, 30, 0, 0),
        (-7, -1, -1, -1, -1): (2026, 11, 28, 10, 14),
        (0, 0, -1, -2, -1): (2026, 12, 1, 0, 0),
    }
    for args, want in table.items():
        o = UwsgiOracle(*args)
        assert oracle_next_after(o, start, 400) == want, args
        assert o.core().next_after(*start) == want, args


@MORE
@given(st.one_of(wide_uwsgi_specs(), crontab_specs()), civil_minutes())
@example(UwsgiOracle(0, 0, 30, 2, -1), (2026, 3, 1, 0, 0))  # February 30
@example(UwsgiOracle(0, 0, -32, -1, -1), (2026, 1, 1, 0, 0))  # no day divisible by 32
@example(UwsgiOracle(61, -1, -1, -1, -1), (2026, 1, 1, 0, 0))
@example(UwsgiOracle(0, 0, 32, -1, 1), (2026, 1, 1, 0, 0))  # ORed with Mondays, still refused
@example(UwsgiOracle(0, 0, 31, 4, 1), (2026, 1, 1, 0, 0))  # day 31 of April OR Mondays: fires
@example(UwsgiOracle(0, 0, -1, -1, 7), (2026, 1, 1, 0, 0))  # 7 is Sunday
@example(CrontabOracle('0 0 31 4,6,9,11 *'), (2026, 3, 1, 0, 0))  # never
@example(CrontabOracle('0 0 30 feb *'), (2026, 3, 1, 0, 0))  # never
def test_core_refuses_exactly_the_specs_that_cannot_fire(o, start):
    """Issue 10: out-of-range integers and impossible dates were accepted and never fired. The
    core refuses exactly those, naming the field; every spec it accepts fires again from any
    minute."""
    note(o.label)
    if o.refused():
        with pytest.raises(ValueError, match='minute|hour|day|month|weekday'):
            o.core()
        return
    spec = o.core()
    got = spec.next_after(*start)
    assert got is not None, o.label
    assert o.matches(*got) and dt.datetime(*got) > dt.datetime(*start)


@pytest.mark.parametrize('text', ['61 * * * *', '* * * *', '*/0 * * * *', '@sometimes', '5-1 * * * *', 'x * * * *'])
def test_bad_crontab_is_a_value_error(text):
    with pytest.raises(ValueError):
        _core.CronSpec(text)


def test_from_step_one():
    assert _core.CronSpec('5/1 * * * *') == _core.CronSpec('5-59 * * * *')


GAP_ORDER_CASES = [
    # Lord Howe springs forward 02:00 -> 02:30 on 2025-10-05. Civil 02:00 fires at 02:30, civil
    # 02:10 at 02:40 (the core once jumped from 02:30 to the next day).
    ('0,10 2 * * *', 'Australia/Lord_Howe', '2025-10-05T02:30:00+11:00', '2025-10-05T02:40:00+11:00'),
    # The same minute missed when the process starts inside the shifted hour: Berlin springs
    # forward 2026-03-29 02:00 -> 03:00, civil 02:15 fires at 03:15 CEST, also when asked at
    # 03:05 (the core once answered the next day).
    ('15 2 * * *', 'Europe/Berlin', '2026-03-29T03:05:00+02:00', '2026-03-29T03:15:00+02:00'),
    # Order: Troll springs forward 01:00 -> 03:00 on 2025-03-30. Civil 02:00 fires at 04:00 but
    # civil 03:00 (real) at 03:00, which comes first (the core once answered 04:00 and then
    # never fired 03:00).
    ('0 2,3 * * *', 'Antarctica/Troll', '2025-03-30T00:30:00+00:00', '2025-03-30T03:00:00+02:00'),
]


@pytest.mark.parametrize('text,zname,after,want', GAP_ORDER_CASES)
def test_gap_order(text, zname, after, want):
    a = dt.datetime.fromisoformat(after).timestamp()
    w = dt.datetime.fromisoformat(want).timestamp()
    o = CrontabOracle(text)
    assert oracle_next_fire(o, a, zname, 3)[0] == w  # the oracle's reading
    assert o.core().next_fire(a, zname) == w


def test_next_fire_default_zone_is_accepted():
    t = _core.CronSpec('* * * * *').next_fire(120.5)
    assert t == 180
    with pytest.raises(ValueError):
        _core.CronSpec('* * * * *').next_fire(0, 'Nowhere/Atlantis')


def test_oracle_sanity():
    """The oracle's own building blocks on known facts."""
    b = 'Europe/Berlin'
    assert fire_instant(dt.datetime(2026, 3, 29, 2, 30), b) == dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC).timestamp()
    assert fire_instant(dt.datetime(2026, 10, 25, 2, 30), b) == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp()
    assert not civil_exists(dt.datetime(2026, 3, 29, 2, 30), b)
    assert civil_exists(dt.datetime(2026, 10, 25, 2, 30), b)
    assert transitions(b, 2026) == (
        int(dt.datetime(2026, 3, 29, 1, tzinfo=UTC).timestamp()),
        int(dt.datetime(2026, 10, 25, 1, tzinfo=UTC).timestamp()),
    )
    o = CrontabOracle('*/15 9-17 * jan,JUL Mon-fri')
    assert o._fields[0][4] == frozenset({1, 2, 3, 4, 5}) and not o._fields[1]
    assert CrontabOracle('0 0 * * 5-7')._fields[0][4] == frozenset({5, 6, 0})
    assert CrontabOracle('0 0 1 * 5')._fields[1]
    assert CrontabOracle('5/20 * * * *')._fields[0][0] == frozenset({5, 25, 45})


def test_next_fire_past_year_9999_is_none_not_a_panic():
    after = dt.datetime(9996, 3, 1, tzinfo=UTC).timestamp()  # the next Feb 29 is in 10000
    try:
        got = _core.CronSpec('0 0 29 2 *').next_fire(after, 'UTC')
    except ValueError:
        return
    except BaseException as e:  # pyo3's PanicException is a BaseException
        pytest.fail(f'{type(e).__name__}: {e}')
    assert got is None
