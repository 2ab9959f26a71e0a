"""Mapping and reference closures of contexts, from the rules engine.

Thin seam over :mod:`crds_async.rules`: ``rules.model.load_context`` when it is
available, else the parsed-mapping store of ``rules.inspect`` (same parser, no
evaluation).  A :class:`RulesView` parses each mapping once, however many
contexts are asked about (``sync --all`` asks about hundreds).  Every name that
comes out is checked by :mod:`.names`.
"""

from __future__ import annotations

from ..config import Config
from .names import check_name

__all__ = ["RulesView", "mapping_closure", "reference_closure"]


class RulesView:
    """Closures of one observatory's contexts in one cache, parsing each mapping once."""

    def __init__(self, cfg: Config, observatory: str) -> None:
        self.cfg = cfg
        self.observatory = observatory
        self._store = None
        self._contexts: dict[str, object] = {}

    def _context(self, context: str):
        check_name(context, where="context", kinds=("mappings",))
        if context.endswith(".pmap"):
            try:
                from ..rules.model import load_context
            except ImportError:
                load_context = None
            if load_context is not None:
                if context not in self._contexts:
                    self._contexts[context] = load_context(context, self.cfg, self.observatory)
                return self._contexts[context]
        return None

    @property
    def store(self):
        if self._store is None:
            from ..rules.inspect import MappingStore

            self._store = MappingStore(self.cfg.mapping_dir(self.observatory),
                                       verify_checksum=not self.cfg.ignore_mapping_checksum)
        return self._store

    def mapping_closure(self, context: str) -> list[str]:
        """``context`` and every mapping below it, sorted (the reference's ``mapping_names``)."""
        ctx = self._context(context)
        names = ctx.mapping_names() if ctx is not None else self.store.closure(context)
        return sorted(check_name(n, where=f"{context} closure", kinds=("mappings",)) for n in names)

    def reference_closure(self, context: str) -> list[str]:
        """Every reference file named by the rmaps under ``context``, sorted."""
        ctx = self._context(context)
        names = ctx.reference_names() if ctx is not None else self.store.reference_names(context)
        return sorted(check_name(n, where=f"{context} rules", kinds=("references",)) for n in names)


def mapping_closure(cfg: Config, observatory: str, context: str) -> list[str]:
    """One-off :meth:`RulesView.mapping_closure`."""
    return RulesView(cfg, observatory).mapping_closure(context)


def reference_closure(cfg: Config, observatory: str, context: str) -> list[str]:
    """One-off :meth:`RulesView.reference_closure`."""
    return RulesView(cfg, observatory).reference_closure(context)
