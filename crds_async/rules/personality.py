"""What the rules core needs to know of an observatory, passed in as one object.

The rules (:mod:`.model`, :mod:`.evaluate`) never import the observatory
packages: whatever differs by observatory (how dataset keywords are renamed to
the rules' parameters, hooks that rewrite a header before a lookup, the
do-not-reprocess rule, parameters every rmap reads) arrives as a
:class:`Personality`.  The base class is the generic observatory: nothing
renamed, no hooks.  ``crds_async.instruments.rules_personality`` builds the
HST, JWST and Roman ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..errors import UnknownInstrumentError

__all__ = ["Personality", "GENERIC", "context_instrument"]

Header = Mapping[str, str]
Hook = Callable[[Header], dict]


class Personality:
    """The generic observatory (the reference's test observatory behaves so).

    Attributes
    ----------
    observatory : str
        Its name.
    instrument_keywords : tuple of str
        Header keys naming the instrument, tried after a context's ``instrument_key``.
    extra_keys : tuple of str
        Parameters every rmap of the observatory reads besides its ``parkey``.
    do_not_reprocess_keys : tuple of str
        What :meth:`is_do_not_reprocess` reads (empty when it is None).
    is_do_not_reprocess : callable or None
        ``header -> bool``: a failed lookup of such a dataset answers ``n/a``.
    """

    observatory = "generic"
    instrument_keywords: tuple[str, ...] = ()
    extra_keys: tuple[str, ...] = ()
    do_not_reprocess_keys: tuple[str, ...] = ()
    is_do_not_reprocess: Callable[[Header], bool] | None = None

    def input_parameters(self, header: Mapping[str, object]) -> dict[str, object]:
        """Renaming on entry to a lookup (Roman ``META.x`` -> ``ROMAN.META.x``)."""
        return dict(header)

    def to_parkeys(self, header: Mapping[str, object]) -> dict[str, object]:
        """Renaming before minimising (JWST FITS keyword -> ``META.*``)."""
        return dict(header)

    def hooks_of(self, instrument: str, filekind: str, rmap_hooks: object) -> tuple[Hook | None, Hook | None]:
        """``(precondition, fallback)`` header hooks of one rmap (None: none)."""
        return None, None

    def hook_inputs(self, hook: Hook):
        """What ``hook`` reads (an object with ``keys`` and ``thresholds``), or None if undeclared."""
        return None

    def date_class(self, thresholds: tuple[str, ...]) -> Callable[[Header], object]:
        """``header -> class``: the side of a hook's date thresholds an exposure starts on."""
        raise NotImplementedError(f"{self.observatory} declares no dated hooks")

    def context_instrument(self, header: Header, instrument_key: str, context_name: str,
                           known: Mapping[str, object] | None = None) -> str:
        """:func:`context_instrument` with this observatory's instrument keywords."""
        return context_instrument(header, instrument_key, context_name, known, self.instrument_keywords)


GENERIC = Personality()


def context_instrument(header: Header, instrument_key: str, context_name: str,
                       known: Mapping[str, object] | None = None, keywords: tuple[str, ...] = ()) -> str:
    """The lower-case instrument a context evaluates ``header`` with.

    Parameters
    ----------
    header : Mapping[str, str]
        Conditioned dataset parameters.
    instrument_key : str
        The pmap's ``instrument_key`` (e.g. ``INSTRUME``, ``META.INSTRUMENT.NAME``); tried
        upper- and lower-case before ``keywords``.
    context_name : str
        For the error text.
    known : Mapping[str, object], optional
        The context's instruments (lower case); when given, an instrument not in it raises.
    keywords : tuple of str
        Other keys that name the instrument, in the order they are tried.

    Raises
    ------
    UnknownInstrumentError
        ``Missing 'INSTRUME' keyword in header for determining instrument.`` or
        ``Unknown instrument 'foo' for context 'hst_0729.pmap'``.
    """
    for key in (instrument_key.upper(), instrument_key.lower(), *keywords):
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
