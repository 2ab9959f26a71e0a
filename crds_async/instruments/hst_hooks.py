"""HST match-time hooks: dataset header rewrites before (precondition) and after (fallback) a failed match.

Each hook is a pure function ``header -> new header`` on the minimised, conditioned header
of one rmap (values are strings, missing parkeys are ``'UNDEFINED'``). Behaviour follows
the reference's ``crds.hst`` hook functions, failure texts included: a failure raises
:class:`~crds_async.errors.LookupFailure` whose text is what the reference's exception
prints (``"'NAXIS1'"`` for a missing key, a date parser message, a ``float()`` message), so
the caller's ``"NOT FOUND " + str(exc)`` reads the same.

Which hook an rmap uses (:func:`find_hook`): the rmap header's ``hooks`` dict names it
(``{"precondition_header": "precondition_header_acs_biasfile_v2", ...}``); without such a
dict the name is ``<hook>_<instrument>_<filekind>_v1``. A default name that is not a hook of the
rmap's instrument means the default: no change (precondition) or no retry (fallback); a name the
``hooks`` dict gives explicitly must be a hook of the rmap's instrument or ``'none'``, else it is
that rmap's error (:class:`~crds_async.errors.RulesError`; the reference silently ignores it).

What each hook reads is declared in :data:`HOOK_INPUTS` (header keys, and the
dates it compares the exposure start with): memoised answer plans key their memos on it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import NamedTuple

from crds_async.errors import LookupFailure, RulesError
from crds_async.rules.conditioning import condition_value
from crds_async.rules.timestamps import format_date

__all__ = [
    "HOOKS",
    "HOOK_INSTRUMENTS",
    "HOOK_KINDS",
    "HOOK_INPUTS",
    "HookInputs",
    "EXPOSURE_START_KEYS",
    "exposure_date_class",
    "find_hook",
    "is_dnr_dataset",
    "DNR_KEYWORDS",
    "precondition_header_acs_biasfile_v1",
    "precondition_header_acs_biasfile_v2",
    "fallback_header_acs_biasfile_v2",
    "precondition_header_acs_biasfile_v3",
    "fallback_header_acs_biasfile_v3",
    "precondition_header_wfc3_biasfile_v1",
    "fallback_header_wfpc2_flatfile_v1",
]

Header = Mapping[str, str]
Hook = Callable[[Header], "dict[str, str]"]

#: Hook kinds a rmap can name. ``rmap_update_headers`` exists in the reference for rmap
#: refactoring only and plays no part in best-reference selection.
HOOK_KINDS = ("precondition_header", "fallback_header")

_SM4 = "2009-05-14 00:00:00"                # servicing mission 4: ACS amplifier/aperture rules changed
_SUBARRAY_REFERENCES_FROM = "2002-03-30 00:00:00"   # v3: later WFC subarrays have their own biases
_HALF_CHIP_COLUMNS = 2048


def _get(header: Header, key: str) -> str:
    """``header[key]``; a missing key fails with the reference's KeyError text (the quoted key)."""
    try:
        return header[key]
    except KeyError:
        raise LookupFailure(repr(key)) from None


#: the keys :func:`_exposure_start` reads
EXPOSURE_START_KEYS = ("DATE-OBS", "TIME-OBS")


def _exposure_start(header: Header) -> str:
    """DATE-OBS + TIME-OBS in the reference's normal date form (compared as strings)."""
    text = _get(header, "DATE-OBS") + " " + _get(header, "TIME-OBS")
    try:
        return format_date(text)
    except ValueError as exc:
        raise LookupFailure(str(exc)) from exc


def _as_int(text: str) -> int | None:
    """``int(float(text))``; None where that raises ValueError (the reference skips the rule).

    OverflowError (``'INF'``) is not skipped by the reference: it fails the lookup.
    """
    try:
        return int(float(text))
    except ValueError:
        return None
    except OverflowError as exc:
        raise LookupFailure(str(exc)) from exc


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError as exc:
        raise LookupFailure(str(exc)) from exc


