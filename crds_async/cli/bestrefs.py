"""``crds-batch bestrefs``: best references for many datasets, reprocessing campaigns, header updates."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import sys
import time

from ..errors import ConfigError

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bestrefs",
        help="best references for dataset files (directories, globs, @lists, - for stdin)",
        description="Compute best references for many datasets at once, like `crds bestrefs --files`.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="dataset files, directories (recursive), globs, @listfile, or - for stdin")
    parser.add_argument("--files", nargs="+", default=[], metavar="FILE", help="more dataset paths")
    parser.add_argument("--context", "--new-context", dest="context", metavar="CONTEXT",
                        help="rules to use (default: CRDS_CONTEXT, then the cache's operational context)")
    parser.add_argument("--old-context", metavar="CONTEXT",
                        help="compare with these rules: report only the types whose answer changes")
    parser.add_argument("--types", nargs="+", metavar="TYPE", help="only these reference types")
    parser.add_argument("--update-bestrefs", action="store_true",
                        help="write the answers into each dataset's primary header (atomically)")
    parser.add_argument("--print-affected", action="store_true",
                        help="print the datasets whose best references change (with --old-context)")
    parser.add_argument("--sync-references", action="store_true",
                        help="download the references the batch needs into the cache")
    parser.add_argument("--format", choices=("table", "json", "jsonl", "csv"), default="table")
    parser.add_argument("-o", "--output", metavar="FILE", help="write results here (atomically) instead of stdout")
    parser.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                        help="worker processes (default: number of cores)")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print answers that are N/A")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    parser.set_defaults(handler=run)


#: datasets read, at most, to find the observatory when nothing else names it
_OBSERVATORY_PROBES = 8


def _observatory_and_context(args, cfg, leading: list[str]):
    """The observatory and context of the batch: from --context, CRDS_CONTEXT,
    CRDS_OBSERVATORY, or else the first of ``leading`` datasets that names a known instrument
    (unreadable ones are passed over here; the batch reports them itself)."""
    from ..instruments import header_instrument, observatory_of_instrument
    from ..rules.contexts import observatory_of_spec

    context = args.context or cfg.context
    observatory = (observatory_of_spec(context) if context else None) or cfg.observatory
    why = ""
    if observatory is None:
        from ..headers import read_header

        for path in leading:
            try:
                instrument = header_instrument(read_header(path))
            except Exception as exc:  # noqa: BLE001 - the batch will report this file itself
                why = why or f" ({str(exc).splitlines()[0]})"
                continue
            observatory = observatory_of_instrument(instrument or "")
            if observatory is not None:
                break
            why = why or f" ({path}: {'instrument ' + repr(instrument) if instrument else 'no instrument'})"
    if observatory is None:
        raise ConfigError(f"cannot tell the observatory{why}: pass --context (e.g. hst_0729.pmap) "
                          "or set CRDS_OBSERVATORY")
    return observatory, context or f"{observatory}-operational"


def _loaded_context(context: str, cfg, observatory: str):
    """The context, loaded through the process's registry; rules missing from the cache are
    fetched first when a server may be asked (as the reference's bestrefs does)."""
    from ..engine.rules_sync import evaluator_with_rules

    def notify(line: str) -> None:
        print(f"crds-batch bestrefs: {line}", file=sys.stderr)

    return evaluator_with_rules(context, cfg, observatory, notify=notify).context


def run(args: argparse.Namespace) -> int:
    from ..config import config_from_env
    from ..engine.batch import BatchSpec, discover
    from ..engine.campaign import changed_types
    from .bestrefs_output import open_sink

    started = time.perf_counter()
    cfg = config_from_env()
    specs = list(args.paths) + list(args.files)
    if not specs:
        print("crds-batch bestrefs: error: give at least one PATH (or - for stdin)", file=sys.stderr)
        return 2
    if args.print_affected and not args.old_context:
        print("crds-batch bestrefs: error: --print-affected needs --old-context", file=sys.stderr)
        return 2
    paths = discover(specs)
    leading = list(itertools.islice(paths, _OBSERVATORY_PROBES))  # read again by the batch
    if not leading:
        # nothing to do is not a failure, but a mistyped directory or glob should not pass unseen
        print(f"crds-batch bestrefs: no dataset files in {' '.join(specs)} "
              "(directories are searched for *.fits, *.fit, *.fts, *.asdf)", file=sys.stderr)
        return 0
    observatory, context = _observatory_and_context(args, cfg, leading)
    # The process-wide evaluators (compiled-context cache): evaluation in this process and
    # forked workers then start with the context already loaded.
    new_ctx = _loaded_context(context, cfg, observatory)
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
    spec = BatchSpec(cfg=cfg, context=new_ctx.name, observatory=observatory,
                     reftypes=tuple(t.lower() for t in args.types) if args.types else None,
                     old_context=old_name, changed_types=changed,
                     render_json=args.format == "json" and not args.old_context)

    def all_paths():
        yield from leading
        yield from paths

    show_progress = not args.quiet and sys.stderr.isatty()
    counts = asyncio.run(_drive(all_paths(), spec, args, show_progress, open_sink))
    if not args.quiet:
        seconds = time.perf_counter() - started
        print(f"crds-batch bestrefs: {counts['files']} files, {counts['datasets']} datasets, "
              f"{counts['errors']} with errors, {counts['affected']} affected, {seconds:.2f} s "
              f"(context {new_ctx.name})", file=sys.stderr)
    return 1 if counts["errors"] else 0


async def _drive(paths, spec, args, show_progress, open_sink) -> dict[str, int]:
    from ..engine.batch import run_batch
    from ..engine.campaign import is_affected, update_dataset

    counts = {"files": 0, "datasets": 0, "errors": 0, "affected": 0}
    needed: set[str] = set()  # references the batch's answers name, for --sync-references
    progress = None
    if show_progress:
        from tqdm import tqdm

        progress = tqdm(unit=" datasets", file=sys.stderr, desc="bestrefs")
    fmt = "none" if args.print_affected and not args.output else args.format
    sink = open_sink(fmt, args.output, verbose=args.verbose, affected=bool(spec.old_context))
    try:
        async with contextlib.aclosing(run_batch(paths, spec, jobs=args.jobs)) as results:
            async for result in results:
                counts["files"] += 1
                if result.error is None:
                    counts["datasets"] += 1
                if result.failed:
                    counts["errors"] += 1
                    for line in ([result.error] if result.error else []) + result.problems:
                        _print_error(line, progress)
                changes = sink.write(result)
                if is_affected(result, changes):
                    counts["affected"] += 1
                    if args.print_affected:
                        _print_line(result.path, progress)
                if args.update_bestrefs and result.answers:
                    try:
                        update_dataset(result, spec)
                    except Exception as exc:  # noqa: BLE001 - one file's failure must not stop the batch
                        counts["errors"] += 1
                        _print_error(f"{result.path}: header update failed: {exc}", progress)
                if args.sync_references and result.answers:
                    needed.update(a for a in result.answers.values()
                                  if isinstance(a, str) and not a.startswith("NOT FOUND"))
                if progress is not None:
                    progress.update(1)
        sink.close()
        if args.sync_references and needed:
            from ..errors import FetchError
            from ..fetch.references import ensure_references

            try:
                await ensure_references(spec.cfg, spec.observatory, sorted(needed), context=spec.context,
                                        jobs=max(8, args.jobs or 8), progress=show_progress)
            except FetchError as exc:
                counts["errors"] += 1
                _print_error(f"--sync-references: {exc}", progress)
    except BaseException:
        sink.abort()
        raise
    finally:
        if progress is not None:
            progress.close()
    return counts


def _print_error(line: str, progress) -> None:
    text = f"ERROR: {line}"
    if progress is not None:
        progress.write(text, file=sys.stderr)
    else:
        print(text, file=sys.stderr)


def _print_line(line: str, progress) -> None:
    if progress is not None:
        progress.write(line, file=sys.stdout)
    else:
        print(line, flush=False)
