"""Dataset parameters from a CRDS server's archive RPCs, paged and several pages in flight.

The reference's bestrefs asks ``get_dataset_ids(context, instrument, datasets_since)`` for
an instrument's ids, then ``get_dataset_headers_by_id(context, ids)`` in pages of the
server's ``max_headers_per_rpc`` (500 when the server does not say), one page at a time.
These functions do the same with a bounded number of pages in flight.  Each call is
retried by :class:`~crds_async.fetch.client.CrdsClient` (``CRDS_CLIENT_RETRY_COUNT``,
``CRDS_CLIENT_RETRY_DELAY_SECONDS``).
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ..config import Config
from ..engine.inputs import Selection, iterate_async
from ..errors import HeaderError, ServiceError
from ..fetch.client import DEFAULT_PAGE_SIZE, CrdsClient, announced_page_size, default_server_url
from ..sources.deferred import Deferred

__all__ = ["DEFAULT_PAGE_SIZE", "page_size", "dataset_ids", "dataset_headers", "instrument_headers",
           "ServerItems", "server_items", "matching_two_part_id", "ServedSource", "ServedDataset"]

async def page_size(client: CrdsClient) -> int:
    """The server's ``max_headers_per_rpc`` (``DEFAULT_PAGE_SIZE`` when it names none)."""
    return announced_page_size(await client.get_server_info(), client.server_url)


def _since_of(since: str | Mapping[str, str] | None, instrument: str) -> str | None:
    if isinstance(since, Mapping):
        return since.get(instrument.lower())
    return since


async def dataset_ids(client: CrdsClient, context: str, instruments: Iterable[str],
                      since: str | Mapping[str, str] | None = None) -> list[str]:
    """Sorted ids of the instruments' datasets.

    ``since`` is one ``"YYYY-MM-DD HH:MM:SS"`` cut-off for all, or one per lower-case
    instrument (an instrument without one gets every date).
    """
    context = os.path.basename(context)
    found: list[str] = []
    for instrument in instruments:
        ids = await client.call("get_dataset_ids", context, instrument, _since_of(since, instrument))
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ServiceError(f"{client.server_url}: get_dataset_ids for {instrument!r} is not a list of ids")
        found.extend(ids)
    return sorted(found)


async def dataset_headers(client: CrdsClient, context: str, ids: Sequence[str], *, per_page: int | None = None,
                          in_flight: int = 4) -> AsyncIterator[tuple[str, dict | str]]:
    """``(id, parameters)`` for ``ids``, fetched in pages, ``in_flight`` pages at a time.

    Pages come out in the order of ``ids``; within a page, ids in sorted order.  An id the
    server does not know is absent (as from the reference's client); a dataset whose
    parameters the server could not give comes with its message (a ``str``).
    """
    context = os.path.basename(context)
    per_page = per_page or await page_size(client)
    pages = (list(ids[i:i + per_page]) for i in range(0, len(ids), per_page))
    pending: deque[asyncio.Task] = deque()

    def start_next() -> None:
        page = next(pages, None)
        if page is not None:
            pending.append(asyncio.ensure_future(client.call("get_dataset_headers_by_id", context, page)))

    try:
        for _ in range(max(1, in_flight)):
            start_next()
        while pending:
            headers = await pending.popleft()
            start_next()
            if not isinstance(headers, dict):
                raise ServiceError(f"{client.server_url}: get_dataset_headers_by_id is not an object of id: header")
            for key in sorted(headers):
                value = headers[key]
                if not isinstance(value, (dict, str)):
                    raise ServiceError(f"{client.server_url}: header of {key!r} is neither an object nor a message")
                yield key, value
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


async def instrument_headers(client: CrdsClient, context: str, instruments: Iterable[str],
                             since: str | Mapping[str, str] | None = None, *, in_flight: int = 4,
                             ) -> AsyncIterator[tuple[str, dict | str]]:
    """``(id, parameters)`` of every dataset of ``instruments`` (see :func:`dataset_ids`), in id order."""
    ids = await dataset_ids(client, context, instruments, since)
    async for item in dataset_headers(client, context, ids, in_flight=in_flight):
        yield item


# ----------------------------------------------------------------------------- deferred parameters


@dataclass(frozen=True)
class ServedSource:
    """A server's dataset parameters as a batch worker asks for them (picklable, shared by
    the items of a batch)."""

    url: str
    context: str
    per_page: int
    cfg: Config


