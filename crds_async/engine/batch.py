"""The batch engine: paths in, a stream of per-dataset results out.

:func:`~.discover.discover` expands directories, globs, ``@listfile`` and ``-`` (stdin)
lazily; ``run_batch`` reads headers (or takes archive parameter sets) and evaluates them,
through :func:`.datasets.answer_dataset`, in chunks, on a process pool
when there is enough work to pay for it, and yields results in input order
with a bounded number of chunks in flight, so memory stays flat however many
datasets stream through.  With a :class:`~.journal.Journal`, finished chunks are recorded
durably and a rerun replays them instead of evaluating them again (``--journal``).
Concurrent steps (journaling a chunk while the input is read ahead) run in one
``asyncio.TaskGroup`` (:func:`crds_async.tasks.run_all`); every blocking call (the
directory walk, evaluation, journal I/O, the pool's shutdown) runs off the event loop.  A batch is just a list of paths, so it shards
naturally (e.g. one ``run_batch`` per Dask partition).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass

from ..config import Config
from ..errors import ConfigError, CrdsError, HeaderError
from ..headers import read_header
from ..sources.deferred import Deferred, prefetch
from ..sources.dump_spans import DumpSpan, expand_spans
from ..tasks import run_all
from .datasets import answer_dataset, screening_keep
from .discover import DATASET_SUFFIXES, discover  # noqa: F401 - part of the batch API
from .journal import Journal, run_identity
from .registry import get_evaluator
from .results import AnswerProblems, DatasetResult, answers_json

__all__ = ["DATASET_SUFFIXES", "BatchSpec", "discover", "batch_observatory", "run_batch", "evaluate_paths",
           "run_tallied", "evaluate_tallied", "dataset_error"]
#: Datasets per worker task: small at first, so that a short batch still uses every core
#: and results start at once, then doubling up to the largest, because each task costs
#: the process pool about half a millisecond of hand-offs (measured: 48-file tasks made a
#: 50,000-file batch 16 % slower than 256-file ones; beyond 512 nothing changes).
_FIRST_CHUNK = 32
_MAX_CHUNK = 512


@dataclass(frozen=True)
class BatchSpec:
    """What every worker needs to evaluate a chunk of datasets (picklable)."""

    cfg: Config
    context: str
    observatory: str
    reftypes: tuple[str, ...] | None = None
    old_context: str | None = None
    #: with old_context: per instrument, the only types whose rules differ
    changed_types: dict[str, tuple[str, ...]] | None = None
    #: workers also render each dataset's answers as JSON text (:func:`answers_json`), so
    #: that the one process writing the output is not the bottleneck of a many-core batch
    render_json: bool = False
    #: with no reftypes, answer the types ``crds bestrefs`` does (JWST: screened by the CRDSCFG
    #: tables); False answers every type of each instrument
    screen_types: bool = False


def batch_observatory(context: str | None, cfg: Config, leading: Sequence) -> str:
    """The observatory of a batch: its context's, CRDS_OBSERVATORY, or else that of the first
    of ``leading`` items (dataset paths or ``(id, parameters)``) that names a known instrument.

    Unreadable datasets are passed over here (the batch reports them itself).

    Raises
    ------
    ConfigError
        None names one; the message says why, from the first item that failed.
    """
    from ..instruments import header_instrument, observatory_of_instrument
    from ..rules.contexts import observatory_of_spec

    observatory = (observatory_of_spec(context) if context else None) or cfg.observatory
    why = ""
    for item in leading if observatory is None else ():
        name, source = item if type(item) is tuple else (item, item)
        try:
            if isinstance(source, Deferred):
                source = source.parameters()
            instrument = header_instrument(source if type(item) is tuple else read_header(source))
        except Exception as exc:  # noqa: BLE001 - the batch will report this dataset itself
            why = why or f" ({str(exc).splitlines()[0]})"
            continue
        observatory = observatory_of_instrument(instrument or "")
        if observatory is not None:
            break
        why = why or f" ({name}: {'instrument ' + repr(instrument) if instrument else 'no instrument'})"
    if observatory is None:
        raise ConfigError(f"cannot tell the observatory{why}: pass --context (e.g. hst_0729.pmap) "
                          "or set CRDS_OBSERVATORY")
    return observatory


# ---------------------------------------------------------------- evaluation

def _evaluator(spec: BatchSpec, context: str):
    return get_evaluator(context, spec.cfg, spec.observatory)


#: where a dataset's observation date is, in the order they are tried (JWST/Roman, then HST)
_DATE_KEYS = ("META.OBSERVATION.DATE", "DATE-OBS")


def _observed(parameters) -> str | None:
    """The dataset's observation date text (reports plot changes over it), or None."""
    for key in _DATE_KEYS:
        value = parameters.get(key)
        if value not in (None, "", "UNDEFINED"):
            return str(value)
    return None


