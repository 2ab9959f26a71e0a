"""crds_async: a fast asyncio batch engine for CRDS best references.

Public API (see README):

- ``getrecommendations(header, context=None, reftypes=None, observatory=None)``
- ``getreferences(header, reftypes=None, context=None, observatory=None)`` and
  its async twin ``agetreferences(...)``
- ``get_evaluator(context, cfg)`` (loaded once per process), or ``load_context(context, cfg)``
  and ``new_evaluator(context, cfg)``, for batch use
- ``config_from_env()`` / ``Config``
"""

from __future__ import annotations

from ._version import __version__

from .api import getrecommendations
from .config import Config, config_from_env
from .errors import CrdsError
from .references_api import agetreferences, getreferences
from .rules.evaluate import Evaluator
from .engine.loader import load_context, new_evaluator
from .engine.registry import get_evaluator

__all__ = [
    "__version__",
    "Config",
    "config_from_env",
    "CrdsError",
    "Evaluator",
    "agetreferences",
    "getrecommendations",
    "getreferences",
    "get_evaluator",
    "load_context",
    "new_evaluator",
]
