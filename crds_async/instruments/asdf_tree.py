"""ASDF (and JSON/YAML) trees flattened into header dicts the way the reference's reader does.

Roman datasets are ASDF: the reference turns the tree into upper-case dotted keys
(``roman.meta.instrument.name`` -> ``ROMAN.META.INSTRUMENT.NAME``) with text values, then
adds a ``HISTORY`` summary. These pure functions take the already-loaded tree, so the
file reading stays in ``crds_async.headers``.

Flattening is bounded: a tree that shares a subtree many times (YAML aliases, the
"billion laughs") or refers to itself would otherwise be walked once per path to each
copy.  Every node visited, shared or not, counts against ``max_nodes``, and nesting
deeper than :data:`MAX_TREE_DEPTH` is refused (:class:`TreeTooLarge`).
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Iterable, Mapping

from crds_async.rules.timestamps import format_date

__all__ = ["flatten_tree", "history_text", "asdf_header", "TreeTooLarge", "MAX_TREE_NODES", "MAX_TREE_DEPTH"]

#: Nodes (mapping entries and sequence items, each visit of a shared one counted) that
#: flattening one tree may visit.  Real dataset trees have a few thousand.
MAX_TREE_NODES = 100_000
#: Nesting levels (mappings and sequences) that flattening follows.
MAX_TREE_DEPTH = 100


class TreeTooLarge(ValueError):
    """Flattening a tree would visit more than ``max_nodes`` nodes or nest too deeply."""


def _is_astropy_time(value: object) -> bool:
    if "astropy.time" not in sys.modules:   # never import astropy just to find out
        return False
    from astropy.time import Time

    return isinstance(value, Time)


class _Budget:
    """Nodes a flattening may still visit."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int):
        self.left = self.limit = limit

    def spend(self, count: int, depth: int) -> None:
        self.left -= count
        if self.left < 0:
            raise TreeTooLarge(f"more than {self.limit:,} nodes (shared subtrees counted at each use)")
        if depth > MAX_TREE_DEPTH:
            raise TreeTooLarge(f"nested deeper than {MAX_TREE_DEPTH} levels")


def _simple_value(value: object, budget: _Budget, depth: int) -> object:
    """Text for scalars and times, a tuple for sequences, a marker for anything else."""
    if isinstance(value, (str, int, float, complex)):
        return str(value)
    if isinstance(value, (list, tuple)):
        budget.spend(len(value), depth)
        return tuple(_simple_value(item, budget, depth + 1) for item in value)
    if isinstance(value, datetime.datetime):
        return format_date(value.strftime("%Y-%m-%d %H:%M:%S.%f")).replace(" ", "T")
    if _is_astropy_time(value):
        return format_date(value.utc.strftime("%Y-%m-%d %H:%M:%S")).replace(" ", "T")
    # Arrays, tagged objects, ...: large or opaque, never matched on. (Spelling as the reference.)
    return "SUPRESSED_NONSTD_TYPE: " + repr(type(value).__name__)


def _flatten_into(tree: Mapping, prefix: str, out: dict[str, object], budget: _Budget, depth: int) -> None:
    budget.spend(len(tree), depth)
    for key, value in tree.items():
        if not isinstance(key, str):
            continue
        name = prefix + key.upper()
        if isinstance(value, Mapping):
            _flatten_into(value, name + ".", out, budget, depth + 1)
        else:
            out[name] = _simple_value(value, budget, depth + 1)


def flatten_tree(tree: Mapping, max_nodes: int = MAX_TREE_NODES) -> dict[str, str]:
    """Upper-case dotted keys -> value text, as the reference's ASDF/JSON/YAML readers.

    Non-string keys are skipped; sequences become the text of a tuple of simple values;
    ``datetime`` and astropy ``Time`` become ``YYYY-MM-DDTHH:MM:SS[.ffffff]``; other
    objects become ``SUPRESSED_NONSTD_TYPE: '<class name>'``. A later path that spells the
    same key wins.

    Parameters
    ----------
    tree : mapping
    max_nodes : int
        Most mapping entries and sequence items visited (a shared subtree counts at
        each place it is used).

    Raises
    ------
    TreeTooLarge
        More than ``max_nodes`` nodes, or nesting deeper than :data:`MAX_TREE_DEPTH`.
    ValueError
        A time the reference's date parser rejects (e.g. a year before 1000).
    """
    flat: dict[str, object] = {}
    _flatten_into(tree, "", flat, _Budget(max_nodes), 0)
    return {key: str(value) for key, value in flat.items()}


def history_text(entries: Iterable[Mapping] | None) -> str:
    """The reference's HISTORY value: ``'<time> :: <description>'`` lines, else ``'UNDEFINED'``.

    Parameters
    ----------
    entries : iterable of mappings or None
        The file's history entries (``time``, ``description``); None when the tree has no
        ``history``. Any unreadable entry makes the whole value ``'UNDEFINED'``.
    """
    if entries is None:
        return "UNDEFINED"
    lines = []
    try:
        for entry in entries:
            when = entry["time"]
            stamp = format_date(when) if isinstance(when, str) else when.isoformat(" ")
            lines.append(stamp.split(".")[0] + " :: " + entry["description"])
    except Exception:  # noqa: BLE001 - the reference logs and falls back to UNDEFINED
        return "UNDEFINED"
    return "\n".join(lines) if lines else "UNDEFINED"


def asdf_header(tree: Mapping, history_entries: Iterable[Mapping] | None,
                max_nodes: int = MAX_TREE_NODES) -> dict[str, str]:
    """Raw header of an ASDF file: :func:`flatten_tree` plus ``HISTORY`` (:func:`history_text`)."""
    header = flatten_tree(tree, max_nodes)
    header["HISTORY"] = history_text(history_entries)
    return header
