"""Date parsing and UseAfter lookup dates equal the reference's, results and error texts."""

from __future__ import annotations

import datetime
import random

import pytest

from crds_async.errors import LookupFailure
from crds_async.rules.timestamps import abs_time_delta, format_date, lookup_date, parse_date
from tests.conftest import needs_reference
from tests.rules.test_conditioning import rmap_literals

MONTHS = ["Jan", "feb", "MAR", "April", "May", "June", "Jul", "Aug", "sept", "Oct", "Nov", "Dec", "Foo", "Xyz"]


def generated_dates(count: int, seed: int = 7) -> list[str]:
    """Date strings in every accepted form and many rejected ones."""
    rng = random.Random(seed)

    def num(width: int, high: int) -> str:
        return str(rng.randrange(high)).zfill(width) if rng.random() < 0.9 else rng.choice(["", "x", "1", "123", "-1"])

    def clock() -> str:
        hour, minute, second = num(2, 26), num(2, 62), num(2, 62)
        form = rng.randrange(8)
        if form == 0:
            text = f"{hour}:{minute}"
        elif form == 1:
            text = f"{hour}:{minute}:{second}"
        elif form == 2:
            text = f"{hour}:{minute}:{second}.{rng.randrange(10**rng.randrange(1, 8))}"
        elif form == 3:
            text = f"{hour}:{minute}:{second}:{rng.randrange(100)}"
        elif form == 4:
            text = f"{rng.randrange(1, 13)}:{minute}{rng.choice([' ', ''])}{rng.choice(['AM', 'pm', 'am', 'PM'])}"
        elif form == 5:
            text = rng.choice(["1e400", "1:2:3:4:5", "12", "12:00:00QM", ":", "12:00:nan", "12:00:inf", "1_2:3:4"])
        elif form == 6:
            text = f"{hour}:{minute}:{second}.{rng.choice(['57', '5', '999999', '0000001'])}"
        else:
            text = f"{hour}:{minute}:{second} {rng.choice(['AM', 'PM', 'UT', 'x'])}"
        return text

    def day_part() -> str:
        year, month, day = num(4, 2100), num(2, 14), num(2, 33)
        form = rng.randrange(9)
        sep = rng.choice(["-", "/", "-", "-"])
        if form == 0:
            return f"{year}{sep}{month}{sep}{day}"
        if form == 1:
            return f"{month}{sep}{day}{sep}{year}"
        if form == 2:
            return f"{day}{sep}{month}{sep}{rng.choice(['9', '0', '3', '4'])}{rng.randrange(10)}"
        if form == 3:
            return f"{year}{month}{day}:{num(2, 25)}{num(2, 61)}{num(2, 61)}"
        if form == 4:
            return f"{rng.choice(MONTHS)} {day}{rng.choice([',', ''])} {year}"
        if form == 5:
            return f"{day}-{rng.choice(MONTHS)}-{year}"
        if form == 6:
            return f"{rng.choice(MONTHS)}/{day}/{year}"
        if form == 7:
            return f"{year}{sep}{month}{sep}{day[:1]}"
        return rng.choice(["", "UNDEFINED", "garbage", "2001-01-01UNDEFINED", "20010101", "01-01"])

    dates = []
    while len(dates) < count:
        shape = rng.randrange(6)
        if shape == 0:
            text = day_part()
        elif shape == 1:
            text = f"{day_part()} {clock()}"
        elif shape == 2:
            frac = rng.choice(["", f".{rng.randrange(10**rng.randrange(1, 8))}"])
            text = f"{num(4, 2100)}-{num(2, 13)}-{num(2, 32)}T{num(2, 25)}:{num(2, 60)}" \
                   f"{rng.choice(['', ':' + num(2, 60)])}{frac}"
        elif shape == 3:
            text = f"{day_part()} {clock()} UT"
        elif shape == 4:
            text = f"{rng.choice([' ', '', '  '])}{day_part()}{rng.choice(['  ', ' '])}{clock()}{rng.choice([' ', ''])}"
        else:
            text = f"{day_part()} {clock()} {clock()}"
        dates.append(text)
    return dates


def _reference_format(text: str) -> str:
    from crds.core import timestamp

    try:
        return timestamp.reformat_date(text)
    except Exception as exc:   # the reference raises several types; only the text is kept
        return f"error: {exc}"


def _our_format(text: str) -> str:
    try:
        return format_date(text)
    except ValueError as exc:
        return f"error: {exc}"


@needs_reference
def test_parse_date_equals_reference_on_rmap_literals_and_generated_dates():
    strings, _ = rmap_literals()
    rmap_dates = [s for s in strings if s[:4].isdigit()]
    assert len(rmap_dates) > 5000   # every UseAfter key of the cache is in here
    samples = [*strings, *generated_dates(8000)]
    outcomes = [(s, _reference_format(s), _our_format(s)) for s in samples]
    assert [o for o in outcomes if o[1] != o[2]] == []
    accepted = sum(not o[1].startswith("error") for o in outcomes)
    assert 0.3 * len(samples) < accepted < 0.95 * len(samples)   # both branches well exercised


