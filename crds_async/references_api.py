"""``getreferences`` / ``agetreferences``: local paths of the best references for one dataset.

Same contract as the reference's ``crds.getreferences`` (observatories-and-protocol.md §2.3):

- ``NOT FOUND n/a`` answers are returned unchanged and nothing is downloaded;
- any other ``NOT FOUND`` answer is an error: every one is logged, then
  :class:`~crds_async.errors.LookupFailure` is raised for the last one, with the
  reference's text (``Error determining best reference for 'dark'  =   No match found.``);
- omitted types are absent; tuple or dict answers are localized member by member;
- references missing from the cache are downloaded (all at once, verified) through
  :mod:`crds_async.fetch`.  As in the reference, a file that fails to download is
  logged and its cache path is still returned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .config import OBSERVATORIES, Config, config_from_env
from .engine import answer_dataset
from .engine.rules_sync import aevaluator_with_rules
from .errors import ConfigError, FetchError, LookupFailure
from .rules.contexts import observatory_of_spec

__all__ = ["getreferences", "agetreferences"]

log = logging.getLogger(__name__)

#: The reference's default observatory for getreferences.
DEFAULT_OBSERVATORY = "jwst"


def _observatory(observatory: str | None, context: str | None, cfg: Config,
                 parameters: Mapping[str, object]) -> str:
    """Whose cache: the argument, CRDS_OBSERVATORY, the context, the header's instrument, else jwst."""
    from .instruments import header_instrument
    from .instruments.common import observatory_of_instrument

    candidates = [observatory, cfg.observatory, context and observatory_of_spec(context),
                  cfg.context and observatory_of_spec(cfg.context)]
    for candidate in candidates:
        if candidate:
            candidate = candidate.lower()
            if candidate not in OBSERVATORIES:
                raise ConfigError(f"observatory {candidate!r} is not one of {', '.join(OBSERVATORIES)}")
            return candidate
    instrument = header_instrument(parameters)
    return (observatory_of_instrument(instrument) if instrument else None) or DEFAULT_OBSERVATORY


def _wanted_files(bestrefs: Mapping[str, object]) -> list[str]:
    """Names to localize; raises LookupFailure for the last real NOT FOUND, after logging each."""
    wanted: list[str] = []
    last_error: LookupFailure | None = None
    for reftype, answer in bestrefs.items():
        if isinstance(answer, tuple):
            wanted.extend(str(a) for a in answer)
        elif isinstance(answer, dict):
            wanted.extend(str(a) for a in answer.values())
        elif isinstance(answer, str):
            if "NOT FOUND" in answer:
                if "n/a" not in answer.lower():
                    last_error = LookupFailure(
                        f"Error determining best reference for {reftype!r}  =  {answer[len('NOT FOUND'):]}")
                    log.error("%s", last_error)
            else:
                wanted.append(answer)
        else:
            last_error = LookupFailure(f"Unhandled bestrefs return value type for {reftype!r}")
            log.error("%s", last_error)
    if last_error is not None:
        raise last_error
    return wanted


def _localized(bestrefs: Mapping[str, object], paths: Mapping[str, Path]) -> dict[str, object]:
    out: dict[str, object] = {}
    for reftype, answer in bestrefs.items():
        if isinstance(answer, tuple):
            out[reftype] = tuple(str(paths[a]) for a in answer)
        elif isinstance(answer, dict):
            out[reftype] = {k: str(paths[v]) for k, v in answer.items()}
        elif "NOT FOUND" in answer:
            out[reftype] = answer
        else:
            out[reftype] = str(paths[answer])
    return out


async def _cache_references(cfg: Config, observatory: str, context: str | None,
                            names: Sequence[str]) -> dict[str, Path]:
    """Cache paths of ``names``, downloading the missing ones (verified) through crds_async.fetch."""
    from .fetch import references as fetch_references

    try:
        return await fetch_references.ensure_references(cfg, observatory, list(dict.fromkeys(names)),
                                                        context=context)
    except FetchError as exc:
        # The reference logs download failures and still returns the cache paths.
        log.error("%s", exc)
        return {name: fetch_references.reference_path(cfg, observatory, name) for name in names}


def _recommend(evaluator, parameters: Mapping[str, object], reftypes: list[str] | None,
               fast: bool) -> dict[str, object]:
    found = answer_dataset(parameters, evaluator, reftypes, complete=False, fast=fast, screen="api")
    if not fast:
        evaluator.check_bad_files(found.instrument, found.answers)
    return found.answers


async def agetreferences(
    parameters: Mapping[str, object],
    reftypes: Iterable[str] | None = None,
    context: str | None = None,
    observatory: str | None = None,
    *,
    fast: bool = False,
    cfg: Config | None = None,
) -> dict[str, object]:
    """Best references for ``parameters`` as local file paths, downloading missing ones.

    Parameters
    ----------
    parameters : mapping
        Dataset keywords (e.g. a FITS header; JWST ``META.*`` or bare keywords).
    reftypes : iterable of str, optional
        Reference types to answer; default: every type of the instrument.
    context : str, optional
        A ``.pmap`` or symbolic context; default ``CRDS_CONTEXT`` or the operational one.
    observatory : str, optional
        ``hst``, ``jwst`` or ``roman``; default from the context, ``CRDS_OBSERVATORY``, else ``jwst``.
    fast : bool
        Skip the bad-file checks, as the reference's ``fast``.
    cfg : Config, optional
        Configuration; default from the ``CRDS_*`` environment.

    Returns
    -------
    dict
        ``{reftype: path}``; ``NOT FOUND n/a`` answers unchanged, omitted types absent.

    Raises
    ------
    LookupFailure
        Some type's lookup failed (other than ``n/a``).
    """
    cfg = cfg or config_from_env()
    obs = _observatory(observatory, context, cfg, parameters)
    types = list(reftypes) if reftypes else None
    # Like the reference (which dumps mappings on IOError and retries): rules or the
    # server configuration may simply not be cached yet; fetched when a server may be asked.
    evaluator = await aevaluator_with_rules(context or cfg.context, cfg, obs, notify=log.info)
    bestrefs = _recommend(evaluator, parameters, types, fast)
    wanted = _wanted_files(bestrefs)
    paths = await _cache_references(cfg, obs, context, wanted) if wanted else {}
    return _localized(bestrefs, paths)


def getreferences(
    parameters: Mapping[str, object],
    reftypes: Iterable[str] | None = None,
    context: str | None = None,
    observatory: str | None = None,
    *,
    fast: bool = False,
    cfg: Config | None = None,
) -> dict[str, object]:
    """Blocking twin of :func:`agetreferences` (same parameters and results).

    Raises
    ------
    ConfigError
        When called from a running event loop: ``await agetreferences(...)`` there.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(agetreferences(parameters, reftypes, context, observatory, fast=fast, cfg=cfg))
    raise ConfigError("getreferences() called inside an event loop: use 'await agetreferences(...)'")
