"""crds_async: a fast asyncio batch engine for CRDS best references.

Public API (see README), shaped like the reference client's ``crds`` package so that
``import crds_async as crds`` works for its callers (``cfg=`` is a keyword-only extra):

- ``getrecommendations(parameters, reftypes=None, context=None, ignore_cache=False,
  observatory=None, fast=False)``
- ``getreferences(parameters, reftypes=None, context=None, ignore_cache=False,
  observatory=None, fast=False)`` and its async twin ``agetreferences(...)``
- ``get_default_context(observatory=None, state=None)``,
  ``get_context_name(observatory, context=None)``, ``locate_file(filepath, observatory)``
- the reference's exception names: ``CrdsError``, ``CrdsLookupError``,
  ``CrdsUnknownInstrumentError``, ``CrdsNetworkError``, ``CrdsDownloadError``, ...
- ``get_evaluator(context, cfg)`` (loaded once per process), or ``load_context(context, cfg)``
  and ``new_evaluator(context, cfg)``, for batch use
- ``config_from_env()`` / ``Config``
"""

from __future__ import annotations

from ._version import __version__

from .api import get_context_name, get_default_context, getrecommendations, locate_file
from .config import Config, config_from_env
from .errors import (CrdsBadReferenceError, CrdsBadRulesError, CrdsConfigError, CrdsDownloadError,
                     CrdsError, CrdsLookupError, CrdsNetworkError, CrdsUnknownInstrumentError)
from .references_api import agetreferences, getreferences
from .rules.evaluate import Evaluator
from .engine.loader import load_context, new_evaluator
from .engine.registry import get_evaluator

__all__ = [
    "__version__",
    "Config",
    "config_from_env",
    "CrdsError",
    "CrdsLookupError",
    "CrdsUnknownInstrumentError",
    "CrdsConfigError",
    "CrdsNetworkError",
    "CrdsDownloadError",
    "CrdsBadRulesError",
    "CrdsBadReferenceError",
    "Evaluator",
    "agetreferences",
    "getrecommendations",
    "getreferences",
    "get_context_name",
    "get_default_context",
    "locate_file",
    "get_evaluator",
    "load_context",
    "new_evaluator",
]
