"""Dataset dates for UseAfter lookups: the date forms the reference accepts, and its messages.

Accepted forms (rules.md §3.2 "Parser"), checked in this order:

1. any ``UNDEFINED`` in the text is an error;
2. a trailing `` UT`` is dropped;
3. ``YYYY-MM-DDTHH:MM[:SS][.f{1,6}]`` (``-`` or ``/``): the ``T`` becomes a space;
4. three consecutive ASCII letters: a month-name date (``Mar 21 2001 12:00:00 am``,
   ``03-Jan-2013``, ``Jan 3, 2013``; day and month may be swapped);
5. otherwise ``-`` becomes ``/`` and the first token is ``MM/DD/YYYY``, ``YYYY/MM/DD``,
   ``DD/MM/9Y`` (19xx), ``DD/MM/[0-3]Y`` (20xx) or ``YYYYMMDD:HHMMSS``; the rest is the
   time: ``HH:MM``, ``HH:MM:SS[.frac]`` or ``H:M:S:x``, optionally followed by AM/PM.

Error texts matter: the UseAfter failure message embeds them. They are produced by the
same builtin conversions (``int``, ``float``, tuple unpacking, ``datetime``) applied in
the same order as the reference, so they read identically.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Sequence

from crds_async.errors import LookupFailure

__all__ = ["parse_date", "format_date", "lookup_date", "abs_time_delta"]

# ``\d`` (not [0-9]) and ``$`` (which tolerates one trailing newline) on purpose: these
# decide which parser runs, and must accept exactly what the reference's patterns accept.
_T_SEPARATED = re.compile(r"\d{4}[-/]\d\d[-/]\d\dT\d\d(?::\d\d){1,2}(?:\.\d{1,6})?$")
_HAS_WORD = re.compile(r"[A-Za-z]{3}")

_NUMERIC_DATE_FORMS = (
    # (pattern of the first token, order of its '/'-separated fields, century prefix)
    (re.compile(r"\d\d/\d\d/\d{4}$"), ("month", "day", "year"), ""),
    (re.compile(r"\d{4}/\d\d/\d\d$"), ("year", "month", "day"), ""),
    (re.compile(r"\d\d/\d\d/9\d$"), ("day", "month", "year"), "19"),
    (re.compile(r"\d\d/\d\d/[0-3]\d$"), ("day", "month", "year"), "20"),
)
_COMPACT_DATE_TIME = re.compile(r"\d{8}:\d{6}$")   # YYYYMMDD:HHMMSS
#: what nearly every dataset has (DATE-OBS + TIME-OBS joined): parsed directly, with the
#: same conversions the general path applies to it; anything else takes the general path
_COMMON_FORM = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[ T]([0-9]{2}):([0-9]{2}):([0-9]{2}(?:\.[0-9]{1,6})?)")

_MONTH_ABBREVIATIONS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_UNDEFINED_TEXT = "One or more required date/time values is UNDEFINED"


def _month_number(name: str, whole_date: str) -> int:
    abbreviation = name[:3].capitalize()
    if abbreviation not in _MONTH_ABBREVIATIONS:
        raise ValueError(f"Invalid month value {name!r} in base date {whole_date!r}")
    return _MONTH_ABBREVIATIONS.index(abbreviation) + 1


def _parse_clock(text: str) -> tuple[int, int, int, int]:
    """(hour, minute, second, microsecond) of ``HH:MM``, ``HH:MM:SS[.f]`` or ``H:M:S:x`` [AM|PM]."""
    text = text.strip()
    meridian = text[-2:].upper()
    if meridian in ("AM", "PM"):
        text = text[:-2]
    fields = text.split(":")
    # The unpacking (rather than a length test) keeps Python's own error texts.
    try:
        hour, minute = fields
        second_text = "00"
    except ValueError:
        try:
            hour, minute, second_text = fields
        except ValueError:
            hour, minute, second_text, _ignored = fields
    hours = int(hour)
    minutes = int(minute)
    seconds = float(second_text)
    whole_seconds = int(seconds)
    # Float arithmetic, truncated: '03.57' gives 569999 microseconds, as in the reference.
    microseconds = int((seconds - whole_seconds) * 10**6)
    if meridian == "PM" and hours < 12:
        hours += 12
    elif meridian == "AM" and hours == 12:
        hours = 0
    return hours, minutes, whole_seconds, microseconds


def _parse_month_name_date(text: str) -> datetime.datetime:
    whole_date = text
    # The reference lower-cases the whole text while gluing a trailing am/pm to the time.
    while text.lower().endswith(" am"):
        text = text.lower().replace(" am", "am")
    while text.lower().endswith(" pm"):
        text = text.lower().replace(" pm", "pm")
    fields = text.replace("-", " ").replace("/", " ").split()
    try:
        month, day, year, clock = fields
    except ValueError:
        month, day, year = fields
        clock = "00:00AM"
    if day.endswith(","):
        day = day[:-1]
    try:
        month_number = _month_number(month, whole_date)
        day_number = int(day)
        year_number = int(year)
    except Exception:
        # '03 Jan 2013': day first.
        month, day = day, month
        month_number = _month_number(month, whole_date)
        day_number = int(day)
        year_number = int(year)
    hours, minutes, seconds, microseconds = _parse_clock(clock)
    return datetime.datetime(year_number, month_number, day_number,
                             hours, minutes, seconds, microseconds)


def _parse_numeric_date(text: str) -> datetime.datetime:
    text = text.replace("-", "/")
    tokens = text.split()
    if not tokens:
        raise ValueError("list index out of range")   # the reference's IndexError text
    first = tokens[0]
    clock = " ".join(tokens[1:]) if len(tokens) > 1 else "00:00:00"
    hours, minutes, seconds, microseconds = _parse_clock(clock)   # before the date, as the reference
    for pattern, order, century in _NUMERIC_DATE_FORMS:
        if pattern.match(first):
            fields = dict(zip(order, first.split("/")))
            year, month, day = century + fields["year"], fields["month"], fields["day"]
            break
    else:
        if not _COMPACT_DATE_TIME.match(first):
            raise ValueError("Unknown numerical date format: " + repr(text))
        year, month, day = first[:4], first[4:6], first[6:8]
        hours, minutes, seconds = int(first[9:11]), int(first[11:13]), int(first[13:15])
        microseconds = 0
    return datetime.datetime(int(year), int(month), int(day),
                             hours, minutes, seconds, microseconds)


def parse_date(text: str) -> datetime.datetime:
    """Parse a dataset or rmap date/time string exactly as the reference does.

    Parameters
    ----------
    text : str
        E.g. ``'2009-05-14 01:02:03'``, ``'2009-05-14T01:02:03.5'``, ``'Mar 21 2001 12:00:00 am'``,
        ``'12/21/1999 05:42'``, ``'21/12/99'``, ``'19970114:053714'``.

    Returns
    -------
    datetime.datetime

    Raises
    ------
    ValueError
        With the text of the reference's exception (including the texts of the builtin
        conversions it uses, e.g. ``'hour must be in 0..23'``).

    Examples
    --------
    >>> parse_date('2001-03-21T12:00:03.57')
    datetime.datetime(2001, 3, 21, 12, 0, 3, 569999)
    """
    common = _COMMON_FORM.fullmatch(text)
    if common is not None:
        year, month, day, hour, minute, second = common.groups()
        seconds = float(second)
        whole_seconds = int(seconds)
        try:
            return datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), whole_seconds,
                                     int((seconds - whole_seconds) * 10**6))
        except ValueError:
            pass  # out of range: the general path raises, with the reference's text
    if "UNDEFINED" in text:
        raise ValueError(_UNDEFINED_TEXT)
    if text.endswith(" UT"):
        text = text[:-3]
    if _T_SEPARATED.match(text):
        text = text.replace("T", " ")
    try:
        if _HAS_WORD.search(text):
            return _parse_month_name_date(text)
        return _parse_numeric_date(text)
    except OverflowError as exc:        # float('inf') seconds: keep the text, one error type
        raise ValueError(str(exc)) from exc


def format_date(text: str) -> str:
    """``parse_date(text)`` as ``'YYYY-MM-DD HH:MM:SS[.ffffff]'`` (the reference's normal form)."""
    return parse_date(text).isoformat(" ")


@functools.lru_cache(maxsize=1 << 14)
def _cached_format_date(text: str) -> str:
    return format_date(text)


def lookup_date(values: Sequence[str], parkeys: Sequence[str]) -> str:
    """The UseAfter lookup date of a dataset, or the reference's failure text.

    Parameters
    ----------
    values : Sequence[str]
        The (conditioned) header values of the UseAfter parameters, in parkey order.
    parkeys : Sequence[str]
        The UseAfter parameters, e.g. ``('DATE-OBS', 'TIME-OBS')``.

    Returns
    -------
    str
        ``'YYYY-MM-DD HH:MM:SS[.ffffff]'``.

    Raises
    ------
    LookupFailure
        ``UseAfter parameter 'TIME-OBS' is UNDEFINED.`` for a value that is ``UNDEFINED``
        once stripped, or ``UseAfter Invalid date/time format for ('DATE-OBS', 'TIME-OBS')
        value = '...' exception is '...'`` when the joined date does not parse.
    """
    stripped = []
    for parkey, value in zip(parkeys, values):
        value = value.strip()
        if value == "UNDEFINED":
            raise LookupFailure(f"UseAfter parameter {parkey!r} is UNDEFINED.")
        stripped.append(value)
    date = " ".join(stripped).strip()
    try:
        return _cached_format_date(date)
    except ValueError as exc:
        raise LookupFailure(
            f"UseAfter Invalid date/time format for {tuple(parkeys)!r} "
            f"value = {date!r} exception is {str(exc)!r}"
        ) from exc


def abs_time_delta(first: str, second: str) -> float:
    """``abs(first - second)`` in seconds, both parsed with :func:`parse_date`.

    The reference's ClosestTime selector ranks its keys by this distance (stored as
    float32 and the first minimum wins; that rounding is the selector's business).
    """
    return abs((parse_date(first) - parse_date(second)).total_seconds())
