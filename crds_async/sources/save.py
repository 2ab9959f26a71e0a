"""Write dataset parameters as the reference's ``crds bestrefs --save-pickle FILE`` writes them.

- ``FILE.json``: JSON lines, one ``{"<id>": {parameters}}`` a line, sorted by
  id, each line ``json.dumps`` with its defaults (ASCII, ``", "`` and ``": "``
  separators), ``"\\n"`` after each.
- ``FILE.pkl``: ``pickle.dump`` of one ``{id: parameters}`` dict in the given
  order, with the interpreter's default protocol.

A dataset whose parameters are an error is stored as its message, the
reference's way of recording a dataset it could not dump; the readers of
:mod:`.dumps` give it back as that dataset's error.  The file is written to a
temp file beside the target, fsynced and renamed over it: no half-written
dump is ever left under the target's name.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import stat
import tempfile
from collections.abc import Iterable, Mapping

from .dumps import DumpError

__all__ = ["save_pickle"]


def _plain(dataset_id: str, params: object) -> object:
    """Parameters as a plain dict (a dict subclass would not be readable back), an error as its text."""
    if isinstance(params, BaseException):
        return str(params)
    if isinstance(params, Mapping) and type(params) is not dict:
        return dict(params)
    return params


def _new_file_mode(path: str) -> int:
    """The mode ``open(path, "w")`` would leave: the existing file's, else 0o666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        pass
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no /proc: the classic query (sets and restores it)
    os.umask(mask)
    return 0o666 & ~mask


def save_pickle(path, pairs: Mapping | Iterable[tuple[str, object]], *, sort: bool = True) -> int:
    """Write ``(dataset_id, parameters)`` pairs to ``path`` in the format its suffix names.

    Parameters
    ----------
    path : str or os.PathLike
        Ending ``.json`` (JSON lines) or ``.pkl`` (pickle), as the reference decides.
    pairs : mapping or iterable of (str, dict)
        The datasets; an id given twice keeps its last parameters.  Values
        that are exceptions are written as their messages.
    sort : bool
        JSON lines come out sorted by id, as the reference writes them.  With
        False they are written in the given order as they come (nothing is
        held in memory; an id given twice is written twice).

    Returns
    -------
    int
        The number of datasets written.

    Raises
    ------
    DumpError
        The name has neither suffix (the reference silently writes nothing),
        a parameter cannot be stored, or the file cannot be written.
    """
    name = os.fspath(path)
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    if name.endswith(".json"):
        if sort:
            items = sorted(dict(items).items())

        def write(out) -> int:
            count = 0
            for dataset_id, params in items:
                try:
                    line = json.dumps({dataset_id: _plain(dataset_id, params)})
                except (TypeError, ValueError) as exc:
                    raise DumpError(f"{name}: dataset {dataset_id!r}: cannot be stored as JSON ({exc})") from None
                out.write(line.encode("utf-8") + b"\n")
                count += 1
            return count

    elif name.endswith(".pkl"):

        def write(out) -> int:
            table = {dataset_id: _plain(dataset_id, params) for dataset_id, params in items}
            try:
                pickle.dump(table, out)
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                raise DumpError(f"{name}: cannot be stored as a pickle ({exc})") from None
            return len(table)

    else:
        raise DumpError(f"{name}: a parameter dump must be named .json or .pkl")
    return _write_atomically(name, write)


def _write_atomically(name: str, write) -> int:
    directory = os.path.dirname(os.path.abspath(name))
    mode = _new_file_mode(name)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(name)}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise DumpError(f"{name}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            count = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, name)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise DumpError(f"{name}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a crash
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return count
