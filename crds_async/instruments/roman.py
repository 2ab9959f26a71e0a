"""Roman personality: ``META.x`` -> ``ROMAN.META.x`` renaming and reference naming.

Roman datasets and references are ASDF. The header reader flattens the tree to upper-case
dotted keys (``ROMAN.META.INSTRUMENT.NAME``); there are no synonyms to fill in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from crds_async.instruments.common import newstyle_reference_fields, split_name, type_table

__all__ = [
    "OBSERVATORY",
    "INSTRUMENTS",
    "FILEKINDS",
    "USEAFTER_KEYWORDS",
    "EXTRA_KEYS",
    "cross_strapped_pairs",
    "input_parameters",
    "to_parkeys",
    "reference_properties",
    "instrument_from_reference_name",
]

OBSERVATORY = "roman"
_TYPES = type_table(OBSERVATORY)
INSTRUMENTS: tuple[str, ...] = tuple(_TYPES["instruments"])
FILEKINDS: frozenset[str] = frozenset(_TYPES["filekinds"])

USEAFTER_KEYWORDS = ("ROMAN.META.EXPOSURE.START_TIME",)
EXTRA_KEYS: tuple[str, ...] = ()

_SERIAL = re.compile(r"\d*")   # \d as the reference: any Unicode digit


def cross_strapped_pairs(header: Mapping[str, str]) -> list[tuple[str, str]]:
    """Synonym keyword pairs filled in when reading a Roman dataset: none."""
    return []


def input_parameters(header: Mapping[str, object]) -> dict[str, object]:
    """``META.x`` -> ``ROMAN.META.x`` (first field compared case-insensitively, the rest kept as is).

    The reference applies this to getrecommendations' parameters on entry, so archive-style
    and flat roman_datamodels-style headers both work. When a renamed key collides with an
    existing one, the later in the header wins.
    """
    renamed = {}
    for key, value in header.items():
        if key.split(".")[0].upper() == "META":
            key = "ROMAN." + key
        renamed[key] = value
    return renamed


def to_parkeys(header: Mapping[str, object]) -> dict[str, object]:
    """The renaming crds_async applies for Roman: :func:`input_parameters`.

    (The reference's minimise-time renaming is the identity for Roman; its entry renaming
    is idempotent, so applying it once here gives the same parkeys.)
    """
    return input_parameters(header)


def reference_properties(name: str) -> tuple[str, str] | None:
    """(instrument, filekind) of ``roman_<instr>_<kind>[_NNNN].<ext>``; None if the name alone does not tell.

    Five or more fields read ``roman_<instr>_<x>_<kind>_<serial>`` (``ctx`` dropped from a
    ``.yaml`` serial), as in the reference; the serial must be digits.
    """
    fields, extension = split_name(name)
    if len(fields) < 5:
        serial = fields[3] if len(fields) > 3 else ""
        if extension == ".pmap":
            serial = fields[1] if len(fields) > 1 else ""
        elif extension == ".imap":
            serial = fields[2] if len(fields) > 2 else ""
        properties = newstyle_reference_fields(name, OBSERVATORY, check_observatory=False)
    else:
        serial = fields[4] if extension != ".yaml" else fields[4].replace("ctx", "")
        instrument, filekind = fields[1], fields[3]
        valid = (instrument in INSTRUMENTS or instrument == "") and (filekind in FILEKINDS or filekind == "")
        properties = (instrument, filekind) if valid else None
    if properties is None or not _SERIAL.fullmatch(serial):
        return None
    return properties


def instrument_from_reference_name(name: str) -> str | None:
    """The instrument a Roman reference name implies, for its cache directory; None if unknown."""
    properties = reference_properties(name)
    return properties[0] if properties else None
