"""Result sinks for ``crds-batch bestrefs``: table, json, jsonl, csv; streamed, atomic files."""

from __future__ import annotations

import contextlib
import csv
import json
import sys

from ..atomic import atomic_output
from ..engine.campaign import changes_of
from ..engine.results import DatasetResult, answers_json, plain_answer as _plain
from ..rules.model import NOT_FOUND_NA
from ..sinks import printable

__all__ = ["open_sink", "add_arguments", "check_arguments", "FORMATS"]

#: output formats; each sink writes one of them
FORMATS = ("table", "json", "jsonl", "csv")


def add_arguments(parser) -> None:
    """The output switches of ``bestrefs``."""
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table (for people), json ({path: {reftype: answer}}), jsonl (one record "
                             "per dataset, with errors) or csv (one row per answer)")
    # not -o: the reference's bestrefs takes -o for --old-context
    parser.add_argument("--output", metavar="FILE", help="write results here (atomically) instead of stdout")


def check_arguments(args) -> str | None:
    """A usage problem of the output switches (one line), or None; checked before the batch
    runs, so a long batch does not end in an unwritable output."""
    if args.output is None:
        return None
    from ..atomic import resolve_target
    from ..errors import ConfigError

    try:
        resolve_target(args.output)
    except ConfigError as exc:
        return f"--output {exc}"
    return None


class _Sink:
    def __init__(self, stream, verbose: bool, affected: bool, owner: contextlib.ExitStack | None):
        self.stream = stream
        self.verbose = verbose
        self.affected = affected
        self._owner = owner  # holds the atomic output file, when writing one
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
        if self._owner is not None:
            owner, self._owner = self._owner, None
            owner.close()  # complete output appears at once

    def abort(self) -> None:
        if self._owner is not None:
            owner, self._owner = self._owner, None
            owner.__exit__(RuntimeError, RuntimeError("aborted"), None)  # the temp file is removed


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
        path = printable(result.path)  # a name that is not UTF-8: backslash escapes (issue #17)
        if result.error:
            self.writer.writerow([path, "", "", "ERROR: " + printable(result.error)]
                                 + ([""] if self.affected else []))
        elif self.affected:
            for reftype, (old, new) in changes.items():
                self.writer.writerow([path, result.instrument, reftype, old, new])
        else:
            for reftype, answer in sorted(result.answers.items()):
                self.writer.writerow([path, result.instrument, reftype, _plain(answer)])


class _Table(_Sink):
    def emit(self, result, changes) -> None:
        if result.error:
            return  # already printed on stderr
        path = printable(result.path)  # a name that is not UTF-8: backslash escapes (issue #17)
        if self.affected:
            for reftype, (old, new) in changes.items():
                self.stream.write(f"{path}  {reftype:<16} {old} -> {new}\n")
            return
        for reftype, answer in sorted(result.answers.items()):
            if answer == NOT_FOUND_NA and not self.verbose:
                continue
            self.stream.write(f"{path}  {reftype:<16} {_plain(answer)}\n")


class _Nothing(_Sink):
    def emit(self, result, changes) -> None:
        pass


_SINKS = {"json": _Json, "jsonl": _JsonLines, "csv": _Csv, "table": _Table, "none": _Nothing}


def open_sink(fmt: str, output: str | None, *, verbose: bool = False, affected: bool = False) -> _Sink:
    """A sink writing ``fmt`` to ``output`` (temp file + rename) or to stdout."""
    if output is None:
        return _SINKS[fmt](sys.stdout, verbose, affected, None)
    owner = contextlib.ExitStack()
    stream = owner.enter_context(atomic_output(output, "w", encoding="utf-8", newline=""))
    return _SINKS[fmt](stream, verbose, affected, owner)
