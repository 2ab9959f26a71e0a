"""Best references computed by a CRDS server (``crds-batch bestrefs -r/--remote-bestrefs``).

The reference's ``crds bestrefs -r`` (``CRDS_MODE=remote``) reads each dataset's header
itself, chooses the types to ask for as it does locally (JWST: screened by the CRDSCFG
tables), and asks the server for the answers, one ``get_best_references`` call per
dataset.  Here the headers are read the engine's way (:func:`.datasets.dataset_parameters`,
off the event loop, each page of datasets in its own thread), and sent in pages of the
server's ``max_headers_per_rpc`` through ``get_best_references_by_header_map`` (one call
per page and set of asked types), a bounded number of pages in flight; results come out
in input order and look as the local batch's (:func:`.batch.run_batch`): same answers,
same error and problem lines, same observation dates.

- A dataset whose header cannot be read is that dataset's error (no call is made for it).
- The server's ``"NOT FOUND <why>"`` for one id is that dataset's error, ``"<name>: <why>"``,
  the line the local batch prints for the same failure.
- A server that cannot be reached or fails a call after ``CRDS_CLIENT_RETRY_COUNT`` attempts
  raises :class:`~crds_async.errors.FetchError` (``crds-batch`` exits 3): the batch stops.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping

from ..config import Config
from ..errors import ConfigError, ServiceError
from ..fetch.client import DEFAULT_PAGE_SIZE, CrdsClient, announced_page_size, default_server_url
from ..instruments.jwst_types import applicable_reftypes
from ..rules.contexts import is_context_spec, observatory_of_spec, resolve_context
from ..sources.deferred import prefetch
from .batch import BatchSpec, _chunks, _observed, dataset_error
from .datasets import dataset_parameters
from .results import AnswerProblems, DatasetResult, answers_json

__all__ = ["DEFAULT_PAGE_SIZE", "IN_FLIGHT", "resolve_remote_context", "run_remote", "server_bad_files"]

#: pages read, sent or answered at a time
IN_FLIGHT = 4
#: header keywords never sent: no rule reads them, and they are most of a long header's text
_UNSENT = frozenset({"COMMENT", "HISTORY", ""})


def _pmap_answer(value: object, asked: str, method: str) -> str:
    if not isinstance(value, str) or not value.endswith(".pmap") or os.path.basename(value) != value:
        raise ServiceError(f"{method} for {asked!r} answered {value!r}, which is not a .pmap name")
    return value


async def _server_info(client: CrdsClient, observatory: str) -> dict:
    """The server's configuration; a server of another observatory is refused, as the
    reference's client refuses it."""
    info = await client.get_server_info()
    served = str(info.get("observatory") or observatory).lower()
    if served != observatory:
        raise ConfigError(f"the CRDS server at {client.server_url} serves {served!r}, not {observatory!r}: "
                          "set CRDS_SERVER_URL to the observatory's server (or CRDS_OBSERVATORY)")
    return info


async def _resolve(context: str, cfg: Config, observatory: str, url: str) -> str:
    async with CrdsClient(url, cfg) as client:
        info = await _server_info(client, observatory)
        tag = context.rpartition("-")[2] if "-" in context else context
        if context == "build" or tag == "build":
            found = await client.call("get_default_context", observatory, "build")
            return _pmap_answer(found, context, "get_default_context")
        try:
            # -operational, -latest, -edit, -versions, latest: the server's own configuration
            return resolve_context(context, info)
        except ConfigError:
            pass
        # a date: the server's context in use then, as the reference's client asks it
        found = await client.call("get_context_by_date", context, observatory)
        return _pmap_answer(found, context, "get_context_by_date")