class ServedDataset(Deferred):
    """One dataset of a server's archive, its parameters asked for by the process that
    evaluates it: a batch task carries ids, and its worker asks the server for them, a page
    at a time (:meth:`prefetch`), so neither the batch's process nor a cluster's scheduler
    carries a million parameter sets."""

    __slots__ = ("source", "dataset_id", "found")

    def __init__(self, source: ServedSource, dataset_id: str) -> None:
        self.source, self.dataset_id, self.found = source, dataset_id, None

    def __reduce__(self):
        return ServedDataset, (self.source, self.dataset_id)

    def __repr__(self) -> str:
        return f"ServedDataset({self.source.url!r}, {self.dataset_id!r})"

    def identity(self) -> bytes:
        return f"{self.source.url}\0{self.source.context}\0{self.dataset_id}".encode("utf-8", "surrogateescape")

    @classmethod
    def prefetch(cls, group: list) -> None:
        """Ask the server for the group's parameters, in pages, several in flight.

        Raises
        ------
        FetchError
            The server failed after its retries: the batch's failure, as when the batch's
            own process pages the server.
        """
        by_source: dict[ServedSource, list[ServedDataset]] = {}
        for dataset in group:
            if dataset.found is None:
                by_source.setdefault(dataset.source, []).append(dataset)
        for source, datasets in by_source.items():
            headers = asyncio.run(_fetch_headers(source, [d.dataset_id for d in datasets]))
            for dataset in datasets:
                dataset.found = headers.get(dataset.dataset_id, "NOT FOUND (the server answered nothing for it)")

    def parameters(self) -> dict:
        if self.found is None:
            ServedDataset.prefetch([self])
        value = self.found
        if isinstance(value, str):
            raise HeaderError(f"{self.dataset_id}: the server gave no parameters: {value}")
        return value


async def _fetch_headers(source: ServedSource, ids: list[str]) -> dict[str, dict | str]:
    async with CrdsClient(source.url, source.cfg) as client:
        return {key: value async for key, value in
                dataset_headers(client, source.context, ids, per_page=source.per_page)}


# ----------------------------------------------------------------------------- batch items


def _normalize_jwst_id_part(part: str) -> str:
    if "_" in part and "." not in part:
        fileset, _, detector = part.rpartition("_")
        return f"{fileset}.{detector}"
    return part


def matching_two_part_id(dataset: str, found: Iterable[str]) -> str:
    """The compound id the server's answer holds for a command-line id, as the reference
    matches them (a one-part id: the first found id containing it; else the id itself)."""
    parts = [_normalize_jwst_id_part(part) for part in dataset.split(":")]
    if len(parts) == 1:
        matching = sorted(i for i in found if parts[0] in i)
        return matching[0] if matching else dataset
    return dataset


@dataclass
class ServerItems:
    """A server's datasets as batch items: ``total`` (when known) and the items, in the
    reference's order (sorted ids), each ``(id, parameters)`` or ``(id, HeaderError)``."""

    total: int | None
    items: Iterator[tuple[str, object]]

    def __iter__(self) -> Iterator[tuple[str, object]]:
        return self.items


def _as_item(dataset_id: str, value: dict | str) -> tuple[str, object]:
    if isinstance(value, str):
        return dataset_id, HeaderError(f"{dataset_id}: the server gave no parameters: {value}")
    return dataset_id, value


def server_items(cfg: Config, context: str, observatory: str, *, instruments: Sequence[str] | None = None,
                 datasets: Sequence[str] | None = None, selection: Selection = Selection(),
                 in_flight: int = 4, notify: Callable[[str], None] | None = None,
                 server_url: str | None = None, deferred: bool = True) -> ServerItems:
    """The datasets of ``instruments`` (every id the server lists, since ``selection.since``),
    or the ``datasets`` ids, from the server at ``CRDS_SERVER_URL``, as batch items.

    With ``instruments``, no date cut-off and ``deferred``, an item's parameters are a
    :class:`ServedDataset`: the process that evaluates it asks the server (a page per task).
    Otherwise pages are fetched ``in_flight`` at a time by a thread with its own event loop
    (:func:`crds_async.engine.inputs.iterate_async`): memory holds a few pages however many
    datasets there are.  The id lists are fetched before this returns (a progress total).
    ``notify`` is told of command-line ids the server has no parameters for.

    Raises
    ------
    FetchError
        The server cannot be reached (after ``CRDS_CLIENT_RETRY_COUNT`` attempts).
    """
    url = server_url or default_server_url(cfg, observatory)
    context = os.path.basename(context)
    if datasets is not None:
        asked = [d.upper() for d in datasets]

        async def fetch_named() -> dict[str, dict | str]:
            async with CrdsClient(url, cfg) as client:
                return {key: value async for key, value in
                        dataset_headers(client, context, asked, in_flight=in_flight)}

        headers = asyncio.run(fetch_named())
        for dataset in asked:
            if matching_two_part_id(dataset, headers) not in headers and notify is not None:
                notify(f"dataset {dataset!r} isn't represented by downloaded parameters")
        items = selection.filter(_as_item(key, headers[key]) for key in sorted(headers))
        return ServerItems(None, items)

    since = selection.since

    async def fetch_ids() -> list[str]:
        async with CrdsClient(url, cfg) as client:
            return await dataset_ids(client, context, instruments or (), since)

    ids = [i for i in asyncio.run(fetch_ids()) if selection.wanted(i)]
    if since is None and deferred:
        # the workers ask for the parameters themselves (nothing here needs them)
        async def announced() -> int:
            async with CrdsClient(url, cfg) as client:
                return await page_size(client)

        source = ServedSource(url, context, asyncio.run(announced()), cfg)
        return ServerItems(len(ids), ((i, ServedDataset(source, i)) for i in ids))

    async def pages() -> AsyncIterator[tuple[str, object]]:
        async with CrdsClient(url, cfg) as client:
            async for key, value in dataset_headers(client, context, ids, in_flight=in_flight):
                yield _as_item(key, value)

    items = selection.filter(iterate_async(pages))
    return ServerItems(len(ids), items)
