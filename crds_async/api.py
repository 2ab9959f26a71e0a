"""Public blocking API: ``getrecommendations`` (and, elsewhere, ``getreferences``).

Contexts are loaded once per process and cached by (observatory, context, cache
paths, checksum flag), so repeated calls cost only the evaluation.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from .config import Config, config_from_env
from .errors import ConfigError
from .instruments import header_instrument, observatory_of_instrument
from .rules.contexts import observatory_of_spec
from .rules.evaluate import Evaluator
from .rules.compiled_cache import load_context_cached, resolved_context_name

__all__ = ["getrecommendations", "get_evaluator", "default_context"]

_LOCK = threading.Lock()
_EVALUATORS: dict[tuple, Evaluator] = {}


def default_context(cfg: Config, observatory: str) -> str:
    """CRDS_CONTEXT if set, else the cache's operational context (symbolic names allowed)."""
    if cfg.context:
        return cfg.context
    return f"{observatory}-operational"


def get_evaluator(context: str | None, cfg: Config, observatory: str | None = None) -> Evaluator:
    """A cached :class:`Evaluator` for ``context`` (loaded on first use)."""
    observatory = (observatory or (observatory_of_spec(context) if context else None) or cfg.observatory)
    if not observatory:
        raise ConfigError("cannot tell the observatory: name a context such as hst_0729.pmap or set CRDS_OBSERVATORY")
    observatory = observatory.lower()
    spec = context or default_context(cfg, observatory)
    options = (cfg.cache_roots, cfg.ignore_mapping_checksum, cfg.allow_bad_rules, cfg.allow_bad_references)
    key = (observatory, spec, *options)
    with _LOCK:
        evaluator = _EVALUATORS.get(key)
        if evaluator is None:
            # Also known by the .pmap name a symbolic one resolves to: a batch hands its
            # workers the literal name, and they must find the context loaded before the fork.
            name = resolved_context_name(spec, cfg, observatory)
            literal_key = (observatory, name, *options)
            evaluator = _EVALUATORS.get(literal_key)
            if evaluator is None:
                evaluator = Evaluator(load_context_cached(name, cfg, observatory), cfg)
            _EVALUATORS[key] = _EVALUATORS[literal_key] = evaluator
        return evaluator


def getrecommendations(header: Mapping[str, object], context: str | None = None,
                       reftypes: Iterable[str] | None = None, observatory: str | None = None,
                       fast: bool = False, cfg: Config | None = None) -> dict[str, object]:
    """Best reference names for one dataset header, as the reference client returns them.

    Parameters
    ----------
    header : Mapping[str, object]
        Dataset keywords (HST FITS keywords, JWST FITS keywords or ``META.*`` names,
        Roman ``ROMAN.META.*`` or ``META.*``).
    context : str, optional
        ``hst_0729.pmap`` or a symbolic name; default CRDS_CONTEXT, then the cache's
        operational context.
    reftypes : iterable of str, optional
        Types to answer; default every type of the instrument.
    observatory : str, optional
        Needed only when neither the context nor the header tells.
    fast : bool
        Skip the bad-files checks (as the reference's ``fast=True``).
    cfg : Config, optional
        Default: resolved from the environment.

    Returns
    -------
    dict
        ``{reftype: name | "NOT FOUND ..."}``; omitted types are absent.
    """
    cfg = cfg or config_from_env()
    if observatory is None and context is None and cfg.context is None and cfg.observatory is None:
        observatory = observatory_of_instrument(header_instrument(header) or "")
    evaluator = get_evaluator(context or cfg.context, cfg, observatory)
    instrument, result = evaluator.evaluate_dataset(header, reftypes, fast=fast)
    if not fast:
        evaluator.check_bad_files(instrument, result)
    return result
