"""``crds-batch bestrefs``: best references for many datasets, reprocessing campaigns, header updates.

The switches of the reference's ``crds bestrefs`` keep their names and meanings, so that a
script may replace ``crds`` by ``crds-batch``: ``-n/--new-context``, ``-o/--old-context``,
``-f/--files``, ``-t/--types``, ``-k/--skip-types``, ``-u/--update-bestrefs``,
``-s/--sync-references``, the ``--print-*`` reports (:mod:`.bestrefs_reports`),
``--diffs-only``, ``-c/--compare-source-bestrefs``, ``--affected-datasets``,
``-r/--remote-bestrefs``, ``--allow-bad-rules``, ``--allow-bad-references``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import errno
import gc
import os
import sys
import time
from typing import NamedTuple

from . import bestrefs_inputs, bestrefs_output, bestrefs_running

__all__ = ["register", "run"]

_PRINTS = ("print_affected", "print_affected_details", "print_new_references", "print_update_counts")


def _flag_int(text: str) -> int:
    """The reference's ``-s/--sync-references N`` and ``-m/--sync-mappings N`` take a number."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (the reference takes 0 or 1)") from None


def _add_once(parser: argparse.ArgumentParser, *flags: str, **options) -> None:
    """Add a switch unless another module's switches (inputs, outputs) already have it."""
    flags = tuple(f for f in flags if f not in parser._option_string_actions)
    if flags:
        parser.add_argument(*flags, **options)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bestrefs",
        help="best references for dataset files (directories, globs, @lists, - for stdin)",
        description="Compute best references for many datasets at once; the switches of "
                    "`crds bestrefs` keep their names and meanings.",
    )
    bestrefs_inputs.add_arguments(parser)
    # the reference's short form of --files
    _add_once(parser, "-f", dest="files", nargs="+", action="extend", default=argparse.SUPPRESS,
              metavar="FILE", help="same as --files")
    parser.add_argument("-n", "--new-context", "--context", dest="context", metavar="CONTEXT",
                        help="rules to use (default: CRDS_CONTEXT, then the cache's operational context)")
    parser.add_argument("-o", "--old-context", metavar="CONTEXT",
                        help="compare with these rules: report only the types whose answer changes")
    parser.add_argument("-t", "--types", nargs="+", metavar="TYPE", help="only these reference types")
    parser.add_argument("-k", "--skip-types", nargs="+", default=[], metavar="TYPE",
                        help="never these reference types (applies after --types)")
    parser.add_argument("-u", "--update-bestrefs", action="store_true",
                        help="write the answers into each dataset's primary header (crash-safe); "
                             "headers that already hold them are not touched")
    parser.add_argument("--print-affected", action="store_true",
                        help="print the datasets whose best references change (compared with --old-context, "
                             "else with the references recorded in the datasets)")
    parser.add_argument("--print-affected-details", action="store_true",
                        help="print dataset, instrument and changed types, one line per affected dataset")
    parser.add_argument("--print-new-references", action="store_true",
                        help="print one line per reference change (without a comparison: every answer)")
    parser.add_argument("--print-update-counts", action="store_true",
                        help="print (stderr) the update counts by instrument and type")
    _add_once(parser, "--diffs-only", action="store_true",
              help="with --old-context: only the instruments and types the rules changed")
    parser.add_argument("-c", "--compare-source-bestrefs", action="store_true",
                        help="compare the new answers with those recorded in the datasets (headers, dumps)")
    parser.add_argument("--affected-datasets", action="store_true",
                        help="abbreviation for --diffs-only --undefined-differences-matter --na-differences-matter "
                             "--print-update-counts --print-affected (as crds bestrefs)")
    parser.add_argument("--undefined-differences-matter", action="store_true",
                        help="an answer that is no match or undefined is an error")
    parser.add_argument("--na-differences-matter", action="store_true",
                        help="accepted for compatibility (it matters only to the reference's regression mode)")
    parser.add_argument("-r", "--remote-bestrefs", action="store_true",
                        help="answers computed by the CRDS server (CRDS_MODE=remote), in pages, concurrently")
    parser.add_argument("-s", "--sync-references", nargs="?", type=_flag_int, const=1, default=0, metavar="1",
                        help="download the references the batch needs into the cache (-s 1 as the reference)")
    parser.add_argument("-m", "--sync-mappings", type=_flag_int, default=1, metavar="1",
                        help="accepted for compatibility: rules missing from the cache are fetched anyway "
                             "when a server may be asked")
    parser.add_argument("--allow-bad-rules", action="store_true",
                        help="rules marked bad are a warning, not an error (CRDS_ALLOW_BAD_RULES)")
    parser.add_argument("--allow-bad-references", action="store_true",
                        help="references marked bad are a warning, not an error (CRDS_ALLOW_BAD_REFERENCES)")
    bestrefs_output.add_arguments(parser)
    # no format named: a table, unless the command reads like the reference's (--print-* or
    # -f/--files only), whose stdout holds only what the reference prints there
    parser.set_defaults(format=None)
    bestrefs_running.add_arguments(parser)
    parser.add_argument("--all-types", action="store_true",
                        help="JWST: answer every type of the instrument's rules, not only those the "
                             "dataset's EXP_TYPE needs (the CRDSCFG screening crds bestrefs does)")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print answers that are N/A")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    parser.set_defaults(handler=run)


