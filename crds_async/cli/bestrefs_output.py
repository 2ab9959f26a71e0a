"""Result sinks for ``crds-batch bestrefs``: table, json, jsonl, csv; streamed, atomic files."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile

from ..pipeline import DatasetResult, answers_json, is_error_answer, plain_answer as _plain

__all__ = ["open_sink", "comparable", "changes_of", "is_affected"]


def comparable(answer: object) -> object:
    """An answer as the reference's bestrefs compares old and new ones (N/A forms folded)."""
    if answer is None:
        return None
    if isinstance(answer, tuple):
        return tuple(str(a).upper() for a in answer)
    text = str(answer)
    if text in ("NOT FOUND n/a", "NOT FOUND No match found.") or text.upper() in ("N/A", "UNDEFINED", "NONE", "", "*"):
        return "N/A"
    return text if text.startswith("NOT FOUND") else text.upper()


def changes_of(result: DatasetResult) -> dict[str, tuple[object, object]]:
    """{reftype: (old, new)} for every compared type whose answer differs between the contexts.

    As in the reference, a type whose new answer is an error is never an update.
    """
    if result.answers is None or result.old_answers is None:
        return {}
    out = {}
    for reftype in result.compared:
        old, new = result.old_answers.get(reftype, "UNDEFINED"), result.answers.get(reftype, "UNDEFINED")
        if is_error_answer(new):
            continue
        if comparable(old) != comparable(new):
            out[reftype] = (_plain(old), _plain(new))
    return out


def is_affected(result: DatasetResult, changes: dict) -> bool:
    """Affected, as the reference counts it: some update, and no failed type in the new answers."""
    return bool(changes) and not any(is_error_answer(a) for a in (result.answers or {}).values())


class _Sink:
    def __init__(self, stream, verbose: bool, affected: bool, owned_path: str | None, temp_path: str | None):
        self.stream = stream
        self.verbose = verbose
        self.affected = affected
        self._final = owned_path
        self._temp = temp_path
        self.start()

    def start(self) -> None: ...
    def finish(self) -> None: ...
    def emit(self, result: DatasetResult, changes: dict) -> None: ...

    def write(self, result: DatasetResult) -> dict:
        changes = changes_of(result) if self.affected else {}
        self.emit(result, changes)
        return changes

    def close(self) -> None:
        self.finish()
        self.stream.flush()
        if self._temp:
            os.fsync(self.stream.fileno())
            self.stream.close()
            os.replace(self._temp, self._final)  # complete output appears at once
            self._temp = None

    def abort(self) -> None:
        if self._temp:
            self.stream.close()
            os.unlink(self._temp)
            self._temp = None


class _Json(_Sink):
    def start(self) -> None:
        self.stream.write("{")
        self._first = True

    def emit(self, result, changes) -> None:
        if result.answers is None:
            return  # the error went to stderr; the map holds only datasets with answers
        if self.affected:
            if not changes:
                return
            text = json.dumps({t: {"old": o, "new": n} for t, (o, n) in changes.items()}, sort_keys=True)
        else:
            text = result.answers_json or answers_json(result.answers)  # rendered by the worker, usually
        self.stream.write(("\n " if self._first else ",\n ") + json.dumps(result.path) + ": " + text)
        self._first = False

    def finish(self) -> None:
        self.stream.write("\n}\n")


class _JsonLines(_Sink):
    def emit(self, result, changes) -> None:
        record: dict[str, object] = {"path": result.path, "instrument": result.instrument}
        if result.error:
            record["error"] = result.error
        else:
            record["bestrefs"] = {t: _plain(a) for t, a in (result.answers or {}).items()}
            if self.affected:
                record["changes"] = {t: {"old": o, "new": n} for t, (o, n) in changes.items()}
            if result.problems:
                record["problems"] = result.problems
        self.stream.write(json.dumps(record, sort_keys=True) + "\n")


class _Csv(_Sink):
    def start(self) -> None:
        self.writer = csv.writer(self.stream, lineterminator="\n")
        self.writer.writerow(["path", "instrument", "reftype", "old", "new"] if self.affected
                             else ["path", "instrument", "reftype", "answer"])

    def emit(self, result, changes) -> None:
        if result.error:
            self.writer.writerow([result.path, "", "", "ERROR: " + result.error] + ([""] if self.affected else []))
        elif self.affected:
            for reftype, (old, new) in changes.items():
                self.writer.writerow([result.path, result.instrument, reftype, old, new])
        else:
            for reftype, answer in sorted(result.answers.items()):
                self.writer.writerow([result.path, result.instrument, reftype, _plain(answer)])


class _Table(_Sink):
    def emit(self, result, changes) -> None:
        if result.error:
            return  # already printed on stderr
        if self.affected:
            for reftype, (old, new) in changes.items():
                self.stream.write(f"{result.path}  {reftype:<16} {old} -> {new}\n")
            return
        for reftype, answer in sorted(result.answers.items()):
            if answer == "NOT FOUND n/a" and not self.verbose:
                continue
            self.stream.write(f"{result.path}  {reftype:<16} {_plain(answer)}\n")


class _Nothing(_Sink):
    def emit(self, result, changes) -> None:
        pass


_SINKS = {"json": _Json, "jsonl": _JsonLines, "csv": _Csv, "table": _Table, "none": _Nothing}


def open_sink(fmt: str, output: str | None, *, verbose: bool = False, affected: bool = False) -> _Sink:
    """A sink writing ``fmt`` to ``output`` (temp file + rename) or to stdout."""
    if output is None:
        return _SINKS[fmt](sys.stdout, verbose, affected, None, None)
    directory = os.path.dirname(os.path.abspath(output))
    fd, temp = tempfile.mkstemp(prefix=os.path.basename(output) + ".part-", dir=directory)
    stream = io.open(fd, "w", encoding="utf-8", newline="")
    return _SINKS[fmt](stream, verbose, affected, output, temp)