def _acs_bias_rewrite(header: dict[str, str], start: str, columns_key: str, rows_key: str) -> dict[str, str]:
    """The ACS bias rules shared by hook versions 1-3 (v1 names the axes NUMCOLS/NUMROWS)."""
    before_sm4 = start < _SM4
    if before_sm4:
        header["APERTURE"] = "N/A"
    columns = _as_int(_get(header, columns_key))
    if columns is not None:
        header[columns_key] = condition_value(str(columns))
        if before_sm4 and columns > _HALF_CHIP_COLUMNS:
            amplifier = _get(header, "CCDAMP")
            if amplifier in ("A", "D"):
                header["CCDAMP"] = "AD"
            elif amplifier in ("B", "C"):
                header["CCDAMP"] = "BC"
    # Short-circuit order matters: XCORNER is only looked at for WFC.
    if (_get(header, "DETECTOR") == "WFC" and _get(header, "XCORNER") == "0.0"
            and _get(header, "YCORNER") == "0.0"):
        rows = _as_int(_get(header, rows_key))
        if rows is not None:
            header[rows_key] = condition_value(str(rows / 2))   # true division: '1023.5' is possible
    return header


def _acs_full_frame(header: dict[str, str], ltv1_key: str, ltv2_key: str) -> dict[str, str]:
    """Second try for ACS bias: pretend the exposure is full frame."""
    for key in ("NAXIS1", "NAXIS2", ltv1_key, ltv2_key):
        _get(header, key)   # the reference reads these (for a log line) before rewriting
    if _get(header, "DETECTOR") == "WFC":
        header.update({"NAXIS1": "4144.0", "NAXIS2": "2068.0", ltv1_key: "24.0", ltv2_key: "0.0"})
    else:
        header.update({"NAXIS1": "1062.0", "NAXIS2": "1044.0", ltv1_key: "19.0"})
        header[ltv2_key] = "0.0" if _get(header, "CCDAMP") in ("C", "D") else "20.0"
    return header


def precondition_header_acs_biasfile_v1(header: Header) -> dict[str, str]:
    """ACS bias, first generation (NUMCOLS/NUMROWS): pre-SM4 aperture and amplifier rules, WFC row halving."""
    rewritten = dict(header)
    return _acs_bias_rewrite(rewritten, _exposure_start(rewritten), "NUMCOLS", "NUMROWS")


def precondition_header_acs_biasfile_v2(header: Header) -> dict[str, str]:
    """ACS bias (NAXIS1/NAXIS2).

    Before SM4 APERTURE becomes ``N/A`` and, for more than 2048 columns, amplifiers A/D -> AD
    and B/C -> BC; NAXIS1 is rewritten as a conditioned integer; for WFC with XCORNER =
    YCORNER = ``0.0``, NAXIS2 is halved.
    """
    rewritten = dict(header)
    return _acs_bias_rewrite(rewritten, _exposure_start(rewritten), "NAXIS1", "NAXIS2")


def fallback_header_acs_biasfile_v2(header: Header) -> dict[str, str]:
    """ACS bias retry: the v2 precondition, then the full-frame NAXIS/LTV values."""
    return _acs_full_frame(precondition_header_acs_biasfile_v2(header), "LTV1", "LTV2")


def _v3_rewrite_needed(header: Header, start: str) -> bool:
    if _get(header, "DETECTOR") != "WFC":
        return True
    if start < _SUBARRAY_REFERENCES_FROM:
        return True
    if header.get("APERTURE", "UNDEFINED") == "UNDEFINED":
        return True
    if _float(_get(header, "CCDGAIN")) in (4.0, 8.0):
        return True
    return _get(header, "CCDAMP") in ("AD", "BC")