def _expand_abbreviations(args: argparse.Namespace) -> None:
    """What the reference's bundle switches turn on (its ``BestrefsScript.__init__``)."""
    if args.affected_datasets:
        args.diffs_only = True
        args.print_update_counts = True
        args.print_affected = True
        args.undefined_differences_matter = True
        args.na_differences_matter = True


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.old_context and args.compare_source_bestrefs:
        return "give either --old-context or --compare-source-bestrefs, not both"
    if getattr(args, "diffs_only", False) and not args.old_context:
        return "--diffs-only (and --affected-datasets) need --old-context"
    return None


def _loaded_context(context: str, cfg, observatory: str):
    """The context, loaded through the process's registry; rules missing from the cache are
    fetched first when a server may be asked (as the reference's bestrefs does)."""
    from ..engine.rules_sync import evaluator_with_rules

    def notify(line: str) -> None:
        print(f"crds-batch bestrefs: {line}", file=sys.stderr)

    return evaluator_with_rules(context, cfg, observatory, notify=notify).context


def _output_format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    if args.output:
        return "table"
    reference_style = any(getattr(args, name) for name in _PRINTS) or (args.files and not args.paths)
    return "none" if reference_style else "table"


class Prepared(NamedTuple):
    """A batch ready to run: ``driver.drive(inputs, running)``."""

    driver: "_Driver"
    inputs: object          # bestrefs_inputs.Inputs
    context: str            # the new context's .pmap name


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    prepared = prepare(args)
    if isinstance(prepared, int):
        return prepared
    driver, inputs, new_name = prepared
    with bestrefs_running.batch_runner(args) as running:
        counts = asyncio.run(driver.drive(inputs, running))
    if not args.quiet:
        seconds = time.perf_counter() - started
        updated = ""
        if args.update_bestrefs:
            updated = f", {counts['updated']} headers updated, {counts['held']} already held the answers"
        print(f"crds-batch bestrefs: {counts['files']} files, {counts['datasets']} datasets, "
              f"{counts['errors']} with errors, {counts['affected']} affected{updated}, {seconds:.2f} s "
              f"(context {new_name})", file=sys.stderr)
    if driver.stdout_lost:
        print("crds-batch bestrefs: standard output was closed: the rest of the output was dropped; "
              "the batch went on to its end", file=sys.stderr)
    return 1 if counts["errors"] or driver.stdout_lost else 0