def dataset_error(name: str, exc: Exception) -> str:
    """The one error line of a dataset that could not be read or evaluated: a header's
    error names its file already; another CRDS error gets the dataset's name; anything
    else (a bug, an odd input) says what it was."""
    if isinstance(exc, HeaderError):
        return str(exc)
    if isinstance(exc, CrdsError):
        return f"{name}: {exc}"
    return f"{name}: unexpected {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _evaluate_one(item, spec: BatchSpec, evaluator, problems: AnswerProblems | None,
                  old_evaluator=None) -> DatasetResult:
    """One dataset's result; whatever goes wrong with it is its error, never the batch's.

    ``evaluator`` (``old_evaluator``): the context's (the old context's), loaded once per
    task; None loads it here, so that a load's failure is this dataset's error.
    """
    if type(item) is tuple:  # (dataset id, its parameters): an archive's or a dump's dataset
        name, source = item
    else:
        name = source = item
    result = DatasetResult(name)
    try:
        if evaluator is None:
            evaluator = _evaluator(spec, spec.context)  # raises the load's error, for this dataset
        # only the keywords the rules can use are read (the old context's are a subset or
        # checked the same way); JWST synonyms of a wanted keyword map to a wanted name too
        keep = None
        if spec.old_context is None:
            keep = screening_keep(evaluator) if spec.screen_types else evaluator.wants
        found = answer_dataset(source, evaluator, spec.reftypes, keep=keep,
                               screen="cli" if spec.screen_types else None)
        result.instrument, result.answers = found.instrument, found.answers
        result.observed = _observed(found.parameters)
        if spec.old_context:
            # Only the types whose rules differ can change: the old context answers just those.
            changed = (spec.changed_types or {}).get(result.instrument, ())
            asked = found.reftypes
            result.compared = changed if asked is None else tuple(t for t in changed if t in asked)
            result.old_answers = {}
            if result.compared:
                old = old_evaluator or _evaluator(spec, spec.old_context)
                result.old_answers = old.evaluate(found.parameters, result.compared)
    except Exception as exc:  # noqa: BLE001 - a bug or an odd input: this dataset's error, one line
        result.error = dataset_error(name, exc)
        return result
    if problems is not None:
        result.problems = problems(name, result.answers)
    if spec.render_json:
        result.answers_json = answers_json(result.answers)
    return result


def evaluate_paths(items: Sequence, spec: BatchSpec) -> list[DatasetResult]:
    """Read and evaluate a chunk of datasets (runs in a worker process or thread).

    An item is a dataset file path, or ``(dataset id, parameters)``.
    """
    try:
        evaluator = _evaluator(spec, spec.context)
        problems = AnswerProblems(evaluator.context.bad_files)
    except CrdsError:
        evaluator = problems = None  # each dataset reports the failure itself
    old_evaluator = None
    if spec.old_context:
        try:
            old_evaluator = _evaluator(spec, spec.old_context)
        except CrdsError:
            pass  # each dataset with a changed type reports the failure itself
    # e.g. a dump's lines in one read; a source that cannot be read is its dataset's error,
    # a server that fails after its retries the batch's (FetchError)
    prefetch(item[1] for item in items if type(item) is tuple)
    return [_evaluate_one(item, spec, evaluator, problems, old_evaluator) for item in items]


