"""Observatory personalities: how HST, JWST and Roman datasets are read and named.

Stable API (other packages call these; names will not change):

Dataset headers
    ``dataset_header(raw, file_format="FITS") -> dict[str, str]``
        The header the reference's file reader (and so ``crds bestrefs``) works with, from
        the raw merged cards (``headers.read_fits_header`` output, or the flattened ASDF
        tree): synonym keywords of the dataset's observatory filled in, plus
        ``FILE_FORMAT``.
    ``bestrefs_parameters(header) -> dict[str, str]``
        What ``crds bestrefs`` passes to getrecommendations for a dataset file: the header
        with ``INSTRUME`` and ``META.INSTRUMENT.NAME`` set to the instrument.
        UnknownInstrumentError when no key names one.
    ``header_instrument(header) -> str | None``
        The instrument a header names (upper case), as the reader determines it.
    ``asdf_tree.asdf_header(tree, history_entries) -> dict[str, str]``
        The raw header of an ASDF file (Roman datasets) from its loaded tree: upper-case
        dotted keys, text values, ``HISTORY``; pass it to ``dataset_header(.., "ASDF")``.

Contexts
    ``INSTRUMENT_KEYWORDS``; ``context_instrument(header, instrument_key, context_name)``
        The lower-case instrument a pmap evaluates a header with (``wfii`` -> ``wfpc2``),
        with the reference's error texts.

Per observatory: ``personality("hst" | "jwst" | "roman")`` returns a module with
    ``OBSERVATORY``, ``INSTRUMENTS``, ``FILEKINDS``, ``USEAFTER_KEYWORDS``, ``EXTRA_KEYS``;
    ``cross_strapped_pairs(header)``; ``input_parameters(header)`` (renaming on entry to
    getrecommendations: Roman ``META.x`` -> ``ROMAN.META.x``); ``to_parkeys(header)`` (the
    renaming before minimising: JWST FITS keyword -> ``META.*``; Roman: ``input_parameters``;
    HST: identity); ``reference_properties(name) -> (instrument, filekind) | None``;
    ``instrument_from_reference_name(name)``.
    HST also: ``HOOKS``, ``find_hook(kind, instrument, filekind, rmap_hooks)``,
    ``is_dnr_dataset(header)``, ``IRAF_PREFIXES``, ``iraf_prefix(instrument)``,
    ``filekind_to_keyword(filekind)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType

from crds_async.errors import UnknownInstrumentError
from crds_async.instruments.common import (
    INSTRUMENT_FIXERS,
    INSTRUMENT_KEYWORDS,
    fill_synonyms,
    fix_instrument,
    header_instrument,
    observatory_of_instrument,
)

__all__ = [
    "OBSERVATORIES",
    "INSTRUMENT_KEYWORDS",
    "INSTRUMENT_FIXERS",
    "personality",
    "dataset_header",
    "bestrefs_parameters",
    "header_instrument",
    "observatory_of_instrument",
    "fix_instrument",
    "context_instrument",
]

OBSERVATORIES = ("hst", "jwst", "roman")


def personality(observatory: str) -> ModuleType:
    """The personality module of ``observatory`` (``crds_async.instruments.hst`` etc.)."""
    if observatory not in OBSERVATORIES:
        raise ValueError(f"unknown observatory {observatory!r}; expected one of {', '.join(OBSERVATORIES)}")
    return importlib.import_module(f"crds_async.instruments.{observatory}")


def dataset_header(raw: Mapping[str, str], file_format: str = "FITS") -> dict[str, str]:
    """The reference reader's header for a dataset, given its raw merged keywords.

    Parameters
    ----------
    raw : Mapping[str, str]
        Upper-case keyword -> value text, all HDUs merged, first value wins (COMMENT and
        HISTORY joined); for ASDF the flattened tree.
    file_format : str
        ``'FITS'``, ``'ASDF'``, ``'GEIS'``, ... stored as ``FILE_FORMAT``.

    Returns
    -------
    dict[str, str]
        ``raw`` plus synonyms: the observatory is the one of the instrument the header
        names (none found, or an unknown instrument: no synonyms). JWST fills
        ``META.*`` <-> FITS keyword pairs; HST and Roman have none.
    """
    instrument = header_instrument(raw)
    observatory = observatory_of_instrument(instrument) if instrument is not None else None
    if observatory is None:
        header = dict(raw)
    else:
        header = fill_synonyms(raw, personality(observatory).cross_strapped_pairs(raw))
    header["FILE_FORMAT"] = file_format
    return header


def bestrefs_parameters(header: Mapping[str, str]) -> dict[str, str]:
    """The parameters ``crds bestrefs`` looks a dataset file up with.

    Raises
    ------
    UnknownInstrumentError
        No instrument keyword is defined (the reference skips such a file with an error).
    """
    instrument = header_instrument(header)
    if instrument is None:
        raise UnknownInstrumentError("No instrument keyword defined in header.")
    parameters = dict(header)
    parameters["INSTRUME"] = instrument
    parameters["META.INSTRUMENT.NAME"] = instrument
    return parameters


def context_instrument(header: Mapping[str, str], instrument_key: str, context_name: str,
                       known: Mapping[str, object] | None = None) -> str:
    """The lower-case instrument a context evaluates ``header`` with.

    Parameters
    ----------
    header : Mapping[str, str]
        Conditioned dataset parameters.
    instrument_key : str
        The pmap's ``instrument_key`` (e.g. ``INSTRUME``, ``META.INSTRUMENT.NAME``); tried
        upper- and lower-case before :data:`INSTRUMENT_KEYWORDS`.
    context_name : str
        For the error text.
    known : Mapping[str, object], optional
        The context's instruments (lower case); when given, an instrument not in it raises.

    Raises
    ------
    UnknownInstrumentError
        ``Missing 'INSTRUME' keyword in header for determining instrument.`` or
        ``Unknown instrument 'foo' for context 'hst_0729.pmap'``.
    """
    for key in (instrument_key.upper(), instrument_key.lower(), *INSTRUMENT_KEYWORDS):
        value = header.get(key)
        if value is not None and value.upper() != "UNDEFINED":
            break
    else:
        raise UnknownInstrumentError(
            f"Missing '{instrument_key}' keyword in header for determining instrument.")
    instrument = value.upper().lower()
    instrument = {"wfii": "wfpc2"}.get(instrument, instrument)
    if known is not None and instrument not in known:
        raise UnknownInstrumentError(f"Unknown instrument {instrument!r} for context {context_name!r}")
    return instrument