def prepare(args: argparse.Namespace) -> Prepared | int:
    """Everything before the batch runs: arguments checked, inputs opened, contexts loaded,
    the driver made; or the exit status when there is nothing to run (a usage error: 2,
    no datasets: 0).  ``benchmarks/bench_dask.py`` runs the prepared batch on its own clusters."""
    from ..config import config_from_env
    from ..engine.batch import BatchSpec, batch_observatory
    from ..engine.campaign import changed_types

    _expand_abbreviations(args)
    problem = (bestrefs_inputs.check_arguments(args) or bestrefs_output.check_arguments(args)
               or bestrefs_running.check_arguments(args) or _usage_problem(args))
    if problem is not None:
        print(f"crds-batch bestrefs: error: {problem}", file=sys.stderr)
        return 2
    if args.remote_bestrefs:
        os.environ["CRDS_MODE"] = "remote"  # as the reference: the switch is CRDS_MODE=remote
    cfg = config_from_env()
    if args.allow_bad_rules or args.allow_bad_references:
        cfg = dataclasses.replace(cfg, allow_bad_rules=cfg.allow_bad_rules or args.allow_bad_rules,
                                  allow_bad_references=cfg.allow_bad_references or args.allow_bad_references)
    inputs = bestrefs_inputs.open_inputs(args, cfg)
    if not inputs.leading:
        # nothing to do is not a failure, but a mistyped directory or glob should not pass unseen
        print(f"crds-batch bestrefs: no dataset files in {inputs.described} "
              "(directories are searched for *.fits, *.fit, *.fts, *.asdf)", file=sys.stderr)
        return 0
    context = args.context or cfg.context
    observatory = batch_observatory(context, cfg, inputs.leading)
    context = context or f"{observatory}-operational"
    remote = args.remote_bestrefs
    if remote:
        from ..engine.remote import resolve_remote_context

        new_ctx = None
        new_name = resolve_remote_context(context, cfg, observatory)
        old_ctx = old_name = changed = None
        if args.old_context:
            print("crds-batch bestrefs: error: --remote-bestrefs answers under one context: "
                  "drop --old-context", file=sys.stderr)
            return 2
    else:
        # The process-wide evaluators (compiled-context cache): evaluation in this process and
        # forked workers then start with the context already loaded.
        new_ctx = _loaded_context(context, cfg, observatory)
        new_name = new_ctx.name
        changed = None
        old_name = None
        if args.old_context:
            old_ctx = _loaded_context(args.old_context, cfg, observatory)
            old_name = old_ctx.name
            changed = changed_types(old_ctx, new_ctx)
        # The loaded rules live as long as the process: out of the garbage collector's sight, a
        # batch's many short-lived objects no longer make it walk them again and again (it did,
        # at a cost of about a third of evaluating never-seen modes), and forked workers share
        # their pages instead of copying them when the collector would write to them.
        gc.freeze()
    types = None
    if args.types:
        types = tuple(t.lower() for t in args.types if t.lower() not in {s.lower() for s in args.skip_types})
    fmt = _output_format(args)
    spec = BatchSpec(cfg=cfg, context=new_name, observatory=observatory, reftypes=types,
                     old_context=old_name, changed_types=changed,
                     render_json=fmt == "json" and not old_name,
                     screen_types=not args.all_types)

    show_progress = not args.quiet and sys.stderr.isatty()
    driver = _Driver(args, spec, fmt, new_ctx, show_progress)
    if remote and (args.skip_types or getattr(args, "diffs_only", False)):
        from ..engine.remote import server_bad_files

        # narrowed answers are judged again (_screen): by the server's bad references
        driver.bad_files = server_bad_files(cfg, observatory)
    return Prepared(driver, inputs, new_name)


