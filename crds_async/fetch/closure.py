"""Mapping and reference closures of contexts, from the cache's parsed mappings.

A :class:`RulesView` parses each mapping once (:class:`.mapping_files.FileMappingStore`:
the rules' own parser, nothing compiled or evaluated), however many contexts are
asked about (``sync --all`` asks about hundreds).  Every name that comes out is
checked by :mod:`.names`.
"""

from __future__ import annotations

from ..config import Config
from .mapping_files import FileMappingStore
from .names import check_name

__all__ = ["RulesView", "mapping_closure", "reference_closure"]


class RulesView:
    """Closures of one observatory's contexts in one cache, parsing each mapping once."""

    def __init__(self, cfg: Config, observatory: str) -> None:
        self.cfg = cfg
        self.observatory = observatory
        self.store = FileMappingStore(cfg.mapping_dir(observatory), verify_checksum=not cfg.ignore_mapping_checksum)

    def mapping_closure(self, context: str) -> list[str]:
        """``context`` and every mapping below it, sorted (the reference's ``mapping_names``)."""
        check_name(context, where="context", kinds=("mappings",))
        names = self.store.closure(context)
        return sorted(check_name(n, where=f"{context} closure", kinds=("mappings",)) for n in names)

    def reference_closure(self, context: str) -> list[str]:
        """Every reference file named by the rmaps under ``context``, sorted."""
        check_name(context, where="context", kinds=("mappings",))
        names = self.store.reference_names(context)
        return sorted(check_name(n, where=f"{context} rules", kinds=("references",)) for n in names)


def mapping_closure(cfg: Config, observatory: str, context: str) -> list[str]:
    """One-off :meth:`RulesView.mapping_closure`."""
    return RulesView(cfg, observatory).mapping_closure(context)


def reference_closure(cfg: Config, observatory: str, context: str) -> list[str]:
    """One-off :meth:`RulesView.reference_closure`."""
    return RulesView(cfg, observatory).reference_closure(context)
