"""Rules missing from the cache: fetch them from the server, then load again.

As the reference client does (it dumps a context's mappings when it cannot load
them): only when a server may be asked (``CRDS_SERVER_URL`` set, ``CRDS_MODE``
not ``local``, the cache writable).  Otherwise the load's own error stands, and
it says what is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..config import Config
from ..errors import ConfigError, RulesError
from ..rules.contexts import is_context_spec
from ..rules.evaluate import Evaluator
from .registry import REGISTRY

__all__ = ["can_fetch_rules", "aevaluator_with_rules", "evaluator_with_rules"]


def can_fetch_rules(cfg: Config) -> bool:
    """Whether missing rules may be fetched on demand: a server is named, the cache is
    writable, and ``CRDS_MODE`` is not ``local``."""
    return bool(cfg.server_url) and not cfg.readonly_cache and cfg.mode != "local"


def _missing_rules(evaluator: Evaluator) -> str | None:
    """The first instrument load error that a sync can mend (a mapping not in the cache)."""
    for error in evaluator.context.load_errors.values():
        if "not found in the cache" in str(error):
            return str(error)
    return None


def _load(context: str | None, cfg: Config, observatory: str | None) -> tuple[Evaluator | None, str | None]:
    """``(evaluator, None)`` when usable as it is, else ``(None or evaluator, why a sync would help)``.

    Raises the load's error when no sync may or could help.
    """
    try:
        evaluator = REGISTRY.evaluator(context, cfg, observatory)
    except (ConfigError, RulesError) as exc:
        if not can_fetch_rules(cfg) or (context is not None and not is_context_spec(context)):
            raise
        return None, str(exc)
    why = _missing_rules(evaluator)
    if why is None or not can_fetch_rules(cfg):
        return evaluator, None
    return evaluator, why


async def _sync(context: str | None, cfg: Config, observatory: str | None, why: str,
                notify: Callable[[str], None] | None) -> None:
    from ..fetch.sync import sync_context_rules  # aiohttp: only when needed
    from ..rules.contexts import observatory_of_spec

    if notify is not None:
        notify(f"fetching the rules of {context or observatory} from {cfg.server_url} ({why})")
    obs = observatory or cfg.observatory or observatory_of_spec(context or "")
    await sync_context_rules(cfg, obs, context)
    REGISTRY.clear()  # what was loaded before the sync may lack what it brought


async def aevaluator_with_rules(context: str | None, cfg: Config, observatory: str | None = None, *,
                                notify: Callable[[str], None] | None = None) -> Evaluator:
    """The evaluator of ``context``, its rules fetched first when the cache lacks them.

    Loading runs in a thread (it reads and compiles files); ``notify`` is told, in one line,
    when rules are being fetched.

    Raises
    ------
    ConfigError, RulesError
        The rules cannot be loaded and no server may be asked (the load's own error).
    FetchError
        The server was asked and the rules could not be fetched.
    """
    evaluator, why = await asyncio.to_thread(_load, context, cfg, observatory)
    if why is None:
        return evaluator
    await _sync(context, cfg, observatory, why, notify)
    return await asyncio.to_thread(REGISTRY.evaluator, context, cfg, observatory)


def evaluator_with_rules(context: str | None, cfg: Config, observatory: str | None = None, *,
                         notify: Callable[[str], None] | None = None) -> Evaluator:
    """Blocking :func:`aevaluator_with_rules` (not from a running event loop)."""
    evaluator, why = _load(context, cfg, observatory)
    if why is None:
        return evaluator
    asyncio.run(_sync(context, cfg, observatory, why, notify))
    return REGISTRY.evaluator(context, cfg, observatory)
