"""The batch engine: paths in, a stream of per-dataset results out.

``discover`` expands directories, globs, ``@listfile`` and ``-`` (stdin) lazily;
``run_batch`` reads headers and evaluates them in chunks, on a process pool
when there is enough work to pay for it, and yields results in input order
with a bounded number of chunks in flight, so memory stays flat however many
datasets stream through.  A batch is just a list of paths, so it shards
naturally (e.g. one ``run_batch`` per Dask partition).
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import sys
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field

from .config import Config
from .errors import CrdsError, HeaderError
from .instruments import bestrefs_parameters, dataset_header

__all__ = ["DATASET_SUFFIXES", "BatchSpec", "DatasetResult", "discover", "run_batch", "evaluate_paths",
           "is_error_answer", "plain_answer", "answers_json"]

#: Files a directory walk picks up; paths named explicitly are always read.
DATASET_SUFFIXES = (".fits", ".fit", ".fts", ".asdf")
#: Datasets per worker task: small at first, so that a short batch still uses every core
#: and results start at once, then doubling up to the largest, because each task costs
#: the process pool about half a millisecond of hand-offs (measured: 48-file tasks made a
#: 50,000-file batch 16 % slower than 256-file ones; beyond 512 nothing changes).
_FIRST_CHUNK = 32
_MAX_CHUNK = 512


#: NOT FOUND answers that the reference's bestrefs does not report as errors
_UNREPORTED = frozenset({"NOT FOUND n/a", "NOT FOUND No match found."})


def plain_answer(answer: object) -> object:
    """An answer as JSON shows it: tied leaves (tuples) become lists of their texts."""
    return [a if isinstance(a, str) else repr(a) for a in answer] if isinstance(answer, tuple) else answer


#: json.dumps(..., sort_keys=True) builds an encoder per call; this one is built once
_SORTED_JSON = json.JSONEncoder(sort_keys=True)


def answers_json(answers: dict[str, object]) -> str:
    """``{reftype: answer}`` as JSON text, keys sorted (the shape of expected_*.json)."""
    if tuple in map(type, answers.values()):
        answers = {t: plain_answer(a) for t, a in answers.items()}
    return _SORTED_JSON.encode(answers)


def is_error_answer(answer: object) -> bool:
    """True for a NOT FOUND that the reference's bestrefs reports as an error."""
    return (isinstance(answer, str) and answer.startswith("NOT FOUND")
            and answer not in _UNREPORTED)


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


@dataclass
class DatasetResult:
    """One dataset's outcome: answers, or one error line."""

    path: str
    instrument: str | None = None
    answers: dict[str, object] | None = None
    old_answers: dict[str, object] | None = None
    compared: tuple[str, ...] = ()                       # types compared with the old context
    error: str | None = None
    problems: list[str] = field(default_factory=list)   # per-type errors and bad references
    answers_json: str | None = None                      # with BatchSpec.render_json

    @property
    def failed(self) -> bool:
        return self.error is not None or bool(self.problems)


# ----------------------------------------------------------------- discovery

def _walk(directory: str) -> Iterator[str]:
    """Dataset files under ``directory``: each directory's own files in name order, then
    its subdirectories, depth first in name order.

    A directory's listing is held as plain names, sorted, not as ``DirEntry`` objects
    (a third of the memory: a flat archive directory of a million files holds ~0.1 GB
    of names while it is walked, not ~0.26 GB).
    """
    stack = [directory]
    while stack:
        current = stack.pop()
        files: list[str] = []
        subdirs: list[str] = []
        try:
            with os.scandir(current) as listing:
                for entry in listing:
                    if entry.is_dir(follow_symlinks=False):
                        subdirs.append(entry.name)
                    elif entry.name.lower().endswith(DATASET_SUFFIXES):
                        files.append(entry.name)
        except OSError:
            yield current  # reported as an unreadable dataset path by the reader
            continue
        prefix = os.path.join(current, "")
        files.sort()
        yield from map(prefix.__add__, files)
        subdirs.sort(reverse=True)
        stack.extend(prefix + name for name in subdirs)


