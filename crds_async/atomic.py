"""One way to write a file so that no reader ever sees half of it.

Everything crds_async writes (outputs, compiled contexts, indexes, cache
metadata) goes through :func:`atomic_output`: a hidden temp file in the
target's own directory (so the final rename is atomic), flushed and fsynced,
given the target's mode (or, for a new file, what the umask allows), then
``os.replace``\\ d over the target.  On any failure, including a cancellation,
the temp file is removed; one left by a writer killed outright (``kill -9``) is
removed by the next write of the same target on the same machine.

Targets are checked first: a symlink is written through, as a shell redirection
would (the link stays, its target gets the new content); a directory, device,
FIFO or socket is refused, because replacing it (``-o /dev/null``) is never
what the user meant.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import stat
from collections.abc import Iterator
from typing import IO

from .errors import ConfigError

__all__ = ["atomic_output", "atomic_write", "resolve_target", "current_umask", "PART_MARK"]

#: What every temp file's name carries (``.<name>.part-<random>``): cleanup and listings know it
PART_MARK = ".part-"


def current_umask() -> int:
    """The process's umask (read without changing it for longer than the call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def resolve_target(path: str | os.PathLike) -> str:
    """The file that writing ``path`` replaces: symlinks followed; a non-regular file refused.

    Raises
    ------
    ConfigError
        The target is a directory, device, FIFO or socket, or its directory does not
        exist (checked before any work is done, so a long batch does not end in it).
    """
    target = os.path.realpath(os.fspath(path))
    try:
        info = os.stat(target)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise ConfigError(f"{os.fspath(path)}: cannot write here ({exc.strerror})") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise ConfigError(f"{os.fspath(path)}: {kind}; name a file to write")
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise ConfigError(f"{os.fspath(path)}: directory {directory} does not exist")
    return target


#: this machine, as a temp file's name records its writer (a shared directory has several)
_OWNER = re.sub(r"[^A-Za-z0-9.]+", "_", socket.gethostname() or "host")[:40]


def _remove_orphans(directory: str, name: str) -> None:
    """Remove the temp files of ``name`` that a writer on this machine left when it was killed
    (``kill -9``: no ``finally`` ran).  A temp file names its host and process; one whose
    process is gone is an orphan.  Other machines' temp files are never touched."""
    prefix = f".{name}{PART_MARK}{_OWNER}-"
    try:
        names = [entry for entry in os.listdir(directory) if entry.startswith(prefix)]
    except OSError:
        return
    for entry in names:
        pid = entry[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, entry))
        except OSError:
            pass  # alive (another user's process): not ours to judge


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None,
                  newline: str | None = None, file_mode: int | None = None) -> Iterator[IO]:
    """``with atomic_output(path, "w", encoding="utf-8") as out: out.write(...)``.

    Parameters
    ----------
    path : path-like
        The target (symlinks written through; see :func:`resolve_target`).
    mode : str
        ``"wb"`` or ``"w"``.
    encoding, newline : str, optional
        For text mode.
    file_mode : int, optional
        Permission bits of the result; default: the existing target's, else
        ``0o666`` less the umask (what ``open()`` would have given a new file).
    """
    target = resolve_target(path)
    directory, name = os.path.split(target)
    if file_mode is None:
        try:
            file_mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            file_mode = 0o666 & ~current_umask()
    _remove_orphans(directory, name)
    temp = os.path.join(directory, f".{name}{PART_MARK}{_OWNER}-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, file_mode)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def atomic_write(path: str | os.PathLike, data: bytes | str, *, file_mode: int | None = None) -> None:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically (:func:`atomic_output`)."""
    if isinstance(data, str):
        with atomic_output(path, "w", encoding="utf-8", newline="", file_mode=file_mode) as out:
            out.write(data)
    else:
        with atomic_output(path, "wb", file_mode=file_mode) as out:
            out.write(data)
