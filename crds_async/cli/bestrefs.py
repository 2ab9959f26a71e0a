"""``crds-batch bestrefs``: best references for many datasets, reprocessing campaigns, header updates."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sys
import time

from . import bestrefs_inputs, bestrefs_output, bestrefs_running

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bestrefs",
        help="best references for dataset files (directories, globs, @lists, - for stdin)",
        description="Compute best references for many datasets at once, like `crds bestrefs --files`.",
    )
    bestrefs_inputs.add_arguments(parser)
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
    bestrefs_output.add_arguments(parser)
    bestrefs_running.add_arguments(parser)
    parser.add_argument("--all-types", action="store_true",
                        help="JWST: answer every type of the instrument's rules, not only those the "
                             "dataset's EXP_TYPE needs (the CRDSCFG screening crds bestrefs does)")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print answers that are N/A")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    parser.set_defaults(handler=run)


def _loaded_context(context: str, cfg, observatory: str):
    """The context, loaded through the process's registry; rules missing from the cache are
    fetched first when a server may be asked (as the reference's bestrefs does)."""
    from ..engine.rules_sync import evaluator_with_rules

    def notify(line: str) -> None:
        print(f"crds-batch bestrefs: {line}", file=sys.stderr)

    return evaluator_with_rules(context, cfg, observatory, notify=notify).context


def run(args: argparse.Namespace) -> int:
    from ..config import config_from_env
    from ..engine.batch import BatchSpec, batch_observatory
    from ..engine.campaign import changed_types
    from .bestrefs_output import open_sink

    started = time.perf_counter()
    problem = (bestrefs_inputs.check_arguments(args) or bestrefs_output.check_arguments(args)
               or bestrefs_running.check_arguments(args))
    if problem is None and args.print_affected and not args.old_context:
        problem = "--print-affected needs --old-context"
    if problem is not None:
        print(f"crds-batch bestrefs: error: {problem}", file=sys.stderr)
        return 2
    cfg = config_from_env()
    inputs = bestrefs_inputs.open_inputs(args, cfg)
    if not inputs.leading:
        # nothing to do is not a failure, but a mistyped directory or glob should not pass unseen
        print(f"crds-batch bestrefs: no dataset files in {inputs.described} "
              "(directories are searched for *.fits, *.fit, *.fts, *.asdf)", file=sys.stderr)
        return 0
    context = args.context or cfg.context
    observatory = batch_observatory(context, cfg, inputs.leading)
    context = context or f"{observatory}-operational"
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
                     render_json=args.format == "json" and not args.old_context,
                     screen_types=not args.all_types)

    show_progress = not args.quiet and sys.stderr.isatty()
    with bestrefs_running.batch_runner(args) as running:
        counts = asyncio.run(_drive(inputs.items(), spec, args, show_progress, open_sink, running,
                                    inputs.total))
    if not args.quiet:
        seconds = time.perf_counter() - started
        print(f"crds-batch bestrefs: {counts['files']} files, {counts['datasets']} datasets, "
              f"{counts['errors']} with errors, {counts['affected']} affected, {seconds:.2f} s "
              f"(context {new_ctx.name})", file=sys.stderr)
    return 1 if counts["errors"] else 0


async def _drive(items, spec, args, show_progress, open_sink, running: dict, total: int | None) -> dict[str, int]:
    from ..engine.batch import run_batch
    from ..engine.campaign import is_affected, update_dataset

    counts = {"files": 0, "datasets": 0, "errors": 0, "affected": 0}
    needed: set[str] = set()  # references the batch's answers name, for --sync-references
    progress = None
    if show_progress:
        from tqdm import tqdm

        progress = tqdm(unit=" datasets", file=sys.stderr, desc="bestrefs", total=total)
    fmt = "none" if args.print_affected and not args.output else args.format
    sink = open_sink(fmt, args.output, verbose=args.verbose, affected=bool(spec.old_context))
    try:
        async with contextlib.aclosing(run_batch(items, spec, **running)) as results:
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
