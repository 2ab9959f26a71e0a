"""The one place where aiohttp and OS network failures become the project's errors.

Lower layers raise their own exception types (``aiohttp.ClientError``, ``OSError``,
``asyncio.TimeoutError``); callers of :mod:`crds_async.fetch` see only the
:class:`~crds_async.errors.FetchError` tree, each message naming what was being
done and from where, with the original chained.
"""

from __future__ import annotations

import asyncio

import aiohttp

from ..errors import FetchError, FetchTimeout

__all__ = ["NETWORK_ERRORS", "network_error"]

#: What a transfer or a call can raise when the network, not the data, fails.
NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


def network_error(exc: BaseException, doing: str) -> FetchError:
    """The :class:`FetchError` (a :class:`FetchTimeout` for timeouts) for ``exc`` while ``doing``.

    >>> str(network_error(ConnectionResetError("reset by peer"), "x.fits: transfer from http://h"))
    'x.fits: transfer from http://h failed: ConnectionResetError: reset by peer'
    """
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    kind = FetchTimeout if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) else FetchError
    error = kind(f"{doing} failed: {detail}")
    error.__cause__ = exc
    return error
