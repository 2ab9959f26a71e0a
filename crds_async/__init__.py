"""crds_async: a fast asyncio batch engine for CRDS best references.

Public API (see README):

- ``getrecommendations(header, context=None, reftypes=None, observatory=None)``
- ``getreferences(header, reftypes=None, context=None, observatory=None)`` and
  its async twin ``agetreferences(...)``
- ``load_context(context, cfg)`` and ``Evaluator(context, cfg)`` for batch use
- ``config_from_env()`` / ``Config``
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import getrecommendations
from .config import Config, config_from_env
from .errors import CrdsError
from .references_api import agetreferences, getreferences
from .rules.evaluate import Evaluator
from .rules.model import load_context

__all__ = [
    "__version__",
    "Config",
    "config_from_env",
    "CrdsError",
    "Evaluator",
    "agetreferences",
    "getrecommendations",
    "getreferences",
    "load_context",
]
