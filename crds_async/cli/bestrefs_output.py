"""Result sinks for ``crds-batch bestrefs``: table, json, jsonl, csv, parquet; streamed, atomic files;
and the campaign report (``--report DIR``) as a second sink beside any of them."""

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

__all__ = ["open_sink", "open_sinks", "add_arguments", "check_arguments", "FORMATS"]

#: output formats; each sink writes one of them
FORMATS = ("table", "json", "jsonl", "csv", "parquet")

#: ``--output -``: standard output, for any format
STDOUT = "-"


def add_arguments(parser) -> None:
    """The output switches of ``bestrefs``."""
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table (for people), json ({path: {reftype: answer}}), jsonl (one record "
                             "per dataset, with errors), csv (one row per answer) or parquet (one typed "
                             "row per dataset x type; needs --output)")
    # not -o: the reference's bestrefs takes -o for --old-context
    parser.add_argument("--output", metavar="FILE",
                        help="write results here (atomically) instead of stdout; - is stdout (parquet: "
                             "only when it is not a terminal)")
    parser.add_argument("--report", metavar="DIR",
                        help="also write a campaign report into DIR: index.html and PNG plots (affected "
                             "datasets per instrument and type, changes over observation date, error "
                             "classes, the context difference)")


def check_arguments(args) -> str | None:
    """A usage problem of the output switches (one line), or None; checked before the batch
    runs, so a long batch does not end in an unwritable output."""
    from ..atomic import resolve_target
    from ..errors import ConfigError

    if args.format == "parquet":
        if args.output is None:
            return "--format parquet needs --output FILE (or --output - into a pipe)"
        if args.output == STDOUT and sys.stdout.isatty():
            return "--format parquet is binary: not written to a terminal (name a file with --output)"
    if args.output is not None and args.output != STDOUT:
        try:
            resolve_target(args.output)
        except ConfigError as exc:
            return f"--output {exc}"
    report = getattr(args, "report", None)
    if report is not None:
        from ..sinks.report import check_report_dir

        problem = check_report_dir(report)
        if problem:
            return f"--report {problem}"
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


def open_sink(fmt: str, output: str | None, *, verbose: bool = False, affected: bool = False):
    """A sink writing ``fmt`` to ``output`` (temp file + rename) or to stdout (None or ``-``)."""
    if fmt == "parquet":
        from ..sinks.parquet import ParquetSink

        if output is None or output == STDOUT:
            return ParquetSink(sys.stdout.buffer, affected=affected)
        return ParquetSink.to_path(output, affected=affected)
    if output is None or output == STDOUT:
        return _SINKS[fmt](sys.stdout, verbose, affected, None)
    owner = contextlib.ExitStack()
    stream = owner.enter_context(atomic_output(output, "w", encoding="utf-8", newline=""))
    return _SINKS[fmt](stream, verbose, affected, owner)


class _Both:
    """The output sink and the report: each result to both; the output's changes returned."""

    def __init__(self, output, report) -> None:
        self.output, self.report = output, report

    def write(self, result: DatasetResult) -> dict:
        changes = self.output.write(result)
        self.report.add(result, changes)
        return changes

    def close(self) -> None:
        try:
            self.output.close()
        except BaseException:
            self.report.abort()
            raise
        self.report.close()

    def abort(self) -> None:
        try:
            self.output.abort()
        finally:
            self.report.abort()


def open_sinks(fmt: str, args, spec):
    """What ``bestrefs`` writes its results to: the ``fmt`` sink (the format the command settled
    on: ``--format``, or ``none``/``table`` when none was named), and with ``--report`` the
    report beside it; one object with ``write(result) -> changes``, ``close()``, ``abort()``.

    ``spec`` is the batch's :class:`~crds_async.engine.batch.BatchSpec` (the contexts, for
    the report's context difference).
    """
    affected = bool(spec.old_context)
    sink = open_sink(fmt, args.output, verbose=getattr(args, "verbose", False), affected=affected)
    if getattr(args, "report", None) is None:
        return sink
    from ..sinks.report import ReportSink

    report = ReportSink(args.report, context=spec.context, old_context=spec.old_context,
                        context_diff=_context_diff(spec) if affected else None,
                        describe_diff=_diff_failure)
    return _Both(sink, report)


def _diff_failure(exc: BaseException) -> str:
    return f"the context difference could not be computed: {exc}"


def _context_diff(spec):
    """``crds-batch diff --summary``'s summary of the batch's old and new contexts, or an
    exception (the report shows it; the batch goes on)."""
    from ..errors import CrdsError
    from ..rules.diff import diff_mappings
    from .diff import summarize
    from .inspect_common import mapping_store

    try:
        store = mapping_store(spec.cfg, spec.observatory)
        return summarize(diff_mappings(spec.old_context, spec.context, store))
    except (CrdsError, OSError) as exc:
        return exc
