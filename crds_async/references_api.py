"""``getreferences`` / ``agetreferences``: local paths of the best references for one dataset.

Same signature and contract as the reference's ``crds.getreferences(parameters, reftypes=None,
context=None, ignore_cache=False, observatory=..., fast=False)`` (observatories-and-protocol.md
§2.3), ``cfg=`` being a keyword-only extra:

- ``NOT FOUND n/a`` answers are returned unchanged and nothing is downloaded;
- any other ``NOT FOUND`` answer is an error: every one is logged, then
  :class:`~crds_async.errors.CrdsLookupError` is raised for the last one, with the
  reference's text (``Error determining best reference for 'dark'  =   No match found.``);
- omitted types are absent; tuple or dict answers are localized member by member;
- references missing from the cache are downloaded (all at once, verified) through
  :mod:`crds_async.fetch`.  A path that is returned exists: a reference that is not
  cached and cannot be fetched raises :class:`~crds_async.errors.CrdsDownloadError`
  (``CRDS_MODE=local`` or ``CRDS_READONLY_CACHE=1``: never fetched, no server contacted).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .config import OBSERVATORIES, Config, config_from_env
from .engine import answer_dataset
from .engine.rules_sync import aevaluator_with_rules
from .api import as_reference_error
from .errors import ConfigError, CrdsDownloadError, CrdsLookupError, FetchError, LookupFailure
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
    last_error: CrdsLookupError | None = None
    for reftype, answer in bestrefs.items():
        if isinstance(answer, tuple):
            wanted.extend(str(a) for a in answer)
        elif isinstance(answer, dict):
            wanted.extend(str(a) for a in answer.values())
        elif isinstance(answer, str):
            if "NOT FOUND" in answer:
                if "n/a" not in answer.lower():
                    last_error = CrdsLookupError(
                        f"Error determining best reference for {reftype!r}  =  {answer[len('NOT FOUND'):]}")
                    log.error("%s", last_error)
            else:
                wanted.append(answer)
        else:
            last_error = CrdsLookupError(f"Unhandled bestrefs return value type for {reftype!r}")
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
                            names: Sequence[str], ignore_cache: bool = False) -> dict[str, Path]:
    """Cache paths of ``names``, downloading the missing ones (verified) through crds_async.fetch.

    Raises :class:`CrdsDownloadError` when some file is not in the cache afterwards.
    """
    from .fetch import references as fetch_references

    if cfg.mode == "local":  # never a server: what the cache has, or an error
        from .fetch.names import geis_conjugate

        wanted = list(names) + [c for n in names if (c := geis_conjugate(n))]
        absent = [name for name in dict.fromkeys(wanted)
                  if not fetch_references.reference_path(cfg, observatory, name).exists()]
        if absent:
            raise CrdsDownloadError(f"Failed caching references: CRDS_MODE=local and {len(absent)} reference(s) "
                                    "are not cached: " + ", ".join(absent[:5]) + (" ..." if len(absent) > 5 else ""))
        ignore_cache = False
    try:
        paths = await fetch_references.ensure_references(cfg, observatory, list(dict.fromkeys(names)),
                                                         context=context, ignore_cache=ignore_cache)
    except FetchError as exc:
        raise CrdsDownloadError(f"Failed caching references: {exc}") from exc
    absent = [name for name in names if not paths[name].exists()]
    if absent:
        raise CrdsDownloadError(f"Failed caching references: {len(absent)} not in the cache after fetching: "
                                + ", ".join(absent[:5]))
    return paths


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
    ignore_cache: bool = False,
    observatory: str | None = None,
    fast: bool = False,
    *,
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
    ignore_cache : bool
        Check the sha1 of cached references against the server's and fetch again those
        that differ (needs a server).
    observatory : str, optional
        ``hst``, ``jwst`` or ``roman``; default from the context, ``CRDS_OBSERVATORY``,
        the header's instrument, else ``jwst``.
    fast : bool
        Skip the bad-file checks, as the reference's ``fast``.
    cfg : Config, optional, keyword-only
        Configuration; default from the ``CRDS_*`` environment.

    Returns
    -------
    dict
        ``{reftype: path}`` (every path exists); ``NOT FOUND n/a`` answers unchanged,
        omitted types absent.

    Raises
    ------
    CrdsLookupError
        Some type's lookup failed (other than ``n/a``).
    CrdsDownloadError
        A recommended reference is not cached and could not be fetched.
    """
    try:
        return await _agetreferences(parameters, reftypes, context, ignore_cache, observatory, fast, cfg)
    except Exception as exc:
        new = as_reference_error(exc)
        if new is exc:
            raise
        raise new from exc


async def _agetreferences(parameters, reftypes, context, ignore_cache, observatory, fast, cfg):
    cfg = cfg or config_from_env()
    obs = _observatory(observatory, context, cfg, parameters)
    types = [reftypes] if isinstance(reftypes, str) else (list(reftypes) if reftypes else None)
    # Like the reference (which dumps mappings on IOError and retries): rules or the
    # server configuration may simply not be cached yet; fetched when a server may be asked.
    evaluator = await aevaluator_with_rules(context or cfg.context, cfg, obs, notify=log.info)
    bestrefs = _recommend(evaluator, parameters, types, fast)
    wanted = _wanted_files(bestrefs)
    paths = await _cache_references(cfg, obs, context, wanted, ignore_cache) if wanted else {}
    return _localized(bestrefs, paths)


def getreferences(
    parameters: Mapping[str, object],
    reftypes: Iterable[str] | None = None,
    context: str | None = None,
    ignore_cache: bool = False,
    observatory: str | None = None,
    fast: bool = False,
    *,
    cfg: Config | None = None,
) -> dict[str, object]:
    """Blocking twin of :func:`agetreferences` (same parameters, results and errors).

    Raises
    ------
    ConfigError
        When called from a running event loop: ``await agetreferences(...)`` there.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(agetreferences(parameters, reftypes, context, ignore_cache, observatory, fast,
                                          cfg=cfg))
    raise ConfigError("getreferences() called inside an event loop: use 'await agetreferences(...)'")