def _chunks(items: Iterable, first: int = _FIRST_CHUNK, largest: int = _MAX_CHUNK) -> Iterator[list]:
    """Lists of items, of ``first`` items, then twice as many each time up to ``largest``."""
    size = first
    chunk: list = []
    for item in items:
        chunk.append(item if type(item) is tuple else os.fspath(item))
        if len(chunk) >= size:
            yield chunk
            chunk = []
            size = min(2 * size, largest)
    if chunk:
        yield chunk


def _exit_with_parent(parent: int) -> None:
    """Pool worker initializer: end the worker when the batch's process is gone (``kill -9``
    leaves no orphan workers holding the cores)."""
    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="crds_async-parent-watch", daemon=True).start()


async def _record(journal, chunk: list, results: list) -> None:
    """Journal a finished chunk (file I/O and fsync: in a thread)."""
    await asyncio.to_thread(journal.append, chunk, results)


async def _nothing() -> None:
    return None


async def run_batch(items: Iterable, spec: BatchSpec, jobs: int | None = None,
                    executor: Executor | None = None, *, first_chunk: int = _FIRST_CHUNK,
                    max_chunk: int = _MAX_CHUNK, journal: Journal | None = None) -> AsyncIterator[DatasetResult]:
    """Evaluate every dataset in ``items``; yield results in input order.

    Consume it under ``contextlib.aclosing`` so that an early exit shuts its pool down.

    Parameters
    ----------
    items : iterable of str, path-like or (dataset id, parameters)
        Dataset files, or archive parameter sets; consumed lazily (in a thread: a
        directory walk never blocks the event loop).
    spec : BatchSpec
        Context, configuration and types.
    jobs : int, optional
        Worker processes (default: the machine's cores).  1 evaluates in a
        thread of this process, which is also used for batches of one chunk.
    executor : Executor, optional
        Use this pool instead of starting one (e.g. a Dask-backed executor); ``jobs`` then
        says how many workers it has (chunks in flight: twice that).
    first_chunk, max_chunk : int
        Datasets per task: the first, doubling up to the largest (a cluster's scheduler
        wants thousands per task).
    journal : Journal, optional
        Resume from it and record into it (:mod:`.journal`): it is started here with the
        run's identity (:func:`.journal.run_identity`; another run's journal raises
        ``ConfigError``), its chunks are replayed (their items taken from ``items`` and
        checked), then each finished chunk is appended, durably, before its results are
        yielded.  The caller closes it, or removes it once the outputs are complete.
    """
    source = iter(items)
    if journal is not None:
        await asyncio.to_thread(journal.start, run_identity(spec))
        while (replayed := await asyncio.to_thread(journal.replay, source)) is not None:
            for result in replayed:
                yield result
    done = _run_chunks(_chunks(source, first_chunk, max_chunk), evaluate_paths, (spec,), jobs, executor,
                       after=None if journal is None else functools.partial(_record, journal))
    async with contextlib.aclosing(done) as finished:
        async for _chunk, results in finished:
            for result in results:
                yield result


def evaluate_tallied(items: Sequence, spec: BatchSpec, tally: Callable[[list[DatasetResult]], object]) -> object:
    """A chunk's results summed up where they were evaluated: ``tally(evaluate_paths(...))``;
    a dump's span among ``items`` is listed here (:meth:`~crds_async.sources.dump_spans.DumpSpan.datasets`)."""
    return tally(evaluate_paths(expand_spans(items), spec))


