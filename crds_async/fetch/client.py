"""Async JSON-RPC client for the CRDS server protocol (observatories-and-protocol.md §4).

Calls are ``POST <server>/json/<method>/<id>/`` with a JSON-RPC 1.0 envelope.
Transport failures (connection errors, timeouts, HTTP 5xx, replies that are not
JSON) are retried as the reference does: ``CRDS_CLIENT_RETRY_COUNT`` attempts in
all (0 and 1 both mean one), ``CRDS_CLIENT_RETRY_DELAY_SECONDS`` between them (not
after the last, unlike the reference, which also sleeps after its final failure).
An error *answer* is not retried: it raises :class:`~crds_async.errors.ServiceError`.
"""

from __future__ import annotations

import asyncio
import base64
import html
import itertools
import json
import uuid
import zlib
from collections.abc import Mapping, Sequence

import aiohttp

from .._version import __version__
from ..config import Config
from ..errors import FetchError, FetchTimeout, ServiceError, UnsafeNameError
from .names import check_name
from .network_errors import NETWORK_ERRORS, network_error

__all__ = ["CrdsClient", "crds_encode", "crds_decode", "default_server_url", "MAX_REPLY_BYTES",
           "DEFAULT_PAGE_SIZE", "announced_page_size"]

#: the reference's page size when a server does not announce ``max_headers_per_rpc``
DEFAULT_PAGE_SIZE = 500


def announced_page_size(info: Mapping, server_url: str) -> int:
    """The ``max_headers_per_rpc`` of a server's configuration (``DEFAULT_PAGE_SIZE`` when it
    names none).

    Raises
    ------
    ServiceError
        The server names one that is not a positive integer.
    """
    value = info.get("max_headers_per_rpc", DEFAULT_PAGE_SIZE)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ServiceError(f"{server_url}: max_headers_per_rpc {value!r} is not a positive integer")
    return value

#: Largest JSON-RPC reply (and decoded payload) accepted from a server.
MAX_REPLY_BYTES = 256 << 20
_PROCESS_ID = uuid.uuid4()
_counter = itertools.count(1)


def default_server_url(cfg: Config, observatory: str) -> str:
    """``CRDS_SERVER_URL``, else the observatory's public server, without trailing '/'."""
    return (cfg.server_url or f"https://{observatory}-crds.stsci.edu").rstrip("/")


def crds_encode(obj: object) -> dict:
    """The protocol's compressed form: ``{"crds_encoded": "1.0", "crds_payload": b64(gzip(json))}``."""
    raw = json.dumps(obj).encode()
    # gzip container via zlib (wbits=31) keeps us independent of the gzip module's mtime header.
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    payload = comp.compress(raw) + comp.flush()
    return {"crds_encoded": "1.0", "crds_payload": base64.b64encode(payload).decode("ascii")}


def crds_decode(msg: object, limit: int = MAX_REPLY_BYTES) -> object:
    """Undo :func:`crds_encode`; anything else is returned unchanged.

    Decompression stops at ``limit`` bytes, so a hostile payload cannot inflate without bound.
    """
    if not (isinstance(msg, dict) and "crds_encoded" in msg):
        return msg
    try:
        compressed = base64.b64decode(str(msg["crds_payload"]), validate=True)
        inflater = zlib.decompressobj(47)  # gzip or zlib header
        raw = inflater.decompress(compressed, limit + 1)
        if len(raw) > limit or inflater.unconsumed_tail:
            raise FetchError(f"encoded reply inflates beyond {limit} bytes")
        return json.loads(raw.decode())
    except FetchError:
        raise
    except (KeyError, ValueError, zlib.error, UnicodeDecodeError) as exc:
        raise FetchError(f"malformed crds_encoded reply: {exc}") from None


class _Retryable(FetchError):
    """A transport failure worth another attempt."""