def resolve_remote_context(context: str, cfg: Config, observatory: str) -> str:
    """The ``.pmap`` name the server answers ``context`` under.

    A ``.pmap`` name (or a path to one) is used as is; a symbolic name (``hst-operational``,
    ``latest``, ``jwst-edit``, ``hst-2024-01-01T00:00:00``, ``build``) is resolved by the
    server at ``CRDS_SERVER_URL``.

    Raises
    ------
    ConfigError
        ``context`` is not a context name, or the server is another observatory's.
    FetchError
        The server cannot be reached, or answers an error (exit status 3).
    """
    name = os.path.basename(context) if context.endswith(".pmap") else context
    if name.endswith(".pmap"):
        return resolve_context(name, {})  # checks it is a plain .pmap name
    if not is_context_spec(name):
        raise ConfigError(f"{context!r} is not a context: use a .pmap name or <obs>-operational/-latest/"
                          "-edit/-versions or <obs>-<date>")
    spec_obs = observatory_of_spec(name)
    if spec_obs is not None and spec_obs != observatory:
        raise ConfigError(f"context {context!r} is not a {observatory} context")
    return asyncio.run(_resolve(name, cfg, observatory, default_server_url(cfg, observatory)))


def _bad_files_of(info: Mapping) -> frozenset[str]:
    """The bad references of a server's configuration (as the reference's client reads them)."""
    bad = info.get("bad_files_list") or ()
    return frozenset(str(f) for f in bad) if isinstance(bad, list) else frozenset()


async def _server_bad_files(cfg: Config, observatory: str, url: str) -> frozenset[str]:
    async with CrdsClient(url, cfg) as client:
        return _bad_files_of(await _server_info(client, observatory))


def server_bad_files(cfg: Config, observatory: str, server_url: str | None = None) -> frozenset[str]:
    """The references the server's configuration names scientifically invalid: what
    :func:`run_remote` judges answers by, for a caller that narrows them afterwards.

    Raises
    ------
    ConfigError
        The server is another observatory's.
    FetchError
        The server cannot be reached (exit status 3).
    """
    return asyncio.run(_server_bad_files(cfg, observatory, server_url or default_server_url(cfg, observatory)))


# ---------------------------------------------------------------- one page


class _Pending:
    """One dataset of a page: its result, and (when its header was read) what to send."""

    __slots__ = ("result", "header", "reftypes")

    def __init__(self, result: DatasetResult, header: dict | None = None,
                 reftypes: tuple[str, ...] | None = None) -> None:
        self.result, self.header, self.reftypes = result, header, reftypes


def _prepare(item, spec: BatchSpec) -> _Pending:
    """Read one dataset's header (its problem becomes its error) and choose the types to ask."""
    if type(item) is tuple:  # (dataset id, its parameters): an archive's or a dump's dataset
        name, source = item
    else:
        name = source = os.fspath(item)
    result = DatasetResult(name)
    try:
        parameters = dataset_parameters(source)  # a source's own error (an exception) is raised
        reftypes = spec.reftypes
        if reftypes is None and spec.screen_types and spec.observatory == "jwst":
            screened = applicable_reftypes(parameters)
            reftypes = None if screened is None else tuple(sorted(screened))
        result.observed = _observed(parameters)
    except Exception as exc:  # noqa: BLE001 - an odd input: this dataset's error, one line
        result.error = dataset_error(name, exc)
        return _Pending(result)
    header = {key: value for key, value in parameters.items() if key not in _UNSENT}
    return _Pending(result, header, reftypes)


def _prepare_page(page: list, spec: BatchSpec) -> list[_Pending]:
    prefetch(item[1] for item in page if type(item) is tuple)  # e.g. a dump's lines: one read
    return [_prepare(item, spec) for item in page]


def _answers_of(value: dict) -> dict[str, object]:
    """A server's answers as the local engine's: tied answers (JSON lists) as tuples."""
    return {str(t): tuple(a) if isinstance(a, list) else a for t, a in value.items()}


