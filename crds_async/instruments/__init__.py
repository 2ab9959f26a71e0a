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
    ``rules_personality(observatory)``
        The :class:`crds_async.rules.personality.Personality` the rules core is handed:
        renaming, hooks, the do-not-reprocess rule, extra parameters.

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

from crds_async.rules.personality import Personality
from crds_async.rules.personality import context_instrument as _context_instrument

from crds_async.config import OBSERVATORIES
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
    "PERSONAL_OBSERVATORIES",
    "INSTRUMENT_KEYWORDS",
    "INSTRUMENT_FIXERS",
    "personality",
    "dataset_header",
    "bestrefs_parameters",
    "header_instrument",
    "observatory_of_instrument",
    "fix_instrument",
    "context_instrument",
    "rules_personality",
]

#: The observatories with a personality module (the test observatory has none).
PERSONAL_OBSERVATORIES = tuple(o for o in OBSERVATORIES if o != "tobs")


def personality(observatory: str) -> ModuleType:
    """The personality module of ``observatory`` (``crds_async.instruments.hst`` etc.)."""
    found = _MODULES.get(observatory)
    if found is None:
        if observatory not in PERSONAL_OBSERVATORIES:
            raise ValueError(f"unknown observatory {observatory!r}; "
                             f"expected one of {', '.join(PERSONAL_OBSERVATORIES)}")
        # asked for every dataset: a dict lookup, not import_module's machinery
        found = _MODULES[observatory] = importlib.import_module(f"crds_async.instruments.{observatory}")
    return found


_MODULES: dict[str, ModuleType] = {}


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
    """The lower-case instrument a context evaluates ``header`` with (UnknownInstrumentError).

    :func:`crds_async.rules.personality.context_instrument` with :data:`INSTRUMENT_KEYWORDS`.
    """
    return _context_instrument(header, instrument_key, context_name, known, INSTRUMENT_KEYWORDS)


class _ObservatoryPersonality(Personality):
    """An observatory's :class:`Personality`, from its personality module."""

    def __init__(self, observatory: str) -> None:
        module = personality(observatory)
        self.observatory = observatory
        self.instrument_keywords = INSTRUMENT_KEYWORDS
        self.extra_keys = tuple(module.EXTRA_KEYS)
        self.input_parameters = module.input_parameters
        self.to_parkeys = module.to_parkeys
        if observatory == "hst":
            from crds_async.instruments import hst_hooks

            self._hooks = hst_hooks
            self.is_do_not_reprocess = hst_hooks.is_dnr_dataset
            self.do_not_reprocess_keys = hst_hooks.DNR_KEYWORDS
        else:
            self._hooks = None

    def hooks_of(self, instrument, filekind, rmap_hooks):
        if self._hooks is None:
            return None, None
        return (self._hooks.find_hook("precondition_header", instrument, filekind, rmap_hooks),
                self._hooks.find_hook("fallback_header", instrument, filekind, rmap_hooks))

    def hook_inputs(self, hook):
        return self._hooks.HOOK_INPUTS.get(hook.__name__) if self._hooks is not None else None

    def date_class(self, thresholds):
        return self._hooks.exposure_date_class(thresholds)


_GENERIC_WITH_KEYWORDS = Personality()
_GENERIC_WITH_KEYWORDS.instrument_keywords = INSTRUMENT_KEYWORDS
_PERSONALITIES: dict[str, Personality] = {}


def rules_personality(observatory: str) -> Personality:
    """What the rules core is handed for ``observatory`` (built once; the generic one for ``tobs``)."""
    found = _PERSONALITIES.get(observatory)
    if found is None:
        found = (_ObservatoryPersonality(observatory) if observatory in PERSONAL_OBSERVATORIES
                 else _GENERIC_WITH_KEYWORDS)
        _PERSONALITIES[observatory] = found
    return found
