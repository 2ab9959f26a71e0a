"""What the observatory personalities share: type tables, instrument names, synonym filling."""

from __future__ import annotations

import functools
import json
import posixpath
from collections.abc import Iterable, Mapping
from importlib import resources

__all__ = [
    "INSTRUMENT_KEYWORDS",
    "INSTRUMENT_FIXERS",
    "load_data",
    "type_table",
    "fix_instrument",
    "header_instrument",
    "observatory_of_instrument",
    "split_name",
    "newstyle_reference_fields",
    "fill_synonyms",
]

#: Header keys naming the instrument, in the order the reference tries them
#: (after the pmap's own ``instrument_key``, when a context is involved).
INSTRUMENT_KEYWORDS = (
    "INSTRUME",
    "META.INSTRUMENT.NAME",
    "META_INSTRUMENT_NAME",
    "INSTRUMENT",
    "ROMAN.META.INSTRUMENT.NAME",
    "META.INSTRUMENT.TYPE",
    "META_INSTRUMENT_TYPE",
)

#: Obsolete or odd instrument names -> the standard name (all observatories; only HST has any).
#: Applied to the value as written (case-sensitive) when reading headers, lower-cased elsewhere.
INSTRUMENT_FIXERS = {"hst": "synphot", "wfii": "wfpc2"}

#: Observatories searched, in the reference's order, when an instrument names its observatory.
_OBSERVATORY_ORDER = ("hst", "jwst", "roman")


@functools.cache
def load_data(name: str) -> dict:
    """A JSON file shipped in ``crds_async/instruments/data`` (parsed once)."""
    return json.loads(resources.files("crds_async.instruments").joinpath("data", name).read_text("utf-8"))


def type_table(observatory: str) -> dict:
    """``{"instruments": [...], "filekinds": [...], "suffix_to_filekind": {...}}`` of an observatory."""
    return load_data("types.json")[observatory]


def fix_instrument(name: str) -> str:
    """The standard name for an obsolete instrument name (``wfii`` -> ``wfpc2``), else ``name``."""
    return INSTRUMENT_FIXERS.get(name, name)


def header_instrument(header: Mapping[str, object]) -> str | None:
    """The instrument a dataset header names, as the reference's header reader finds it.

    The first of :data:`INSTRUMENT_KEYWORDS` (tried upper- then lower-case) whose value is
    not ``UNDEFINED``/``undefined``; the fixers apply to the value as written; the result
    is upper-cased. ``None`` when no key names an instrument.
    """
    for key in INSTRUMENT_KEYWORDS:
        value = header.get(key)
        if value is None:
            value = header.get(key.lower())
        if value is not None and value not in ("UNDEFINED", "undefined"):
            return str(fix_instrument(value)).upper()
    return None


def observatory_of_instrument(instrument: str) -> str | None:
    """``'hst'``, ``'jwst'`` or ``'roman'`` for an instrument name of any case, else ``None``."""
    lowered = instrument.lower()
    if "nonhst" in lowered:      # synphot throughput submissions
        return "hst"
    lowered = fix_instrument(lowered)
    for observatory in _OBSERVATORY_ORDER:
        if lowered in type_table(observatory)["instruments"]:
            return observatory
    return None


def split_name(name: str) -> tuple[list[str], str]:
    """(``_``-separated fields of the base name without extension, extension with its dot)."""
    stem, extension = posixpath.splitext(posixpath.basename(name))   # POSIX rules, as the reference on Linux
    return stem.split("_"), extension


def newstyle_reference_fields(name: str, observatory: str, *, check_observatory: bool) -> tuple[str, str] | None:
    """(instrument, filekind) of a CRDS-style name ``<obs>_<instr>_<kind>[_<serial>].<ext>``.

    Mirrors the reference's name decomposition for the observatory (``.pmap``/``.imap``
    names included); ``None`` where the reference's decomposition would reject the name.
    """
    fields, extension = split_name(name)
    if check_observatory and fields[0] != observatory:
        return None
    if extension == ".pmap":
        if len(fields) not in (1, 2):
            return None
        instrument, filekind = "", ""
    elif extension == ".imap":
        if len(fields) not in (2, 3):
            return None
        instrument, filekind = fields[1], ""
    else:
        if len(fields) not in (3, 4):
            return None
        instrument, filekind = fields[1], fields[2]
    table = type_table(observatory)
    if instrument and instrument not in table["instruments"]:
        return None
    if filekind and filekind not in table["filekinds"]:
        return None
    return instrument, filekind


def fill_synonyms(header: Mapping[str, str], pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Copy each ``(source, target)`` value into ``target`` when the target is missing or ``UNDEFINED``.

    Pairs apply in order, each seeing the effect of the earlier ones, as in the reference.
    """
    filled = dict(header)
    for source, target in pairs:
        value = filled.get(source, "UNDEFINED")
        if value != "UNDEFINED" and filled.get(target, "UNDEFINED") == "UNDEFINED":
            filled[target] = value
    return filled
