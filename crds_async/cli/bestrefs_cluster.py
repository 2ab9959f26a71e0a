"""``crds-batch bestrefs --dask ADDRESS|local[:N]``: the batch on a Dask cluster (issue #14).

:func:`add_arguments` registers the switches; :func:`cluster_runner` is None without
``--dask``, else the :func:`crds_async.engine.batch.run_batch` keyword arguments
(``executor``, ``jobs``, ``first_chunk``, ``max_chunk``) while the cluster is connected (a
local one is started and stopped around the batch).  Dask is imported only with ``--dask``.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from .bestrefs_running import at_least_one

__all__ = ["add_arguments", "check_arguments", "cluster_runner"]


_partition = at_least_one("dataset per task")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The cluster switches of ``bestrefs``."""
    parser.add_argument("--dask", metavar="ADDRESS|local[:N]", default=None,
                        help="run the batch on a Dask cluster: a running scheduler's address "
                             "(tcp://host:8786; datasets and the CRDS cache on a shared file "
                             "system), or local:N to start N worker processes for the batch "
                             "(needs pip install 'crds_async[dask]')")
    parser.add_argument("--dask-partition", type=_partition, default=None, metavar="N",
                        help="datasets per Dask task (default 4000)")


def check_arguments(args: argparse.Namespace) -> str | None:
    """A usage problem of these switches (one line), or None."""
    text = getattr(args, "dask", None)
    if text is None:
        if getattr(args, "dask_partition", None) is not None:
            return "--dask-partition needs --dask"
        return None
    from ..cluster.dask import parse_target
    from ..errors import ConfigError

    try:
        parse_target(text)
    except ConfigError as exc:
        return str(exc)
    return None


@contextlib.contextmanager
def cluster_runner(args: argparse.Namespace) -> Iterator[dict | None]:
    """None without ``--dask``; else ``run_batch`` keyword arguments for the cluster, which
    stays connected (or, for ``local:N``, running) until the block ends.

    Raises
    ------
    ConfigError
        Dask is missing, the scheduler cannot be reached or has no workers (exit 2).
    """
    text = getattr(args, "dask", None)
    if text is None:
        yield None
        return
    from ..cluster.dask import dask_cluster, parse_target

    jobs = getattr(args, "jobs", None)
    with dask_cluster(parse_target(text, default_workers=jobs)) as batch:
        yield batch.batch_kwargs(getattr(args, "dask_partition", None))
