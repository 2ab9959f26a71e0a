"""Certify reference files against the rmap of a context that would select them.

For each file: it opens and verifies (:mod:`.open`: FITS structure and
``CHECKSUM``/``DATASUM``, ASDF schemas, JSON/YAML syntax); the context's rmap for
its instrument and type is found (from the header, then the file name); every
keyword that rmap matches on is present and its value is one the rmap accepts
(the rmap's own value validation, so globs, ``N/A``, ``ANY`` and ``|``
alternatives behave as in a lookup); ``USEAFTER`` is present and parses when the
rmap selects by date; the keywords every JWST and Roman reference carries are
present; FITS tables have no identical rows and no two rows with the same
values in the columns the rmap matches on (both warnings, as the reference's
duplicate-mode check).  With a comparison
context, notes say which of its rmap's entries the file would replace or add.

Problems are :class:`Problem` values (one line each, naming file and keyword or
row); :func:`certify_references` checks many files on a thread pool.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import CrdsError, LookupFailure
from ..instruments.common import fix_instrument, header_instrument, load_data, type_table
from ..rules.conditioning import condition_value
from ..rules.model import Context, ReferenceMapping
from ..rules.selectors import MatchSelector, Selector, UseAfterSelector
from ..rules.timestamps import parse_date
from .open import OpenedReference, Table, UnusableInput, open_reference

__all__ = ["Problem", "Note", "Certified", "certify_reference", "certify_references", "locate_type"]

#: Keywords every JWST/Roman reference carries (data-model paths; FITS names via the DM table).
_STANDARD_KEYWORDS = ("META.AUTHOR", "META.DESCRIPTION", "META.HISTORY", "META.PEDIGREE", "META.REFTYPE",
                      "META.TELESCOPE", "META.INSTRUMENT.NAME", "META.USEAFTER")
_USEAFTER_KEYS = ("USEAFTER", "META.USEAFTER", "ROMAN.META.USEAFTER")
_NEWSTYLE = re.compile(r"^(hst|jwst|roman)_([a-z0-9]+)_([a-z0-9\-]+?)(_\d{4})?(\.|_)", re.IGNORECASE)
_ACCEPT_ANY = ("ANY", "N/A", "*")
#: Parameters some rmaps match on whose values are free text or dates (synphot DESCRIP, DATE).
_FREE_FORM = re.compile(r"(^|[._])(DESCRIP|DESCRIPTION|DATE|TIME)([._]|$)")


@dataclass(frozen=True, slots=True)
class Problem:
    """One defect of one reference; ``where`` is a keyword, ``row N`` or None for the file."""

    file: str
    check: str      # format | checksum | schema | type | keyword | value | useafter | duplicate | overlap
    message: str
    where: str | None = None
    severity: str = "error"   # error | warning

    def __str__(self) -> str:
        where = f" {self.where}:" if self.where else ""
        label = "" if self.severity == "error" else "warning: "
        return f"{self.file}:{where} {label}{self.check}: {self.message}"


@dataclass(frozen=True, slots=True)
class Note:
    """What the file would change in the comparison context's rmap (information, not a problem)."""

    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass(slots=True)
class Certified:
    """The outcome for one file: its instrument and type when known, problems and notes."""

    file: str
    instrument: str | None
    filekind: str | None
    problems: list[Problem]
    notes: list[Note]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


# ------------------------------------------------------------------ type of a reference

def _header_get(header: Mapping[str, str], names: Iterable[str]) -> str | None:
    for name in names:
        value = header.get(name)
        if value not in (None, "", "UNDEFINED"):
            return value
    return None


def locate_type(context: Context, header: Mapping[str, str], path: Path) -> tuple[str | None, str | None]:
    """``(instrument, filekind)`` of a reference, lower case; ``None`` where it cannot be told.

    The instrument is the header's (``INSTRUME``, ``META.INSTRUMENT.NAME``, ...), else the
    one a CRDS-style name (``jwst_miri_ipc_0004.fits``) gives.  The type is the header's
    ``REFTYPE`` (JWST, Roman), else the name's, else the HST file-name suffix
    (``_idc`` -> ``idctab``), else the rmap of that instrument that already names the file.
    """
    name = path.name
    named = _NEWSTYLE.match(name)
    instrument = header_instrument(header)
    instrument = fix_instrument(instrument.lower()) if instrument else None
    if instrument not in context.instrument_names and named and named.group(2).lower() in context.instrument_names:
        instrument = named.group(2).lower()
    if instrument not in context.instrument_names:
        return instrument, None
    reftypes = _reftypes(context, instrument)
    kind = _header_get(header, ("REFTYPE", "META.REFTYPE", "ROMAN.META.REFTYPE"))
    if kind and kind.lower() in reftypes:
        return instrument, kind.lower()
    if named and named.group(2).lower() == instrument and named.group(3).lower() in reftypes:
        return instrument, named.group(3).lower()
    suffixes = type_table(context.observatory).get("suffix_to_filekind", {})
    for token in reversed(Path(name).stem.lower().split("_")[1:]):
        kind = suffixes.get(instrument, {}).get(token)
        if kind and kind in reftypes:
            return instrument, kind
        kind = suffixes.get("synphot", {}).get(token)   # HST throughput tables of any instrument
        if kind and kind in _reftypes(context, "synphot"):
            return "synphot", kind
    try:
        imap = context.instrument(instrument)
    except CrdsError:
        return instrument, None
    for filekind, rmap in imap.rmaps.items():
        if name in rmap.reference_names():
            return instrument, filekind
    return instrument, None


