"""ASDF (Roman) dataset headers: the tree flattened as the reference's reader does.

The work spent on one file is bounded before asdf sees it: the YAML tree may be at
most :data:`MAX_TREE_BYTES`, and one pass over its YAML events (libyaml, no objects
built) counts its nodes with every alias expanded, so a few hundred bytes of nested
aliases ("billion laughs") or a 300,000-key tree is that dataset's
:class:`HeaderError`, found in milliseconds, instead of minutes and gigabytes.
asdf's warnings (unknown tags, ...) are silenced: a dataset's problems are reported
as errors, not as noise on stderr.
"""

from __future__ import annotations

import re
import warnings

from ..errors import HeaderError
from ..instruments.asdf_tree import MAX_TREE_DEPTH, MAX_TREE_NODES, TreeTooLarge
from .rawfile import open_raw

__all__ = ["read_asdf_header", "ASDF_MAGIC", "MAX_TREE_BYTES"]

ASDF_MAGIC = b"#ASDF"
#: Largest YAML tree read from an ASDF dataset (real ones have tens of KB).
MAX_TREE_BYTES = 8 * 1024 * 1024
#: Where the YAML tree ends: the document end marker line, or the first binary block.
_TREE_END = re.compile(rb"\n\.\.\.[ \t]*(?:\r?\n|$)|\xd3BLK")


def _tree_bytes(path) -> bytes:
    """The YAML part of an ASDF file, read in growing pieces up to :data:`MAX_TREE_BYTES`."""
    with open_raw(path) as raw:
        data = raw.prefix
        while True:
            found = _TREE_END.search(data)
            end = found.start() if found is not None else len(data)
            if end > MAX_TREE_BYTES:
                raise HeaderError(f"{raw.path}: ASDF tree larger than {MAX_TREE_BYTES // (1024 * 1024)} MB")
            if found is not None or len(data) >= raw.size:
                return data[:end]  # without an end marker, the whole file is the tree
            more = raw.read_at(len(data), min(max(len(data), 64 * 1024), MAX_TREE_BYTES + 1 - len(data)))
            if not more:
                return data  # shrank while read
            data += more


def _check_tree_size(text: bytes, name: str) -> None:
    """Refuse a YAML tree of more than :data:`MAX_TREE_NODES` nodes once aliases are expanded.

    Counts scalars, collections and, for an alias, the expanded size of what it names,
    in document order, stopping as soon as the count is exceeded.
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    expanded = 0
    sizes: dict[str, int] = {}  # anchor -> its node's expanded size
    open_nodes: list[tuple[int, str | None]] = []  # (count at start, anchor) of unfinished collections
    try:
        for event in yaml.parse(text, Loader=loader):
            kind = type(event)
            if kind is yaml.ScalarEvent:
                expanded += 1
                if event.anchor is not None:
                    sizes[event.anchor] = 1
            elif kind is yaml.AliasEvent:
                size = sizes.get(event.anchor)
                if size is None:
                    raise HeaderError(f"{name}: ASDF tree has an alias *{event.anchor[:40]} to itself or to nothing")
                expanded += size
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                open_nodes.append((expanded, event.anchor))
                expanded += 1
                if len(open_nodes) > MAX_TREE_DEPTH:
                    raise HeaderError(f"{name}: ASDF tree nested deeper than {MAX_TREE_DEPTH} levels")
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                start, anchor = open_nodes.pop()
                if anchor is not None:
                    sizes[anchor] = expanded - start
            else:
                continue
            if expanded > MAX_TREE_NODES:
                raise HeaderError(f"{name}: ASDF tree has more than {MAX_TREE_NODES:,} nodes "
                                  "(aliases expanded)")
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())[:120]
        raise HeaderError(f"{name}: not a readable ASDF file (YAML: {problem})") from None


def read_asdf_header(path) -> dict[str, str]:
    """Upper-case dotted keys of the ASDF tree -> text (arrays are never loaded).

    Raises
    ------
    HeaderError
        ``"<path>: <problem>"``: unreadable, not ASDF, a tree too large (bytes, nodes with
        aliases expanded, nesting), or anything asdf or the flattening raises.
    """
    name = str(path)
    _check_tree_size(_tree_bytes(path), name)
    import asdf

    from ..instruments.asdf_tree import asdf_header

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # AsdfConversionWarning for unknown tags, time scale warnings
            with asdf.open(name, lazy_load=True, memmap=False) as handle:
                tree = dict(handle.tree)
                history = tree.get("history")
                entries = history.get("entries") if isinstance(history, dict) else history
                return asdf_header(tree, entries)
    except HeaderError:
        raise
    except TreeTooLarge as exc:
        raise HeaderError(f"{name}: ASDF tree too large ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - asdf raises many kinds; one line names the file
        problem = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise HeaderError(f"{name}: not a readable ASDF file ({problem})") from None
