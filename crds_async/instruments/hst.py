"""HST personality: header synonyms (none), parkey names (as written), reference naming, IRAF prefixes, hooks."""

from __future__ import annotations

import re
from collections.abc import Mapping

from crds_async.instruments.common import newstyle_reference_fields, split_name, type_table
from crds_async.instruments.hst_hooks import HOOKS, find_hook, is_dnr_dataset

__all__ = [
    "OBSERVATORY",
    "INSTRUMENTS",
    "FILEKINDS",
    "USEAFTER_KEYWORDS",
    "EXTRA_KEYS",
    "IRAF_PREFIXES",
    "HOOKS",
    "find_hook",
    "is_dnr_dataset",
    "cross_strapped_pairs",
    "to_parkeys",
    "input_parameters",
    "reference_properties",
    "instrument_from_reference_name",
    "iraf_prefix",
    "filekind_to_keyword",
]

OBSERVATORY = "hst"
_TYPES = type_table(OBSERVATORY)
INSTRUMENTS: tuple[str, ...] = tuple(_TYPES["instruments"])
FILEKINDS: frozenset[str] = frozenset(_TYPES["filekinds"])
_SUFFIX_TO_FILEKIND: dict[str, dict[str, str]] = _TYPES["suffix_to_filekind"]

#: Dataset keywords of UseAfter selectors.
USEAFTER_KEYWORDS = ("DATE-OBS", "TIME-OBS")
#: Parkeys every rmap of the observatory needs beyond its own (none for HST).
EXTRA_KEYS: tuple[str, ...] = ()

#: Instrument -> IRAF directory prefix used in dataset headers (``jref$x_bia.fits``).
IRAF_PREFIXES = {
    "acs": "jref$",
    "stis": "oref$",
    "nicmos": "nref$",
    "wfpc2": "uref$",
    "wfc3": "iref$",
    "cos": "lref$",
    "multi": "mtab$",
    "synphot": "ttab$",
}

# CDBS names carry the instrument as the last character of their first field (j8k1234aj_drk).
_CDBS_INSTRUMENT_CHARACTERS = {
    "j": "acs", "o": "stis", "n": "nicmos", "u": "wfpc2", "i": "wfc3", "l": "cos", "m": "synphot",
}
_CDBS_FIELD_SEPARATORS = re.compile(r"[_.]")
# GEIS files (.r0h ... .r7h, .r0d ...): the digit says which suffix the FITS name would have.
_GEIS_EXTENSION_SUFFIXES = {
    "r0": "msk", "r1": "a2d", "r2": "bas", "r3": "drk", "r4": "flt", "r5": "shd", "r6": "flt", "r7": "w4t",
}
_SYNPHOT_ENDINGS = ("_syn.fits", "_th.fits", "_tmt.fits", "_tmg.fits", "_tmc.fits")


def cross_strapped_pairs(header: Mapping[str, str]) -> list[tuple[str, str]]:
    """Synonym keyword pairs filled in when reading an HST dataset: none."""
    return []


def input_parameters(header: Mapping[str, object]) -> dict[str, object]:
    """Renaming applied to getrecommendations' parameters on entry: none for HST."""
    return dict(header)


def to_parkeys(header: Mapping[str, str]) -> dict[str, str]:
    """Dataset keywords -> rmap parkeys before minimising: the identity for HST."""
    return dict(header)


def _cdbs_instrument(basename: str) -> str | None:
    fields = _CDBS_FIELD_SEPARATORS.split(basename)
    # Synphot throughput/thermal tables: 'syn' or 'th' among the last two fields.
    for position in (len(fields) - 2, len(fields) - 1):
        if position > 0 and fields[position].lower() in ("syn", "th"):
            return "synphot"
    return _CDBS_INSTRUMENT_CHARACTERS.get(fields[0][-1:].lower())


def _cdbs_properties(name: str) -> tuple[str, str] | None:
    """(instrument, filekind) of a CDBS-style name (``j8k1234aj_drk.fits``, ``e2112126u.r2h``)."""
    fields, extension = split_name(name)
    basename = name.rsplit("/", 1)[-1]
    instrument = _cdbs_instrument(basename)
    if instrument is None:
        return None
    if instrument == "synphot":
        if not name.endswith(_SYNPHOT_ENDINGS):
            return None
        suffix = name.split("_")[-1][: -len(".fits")]
    elif extension == ".fits":
        if len(fields) < 2:
            return None
        suffix = fields[1]
    else:
        suffix = _GEIS_EXTENSION_SUFFIXES.get(extension[1:3])
        if suffix is None:
            return None
    filekind = _SUFFIX_TO_FILEKIND.get(instrument, {}).get(suffix)
    return None if filekind is None else (instrument, filekind)


def reference_properties(name: str) -> tuple[str, str] | None:
    """(instrument, filekind) of an HST reference or mapping name, from the name alone.

    CRDS-style names (``hst_acs_biasfile_0001.fits``) first, then CDBS names: instrument
    from the last character of the first field (j ACS, o STIS, n NICMOS, u WFPC2, i WFC3,
    l COS, m SYNPHOT; ``syn``/``th`` fields mean SYNPHOT), filekind from the suffix
    (``_drk`` -> darkfile) or, for GEIS, from the extension digit (``.r2h`` -> bas).

    Returns
    -------
    tuple[str, str] or None
        None where the reference would have to open the file to find out.
    """
    return newstyle_reference_fields(name, OBSERVATORY, check_observatory=True) or _cdbs_properties(name)


def instrument_from_reference_name(name: str) -> str | None:
    """The instrument a reference name implies, for its cache directory; None if unknown."""
    properties = newstyle_reference_fields(name, OBSERVATORY, check_observatory=True)
    if properties is not None:
        return properties[0]
    return _cdbs_instrument(name.rsplit("/", 1)[-1])


def iraf_prefix(instrument: str) -> str:
    """``'jref$'`` for ACS, etc.; KeyError for an instrument without one."""
    return IRAF_PREFIXES[instrument.lower()]


def filekind_to_keyword(filekind: str) -> str:
    """The dataset header keyword recording a filekind's best reference (``BIASFILE``)."""
    return filekind.upper()
