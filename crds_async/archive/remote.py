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
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence

from ..errors import ServiceError
from ..fetch.client import CrdsClient

__all__ = ["DEFAULT_PAGE_SIZE", "page_size", "dataset_ids", "dataset_headers", "instrument_headers"]

#: the reference's page size when a server does not announce ``max_headers_per_rpc``
DEFAULT_PAGE_SIZE = 500


async def page_size(client: CrdsClient) -> int:
    """The server's ``max_headers_per_rpc`` (``DEFAULT_PAGE_SIZE`` when it names none)."""
    value = (await client.get_server_info()).get("max_headers_per_rpc", DEFAULT_PAGE_SIZE)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ServiceError(f"{client.server_url}: max_headers_per_rpc {value!r} is not a positive integer")
    return value


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