def _reftypes(context: Context, instrument: str) -> set[str]:
    try:
        return set(context.instrument(instrument).reftypes)
    except CrdsError:
        return set()


# ------------------------------------------------------------------ rmap structure

def _walk(selector: object) -> Iterator[Selector]:
    if isinstance(selector, Selector):
        yield selector
        for choice in getattr(selector, "choices", ()):
            yield from _walk(choice)


def _match_nodes(rmap: ReferenceMapping) -> list[MatchSelector]:
    return [node for node in _walk(rmap.selector) if isinstance(node, MatchSelector)]


def _keyword_candidates(parkey: str, observatory: str) -> list[str]:
    """The header keys a reference may spell a dataset parameter with."""
    names = [parkey]
    if observatory == "jwst":
        table = load_data("jwst_fits_to_dm.json")
        fits_name = table["dm_to_fits"].get(parkey)
        if fits_name:
            names[:0] = ["P_" + fits_name[:6]]   # a pattern keyword (P_DETECT = 'A|B|') stands for the keyword
            names.append(fits_name)
        names.extend(table["cross_strapped_keywords"].get(parkey, ()))
    elif observatory == "roman":
        if parkey.startswith("ROMAN."):
            names.append(parkey[len("ROMAN."):])
        else:
            names.append("ROMAN." + parkey)
    return list(dict.fromkeys(names))


def _value_of(header: Mapping[str, str], parkey: str, observatory: str) -> tuple[str | None, str]:
    """(value, the keyword that held it) for a dataset parameter; value None when absent."""
    for name in _keyword_candidates(parkey, observatory):
        if name in header:
            return header[name], name
    return None, parkey


# ------------------------------------------------------------------ checks

def _accepted(node: MatchSelector, parameter: str, value: str) -> bool:
    """Does some Match key of ``node`` select ``value`` for ``parameter`` (N/A keys do not count)?"""
    position = node.parameters.index(parameter)
    if not node.valid.get(parameter) or set(node.valid[parameter]) <= {"N/A", "*"}:
        return True   # esoteric keys (the rmap checks no values), or the rmap never tells values apart
    if value.startswith("ANY"):
        return True   # ANY, and HST's generic ANY_FULL/ANY_SUB spellings
    for matchers in node.matchers:
        try:
            if matchers[position].match(value) == 1:
                return True
        except (ValueError, TypeError):   # a numeric relation met a non-number
            continue
    return False


def _instrument_values(context: Context, instrument: str) -> dict[str, set[str]]:
    """Every value any rmap of the instrument matches each parameter on ('*' when one is a pattern)."""
    key = (context.name, instrument)
    found = _INSTRUMENT_VALUES.get(key)
    if found is None:
        found = {}
        try:
            rmaps = list(context.instrument(instrument).rmaps.values())
        except CrdsError:
            rmaps = []
        for rmap in rmaps:
            for node in _match_nodes(rmap):
                for parameter, valid in node.valid.items():
                    found.setdefault(parameter, set()).update(valid)
        _INSTRUMENT_VALUES[key] = found
    return found


_INSTRUMENT_VALUES: dict[tuple[str, str], dict[str, set[str]]] = {}


