"""Dataset files from what a user names: directories (recursive), globs, ``@listfile``, ``-`` (stdin).

Lazy: nothing is listed before it is needed, so millions of paths stream.

Hostile names (issue #17): list files and stdin are read as bytes and decoded as the
file system decodes names (``surrogateescape``), so a name that is not UTF-8 still
names its file; a path that exists is taken literally even when it holds glob
characters (``x[1].fits``); ``**`` never follows a symbolic link to a directory and
visits each directory once, so link loops cost nothing.
"""

from __future__ import annotations

import fnmatch
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


def _listdir(directory: str) -> list[str]:
    try:
        return os.listdir(directory or os.curdir)
    except OSError:
        return []


def _is_real_dir(path: str) -> bool:
    """A directory, not a symbolic link to one."""
    return os.path.isdir(path) and not os.path.islink(path)


def _below(directory: str) -> Iterator[str]:
    """``directory`` and every directory under it (``**``), links to directories not followed."""
    stack = [directory]
    while stack:
        current = stack.pop()
        yield current
        names = sorted((n for n in _listdir(current) if not n.startswith(".")), reverse=True)
        stack.extend(p for p in (os.path.join(current, n) for n in names) if _is_real_dir(p))


def _recursive_glob(pattern: str) -> Iterator[str]:
    """Paths matching ``pattern`` with ``**``: as ``glob(recursive=True)`` but never through
    a symbolic link to a directory, and each path once."""
    drive, rest = os.path.splitdrive(pattern)
    anchor = drive + os.sep if rest.startswith(os.sep) else drive
    parts = [p for p in rest.split(os.sep) if p]
    bases = [anchor]
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        found: list[str] = []
        for base in bases:
            if part == "**":  # last: the directories themselves, which the caller walks
                found.extend([base or os.curdir] if last else _below(base))
            elif glob.has_magic(part):
                hidden = part.startswith(".")
                found.extend(os.path.join(base, n) for n in sorted(fnmatch.filter(_listdir(base), part))
                             if hidden or not n.startswith("."))
            else:
                found.append(os.path.join(base, part))
        if not last:
            found = [p for p in found if os.path.isdir(p)]
        bases = list(dict.fromkeys(found))
    yield from (p for p in bases if p != anchor and os.path.lexists(p))


def _names(stream) -> Iterator[str]:
    """Lines of ``stream`` as path names: bytes decoded as the file system decodes names."""
    raw = getattr(stream, "buffer", None)
    for line in (raw if raw is not None else stream):
        if isinstance(line, bytes):
            line = os.fsdecode(line.rstrip(b"\r\n"))
        yield line


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
            for line in _names(stdin or sys.stdin):
                if line.strip():
                    yield from discover([line.strip()])
        elif spec.startswith("@"):
            try:
                with open(spec[1:], "rb") as listing:
                    for line in _names(listing):
                        if line.strip() and not line.lstrip().startswith("#"):
                            yield from discover([line.strip()])
            except OSError as exc:
                raise CrdsError(f"{spec[1:]}: cannot read list file ({exc.strerror})") from None
        elif os.path.isdir(spec):
            yield from _walk(spec)
        elif glob.has_magic(spec) and not os.path.lexists(spec):
            matches = _recursive_glob(spec) if "**" in spec else glob.iglob(spec)
            for match in sorted(matches):
                yield from (_walk(match) if os.path.isdir(match) else [match])
        else:
            yield spec
