"""JWST personality: FITS keyword <-> ``META.*`` data-model names, synonyms, reference naming.

The keyword table is the one the reference derives from the stdatamodels core schema
(443 ``fits_keyword`` entries), shipped as ``data/jwst_fits_to_dm.json`` together with
the reference's static synonym list. No data-model package is imported at run time.
"""

from __future__ import annotations

from collections.abc import Mapping

from crds_async.instruments.common import load_data, newstyle_reference_fields, type_table

__all__ = [
    "OBSERVATORY",
    "INSTRUMENTS",
    "FILEKINDS",
    "USEAFTER_KEYWORDS",
    "EXTRA_KEYS",
    "DM_TO_FITS",
    "FITS_TO_DM",
    "cross_strapped_pairs",
    "input_parameters",
    "to_parkeys",
    "reference_properties",
    "instrument_from_reference_name",
]

OBSERVATORY = "jwst"
_TYPES = type_table(OBSERVATORY)
INSTRUMENTS: tuple[str, ...] = tuple(_TYPES["instruments"])
FILEKINDS: frozenset[str] = frozenset(_TYPES["filekinds"])

USEAFTER_KEYWORDS = ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME")
#: Parkeys every JWST rmap needs beyond its own (the reference's ``jwst.extra_keys``).
EXTRA_KEYS = ("META.VISIT.TSOVISIT", "META.INSTRUMENT.LAMP_STATE")

_TABLE = load_data("jwst_fits_to_dm.json")
#: ``META.SUBARRAY.NAME`` -> ``SUBARRAY`` (upper case both sides).
DM_TO_FITS: dict[str, str] = dict(_TABLE["dm_to_fits"])
#: ``SUBARRAY`` -> ``META.SUBARRAY.NAME``; the table is one-to-one.
FITS_TO_DM: dict[str, str] = {fits: dm for dm, fits in DM_TO_FITS.items()}
if len(FITS_TO_DM) != len(DM_TO_FITS):   # the reference gives up on synonyms entirely then
    raise ImportError("jwst_fits_to_dm.json: a FITS keyword maps to two data-model paths")


def _static_pairs() -> list[tuple[str, str]]:
    pairs = []
    for main, synonyms in _TABLE["cross_strapped_keywords"].items():
        for synonym in synonyms:
            if synonym != main:
                pairs += [(main, synonym), (synonym, main)]
    return pairs


_STATIC_PAIRS = tuple(_static_pairs())


def cross_strapped_pairs(header: Mapping[str, str]) -> list[tuple[str, str]]:
    """Synonym pairs filled in when reading a JWST dataset, in the reference's order.

    The fixed synonyms (INSTRUME / META.INSTRUMENT.NAME / INSTRUMENT / META.INSTRUMENT.TYPE,
    DATE-OBS / META.OBSERVATION.DATE, CAL_VER, ...) both ways, then for each header key in
    order its FITS name and data-model name, both ways.
    """
    pairs = list(_STATIC_PAIRS)
    for key in header:
        upper = key.upper()
        fits_key = DM_TO_FITS.get(upper) or key
        dm_key = FITS_TO_DM.get(upper) or key
        pairs += [(fits_key, dm_key), (dm_key, fits_key)]
    return pairs


def input_parameters(header: Mapping[str, object]) -> dict[str, object]:
    """Renaming applied to getrecommendations' parameters on entry: none for JWST."""
    return dict(header)


def to_parkeys(header: Mapping[str, object]) -> dict[str, str]:
    """Bare FITS keywords -> ``META.*`` names (as the reference does before minimising).

    Keys starting with ``META.`` (any case) are kept; others are renamed through the
    table when it knows them. Keys are upper-cased and values ``str()``-ed; when two keys
    land on the same name the later one wins.
    """
    parkeys = {}
    for key, value in header.items():
        key = str(key)
        if not key.lower().startswith("meta."):
            key = FITS_TO_DM.get(key.upper(), key)
        parkeys[key.upper()] = str(value)
    return parkeys


def reference_properties(name: str) -> tuple[str, str] | None:
    """(instrument, filekind) of ``jwst_<instr>_<kind>[_NNNN].<ext>``; None if the name alone does not tell."""
    return newstyle_reference_fields(name, OBSERVATORY, check_observatory=False)


def instrument_from_reference_name(name: str) -> str | None:
    """The instrument a JWST reference name implies, for its cache directory; None if unknown."""
    properties = reference_properties(name)
    return properties[0] if properties else None