def _check_keywords(ref: OpenedReference, rmap: ReferenceMapping, context: Context) -> Iterator[Problem]:
    """Match parameters present, with values the rmap accepts.

    A missing keyword is an error for JWST and Roman, whose references carry every
    keyword they are matched on, and a warning for HST, whose rmaps also match on
    dataset-only keywords (array sizes, hook inputs).  A value the rmap does not accept
    is an error when no rmap of the instrument knows it either, else a warning (a new
    mode for this type).
    """
    file = str(ref.path)
    observatory = context.observatory
    seen: set[str] = set()
    for node in _match_nodes(rmap):
        for parameter in node.parameters:
            if parameter in seen:
                continue
            seen.add(parameter)
            value, keyword = _value_of(ref.header, parameter, observatory)
            if value is None:
                yield Problem(file, "keyword", f"missing keyword matched by {rmap.name}", parameter,
                              "warning" if observatory == "hst" else "error")
                continue
            valid = node.valid.get(parameter, [])
            if _FREE_FORM.search(parameter):
                continue  # descriptions and dates: any text is a new value, not a defect
            for alternative in (part.strip() for part in str(value).split("|")):
                if not alternative or alternative.upper() in _ACCEPT_ANY:
                    continue
                if _accepted(node, parameter, condition_value(alternative)):
                    continue
                known = _instrument_values(context, rmap.instrument.lower()).get(parameter, set())
                elsewhere = condition_value(alternative) in known
                shown = ", ".join(valid[:12]) + (", ..." if len(valid) > 12 else "")
                text = (f"value {alternative!r} is not one {rmap.name} accepts ({shown})"
                        + ("; other rmaps of the instrument use it" if elsewhere else ""))
                yield Problem(file, "value", text, keyword if keyword == parameter else f"{parameter} [{keyword}]",
                              "warning" if elsewhere else "error")


def _uses_dates(rmap: ReferenceMapping) -> bool:
    return any(isinstance(node, UseAfterSelector) for node in _walk(rmap.selector))


def _check_useafter(ref: OpenedReference, required: bool) -> Iterator[Problem]:
    file = str(ref.path)
    value = _header_get(ref.header, _USEAFTER_KEYS)
    if value is None:
        if required:
            yield Problem(file, "useafter", "missing USEAFTER", "USEAFTER")
        return
    try:
        parse_date(str(value))
    except (ValueError, OverflowError) as exc:
        yield Problem(file, "useafter", f"USEAFTER {value!r} does not parse as a date ({exc})", "USEAFTER")


def _check_standard_keywords(ref: OpenedReference, observatory: str) -> Iterator[Problem]:
    if observatory not in ("jwst", "roman"):
        return
    for key in _STANDARD_KEYWORDS:
        if key == "META.USEAFTER" or (key == "META.HISTORY" and observatory == "roman"):
            continue  # USEAFTER is checked (and parsed) by _check_useafter; Roman keeps history outside meta
        value, _keyword = _value_of(ref.header, key, observatory)
        if value is None:
            yield Problem(str(ref.path), "keyword", "missing required keyword", key)