class _Driver:
    """One batch: results from the engine to the sink, the reports, updates and errors."""

    def __init__(self, args, spec, fmt: str, new_ctx, show_progress: bool) -> None:
        from .bestrefs_reports import Reports

        self.args, self.spec, self.fmt = args, spec, fmt
        self.show_progress = show_progress
        self.progress = None
        self.stdout_lost = False
        self.skip = frozenset(t.lower() for t in args.skip_types)
        self.from_source = bestrefs_inputs.compares_with_recorded(args)
        self.reports = Reports(undefined_matter=args.undefined_differences_matter, skip_types=self.skip,
                               keep_updates=bool(args.print_new_references or args.print_affected_details),
                               lower_names=bestrefs_inputs.names_are_ids(args))
        self.bad_files = new_ctx.bad_files if new_ctx is not None else frozenset()
        self.reftypes_of = ({i: tuple(sorted(m.reftypes)) for i, m in new_ctx.instruments.items()}
                            if new_ctx is not None else {})
        self._problems = None
        self._parameters: dict = {}  # (id, parameters) items by id, for recorded bestrefs
        self.counts = {"files": 0, "datasets": 0, "errors": 0, "affected": 0, "updated": 0, "held": 0}

    # ---------------------------------------------------------------- output

    def _stdout_closed(self) -> None:
        """Standard output is gone (``| head``): drop what would go there, go on with the batch."""
        if not self.stdout_lost:
            self.stdout_lost = True
            with contextlib.suppress(OSError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)

    def _guarded(self, write, *pargs):
        if self.stdout_lost:
            with contextlib.suppress(OSError, ValueError):
                return write(*pargs)
            return None
        try:
            return write(*pargs)
        except BrokenPipeError:
            self._stdout_closed()
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            self._stdout_closed()
        return None

    def error(self, line: str) -> None:
        text = f"ERROR: {line}"
        if self.progress is not None:
            self.progress.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def warning(self, line: str) -> None:
        print(f"WARNING: {line}", file=sys.stderr)

    # ---------------------------------------------------------------- per dataset

    def _items(self, items):
        for item in items:
            if self.from_source and type(item) is tuple:
                self._parameters[item[0]] = item[1]
            yield item

    def _answer_problems(self, result) -> list[str]:
        from ..engine.results import AnswerProblems

        if self._problems is None:
            self._problems = AnswerProblems(self.bad_files)
        return self._problems(result.path, result.answers)

    def _screen(self, result) -> None:
        """--skip-types and --diffs-only narrow the answers (and so the errors) of a dataset;
        --allow-bad-references makes a bad reference a warning."""
        if result.answers is None:
            return
        narrowed = False
        if self.skip:
            result.answers = {t: a for t, a in result.answers.items() if t not in self.skip}
            result.compared = tuple(t for t in result.compared if t not in self.skip)
            narrowed = True
        if getattr(self.args, "diffs_only", False):
            result.answers = {t: a for t, a in result.answers.items() if t in result.compared}
            narrowed = True
        if narrowed:
            result.problems = self._answer_problems(result)
        if self.args.allow_bad_references or self.spec.cfg.allow_bad_references:
            bad = [p for p in result.problems if p.endswith("is designated scientifically invalid")]
            for line in bad:
                self.warning(line)
            result.problems = [p for p in result.problems if p not in bad]

    def _recorded(self, result) -> dict:
        """The best references recorded in a dataset (header keywords, or its dump's parameters)."""
        from ..instruments.jwst import DM_TO_FITS
        from ..sources import recorded_bestrefs
        from ..sources.deferred import Deferred

        params = self._parameters.pop(result.path, None)
        if isinstance(params, Deferred):
            params = params.parameters()
        if params is None:
            from ..headers import read_header
            from ..instruments import dataset_header

            params = dataset_header(read_header(result.path))
        types = self.reftypes_of.get(result.instrument or "", tuple(result.answers or ()))

        def keyword_of(reftype: str) -> str | None:
            if self.spec.observatory != "jwst":
                return reftype.upper()
            dm = f"META.REF_FILE.{reftype.upper()}.NAME"
            fits = DM_TO_FITS.get(dm)
            return fits if fits in params else dm

        return recorded_bestrefs(params, types, keyword_of=keyword_of)

    def _report(self, result):
        """Record the dataset for the --print-* reports; its Recorded, or None (no answers)."""
        if result.answers is None:
            return None
        if self.args.old_context:
            recorded = self.reports.add(result, old_overrides=result.old_answers or {}, old_checked=result.compared)
        elif self.from_source:
            try:
                old = self._recorded(result)
            except Exception as exc:  # noqa: BLE001 - this dataset's error, one line
                result.problems.append(f"{result.path}: cannot read its recorded best references: {exc}")
                return None
            recorded = self.reports.add(result, old)
        else:
            recorded = self.reports.add(result)
        result.problems.extend(recorded.errors)
        return recorded

    async def drive(self, inputs, running: dict) -> dict[str, int]:
        """Run the batch of ``inputs`` (``bestrefs_inputs.Inputs``) on ``running``'s engine
        (``run_batch`` keyword arguments); the counts of the summary line."""
        from ..engine.batch import run_batch

        args, spec, counts = self.args, self.spec, self.counts
        items, total = inputs.items(), inputs.total
        needed: set[str] = set()  # references the batch's answers name, for --sync-references
        if self.show_progress:
            from tqdm import tqdm

            self.progress = tqdm(unit=" datasets", file=sys.stderr, desc="bestrefs", total=total)
        sink = bestrefs_output.open_sinks(self.fmt, args, spec)  # the format's sink, and --report's
        batch = tallied = None
        if args.remote_bestrefs:
            from ..engine.remote import run_remote

            batch = run_remote(self._items(items), spec)
        elif self.tallies_in_workers(running):
            from ..engine.batch import run_tallied

            # a dump's spans: the workers list the datasets (the leading ones are listed again)
            tallied = run_tallied(items, spec, _ChunkTally(args, spec, self.fmt), spans=inputs.spans, **running)
        else:
            batch = run_batch(self._items(items), spec, **running)
        try:
            if tallied is not None:
                async with contextlib.aclosing(tallied) as chunks:
                    async for size, tally in chunks:
                        self._merge(tally)
                        if self.progress is not None:
                            self.progress.update(size)
            else:
                async with contextlib.aclosing(batch) as results:
                    async for result in results:
                        self.account(result, sink)
                        if args.sync_references and result.answers:
                            needed.update(a for a in result.answers.values()
                                          if isinstance(a, str) and not a.startswith("NOT FOUND"))
                        if self.progress is not None:
                            self.progress.update(1)
            self._guarded(sink.close)
            self._guarded(self.reports.print_all, args)
            if args.sync_references and needed:
                from ..errors import FetchError
                from ..fetch.references import ensure_references

                try:
                    await ensure_references(spec.cfg, spec.observatory, sorted(needed), context=spec.context,
                                            jobs=max(8, args.jobs or 8), progress=self.show_progress)
                except FetchError as exc:
                    counts["errors"] += 1
                    self.error(f"--sync-references: {exc}")
        except BaseException:
            sink.abort()
            raise
        finally:
            if tallied is not None and inputs.spans is not None:
                inputs.close()  # its items were never taken
            if self.progress is not None:
                self.progress.close()
        return counts

    def account(self, result, sink) -> None:
        """One dataset's result: screened, recorded for the reports, its errors printed, written
        to ``sink``, counted, its header updated (``-u``)."""
        from ..engine.campaign import is_affected

        counts = self.counts
        counts["files"] += 1
        if result.error is None:
            counts["datasets"] += 1
        self._screen(result)
        recorded = self._report(result)
        if result.failed:
            counts["errors"] += 1
            for line in ([result.error] if result.error else []) + result.problems:
                self.error(line)
        changes = self._guarded(sink.write, result) or {}
        if self.spec.old_context and is_affected(result, changes):
            counts["affected"] += 1
        elif self.from_source and recorded is not None and recorded.updated and not recorded.killed:
            counts["affected"] += 1
        if self.args.update_bestrefs and result.answers:
            self._update(result, recorded)

    def tallies_in_workers(self, running: dict) -> bool:
        """Whether the workers can do :meth:`account` themselves, and send back sums
        (:class:`_ChunkTally`): nothing is written per dataset (no output, report, update
        or download), the recorded references are not needed (they are here), and no
        journal keeps results."""
        args = self.args
        return (self.fmt == "none" and not args.output and getattr(args, "report", None) is None
                and not args.update_bestrefs and not args.sync_references and not self.from_source
                and not args.remote_bestrefs and running.get("journal") is None)

    def _merge(self, tally: "_Tally") -> None:
        """A chunk's :class:`_Tally`: its counts added, its lines printed, its report kept."""
        for key, value in tally.counts.items():
            self.counts[key] += value
        for is_error, line in tally.lines:
            (self.error if is_error else self.warning)(line)
        self.reports.merge(tally.reports)

    def _update(self, result, recorded) -> None:
        from ..engine.campaign import update_dataset

        if self.from_source and (recorded is None or not recorded.updated):
            return  # the recorded references are the answers: nothing to write (as the reference)
        try:
            wrote = update_dataset(result, self.spec)
        except Exception as exc:  # noqa: BLE001 - one file's failure must not stop the batch
            self.counts["errors"] += 1
            self.error(f"{result.path}: header update failed: {exc}")
            return
        self.counts["updated" if wrote else "held"] += 1


