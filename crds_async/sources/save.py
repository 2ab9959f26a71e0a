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
from collections.abc import Iterable, Mapping

from ..atomic import atomic_output
from ..errors import ConfigError
from .dumps import DumpError

__all__ = ["save_pickle", "DumpWriter"]


def _plain(dataset_id: str, params: object) -> object:
    """Parameters as a plain dict (a dict subclass would not be readable back), an error as its text."""
    if isinstance(params, BaseException):
        return str(params)
    if isinstance(params, Mapping) and type(params) is not dict:
        return dict(params)
    return params


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
    try:
        with atomic_output(name, "wb") as out:
            return write(out)
    except OSError as exc:
        raise DumpError(f"{name}: cannot write: {exc.strerror or exc}") from None
    except ConfigError as exc:
        raise DumpError(str(exc)) from None


class DumpWriter:
    """``--save-pickle`` fed one dataset at a time while a batch streams them.

    JSON lines are written as they come (give them in sorted id order, as the reference
    writes them; nothing is held in memory); a ``.pkl`` dump is one pickle, so its datasets
    are kept until :meth:`close`.  Nothing appears under the target's name before
    :meth:`close`; :meth:`abort` leaves the target as it was.

    Raises
    ------
    DumpError
        The name has neither suffix, a dataset cannot be stored, or the file cannot be written.
    """

    def __init__(self, path) -> None:
        self.name = os.fspath(path)
        if not self.name.endswith((".json", ".pkl")):
            raise DumpError(f"{self.name}: a parameter dump must be named .json or .pkl")
        self.count = 0
        self._table: dict | None = {} if self.name.endswith(".pkl") else None
        self._stack = contextlib.ExitStack()
        self._out = None   # opened at the first dataset (or at close): an early failure leaves no temp file
        self._closed = False

    def _opened(self):
        if self._out is None:
            try:
                self._out = self._stack.enter_context(atomic_output(self.name, "wb"))
            except OSError as exc:
                raise DumpError(f"{self.name}: cannot write: {exc.strerror or exc}") from None
            except ConfigError as exc:
                raise DumpError(str(exc)) from None
        return self._out

    def add(self, dataset_id: str, params: object) -> None:
        """One dataset (an exception is stored as its message)."""
        plain = _plain(dataset_id, params)
        if self._table is not None:
            self._table[dataset_id] = plain
            self.count = len(self._table)
            return
        try:
            line = json.dumps({dataset_id: plain})
        except (TypeError, ValueError) as exc:
            self.abort()
            raise DumpError(f"{self.name}: dataset {dataset_id!r}: cannot be stored as JSON ({exc})") from None
        self._opened().write(line.encode("utf-8") + b"\n")
        self.count += 1

    def close(self) -> int:
        """Write what is left and put the file in place; the number of datasets written."""
        if self._closed:
            return self.count
        self._closed = True
        try:
            out = self._opened()
            if self._table is not None:
                pickle.dump(self._table, out)
            self._stack.close()
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            self._stack.__exit__(type(exc), exc, None)
            raise DumpError(f"{self.name}: cannot be stored as a pickle ({exc})") from None
        except OSError as exc:
            raise DumpError(f"{self.name}: cannot write: {exc.strerror or exc}") from None
        return self.count

    def abort(self) -> None:
        """Drop what was written (the target keeps its old content, if any)."""
        if self._closed:
            return
        self._closed = True
        error = RuntimeError("aborted")
        with contextlib.suppress(RuntimeError):
            self._stack.__exit__(RuntimeError, error, None)
