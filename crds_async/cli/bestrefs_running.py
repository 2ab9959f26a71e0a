"""How a ``crds-batch bestrefs`` batch runs: worker processes today; resumable journals and
a Dask cluster plug in here (issues #13, #14).

:func:`add_arguments` registers the switches; :func:`batch_runner` gives the keyword
arguments for :func:`crds_async.engine.batch.run_batch` (``jobs``, ``executor``) for the
time of the batch.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

__all__ = ["add_arguments", "check_arguments", "batch_runner"]


def _positive_jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give at least 1 worker process")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The switches of how the batch runs."""
    parser.add_argument("-j", "--jobs", type=_positive_jobs, default=None, metavar="N",
                        help="worker processes (default: number of cores)")


def check_arguments(args: argparse.Namespace) -> str | None:
    """A usage problem of these switches (one line), or None."""
    return None


@contextlib.contextmanager
def batch_runner(args: argparse.Namespace) -> Iterator[dict]:
    """``run_batch`` keyword arguments while the batch runs (pools or clusters started and
    stopped around it)."""
    yield {"jobs": args.jobs}