class _Tally(NamedTuple):
    """What a worker's :meth:`_Driver.account` of one chunk adds up to."""

    counts: dict[str, int]
    lines: list[tuple[bool, str]]   # (an error, not a warning; the line), in input order
    reports: object                 # Reports.take_part()


#: the worker process's drivers, by the batch they serve (_ChunkTally.batch)
_WORKER_DRIVERS: dict[str, "_Driver"] = {}


class _ChunkTally:
    """``tally(results)`` for :func:`~crds_async.engine.batch.run_tallied`: runs in a worker,
    accounts for each result as the batch's own process would (:meth:`_Driver.account`, with
    no output) and returns the chunk's :class:`_Tally`.  The worker keeps one driver per
    batch, so that the memos of answer sets compared last chunk serve the next."""

    def __init__(self, args, spec, fmt: str) -> None:
        import uuid

        self.args, self.spec, self.fmt = args, spec, fmt
        self.batch = uuid.uuid4().hex

    def __call__(self, results: list) -> _Tally:
        driver = _WORKER_DRIVERS.get(self.batch)
        if driver is None:
            _WORKER_DRIVERS.clear()  # another batch's: done with
            driver = _WORKER_DRIVERS[self.batch] = _CollectingDriver(self.args, self.spec, self.fmt)
        sink = bestrefs_output.open_sink("none", None)
        driver.counts = dict.fromkeys(driver.counts, 0)
        driver.lines = []
        for result in results:
            driver.account(result, sink)
        return _Tally(driver.counts, driver.lines, driver.reports.take_part())


class _CollectingDriver(_Driver):
    """A worker's driver: lines kept for the batch's process to print, in order."""

    def __init__(self, args, spec, fmt: str) -> None:
        from ..engine.registry import get_evaluator
        from ..errors import CrdsError

        try:
            context = get_evaluator(spec.context, spec.cfg, spec.observatory).context
        except CrdsError:
            context = None  # every dataset reports the failure
        super().__init__(args, spec, fmt, context, show_progress=False)
        self.lines: list[tuple[bool, str]] = []

    def error(self, line: str) -> None:
        self.lines.append((True, line))

    def warning(self, line: str) -> None:
        self.lines.append((False, line))
