"""How a ``crds-batch bestrefs`` batch runs: worker processes, a resumable journal
(``--journal``, issue #13) and a Dask cluster (``--dask``, :mod:`.bestrefs_cluster`, issue #14).

:func:`add_arguments` registers the switches; :func:`batch_runner` gives the keyword
arguments for :func:`crds_async.engine.batch.run_batch` (``jobs``, ``executor``, chunk
sizes, ``journal``) for the time of the batch.

Resumable runs: ``--journal FILE`` records each finished chunk of results in FILE
(:mod:`crds_async.engine.journal`).  After a crash or a ``kill -9``, the same command again
replays the journaled chunks without evaluating them, evaluates the rest, and writes
outputs identical to an uninterrupted run's.  A journal of other arguments or other inputs
is refused (exit 2).  When the batch has finished, outputs written, the journal is removed;
a line on stderr says how many datasets came from the journal (``N from the journal``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["add_arguments", "check_arguments", "batch_runner"]


def at_least_one(what: str):
    """An argparse ``type``: a whole number of at least 1 ``what`` (e.g. "worker process")."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{value}: give at least 1 {what}")
        return value
    return parse


_positive_jobs = at_least_one("worker process")


def _cluster():
    """The Dask hooks' module, if this build has it."""
    try:
        from . import bestrefs_cluster
    except ImportError:
        return None
    return bestrefs_cluster


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The switches of how the batch runs."""
    parser.add_argument("-j", "--jobs", type=_positive_jobs, default=None, metavar="N",
                        help="worker processes (default: number of cores)")
    parser.add_argument("--journal", metavar="FILE", default=None,
                        help="resumable run: record finished datasets in FILE; after an interruption "
                             "the same command again skips them (FILE is removed when the batch ends)")
    cluster = _cluster()
    if cluster is not None:
        cluster.add_arguments(parser)


def check_arguments(args: argparse.Namespace) -> str | None:
    """A usage problem of these switches (one line), or None."""
    cluster = _cluster()
    problem = cluster.check_arguments(args) if cluster is not None and hasattr(cluster, "check_arguments") else None
    journal = getattr(args, "journal", None)
    if problem is None and journal is not None:
        from ..atomic import resolve_target
        from ..errors import ConfigError

        try:
            target = resolve_target(journal)
        except ConfigError as exc:
            return f"--journal {exc}"
        output = getattr(args, "output", None)
        if output is not None and os.path.realpath(output) == target:
            return "--journal and --output name the same file"
    return problem


def _say(line: str) -> None:
    print(f"crds-batch bestrefs: {line}", file=sys.stderr)


@contextlib.contextmanager
def batch_runner(args: argparse.Namespace) -> Iterator[dict]:
    """``run_batch`` keyword arguments while the batch runs (pools or clusters started and
    stopped around it; the journal removed when the block ends normally, kept otherwise)."""
    running: dict = {"jobs": args.jobs}
    with contextlib.ExitStack() as stack:
        cluster = _cluster()
        if cluster is not None:
            extra = stack.enter_context(cluster.cluster_runner(args))
            if extra:
                running.update(extra)
        path = getattr(args, "journal", None)
        if path is None:
            yield running
            return
        from ..engine.journal import Journal

        journal = running["journal"] = Journal(path)
        try:
            yield running
        except BaseException:
            journal.close()
            for note in journal.notes:
                _say(note)
            if journal.replayed or journal.recorded:
                _say(f"journal {path} kept: {journal.replayed + journal.recorded} datasets in it; "
                     "the same command again resumes the batch")
            raise
        journal.remove()
        for note in journal.notes:
            _say(note)
        if journal.started and not getattr(args, "quiet", False):
            _say(f"journal {path}: {journal.replayed} datasets from the journal, "
                 f"{journal.recorded} evaluated; removed")