def discover(specs: Iterable[str], stdin=None) -> Iterator[str]:
    """Dataset paths (text) from directories (recursive), globs, ``@listfile`` and ``-``.

    Lazy: nothing is listed before it is needed, so millions of paths stream.
    A path that names nothing is yielded as given, so that the reader reports it.
    Paths stay plain strings, as workers take them: a ``Path`` object per dataset
    would cost more than reading its header's first block.
    """
    for spec in specs:
        spec = os.fspath(spec)
        if spec == "-":
            for line in (stdin or sys.stdin):
                if line.strip():
                    yield from discover([line.strip()])
        elif spec.startswith("@"):
            try:
                with open(spec[1:], encoding="utf-8") as listing:
                    for line in listing:
                        if line.strip() and not line.lstrip().startswith("#"):
                            yield from discover([line.strip()])
            except OSError as exc:
                raise CrdsError(f"{spec[1:]}: cannot read list file ({exc.strerror})") from None
        elif os.path.isdir(spec):
            yield from _walk(spec)
        elif glob.has_magic(spec):
            for match in sorted(glob.iglob(spec, recursive=True)):
                yield from (_walk(match) if os.path.isdir(match) else [match])
        else:
            yield spec


# ---------------------------------------------------------------- evaluation

def _evaluator(cfg: Config, context: str, observatory: str):
    from .api import get_evaluator

    return get_evaluator(context, cfg, observatory)


def _evaluate_one(path: str, spec: BatchSpec, read_header, evaluator=None) -> DatasetResult:
    result = DatasetResult(path)
    try:
        if evaluator is None:
            evaluator = _evaluator(spec.cfg, spec.context, spec.observatory)
        # only the keywords the rules can use are read (the old context's are a subset or
        # checked the same way); JWST synonyms of a wanted keyword map to a wanted name too
        keep = evaluator.wants if spec.old_context is None else None
        raw = read_header(path, keep)
        header = bestrefs_parameters(dataset_header(raw, "ASDF" if path.lower().endswith(".asdf") else "FITS"))
        result.instrument, result.answers = evaluator.evaluate_dataset(header, spec.reftypes)
        if spec.old_context:
            # Only the types whose rules differ can change: the old context answers just those.
            changed = (spec.changed_types or {}).get(result.instrument, ())
            result.compared = tuple(t for t in changed if not spec.reftypes or t in spec.reftypes)
            result.old_answers = {}
            if result.compared:
                old = _evaluator(spec.cfg, spec.old_context, spec.observatory)
                result.old_answers = old.evaluate(header, result.compared)
    except HeaderError as exc:
        result.error = str(exc)
        return result
    except CrdsError as exc:
        result.error = f"{path}: {exc}"
        return result
    result.problems = _problems(path, result.answers, evaluator.context.bad_files)
    if spec.render_json:
        result.answers_json = answers_json(result.answers)
    return result


#: bad-files set -> {answer: its problem text, or '' for none}: the answers of a batch repeat
_PROBLEM_OF: dict[frozenset, dict[object, str]] = {}


def _problem_of(answer: object, bad: frozenset) -> str:
    """What is wrong with one answer ('' if nothing): a reported NOT FOUND, or a bad reference."""
    if is_error_answer(answer):
        return answer
    if type(answer) is str and not answer.startswith("NOT FOUND") and answer in bad:  # noqa: E721
        return f"recommended reference {answer!r} is designated scientifically invalid"
    return ""  # tied leaves (tuples) are neither errors nor names


