"""The process's loaded contexts: each loaded once (through the compiled cache), then shared.

One :class:`ContextRegistry` per process (:data:`REGISTRY`), keyed by
observatory, context and the options that change what is loaded, so repeated
calls, a batch's chunks and forked workers all reuse one evaluator.
"""

from __future__ import annotations

import threading

from ..config import Config
from ..errors import ConfigError
from ..rules.contexts import observatory_of_spec
from ..rules.evaluate import Evaluator
from .compiled import load_context_cached, resolved_context_name
from .loader import new_evaluator

__all__ = ["ContextRegistry", "REGISTRY", "get_evaluator", "default_context"]


def default_context(cfg: Config, observatory: str) -> str:
    """CRDS_CONTEXT if set, else the cache's operational context (symbolic names allowed)."""
    if cfg.context:
        return cfg.context
    return f"{observatory}-operational"


class ContextRegistry:
    """Evaluators by (observatory, context, cache paths, checksum and bad-file options)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._evaluators: dict[tuple, Evaluator] = {}

    def evaluator(self, context: str | None, cfg: Config, observatory: str | None = None) -> Evaluator:
        """The evaluator of ``context`` (default: :func:`default_context`), loaded on first use.

        Raises
        ------
        ConfigError
            No observatory can be told, or the context cannot be resolved or found.
        RulesError
            The context's .pmap is unusable.
        """
        observatory = (observatory or (observatory_of_spec(context) if context else None) or cfg.observatory)
        if not observatory:
            raise ConfigError("cannot tell the observatory: name a context such as hst_0729.pmap "
                              "or set CRDS_OBSERVATORY")
        observatory = observatory.lower()
        spec = context or default_context(cfg, observatory)
        options = (cfg.cache_roots, cfg.ignore_mapping_checksum, cfg.allow_bad_rules, cfg.allow_bad_references)
        key = (observatory, spec, *options)
        with self._lock:
            evaluator = self._evaluators.get(key)
            if evaluator is None:
                # Also known by the .pmap name a symbolic one resolves to: a batch hands its
                # workers the literal name, and they must find the context loaded before the fork.
                name = resolved_context_name(spec, cfg, observatory)
                literal_key = (observatory, name, *options)
                evaluator = self._evaluators.get(literal_key)
                if evaluator is None:
                    evaluator = new_evaluator(load_context_cached(name, cfg, observatory), cfg)
                self._evaluators[key] = self._evaluators[literal_key] = evaluator
            return evaluator

    def __len__(self) -> int:
        """Names under which contexts are loaded (a context loaded since grows it)."""
        return len(self._evaluators)

    def clear(self) -> None:
        """Forget every loaded context (tests; a long-lived server after a cache update)."""
        with self._lock:
            self._evaluators.clear()


#: The process's registry.
REGISTRY = ContextRegistry()


def get_evaluator(context: str | None, cfg: Config, observatory: str | None = None) -> Evaluator:
    """``REGISTRY.evaluator(context, cfg, observatory)``."""
    return REGISTRY.evaluator(context, cfg, observatory)