@needs_reference
@pytest.mark.parametrize("parkeys", [("DATE-OBS", "TIME-OBS"),
                                     ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME"),
                                     ("ROMAN.META.EXPOSURE.START_TIME",)])
def test_lookup_date_equals_reference_selector(parkeys):
    from crds.core.selectors import UseAfterSelector

    selector = UseAfterSelector(parkeys, {"2000-01-01 00:00:00": "x.fits"})
    rng = random.Random(len(parkeys[0]))
    pool = generated_dates(1500, seed=11) + ["UNDEFINED", " UNDEFINED ", "", "  ", "UNDEFINEDX"]
    for _ in range(1500):
        values = [rng.choice(pool) for _ in parkeys]
        if len(parkeys) == 2 and rng.random() < 0.5:   # HST/JWST: date and time split
            date, _, time = rng.choice(pool).partition(" ")
            values = [date, time or rng.choice(["", "UNDEFINED", "12:00:00"])]
        try:
            expected = selector._validate_header(dict(zip(parkeys, values)))
        except Exception as exc:
            expected = f"error: {exc}"
        try:
            ours = lookup_date(values, parkeys)
        except LookupFailure as exc:
            ours = f"error: {exc}"
        assert ours == expected, values


def test_lookup_date_messages():
    with pytest.raises(LookupFailure) as info:
        lookup_date(["2010-01-01", " UNDEFINED "], ("DATE-OBS", "TIME-OBS"))
    assert str(info.value) == "UseAfter parameter 'TIME-OBS' is UNDEFINED."
    with pytest.raises(LookupFailure) as info:
        lookup_date(["2010-01-01", "25:00:00"], ("DATE-OBS", "TIME-OBS"))
    assert str(info.value) == ("UseAfter Invalid date/time format for ('DATE-OBS', 'TIME-OBS') "
                               "value = '2010-01-01 25:00:00' exception is 'hour must be in 0..23'")
    assert lookup_date([" 2020-01-01T00:00:00.5 "], ("ROMAN.META.EXPOSURE.START_TIME",)) == "2020-01-01 00:00:00.500000"


def test_parse_date_microsecond_truncation_and_forms():
    assert parse_date("2001-03-21T12:00:03.57").microsecond == 569999
    assert parse_date("Mar 21 2001 12:00:00 am") == datetime.datetime(2001, 3, 21, 0, 0)
    assert parse_date("03-Jan-2013") == datetime.datetime(2013, 1, 3)
    assert parse_date("21/12/99") == datetime.datetime(1999, 12, 21)
    assert parse_date("21/12/15") == datetime.datetime(2015, 12, 21)
    assert parse_date("19970114:053714") == datetime.datetime(1997, 1, 14, 5, 37, 14)
    assert parse_date("Dec 01 1993 00:00:00 UT") == datetime.datetime(1993, 12, 1)


@needs_reference
def test_abs_time_delta_equals_reference():
    from crds.core.selectors import abs_time_delta as reference_delta

    dates = [d for d in generated_dates(400, seed=5) if not _our_format(d).startswith("error")]
    rng = random.Random(5)
    for _ in range(300):
        first, second = rng.choice(dates), rng.choice(dates)
        assert abs_time_delta(first, second) == reference_delta(first, second)


def test_the_common_form_shortcut_equals_the_general_parser(monkeypatch):
    """'YYYY-MM-DD HH:MM:SS[.f]' (and the T form) is parsed directly: same datetimes, same errors."""
    import re

    from crds_async.rules import timestamps

    rng = random.Random(11)
    samples = []
    for _ in range(4000):
        year, month, day = rng.randrange(1990, 2040), rng.randrange(0, 14), rng.randrange(0, 33)
        hour, minute, second = rng.randrange(0, 26), rng.randrange(0, 62), rng.randrange(0, 62)
        fraction = rng.choice(["", ".5", ".57", ".999999", ".000001", ".123456", ".1"])
        sep = rng.choice([" ", "T"])
        samples.append(f"{year:04d}-{month:02d}-{day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}{fraction}")
    samples += ["2009-02-29 00:00:00", "2008-02-29 23:59:59.999999", "2001-03-21T12:00:03.57", "2001-03-21 24:00:00"]
    assert sum(timestamps._COMMON_FORM.fullmatch(s) is not None for s in samples) == len(samples)

    def outcome(text):
        try:
            return parse_date(text)
        except ValueError as exc:
            return f"error: {exc}"

    shortcut = [outcome(s) for s in samples]
    monkeypatch.setattr(timestamps, "_COMMON_FORM", re.compile(r"(?!)"))  # never matches: the general path
    general = [outcome(s) for s in samples]
    assert shortcut == general
    assert 0.2 * len(samples) < sum(isinstance(o, datetime.datetime) for o in shortcut) < 0.9 * len(samples)