def precondition_header_acs_biasfile_v3(header: Header) -> dict[str, str]:
    """ACS bias, 2022: the v2 rules, but only where no subarray reference exists.

    Applies unless the detector is WFC, the exposure starts on or after 2002-03-30, APERTURE
    is defined, CCDGAIN is not 4 or 8 and CCDAMP is not AD or BC.
    """
    rewritten = dict(header)
    start = _exposure_start(rewritten)
    if not _v3_rewrite_needed(rewritten, start):
        return rewritten
    return _acs_bias_rewrite(rewritten, start, "NAXIS1", "NAXIS2")


def fallback_header_acs_biasfile_v3(header: Header) -> dict[str, str]:
    """ACS bias retry (v3): the v3 precondition, then full-frame NAXIS/RAW_LTV values."""
    return _acs_full_frame(precondition_header_acs_biasfile_v3(header), "RAW_LTV1", "RAW_LTV2")


def precondition_header_wfc3_biasfile_v1(header: Header) -> dict[str, str]:
    """WFC3 bias: a subarray exposure whose APERTURE lacks 'SUB' matches any aperture (N/A)."""
    rewritten = dict(header)
    if _get(rewritten, "SUBARRAY") == "T" and "SUB" not in _get(rewritten, "APERTURE"):
        rewritten["APERTURE"] = "N/A"
    return rewritten


def fallback_header_wfpc2_flatfile_v1(header: Header) -> dict[str, str]:
    """WFPC2 flat retry: FILTER1 and FILTER2 swapped."""
    rewritten = dict(header)
    first, second = _get(rewritten, "FILTER1"), _get(rewritten, "FILTER2")
    rewritten["FILTER1"], rewritten["FILTER2"] = second, first
    return rewritten


#: Every hook by its reference name.
HOOKS: dict[str, Hook] = {
    hook.__name__: hook
    for hook in (
        precondition_header_acs_biasfile_v1,
        precondition_header_acs_biasfile_v2,
        fallback_header_acs_biasfile_v2,
        precondition_header_acs_biasfile_v3,
        fallback_header_acs_biasfile_v3,
        precondition_header_wfc3_biasfile_v1,
        fallback_header_wfpc2_flatfile_v1,
    )
}


class HookInputs(NamedTuple):
    """All that a hook's output depends on (besides the values it passes through).

    ``keys``: the header keys the hook reads, other than DATE-OBS and TIME-OBS.
    ``thresholds``: the sorted dates it compares the exposure start (:func:`_exposure_start`)
    with, by ``<`` only, so that it sees of the date only ``bisect_right(thresholds, start)``
    (:func:`exposure_date_class`); empty when the hook does not read the date at all.
    """

    keys: tuple[str, ...]
    thresholds: tuple[str, ...]


#: What each hook reads: memoised answer plans (:mod:`crds_async.rules.plans`) key
#: their memos on it, so a key missing here would let datasets share an answer that differs.
#: (The hooks write only APERTURE, CCDAMP and the axis sizes, never DATE-OBS / TIME-OBS.)
HOOK_INPUTS: dict[str, HookInputs] = {
    "precondition_header_acs_biasfile_v1": HookInputs(
        ("NUMCOLS", "CCDAMP", "DETECTOR", "XCORNER", "YCORNER", "NUMROWS"), (_SM4,)),
    "precondition_header_acs_biasfile_v2": HookInputs(
        ("NAXIS1", "CCDAMP", "DETECTOR", "XCORNER", "YCORNER", "NAXIS2"), (_SM4,)),
    "precondition_header_acs_biasfile_v3": HookInputs(
        ("DETECTOR", "APERTURE", "CCDGAIN", "CCDAMP", "NAXIS1", "XCORNER", "YCORNER", "NAXIS2"),
        (_SUBARRAY_REFERENCES_FROM, _SM4)),
    "precondition_header_wfc3_biasfile_v1": HookInputs(("SUBARRAY", "APERTURE"), ()),
    "fallback_header_wfpc2_flatfile_v1": HookInputs(("FILTER1", "FILTER2"), ()),
}


def _full_frame_retry_inputs(precondition: str, offsets: tuple[str, str]) -> HookInputs:
    """An ACS bias fallback's inputs: its precondition's, then the offsets _acs_full_frame reads."""
    inputs = HOOK_INPUTS[precondition]
    return HookInputs(inputs.keys + offsets, inputs.thresholds)


