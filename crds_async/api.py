"""Public blocking API, shaped like the reference client's ``crds`` package.

``getrecommendations``, ``get_default_context``, ``get_context_name`` and ``locate_file``
take the reference's parameters in the reference's order (``getreferences`` lives in
:mod:`.references_api`), so code written for ``crds`` runs unchanged; ``cfg=`` is a
keyword-only extra.  Errors leave as the reference's class names
(:class:`~crds_async.errors.CrdsLookupError`, ...), each a subclass of this project's
error tree.

A thin facade over :mod:`crds_async.engine`: contexts are loaded once per process
(its registry), so repeated calls cost only the evaluation.  Nothing here contacts a
server when ``CRDS_MODE=local``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from .config import OBSERVATORIES, Config, config_from_env
from .engine import answer_dataset, default_context, get_evaluator
from .errors import (BadReferenceError, BadRulesError, ConfigError, CrdsBadReferenceError,
                     CrdsBadRulesError, CrdsConfigError, CrdsLookupError, CrdsUnknownInstrumentError,
                     LookupFailure, UnknownInstrumentError)
from .instruments import header_instrument, observatory_of_instrument

__all__ = ["getrecommendations", "get_evaluator", "default_context", "get_default_context",
           "get_context_name", "locate_file", "reference_names"]

_T = TypeVar("_T")

#: our class -> the reference's name for it (first match wins: most specific first)
_REFERENCE_NAMES: tuple[tuple[type, type], ...] = (
    (LookupFailure, CrdsLookupError),
    (UnknownInstrumentError, CrdsUnknownInstrumentError),
    (BadRulesError, CrdsBadRulesError),
    (BadReferenceError, CrdsBadReferenceError),
    (ConfigError, CrdsConfigError),
)


def as_reference_error(exc: BaseException) -> BaseException:
    """``exc`` re-classed under the reference's name (same text), or ``exc`` itself."""
    for ours, theirs in _REFERENCE_NAMES:
        if isinstance(exc, theirs):
            return exc
        if isinstance(exc, ours):
            new = theirs(str(exc))
            new.__cause__ = exc
            return new
    return exc


def reference_names(func: Callable[..., _T]) -> Callable[..., _T]:
    """Decorator: errors leave ``func`` under the reference's class names."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            new = as_reference_error(exc)
            if new is exc:
                raise
            raise new from exc

    return wrapper


def _checked_observatory(observatory: str | None) -> str | None:
    if observatory is None:
        return None
    obs = str(observatory).lower()
    if obs not in OBSERVATORIES:
        raise ConfigError(f"observatory {observatory!r} is not one of {', '.join(OBSERVATORIES)}")
    return obs


@reference_names
def getrecommendations(parameters: Mapping[str, object], reftypes: Iterable[str] | None = None,
                       context: str | None = None, ignore_cache: bool = False,
                       observatory: str | None = None, fast: bool = False, *,
                       cfg: Config | None = None) -> dict[str, object]:
    """Best reference names for one dataset, as the reference's ``crds.getrecommendations``.

    Parameters
    ----------
    parameters : Mapping[str, object]
        Dataset keywords (HST FITS keywords, JWST FITS keywords or ``META.*`` names,
        Roman ``ROMAN.META.*`` or ``META.*``).
    reftypes : iterable of str, optional
        Types to answer; default every type of the instrument (JWST types screened as
        the reference does).
    context : str, optional
        ``hst_0729.pmap`` or a symbolic name; default CRDS_CONTEXT, then the cache's
        operational context.
    ignore_cache : bool
        Accepted for the reference's signature; names are computed from the cached rules.
    observatory : str, optional
        Needed only when neither the context, CRDS_OBSERVATORY nor the header's
        instrument tells (the reference defaults to ``jwst``).
    fast : bool
        Skip the bad-files checks (as the reference's ``fast=True``).
    cfg : Config, optional, keyword-only
        Default: resolved from the environment.

    Returns
    -------
    dict
        ``{reftype: name | "NOT FOUND ..."}``; omitted types are absent.

    Raises
    ------
    CrdsUnknownInstrumentError, CrdsBadRulesError, CrdsBadReferenceError, CrdsConfigError
        As the reference (each a subclass of :class:`~crds_async.errors.CrdsError`).
    """
    del ignore_cache  # the answers do not depend on it
    cfg = cfg or config_from_env()
    observatory = _checked_observatory(observatory)
    if observatory is None and context is None and cfg.context is None and cfg.observatory is None:
        observatory = observatory_of_instrument(header_instrument(parameters) or "")
    evaluator = get_evaluator(context or cfg.context, cfg, observatory)
    types = [reftypes] if isinstance(reftypes, str) else reftypes
    found = answer_dataset(parameters, evaluator, types, complete=False, fast=fast, screen="api")
    if not fast:
        evaluator.check_bad_files(found.instrument, found.answers)
    return found.answers


def _observatory_or_default(observatory: str | None, cfg: Config) -> str:
    obs = _checked_observatory(observatory) or cfg.observatory
    if obs:
        return obs
    if cfg.context:
        from .rules.contexts import observatory_of_spec

        if found := observatory_of_spec(cfg.context):
            return found
    return "jwst"  # the reference's default observatory


@reference_names
def get_context_name(observatory: str | None, context: str | None = None, *,
                     cfg: Config | None = None) -> str:
    """The ``.pmap`` name a context spec means, as the reference's ``crds.get_context_name``.

    ``context`` (a ``.pmap`` or ``hst-operational``, ``hst-edit``, ``latest`` ...) wins,
    then CRDS_CONTEXT, then the cache's operational context; symbolic names are resolved
    from the cache's server configuration (no server is contacted).
    """
    from .engine.compiled import resolved_context_name
    from .rules.contexts import observatory_of_spec

    cfg = cfg or config_from_env()
    obs = (_checked_observatory(observatory) or (context and observatory_of_spec(context))
           or _observatory_or_default(None, cfg))
    return resolved_context_name(context or default_context(cfg, obs), cfg, obs)


@reference_names
def get_default_context(observatory: str | None = None, state: str | None = None, *,
                        cfg: Config | None = None) -> str:
    """The ``.pmap`` in use for ``observatory``, as the reference's ``crds.get_default_context``.

    ``state`` is ``latest``/``operational`` (default), ``edit`` or ``versions``; it is read
    from the cache's server configuration.  Unlike the reference, CRDS_CONTEXT does not
    change it and no server is asked: ``build`` contexts need one, and raise
    :class:`~crds_async.errors.CrdsConfigError` here.
    """
    from .engine.compiled import resolved_context_name

    cfg = cfg or config_from_env()
    obs = _observatory_or_default(observatory, cfg)
    tag = {None: "operational", "latest": "operational"}.get(state, state)
    return resolved_context_name(f"{obs}-{tag}", cfg, obs)


@reference_names
def locate_file(filepath: str | os.PathLike, observatory: str, parameters: Mapping | None = None, *,
                cfg: Config | None = None) -> str:
    """Where a CRDS file lives in the cache, as the reference's ``crds.locate_file``.

    A path with a directory is returned as it is; a bare mapping, reference or config
    file name is placed in the cache of ``observatory`` (whether or not it is there yet).
    ``parameters`` is accepted for the reference's signature.
    """
    del parameters
    from .fetch.layout import cache_path

    text = os.fspath(filepath)
    if os.path.dirname(text):
        return text
    cfg = cfg or config_from_env()
    obs = _checked_observatory(observatory) or _observatory_or_default(None, cfg)
    return str(cache_path(cfg, obs, text))
