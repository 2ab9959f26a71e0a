"""Mapping and reference closures of a context, from the rules engine.

Thin seam over :mod:`crds_async.rules`: ``rules.model.load_context`` when it is
available, else the parsed-mapping store of ``rules.inspect`` (same parser, no
evaluation).  Every name that comes out is checked by :mod:`.names`.
"""

from __future__ import annotations

from ..config import Config
from .names import check_name

__all__ = ["mapping_closure", "reference_closure"]


def _context(cfg: Config, observatory: str, context: str):
    try:
        from ..rules.model import load_context
    except ImportError:
        return None
    return load_context(context, cfg, observatory)


def _store(cfg: Config, observatory: str):
    from ..rules.inspect import MappingStore

    return MappingStore(cfg.mapping_dir(observatory), verify_checksum=not cfg.ignore_mapping_checksum)


def mapping_closure(cfg: Config, observatory: str, context: str) -> list[str]:
    """``context`` and every .imap/.rmap below it, sorted (the reference's ``mapping_names``)."""
    check_name(context, where="context", kinds=("mappings",))
    ctx = _context(cfg, observatory, context)
    names = ctx.mapping_names() if ctx is not None else _store(cfg, observatory).closure(context)
    return sorted(check_name(n, where=f"{context} closure", kinds=("mappings",)) for n in names)


def reference_closure(cfg: Config, observatory: str, context: str) -> list[str]:
    """Every reference file named by the rmaps of ``context``, sorted."""
    check_name(context, where="context", kinds=("mappings",))
    ctx = _context(cfg, observatory, context)
    names = ctx.reference_names() if ctx is not None else _store(cfg, observatory).reference_names(context)
    return sorted(check_name(n, where=f"{context} rules", kinds=("references",)) for n in names)