class CrdsClient:
    """JSON-RPC calls to one CRDS server.

    Parameters
    ----------
    server_url : str
        e.g. ``https://hst-crds.stsci.edu`` or ``http://127.0.0.1:8080``.
    cfg : Config
        Retry count/delay and the RPC timeout (``CRDS_CLIENT_TIMEOUT_SECONDS``).
    session : aiohttp.ClientSession, optional
        Shared session; one is created (and closed by :meth:`close`) otherwise.
    """

    def __init__(self, server_url: str, cfg: Config, session: aiohttp.ClientSession | None = None) -> None:
        self.server_url = server_url.rstrip("/")
        self.cfg = cfg
        self._own_session = session is None
        self._session = session

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> "CrdsClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ core
    async def call(self, method: str, *params: object) -> object:
        """Call ``method`` with positional ``params``; return the decoded ``result``.

        Raises
        ------
        ServiceError
            The server answered with a JSON-RPC error.
        FetchTimeout, FetchError
            Every attempt failed in transport; the message names the server and method.
        """
        attempts = max(1, self.cfg.retry_count)
        last: FetchError | None = None
        for attempt in range(1, attempts + 1):
            try:
                return await self._call_once(method, list(params))
            except _Retryable as exc:
                last = exc
            if attempt < attempts:
                await asyncio.sleep(self.cfg.retry_delay_seconds)
        assert last is not None
        cls = FetchTimeout if isinstance(last.__cause__, asyncio.TimeoutError) else FetchError
        raise cls(f"CRDS server {self.server_url} method {method!r} failed after {attempts} "
                  f"attempt(s): {last}") from last.__cause__

    async def _call_once(self, method: str, params: list) -> object:
        msg_id = f"crds-batch-{__version__}-{_PROCESS_ID}-{next(_counter):08x}"
        body = json.dumps({"jsonrpc": "1.0", "method": method, "params": params, "id": msg_id})
        url = f"{self.server_url}/json/{method}/{msg_id}/"
        timeout = aiohttp.ClientTimeout(total=self.cfg.client_timeout_seconds)
        try:
            async with self.session.post(url, data=body.encode(), timeout=timeout,
                                         headers={"Content-Type": "application/json"}) as resp:
                if resp.status >= 500:
                    raise _Retryable(f"HTTP {resp.status}")
                if resp.status != 200:
                    raise ServiceError(f"CRDS jsonrpc failure {method!r} HTTP {resp.status} from {url}")
                parts: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(1 << 20):
                    size += len(chunk)
                    if size > MAX_REPLY_BYTES:
                        raise ServiceError(f"CRDS jsonrpc failure {method!r}: reply larger than "
                                           f"{MAX_REPLY_BYTES} bytes from {url}")
                    parts.append(chunk)
                raw = b"".join(parts)
        except NETWORK_ERRORS as exc:
            raise _Retryable(str(network_error(exc, f"{method} at {url}"))) from exc
        try:
            reply = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _Retryable(f"reply is not JSON (starts {raw[:60]!r})") from None
        if not isinstance(reply, dict) or "result" not in reply and "error" not in reply:
            raise ServiceError(f"CRDS jsonrpc failure {method!r}: reply is not a JSON-RPC envelope")
        error = reply.get("error")
        if error:
            message = error.get("message", error) if isinstance(error, dict) else error
            raise ServiceError(f"CRDS jsonrpc failure {method!r} {html.unescape(str(message))}")
        try:
            return crds_decode(reply.get("result"), MAX_REPLY_BYTES)
        except FetchError as exc:
            raise ServiceError(f"CRDS jsonrpc failure {method!r}: {exc}") from None

    # ------------------------------------------------------------------ methods
    async def get_server_info(self) -> dict:
        """The server's configuration dict (§4.4)."""
        info = await self.call("get_server_info")
        if not isinstance(info, dict):
            raise ServiceError(f"get_server_info from {self.server_url} is not a dict")
        return info

    async def get_mapping_names(self, context: str) -> list[str]:
        """Checked names of the mapping closure of ``context``."""
        names = await self.call("get_mapping_names", context)
        return _checked_list(names, "get_mapping_names", ("mappings",))

    async def get_reference_names(self, context: str) -> list[str]:
        """Checked names of every reference ``context`` names."""
        names = await self.call("get_reference_names", context)
        return _checked_list(names, "get_reference_names", ("references",))

    async def get_file_info_map(self, observatory: str, files: Sequence[str] | None = None,
                                fields: Sequence[str] | None = None) -> dict[str, dict | str]:
        """``{name: {field: str}}``; unknown files map to ``"NOT FOUND"``; names are checked."""
        infos = await self.call("get_file_info_map", observatory,
                                sorted(files) if files is not None else None,
                                sorted(fields) if fields is not None else None)
        if not isinstance(infos, dict):
            raise ServiceError(f"get_file_info_map from {self.server_url} is not a dict")
        for name, info in infos.items():
            check_name(name, where=f"{self.server_url} get_file_info_map")
            if not isinstance(info, (dict, str)):
                raise ServiceError(f"get_file_info_map: entry for {name!r} is neither info nor NOT FOUND")
        return infos

    async def get_best_references(self, context: str, header: Mapping[str, str],
                                  reftypes: Sequence[str] | None = None) -> dict[str, object]:
        """Remote best references (CRDS_MODE=remote)."""
        result = await self.call("get_best_references", context, {str(k): str(v) for k, v in header.items()},
                                 list(reftypes) if reftypes else None)
        if not isinstance(result, dict):
            raise ServiceError("get_best_references: answer is not a dict")
        return result


def _checked_list(names: object, method: str, kinds: tuple[str, ...]) -> list[str]:
    if not isinstance(names, list):
        raise ServiceError(f"{method}: answer is not a list of names")
    try:
        return [check_name(n, where=f"server {method}", kinds=kinds) for n in names]
    except UnsafeNameError:
        raise
