"""Batches on a Dask cluster: a running scheduler, or a local cluster of worker processes.

The engine's batch is already shaped for a cluster: :func:`~crds_async.engine.batch.run_batch`
runs partitions of datasets on any :class:`concurrent.futures.Executor`, in input order, with
a bounded number in flight, and ``distributed.Client.get_executor()`` is one.  So a cluster
batch is the same batch: each task is ``evaluate_paths(partition, spec)`` on a worker, the
results come back to the one process that writes the output (and fetches references, for
``--sync-references``), and a worker that dies has its tasks re-run elsewhere by the
scheduler.

Each worker process loads the context once, through the engine's per-process registry (the
compiled-context disk cache makes that a few milliseconds); :func:`preload` does it before
the first partition.  Workers read the datasets and the CRDS cache by the paths the batch
names: a remote cluster needs them on a shared file system (or the same paths on every node).

Dask is imported only here, and only when a cluster is asked for.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import gc
import logging
import pickle
import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import ConfigError, CrdsError

__all__ = [
    "ClusterTarget",
    "DaskBatch",
    "PackedExecutor",
    "parse_target",
    "dask_cluster",
    "preload",
    "FIRST_PARTITION",
    "PARTITION",
]

#: Datasets per Dask task once the batch is under way.  A task costs the scheduler and the
#: worker about 1-2 ms of hand-offs plus the pickling of its items and results; at a few
#: thousand datasets (about a second of work) that is well under 1 % (docs/scaling.md).
PARTITION = 4000
#: The first tasks are smaller, so that every worker starts at once and results flow early
#: (then doubling up to :data:`PARTITION`).
FIRST_PARTITION = 500

#: How long to wait for a cluster with no workers yet to get one, in seconds.
WORKER_WAIT = 30.0

_LOCAL = re.compile(r"local(?::(\d+))?", re.I)


@dataclass(frozen=True)
class ClusterTarget:
    """Where the batch runs: ``address`` of a running scheduler, or None for a local cluster
    of ``workers`` processes (started and stopped around the batch)."""

    address: str | None
    workers: int = 0

    def __str__(self) -> str:
        return self.address if self.address else f"local:{self.workers}"


def parse_target(text: str, default_workers: int | None = None) -> ClusterTarget:
    """``local``, ``local:N`` or a scheduler address (``tcp://host:8786``, ``host:8786``).

    Raises
    ------
    ConfigError
        Empty, or ``local:N`` with N not a whole number >= 1.
    """
    text = (text or "").strip()
    if not text:
        raise ConfigError("--dask: give a scheduler address (tcp://host:8786) or local[:N]")
    if text.lower().startswith("local"):
        match = _LOCAL.fullmatch(text)
        if match is None or (match.group(1) is not None and int(match.group(1)) < 1):
            raise ConfigError(f"--dask {text}: write local or local:N with N >= 1 worker processes")
        if match.group(1) is not None:
            workers = int(match.group(1))
        else:
            import os

            workers = default_workers or os.cpu_count() or 1
        return ClusterTarget(None, workers)
    return ClusterTarget(text)


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ConfigError("--dask needs Dask: pip install 'crds_async[dask]' "
                          f"({exc.__class__.__name__}: {exc})") from None
    return distributed


@dataclass
class DaskBatch:
    """A connected cluster, for the time of one batch."""

    client: object  # distributed.Client
    target: ClusterTarget
    #: worker threads in the cluster when the batch started (partitions in flight: twice that)
    workers: int

    def executor(self) -> cf.Executor:
        """A :class:`concurrent.futures.Executor` on the cluster (see :class:`PackedExecutor`)."""
        return PackedExecutor(self.client)

    def batch_kwargs(self, partition: int | None = None) -> dict:
        """Keyword arguments for :func:`~crds_async.engine.batch.run_batch`."""
        largest = partition or PARTITION
        return {"executor": self.executor(), "jobs": self.workers,
                "first_chunk": min(FIRST_PARTITION, largest), "max_chunk": largest}


def _run_packed(blob: bytes) -> bytes:
    """On a worker: the call packed in ``blob``, its result packed the same way."""
    fn, args, kwargs = pickle.loads(blob)
    out = pickle.dumps(fn(*args, **kwargs), protocol=pickle.HIGHEST_PROTOCOL)
    _freeze_loaded_contexts()
    return out


#: how many names the worker's registry knew when its objects were last frozen
_FROZEN_AT = [0]


def _freeze_loaded_contexts() -> None:
    """Out of the garbage collector's sight, as ``bestrefs`` does in its own process before
    its pool workers fork: a context a task loaded lives as long as the worker (the
    registry keeps it), and the collector would otherwise walk its objects again and again
    while partitions allocate (a Dask worker is started, not forked, and loads its own)."""
    from ..engine.registry import REGISTRY

    if len(REGISTRY) != _FROZEN_AT[0]:
        _FROZEN_AT[0] = len(REGISTRY)
        gc.freeze()


class PackedExecutor(cf.Executor):
    """``Client.get_executor()``, with each call's arguments and result shipped as one
    pickled ``bytes``.

    Dask walks a task's arguments looking for nested tasks and futures: a partition of
    4,000 ``(id, parameters)`` pairs cost 1.8 s of that walk for 0.5 s of evaluation
    (measured here); as one bytes object it costs the 40 ms of pickling.  Tasks are never
    hashed (``pure=False``): each submission is new work.  Cancelling a future cancels its task.
    """

    def __init__(self, client) -> None:
        self._inner = client.get_executor(pure=False)

    def submit(self, fn, /, *args, **kwargs) -> cf.Future:
        blob = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        inner = self._inner.submit(_run_packed, blob)
        outer: cf.Future = cf.Future()

        def relay(done: cf.Future) -> None:
            if outer.cancelled():
                return
            try:
                if done.cancelled():
                    outer.cancel()
                elif done.exception() is not None:
                    outer.set_exception(done.exception())
                else:
                    outer.set_result(pickle.loads(done.result()))
            except cf.InvalidStateError:  # cancelled meanwhile
                pass
            except Exception as exc:  # noqa: BLE001 - an unpicklable result is this task's failure
                with contextlib.suppress(cf.InvalidStateError):
                    outer.set_exception(exc)

        outer.add_done_callback(lambda f: inner.cancel() if f.cancelled() else None)
        inner.add_done_callback(relay)
        return outer

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait, cancel_futures=cancel_futures)


def _worker_threads(client) -> int:
    return sum(client.nthreads().values())


@contextlib.contextmanager
def dask_cluster(target: ClusterTarget, *, connect_timeout: float | str | None = None,
                 worker_wait: float = WORKER_WAIT) -> Iterator[DaskBatch]:
    """Connect to ``target`` (or start its local cluster) for the time of the block.

    A local cluster runs ``target.workers`` worker processes of one thread each (the
    evaluation holds the GIL: processes, not threads, use the cores), without a dashboard.

    Raises
    ------
    ConfigError
        Dask is not installed, the scheduler cannot be reached (within ``connect_timeout``,
        default Dask's ``distributed.comm.timeouts.connect``), or it has no worker within
        ``worker_wait`` seconds.
    CrdsError
        The cluster failed the batch (a partition's workers died more often than the
        scheduler's ``allowed-failures``, the scheduler went away).
    """
    distributed = _import_distributed()
    cluster = None
    client = None
    try:
        if target.address is None:
            try:
                # No dashboard, so no one to read the workers' statistical profiles: their
                # sampling thread (every 10 ms) cost 2-3 % of a worker's CPU a dataset
                # (benchmarks/bench_dask.py).  The nannies hand this setting to the workers.
                import dask.config  # installed with distributed

                with dask.config.set({"distributed.worker.profile.enabled": False}):
                    cluster = distributed.LocalCluster(
                        n_workers=target.workers, threads_per_worker=1, processes=True,
                        dashboard_address=None, silence_logs=logging.ERROR, host="127.0.0.1",
                        # no dashboard; its bare HTTP server (health checks) on a free local
                        # port, not on 8787, which another cluster may hold
                        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
            except Exception as exc:  # noqa: BLE001 - any start-up failure is one line
                raise ConfigError(f"--dask {target}: cannot start a local cluster: "
                                  f"{exc.__class__.__name__}: {exc}") from None
            client = distributed.Client(cluster, set_as_default=False)
        else:
            kwargs = {} if connect_timeout is None else {"timeout": connect_timeout}
            try:
                client = distributed.Client(target.address, set_as_default=False, **kwargs)
            except (OSError, ValueError, TypeError) as exc:
                first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
                raise ConfigError(f"--dask {target.address}: cannot reach the Dask scheduler ({first})") from None
        if not client.nthreads():
            try:
                client.wait_for_workers(1, timeout=worker_wait)
            except (TimeoutError, OSError):
                raise ConfigError(f"--dask {target}: the scheduler has no workers "
                                  f"(none joined within {worker_wait:g} s)") from None
        try:
            yield DaskBatch(client, target, max(1, _worker_threads(client)))
        except CrdsError:
            raise
        except Exception as exc:
            killed = getattr(getattr(distributed, "scheduler", None), "KilledWorker", None)
            if killed is not None and isinstance(exc, killed):
                raise CrdsError(f"--dask {target}: a partition's workers kept dying ({exc}); "
                                "the batch stopped") from exc
            if isinstance(exc, (OSError, distributed.comm.CommClosedError)):
                raise CrdsError(f"--dask {target}: lost the cluster ({exc.__class__.__name__}: {exc})") from exc
            raise
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


def _load_on_worker(context: str, cfg, observatory: str) -> str:
    from ..engine.registry import get_evaluator

    return get_evaluator(context, cfg, observatory).context.name


def preload(batch: DaskBatch, context: str, cfg, observatory: str) -> None:
    """Load ``context`` in every current worker's registry now (each once), so that the first
    partitions do not wait for it.  A failure is left for the partitions to report, per dataset."""
    with contextlib.suppress(Exception):
        batch.client.run(_load_on_worker, context, cfg, observatory)
