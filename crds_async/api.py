"""Public blocking API: ``getrecommendations`` (and, elsewhere, ``getreferences``).

A thin facade over :mod:`crds_async.engine`: contexts are loaded once per process
(its registry), so repeated calls cost only the evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .config import Config, config_from_env
from .engine import answer_dataset, default_context, get_evaluator
from .instruments import header_instrument, observatory_of_instrument

__all__ = ["getrecommendations", "get_evaluator", "default_context"]

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
    found = answer_dataset(header, evaluator, reftypes, complete=False, fast=fast, screen="api")
    if not fast:
        evaluator.check_bad_files(found.instrument, found.answers)
    return found.answers