async def _answer_page(client: CrdsClient, page: list, spec: BatchSpec, problems: AnswerProblems,
                       context: str) -> list[DatasetResult]:
    pending = await asyncio.to_thread(_prepare_page, page, spec)
    groups: dict[tuple[str, ...] | None, dict[str, _Pending]] = {}
    for index, entry in enumerate(pending):
        if entry.header is not None:
            # ids are the page positions: dataset names may repeat, and stay off the wire
            groups.setdefault(entry.reftypes, {})[str(index)] = entry
    for reftypes, members in groups.items():
        answered = await client.call("get_best_references_by_header_map", context,
                                     {key: entry.header for key, entry in members.items()},
                                     list(reftypes) if reftypes is not None else None)
        if not isinstance(answered, dict):
            raise ServiceError(f"{client.server_url}: get_best_references_by_header_map answered "
                               f"{type(answered).__name__}, not an object of id: answers")
        for key, entry in members.items():
            result, value = entry.result, answered.get(key)
            if isinstance(value, dict):
                result.answers = _answers_of(value)
                result.instrument = str(entry.header.get("INSTRUME", "")).lower() or None
                result.problems = problems(result.path, result.answers)
                if spec.render_json:
                    result.answers_json = answers_json(result.answers)
            elif isinstance(value, str):
                why = value[len("NOT FOUND"):].strip() if value.startswith("NOT FOUND") else value
                result.error = f"{result.path}: {why}"
            else:
                raise ServiceError(f"{client.server_url}: get_best_references_by_header_map gave no "
                                   f"answers for {result.path!r}")
            entry.header = None  # the page's headers are not kept past their answers
    return [entry.result for entry in pending]


# ---------------------------------------------------------------- the batch


async def run_remote(items: Iterable, spec: BatchSpec, *, in_flight: int = IN_FLIGHT,
                     server_url: str | None = None) -> AsyncIterator[DatasetResult]:
    """Best references of every dataset in ``items`` from the server; results in input order.

    Consume it under ``contextlib.aclosing`` so that an early exit cancels the pages in flight.

    Parameters
    ----------
    items : iterable of str, path-like or (dataset id, parameters)
        Dataset files, or archive parameter sets (consumed lazily, in a thread).
    spec : BatchSpec
        ``context`` (a ``.pmap`` name the server knows: :func:`resolve_remote_context`),
        ``observatory``, ``reftypes``, ``screen_types``, ``render_json``, ``cfg`` (server URL,
        retries, timeout).
    in_flight : int
        Pages being read, asked or answered at a time.
    server_url : str, optional
        Default: ``CRDS_SERVER_URL``, else the observatory's server.

    Raises
    ------
    FetchError
        The server cannot be reached, or a call fails after its retries.
    ConfigError
        The server is another observatory's.
    """
    url = server_url or default_server_url(spec.cfg, spec.observatory)
    context = os.path.basename(spec.context)
    async with CrdsClient(url, spec.cfg) as client:
        info = await _server_info(client, spec.observatory)
        # a null announces none here (this path has always taken it so), as an absent one does
        size = (DEFAULT_PAGE_SIZE if info.get("max_headers_per_rpc") is None
                else announced_page_size(info, client.server_url))
        # the bad references of the server's configuration (as the reference's client reads them)
        problems = AnswerProblems(_bad_files_of(info))
        pages = _chunks(items, size, size)
        window: deque[asyncio.Task] = deque()
        exhausted = False

        async def top_up() -> None:
            nonlocal exhausted
            while not exhausted and len(window) < max(1, in_flight):
                page = await asyncio.to_thread(next, pages, None)
                if page is None:
                    exhausted = True
                else:
                    window.append(asyncio.ensure_future(_answer_page(client, page, spec, problems, context)))

        try:
            await top_up()
            while window:
                results = await window.popleft()
                await top_up()
                for result in results:
                    yield result
        finally:
            for task in window:
                task.cancel()
            if window:
                await asyncio.gather(*window, return_exceptions=True)