HOOK_INPUTS["fallback_header_acs_biasfile_v2"] = _full_frame_retry_inputs(
    "precondition_header_acs_biasfile_v2", ("LTV1", "LTV2"))
HOOK_INPUTS["fallback_header_acs_biasfile_v3"] = _full_frame_retry_inputs(
    "precondition_header_acs_biasfile_v3", ("RAW_LTV1", "RAW_LTV2"))

_DATE_CLASS_MEMO_LIMIT = 4096


@lru_cache(maxsize=None)
def exposure_date_class(thresholds: tuple[str, ...]) -> Callable[[Header], int]:
    """``header -> bisect_right(thresholds, _exposure_start(header))``, memoised per DATE-OBS/TIME-OBS.

    Fails exactly where :func:`_exposure_start` fails (missing key, a date that does not
    parse). One function per ``thresholds`` (the same object each time, so that memo keys
    built from several plans share it).
    """
    memo: dict[str | None, int] = {}

    def date_class(header: Header) -> int:
        try:
            text = header["DATE-OBS"] + " " + header["TIME-OBS"]   # what _exposure_start parses
        except KeyError:
            text = None
        found = memo.get(text)
        if found is None:
            found = bisect_right(thresholds, _exposure_start(header))  # fails where the hook fails
            if len(memo) >= _DATE_CLASS_MEMO_LIMIT:
                memo.clear()
            memo[text] = found
        return found

    date_class.__qualname__ = date_class.__name__ = f"exposure_date_class{thresholds!r}"
    return date_class


#: The instrument whose rmaps can use each hook (the reference looks hooks up in the
#: rmap instrument's module).
HOOK_INSTRUMENTS: dict[str, str] = {name: name.split("_")[2] for name in HOOKS}


def find_hook(kind: str, instrument: str, filekind: str, rmap_hooks: Mapping[str, str] | None) -> Hook | None:
    """The hook of ``kind`` for an rmap, or None for the default behaviour.

    Parameters
    ----------
    kind : str
        ``'precondition_header'`` or ``'fallback_header'``.
    instrument, filekind : str
        The rmap's, lower case.
    rmap_hooks : Mapping[str, str] or None
        The rmap header's ``hooks`` dict, if any. When present (and not empty) it alone
        decides: a kind it does not name, or a name such as ``'none'``, means no hook.

    Returns
    -------
    callable or None
        ``header -> header``; None means: precondition leaves the header alone, fallback
        does not retry.
    """
    if rmap_hooks:
        name = rmap_hooks.get(kind, kind)
        if name != kind and str(name).lower() != "none" and HOOK_INSTRUMENTS.get(name) != instrument:
            # named explicitly but unknown: a typo would silently change the answers
            raise RulesError(f"rmap 'hooks' names {name!r} for {kind}, which is not a hook of {instrument} "
                             f"(known: {', '.join(sorted(n for n, i in HOOK_INSTRUMENTS.items() if i == instrument and n.startswith(kind))) or 'none'})")
    else:
        name = f"{kind}_{instrument}_{filekind}_v1"
    if not isinstance(name, str) or HOOK_INSTRUMENTS.get(name) != instrument:
        return None
    return HOOKS[name]


#: the keywords :func:`is_dnr_dataset` reads
DNR_KEYWORDS = ("DETECTOR", "CCDGAIN")


def is_dnr_dataset(header: Header) -> bool:
    """Do-not-reprocess rule: a failed match of a WFC dataset with CCDGAIN 0.5 or 1.4 means N/A.

    Any problem evaluating the rule (missing key, non-numeric gain) means False, as in the
    reference.
    """
    try:
        return header["DETECTOR"] == "WFC" and float(header["CCDGAIN"]) in (0.5, 1.4)
    except Exception:  # noqa: BLE001 - the reference treats every failure as "not DNR"
        return False