def _problems(path: str, answers: dict[str, object], bad: frozenset) -> list[str]:
    """One line per distinct problem of a dataset's answers, naming every type it hit."""
    known = _PROBLEM_OF.get(bad)
    if known is None:
        _PROBLEM_OF.clear()  # one context per batch, usually
        known = _PROBLEM_OF[bad] = {}
    try:
        found = list(map(known.get, answers.values()))  # one C-level pass for the usual dataset
    except TypeError:  # an unhashable leaf: no memo
        found = [_problem_of(answer, bad) for answer in answers.values()]
    if None in found:
        if len(known) >= 1 << 16:
            known.clear()
        found = [known.setdefault(answer, _problem_of(answer, bad)) if problem is None else problem
                 for answer, problem in zip(answers.values(), found)]
    if not any(found):
        return []
    by_message: dict[str, list[str]] = {}
    for reftype, problem in zip(answers, found):
        if problem:
            by_message.setdefault(problem, []).append(reftype)
    return [f"{path}: {', '.join(types)}: {message}" for message, types in by_message.items()]


def evaluate_paths(paths: Sequence[str], spec: BatchSpec) -> list[DatasetResult]:
    """Read and evaluate a chunk of datasets (runs in a worker process or thread)."""
    from .headers import read_header

    try:
        evaluator = _evaluator(spec.cfg, spec.context, spec.observatory)
    except CrdsError:
        evaluator = None  # each dataset reports the failure itself
    return [_evaluate_one(path, spec, read_header, evaluator) for path in paths]


def _chunks(paths: Iterable[str | os.PathLike], first: int = _FIRST_CHUNK,
            largest: int = _MAX_CHUNK) -> Iterator[list[str]]:
    """Lists of paths, of ``first`` paths, then twice as many each time up to ``largest``."""
    size = first
    chunk: list[str] = []
    for path in paths:
        chunk.append(os.fspath(path))
        if len(chunk) >= size:
            yield chunk
            chunk = []
            size = min(2 * size, largest)
    if chunk:
        yield chunk


async def run_batch(paths: Iterable[str | os.PathLike], spec: BatchSpec, jobs: int | None = None,
                    executor: Executor | None = None) -> AsyncIterator[DatasetResult]:
    """Evaluate every dataset in ``paths``; yield results in input order.

    Parameters
    ----------
    paths : iterable of str or path-like
        Consumed lazily.
    spec : BatchSpec
        Context, configuration and types.
    jobs : int, optional
        Worker processes (default: the machine's cores).  1 evaluates in a
        thread of this process, which is also used for batches of one chunk.
    executor : Executor, optional
        Use this pool instead of starting one (e.g. a Dask-backed executor).
    """
    jobs = max(1, jobs or os.cpu_count() or 1)
    loop = asyncio.get_running_loop()
    chunks = _chunks(paths)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if second is None or (jobs == 1 and executor is None):
        # small batch or one job: no process start-up cost
        pending = [first] + ([second] if second else [])
        for chunk in pending:
            for result in await asyncio.to_thread(evaluate_paths, chunk, spec):
                yield result
        for chunk in chunks:
            for result in await asyncio.to_thread(evaluate_paths, chunk, spec):
                yield result
        return

    own_pool = executor is None
    pool = executor or ProcessPoolExecutor(max_workers=jobs)
    window: asyncio.Queue = asyncio.Queue()
    limit = 2 * jobs  # chunks in flight: bounded memory, both cores busy

    def submit(chunk: list[str]) -> None:
        window.put_nowait(asyncio.wrap_future(pool.submit(evaluate_paths, chunk, spec), loop=loop))

    try:
        submit(first)
        submit(second)
        exhausted = False
        while not window.empty():
            while not exhausted and window.qsize() < limit:
                chunk = next(chunks, None)
                if chunk is None:
                    exhausted = True
                else:
                    submit(chunk)
            for result in await window.get_nowait():
                yield result
    finally:
        while not window.empty():
            window.get_nowait().cancel()
        if own_pool:
            pool.shutdown(wait=True, cancel_futures=True)