def _cell(value: object) -> object:
    """A table cell as a hashable, NaN-equal value."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str):
        return value.rstrip()
    if isinstance(value, list):
        return tuple(_cell(v) for v in value)
    return value


def _check_table(file: str, table: Table, mode_columns: Sequence[str]) -> Iterator[Problem]:
    rows = [tuple(_cell(v) for v in row) for row in table.rows]
    first: dict[tuple, int] = {}
    for number, row in enumerate(rows, 1):
        try:
            earlier = first.setdefault(row, number)
        except TypeError:
            continue
        if earlier != number:
            yield Problem(file, "duplicate", f"HDU {table.segment}: same as row {earlier}", f"row {number}",
                          severity="warning")
    columns = [table.colnames.index(c) for c in mode_columns if c in table.colnames]
    if not columns:
        return
    modes: dict[tuple, tuple[int, tuple]] = {}
    for number, row in enumerate(rows, 1):
        mode = tuple(row[i] for i in columns)
        try:
            earlier = modes.setdefault(mode, (number, row))
        except TypeError:
            continue
        if earlier[0] != number and earlier[1] != row:
            names = ", ".join(table.colnames[i] for i in columns)
            yield Problem(file, "overlap", f"HDU {table.segment}: same {names} {mode!r} as row {earlier[0]} "
                          "with other values", f"row {number}", severity="warning")


def _check_tables(ref: OpenedReference, rmap: ReferenceMapping | None) -> Iterator[Problem]:
    parkeys = {p.upper() for node in (_match_nodes(rmap) if rmap else []) for p in node.parameters}
    for table in ref.tables:
        yield from _check_table(str(ref.path), table, sorted(parkeys & set(table.colnames)))


# ------------------------------------------------------------------ comparison

def _accepts(node: MatchSelector, key: tuple, values: Mapping[str, str]) -> bool:
    for position, matcher in enumerate(node.matchers[node.keys.index(key)]):
        value = values.get(node.parameters[position])
        if value is None:
            return False
        if not any(matcher.match(condition_value(v.strip())) >= 0 for v in str(value).split("|") if v.strip()):
            return False
    return True


def compare_notes(ref: OpenedReference, old: ReferenceMapping, observatory: str) -> list[Note]:
    """How adding the file to ``old`` would change its answers, one note per affected entry."""
    file = str(ref.path)
    name = ref.path.name
    if name in old.reference_names():
        return [Note(file, f"already in {old.name}: no change")]
    values = {}
    for node in _match_nodes(old):
        for parameter in node.parameters:
            value, _kw = _value_of(ref.header, parameter, observatory)
            if value is not None:
                values[parameter] = value
    useafter = _header_get(ref.header, _USEAFTER_KEYS)
    try:
        date = parse_date(str(useafter)).isoformat(" ") if useafter else None
    except (ValueError, OverflowError):
        date = None
    notes: list[Note] = []
    top = old.selector
    entries: list[tuple[tuple, object]] = []
    if isinstance(top, MatchSelector):
        entries = [(key, choice) for key, choice in zip(top.keys, top.choices) if _accepts(top, key, values)]
    else:
        entries = [((), top)]
    for key, choice in entries:
        label = f"{old.name} {key!r}" if key else old.name
        if isinstance(choice, UseAfterSelector) and date is not None:
            if date in choice.dates:
                replaced = choice.choices[choice.dates.index(date)]
                notes.append(Note(file, f"replaces {replaced} at {label} {date}"))
            else:
                notes.append(Note(file, f"adds {date} to {label}"))
        else:
            notes.append(Note(file, f"replaces {choice} at {label}"))
    if not notes:
        notes.append(Note(file, f"adds a new match entry to {old.name}"))
    return notes


def _rmap_of(context: Context | None, instrument: str | None, filekind: str | None) -> ReferenceMapping | None:
    if context is None or instrument is None or filekind is None:
        return None
    try:
        return context.instrument(instrument).rmap(filekind)
    except (CrdsError, KeyError):
        return None


# ------------------------------------------------------------------ entry points

def certify_reference(path: str | Path, context: Context, comparison: Context | None = None) -> Certified:
    """Check one reference against ``context``; ``comparison`` adds notes on what it would change.

    Raises
    ------
    UnusableInput
        The file does not exist, cannot be read, or is not FITS, ASDF, JSON or YAML.
    """
    ref = open_reference(path)
    file = str(ref.path)
    problems = [Problem(file, f.check, f.message, f.where) for f in ref.findings]
    if not ref.header and problems:
        return Certified(file, None, None, problems, [])
    instrument, filekind = locate_type(context, ref.header, ref.path)
    rmap = _rmap_of(context, instrument, filekind)
    observatory = context.observatory
    problems.extend(_check_standard_keywords(ref, observatory))
    if rmap is None:
        if instrument is None:
            problems.append(Problem(file, "type", "no instrument keyword (INSTRUME, META.INSTRUMENT.NAME)",
                                    "INSTRUME"))
        elif instrument not in context.instrument_names:
            problems.append(Problem(file, "type", f"instrument {instrument!r} is not in {context.name}", "INSTRUME"))
        elif filekind is None:
            problems.append(Problem(file, "type", f"cannot tell the reference type of this {instrument} file "
                                    f"(REFTYPE, a CRDS-style name or a known suffix) in {context.name}", "REFTYPE"))
        else:
            problems.append(Problem(file, "type", f"{context.name} has no rmap for {instrument} {filekind}",
                                    "REFTYPE"))
        problems.extend(_check_useafter(ref, required=False))
    else:
        problems.extend(_check_keywords(ref, rmap, context))
        problems.extend(_check_useafter(ref, required=_uses_dates(rmap)))
    problems.extend(_check_tables(ref, rmap))
    notes: list[Note] = []
    old = _rmap_of(comparison, instrument, filekind)
    if comparison is not None:
        if old is None:
            notes.append(Note(file, f"no rmap for {instrument} {filekind} in {comparison.name}: a new type"))
        else:
            notes.extend(compare_notes(ref, old, observatory))
    return Certified(file, instrument, filekind, _unique(problems), notes)


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def certify_references(paths: Sequence[str | Path], context: Context, comparison: Context | None = None,
                       jobs: int = 4) -> Iterator[Certified | UnusableInput]:
    """:func:`certify_reference` for each path on a thread pool; results in input order.

    An unusable input comes back as its :class:`UnusableInput` error instead of a result.
    """
    def one(path: str | Path) -> Certified | UnusableInput:
        try:
            return certify_reference(path, context, comparison)
        except UnusableInput as exc:
            return exc

    if len(paths) <= 1 or jobs <= 1:
        yield from map(one, paths)
        return
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(one, paths)
