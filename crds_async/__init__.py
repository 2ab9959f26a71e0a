"""crds_async: a fast asyncio batch engine for CRDS best references.

Public API (see README):

- ``getrecommendations(header, context=None, reftypes=None, observatory=None)``
- ``getreferences(header, reftypes=None, context=None, observatory=None)`` and
  ``agetreferences(...)``
- ``config_from_env()`` / ``Config``
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Config, config_from_env
from .errors import CrdsError

__all__ = ["__version__", "Config", "config_from_env", "CrdsError"]
