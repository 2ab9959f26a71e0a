"""Dataset files from what a user names: directories (recursive), globs, ``@listfile``, ``-`` (stdin).

Lazy: nothing is listed before it is needed, so millions of paths stream.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterable, Iterator

from ..errors import CrdsError

__all__ = ["DATASET_SUFFIXES", "discover"]

#: Files a directory walk picks up; paths named explicitly are always read.
DATASET_SUFFIXES = (".fits", ".fit", ".fts", ".asdf")


def _walk(directory: str) -> Iterator[str]:
    """Dataset files under ``directory``: each directory's own files in name order, then
    its subdirectories, depth first in name order.

    A directory's listing is held as plain names, sorted, not as ``DirEntry`` objects
    (a third of the memory: a flat archive directory of a million files holds ~0.1 GB
    of names while it is walked, not ~0.26 GB).
    """
    stack = [directory]
    while stack:
        current = stack.pop()
        files: list[str] = []
        subdirs: list[str] = []
        try:
            with os.scandir(current) as listing:
                for entry in listing:
                    if entry.is_dir(follow_symlinks=False):
                        subdirs.append(entry.name)
                    elif entry.name.lower().endswith(DATASET_SUFFIXES):
                        files.append(entry.name)
        except OSError:
            yield current  # reported as an unreadable dataset path by the reader
            continue
        prefix = os.path.join(current, "")
        files.sort()
        yield from map(prefix.__add__, files)
        subdirs.sort(reverse=True)
        stack.extend(prefix + name for name in subdirs)


def discover(specs: Iterable[str], stdin=None) -> Iterator[str]:
    """Dataset paths (text) from directories (recursive), globs, ``@listfile`` and ``-``.

    Lazy: nothing is listed before it is needed, so millions of paths stream.
    A path that names nothing is yielded as given, so that the reader reports it.
    Paths stay plain strings, as workers take them: a ``Path`` object per dataset
    would cost more than reading its header's first block.
    """
    for spec in specs:
        spec = os.fspath(spec)
        if spec == "-":
            for line in (stdin or sys.stdin):
                if line.strip():
                    yield from discover([line.strip()])
        elif spec.startswith("@"):
            try:
                with open(spec[1:], encoding="utf-8") as listing:
                    for line in listing:
                        if line.strip() and not line.lstrip().startswith("#"):
                            yield from discover([line.strip()])
            except OSError as exc:
                raise CrdsError(f"{spec[1:]}: cannot read list file ({exc.strerror})") from None
        elif os.path.isdir(spec):
            yield from _walk(spec)
        elif glob.has_magic(spec):
            for match in sorted(glob.iglob(spec, recursive=True)):
                yield from (_walk(match) if os.path.isdir(match) else [match])
        else:
            yield spec
