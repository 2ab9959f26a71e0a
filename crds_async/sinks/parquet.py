"""``--format parquet``: one typed row per dataset x reference type, streamed in row groups.

Columns (all nullable strings unless said):

- ``dataset``: the path or dataset id (bytes of a name that are not UTF-8 as ``\\xNN``);
- ``instrument``;
- ``reftype``: null on the one row of a dataset that could not be read or evaluated;
- ``old``: the old context's answer (null without ``--old-context``; for a type whose rules
  are the same in both contexts it is the new answer, since the same rules give the same answer);
- ``new``: the answer (a tie of several files is the JSON array of their names);
- ``changed`` (bool): the answer changes, as ``crds bestrefs`` counts an update (null without
  ``--old-context``);
- ``status``: ``ok``, ``error`` (this type's answer is an error or a reference designated
  invalid) or ``failed`` (the dataset itself);
- ``error``: the error text of an ``error`` or ``failed`` row.

Rows are buffered and written a row group at a time, so memory stays flat however many
datasets stream through; the file is written through :func:`crds_async.atomic.atomic_output`
and appears only when complete.
"""

from __future__ import annotations

import contextlib
import json
from typing import IO

from ..atomic import atomic_output
from ..engine.campaign import changes_of
from ..engine.results import DatasetResult, is_error_answer, plain_answer
from . import printable

__all__ = ["ParquetSink", "SCHEMA", "ROW_GROUP_ROWS"]

#: rows per row group (about 10 MB of buffered Python objects at most)
ROW_GROUP_ROWS = 65536

_COLUMNS = ("dataset", "instrument", "reftype", "old", "new", "changed", "status", "error")


def _schema():
    import pyarrow as pa

    return pa.schema([(name, pa.bool_() if name == "changed" else pa.string()) for name in _COLUMNS])


def __getattr__(name: str):
    if name == "SCHEMA":  # pyarrow is imported only when Parquet is asked for
        return _schema()
    raise AttributeError(name)


def answer_text(answer: object) -> str | None:
    """An answer as the ``old``/``new`` columns hold it: text; a tie the JSON array of its names."""
    if answer is None:
        return None
    plain = plain_answer(answer)
    return json.dumps(plain) if isinstance(plain, list) else printable(str(plain))


def type_problems(result: DatasetResult) -> dict[str, str]:
    """``{reftype: problem}`` of a dataset's answers: the lines of ``result.problems``
    (``"<path>: <type>, <type>: <message>"``) split by type; an error answer not named there
    is its own problem."""
    found: dict[str, str] = {}
    prefix = result.path + ": "
    for line in result.problems:
        rest = line[len(prefix):] if line.startswith(prefix) else line
        types, sep, message = rest.partition(": ")
        if not sep:
            continue
        for reftype in types.split(", "):
            if result.answers is not None and reftype in result.answers:
                found[reftype] = message
    for reftype, answer in (result.answers or {}).items():
        if reftype not in found and is_error_answer(answer):
            found[reftype] = answer
    return found


class ParquetSink:
    """Writes results as Parquet rows to a binary stream (the sink protocol: ``write``,
    ``close``, ``abort``).

    Parameters
    ----------
    stream : binary file
        Where the Parquet bytes go (written sequentially: a pipe will do).
    affected : bool
        The batch compares with an old context (``old`` and ``changed`` filled).
    owner : ExitStack, optional
        Holds the atomic output that ``stream`` belongs to: closed by ``close``, aborted by
        ``abort``.
    row_group_rows : int
        Rows per row group.
    """

    def __init__(self, stream: IO[bytes], *, affected: bool = False, owner: contextlib.ExitStack | None = None,
                 row_group_rows: int = ROW_GROUP_ROWS) -> None:
        import pyarrow.parquet as pq

        self.affected = affected
        self.row_group_rows = max(1, row_group_rows)
        self._owner = owner
        self._schema = _schema()
        self._writer = pq.ParquetWriter(stream, self._schema, compression="zstd")
        self._rows: dict[str, list] = {name: [] for name in _COLUMNS}
        self.rows_written = 0

    @classmethod
    def to_path(cls, path, **kwargs) -> ParquetSink:
        """A sink whose file appears at ``path`` only when it is complete."""
        owner = contextlib.ExitStack()
        stream = owner.enter_context(atomic_output(path, "wb"))
        try:
            return cls(stream, owner=owner, **kwargs)
        except BaseException:
            owner.__exit__(RuntimeError, RuntimeError("aborted"), None)
            raise

    def _add(self, dataset, instrument, reftype, old, new, changed, status, error) -> None:
        rows = self._rows
        rows["dataset"].append(dataset)
        rows["instrument"].append(instrument)
        rows["reftype"].append(reftype)
        rows["old"].append(old)
        rows["new"].append(new)
        rows["changed"].append(changed)
        rows["status"].append(status)
        rows["error"].append(error)

    def write(self, result: DatasetResult) -> dict:
        """Add a dataset's rows; returns its changes (``{reftype: (old, new)}``) as the other sinks do."""
        dataset = printable(result.path)
        if result.answers is None:
            self._add(dataset, result.instrument, None, None, None, None, "failed",
                      printable(result.error or "no answers"))
            changes: dict = {}
        else:
            changes = changes_of(result) if self.affected else {}
            problems = type_problems(result) if result.failed else {}
            compared = set(result.compared)
            old_answers = result.old_answers or {}
            for reftype, answer in sorted(result.answers.items()):
                new = answer_text(answer)
                old = changed = None
                if self.affected:
                    old = answer_text(old_answers.get(reftype, "UNDEFINED")) if reftype in compared else new
                    changed = reftype in changes
                problem = problems.get(reftype)
                self._add(dataset, result.instrument, reftype, old, new, changed,
                          "error" if problem else "ok", printable(problem) if problem else None)
        if len(self._rows["dataset"]) >= self.row_group_rows:
            self._flush()
        return changes

    def _flush(self) -> None:
        import pyarrow as pa

        if not self._rows["dataset"]:
            return
        table = pa.Table.from_pydict(self._rows, schema=self._schema)
        self._writer.write_table(table, row_group_size=len(table))
        self.rows_written += len(table)
        self._rows = {name: [] for name in _COLUMNS}

    def close(self) -> None:
        self._flush()
        self._writer.close()  # the footer
        if self._owner is not None:
            owner, self._owner = self._owner, None
            owner.close()  # the complete file appears at once

    def abort(self) -> None:
        self._rows = {name: [] for name in _COLUMNS}
        with contextlib.suppress(Exception):
            self._writer.close()
        if self._owner is not None:
            owner, self._owner = self._owner, None
            owner.__exit__(RuntimeError, RuntimeError("aborted"), None)  # the temp file is removed