async def run_tallied(items: Iterable, spec: BatchSpec, tally: Callable[[list[DatasetResult]], object],
                      jobs: int | None = None, executor: Executor | None = None, *,
                      first_chunk: int = _FIRST_CHUNK, max_chunk: int = _MAX_CHUNK,
                      spans: Sequence[DumpSpan] | None = None) -> AsyncIterator[tuple[int, object]]:
    """:func:`run_batch` for a caller that needs each chunk's sum, not its results:
    yields ``(datasets in the chunk, tally(chunk's results))`` in input order.

    ``tally`` (picklable) runs where the chunk was evaluated.  A campaign that only
    counts and lists (``--print-affected``) then never ships a dataset's answers to this
    process, which would otherwise spend a third of a worker's time per dataset receiving
    and bookkeeping them: on a cluster that one process, not the workers, bounds the
    rate (measured: ``benchmarks/bench_dask.py``).  No journal: a journal keeps results.

    ``spans``: the datasets as a dump's spans (``DumpItems.spans``), listed by the workers;
    ``items`` are then not read.
    """
    if spans is not None:
        chunks = _span_chunks(spans, first_chunk, max_chunk)
    else:
        chunks = _chunks(iter(items), first_chunk, max_chunk)
    done = _run_chunks(chunks, evaluate_tallied, (spec, tally), jobs, executor)
    async with contextlib.aclosing(done) as finished:
        async for chunk, summary in finished:
            yield sum(item.count if type(item) is DumpSpan else 1 for item in chunk), summary


def _span_chunks(spans: Iterable[DumpSpan], first: int, largest: int) -> Iterator[list[DumpSpan]]:
    """Runs of consecutive spans of about ``first`` datasets, then twice as many each time up
    to ``largest`` (a span is never cut)."""
    size, chunk, held = first, [], 0
    for span in spans:
        chunk.append(span)
        held += span.count
        if held >= size:
            yield chunk
            chunk, held = [], 0
            size = min(2 * size, largest)
    if chunk:
        yield chunk


async def _run_chunks(chunks: Iterator[list], task: Callable, args: tuple, jobs: int | None,
                      executor: Executor | None, *, after: Callable | None = None) -> AsyncIterator[tuple[list, object]]:
    """``(chunk, task(chunk, *args))`` for each chunk, in order, with a bounded window of
    chunks in flight on a pool (or, for one chunk or one job, in a thread of this process);
    ``after(chunk, output)`` (a coroutine function) runs while the next chunks are read."""
    jobs = max(1, jobs or os.cpu_count() or 1)
    loop = asyncio.get_running_loop()

    async def next_chunk() -> list | None:
        return await asyncio.to_thread(next, chunks, None)

    async def finish(chunk: list, output) -> None:
        if after is not None:
            await after(chunk, output)

    first = await next_chunk()
    if first is None:
        return
    second = await next_chunk()
    if second is None or (jobs == 1 and executor is None):
        # small batch or one job: no process start-up cost
        chunk, ahead = first, second
        while chunk is not None:
            output = await asyncio.to_thread(task, chunk, *args)
            # journal this chunk while the input is read ahead
            _, following = await run_all([finish(chunk, output),
                                          next_chunk() if ahead is not None else _nothing()])
            yield chunk, output
            chunk, ahead = ahead, following
        return

    own_pool = executor is None
    pool = executor or ProcessPoolExecutor(max_workers=jobs, initializer=_exit_with_parent,
                                           initargs=(os.getpid(),))
    window: collections.deque[tuple[list, asyncio.Future]] = collections.deque()
    limit = 2 * jobs  # chunks in flight: bounded memory, both cores busy
    exhausted = False

    def submit(chunk: list) -> None:
        window.append((chunk, asyncio.wrap_future(pool.submit(task, chunk, *args), loop=loop)))

    async def top_up() -> None:
        nonlocal exhausted
        while not exhausted and len(window) < limit:
            chunk = await next_chunk()
            if chunk is None:
                exhausted = True
            else:
                submit(chunk)

    try:
        submit(first)
        submit(second)
        await top_up()
        while window:
            chunk, pending = window.popleft()
            output = await pending
            # the finished chunk is journaled while the window is refilled: one task group
            await run_all([finish(chunk, output), top_up()])
            yield chunk, output
    finally:
        for _chunk, pending in window:
            pending.cancel()
        if own_pool:
            # waiting for the workers is blocking: not on the event loop
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
