"""Open a dataset for header reading: one open, one read of its first bytes, clear errors."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

from ..errors import HeaderError

__all__ = ["RawFile", "open_raw", "PREFIX_BYTES", "os_problem"]

#: Bytes read at open.  Covers the primary header (and usually the first extension's) of
#: typical raw/uncal datasets in one system call; headers beyond it are read block by block.
PREFIX_BYTES = 64 * 1024


@dataclass(slots=True)
class RawFile:
    """An open regular file, its size and its first bytes; ``with`` closes it."""

    path: str
    fd: int
    size: int
    prefix: bytes

    def __enter__(self) -> "RawFile":
        return self

    def __exit__(self, *exc_info) -> None:
        os.close(self.fd)

    def read_at(self, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset+length)``, shorter only at end of file."""
        end = offset + length
        if end <= len(self.prefix):
            return self.prefix[offset:end]
        chunks = []
        while length > 0:
            try:
                chunk = os.pread(self.fd, length, offset)
            except OSError as exc:
                raise HeaderError(f"{self.path}: {os_problem(exc)}") from exc
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(chunks)


def os_problem(exc: OSError) -> str:
    """A short, lower-case description of an OS error (no path, one line)."""
    known = {
        errno.ENOENT: "no such file",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EISDIR: "is a directory",
        errno.ENOTDIR: "a parent of the path is not a directory",
        errno.ELOOP: "too many levels of symbolic links",
        errno.ENAMETOOLONG: "file name too long",
        errno.EIO: "input/output error",
    }
    if exc.errno in known:
        return known[exc.errno]
    return (exc.strerror or str(exc)).splitlines()[0].lower()


def open_raw(path: str | os.PathLike[str], prefix_bytes: int = PREFIX_BYTES) -> RawFile:
    """Open ``path`` read-only and read up to ``prefix_bytes`` from its start.

    Non-blocking open so that a FIFO or device can never hang the reader; only
    regular files are accepted.  Use as ``with open_raw(path) as raw:`` (the file
    is closed at the end; a plain class rather than a generator-based context
    manager, which cost more per dataset than the system calls).

    Raises
    ------
    HeaderError
        ``"<path>: <problem>"`` when the path cannot be opened or read, or is
        not a regular file.
    """
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise HeaderError(f"{name}: {os_problem(exc)}") from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise HeaderError(f"{name}: is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise HeaderError(f"{name}: not a regular file")
        try:
            prefix = os.pread(fd, min(prefix_bytes, info.st_size), 0) if info.st_size else b""
        except OSError as exc:
            raise HeaderError(f"{name}: {os_problem(exc)}") from exc
    except BaseException:
        os.close(fd)
        raise
    size = info.st_size
    if len(prefix) < min(prefix_bytes, size):  # shrank since fstat
        size = len(prefix)
    return RawFile(name, fd, size, prefix)
