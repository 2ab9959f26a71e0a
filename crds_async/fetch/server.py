"""``crds-batch serve``: a CRDS-protocol server over a cache directory.

Speaks what the reference client uses (observatories-and-protocol.md §4):
JSON-RPC 1.0 on ``POST /json/<method>/<id>/`` and plain file downloads on
``GET /unchecked_get/{mappings,references,config}/<obs>/<name>``.  Sizes and sha1s
come from a :class:`~.catalogue.Catalogue`; closures and best references from the
rules engine.  A :class:`~.faults.FaultPlan` can add latency, a bandwidth cap and
random failures, for tests, benchmarks and rehearsing a site mirror's bad days.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from ..config import OBSERVATORIES, Config
from ..errors import CrdsError, UnsafeNameError
from ..rules.contexts import resolve_context
from .catalogue import Catalogue
from .client import crds_encode
from .closure import RulesView
from .faults import FaultPlan, TokenBucket
from .names import check_name, file_kind
from .server_config import read_server_config

__all__ = ["CrdsServer", "make_app", "run_server"]

log = logging.getLogger(__name__)

_CHUNK = 64 << 10
_MAX_REQUEST_BYTES = 64 << 20
_INFO_FIELDS = ("name", "observatory", "instrument", "filekind", "type", "size", "sha1sum", "state",
                "rejected", "blacklisted")



#: a context date: ``[<obs>-]YYYY-MM-DD[(T| )HH:MM:SS[.ffffff]]``
_DATE_SPEC = re.compile(r"(?:(?P<obs>[a-z]+)-)?(?P<date>\d{4}-\d{2}-\d{2})(?:[T ](?P<time>\d{2}:\d{2}:\d{2})(?:\.\d+)?)?",
                        re.IGNORECASE)


class RawJson(str):
    """An RPC result that is already JSON text (sent as is, not re-encoded)."""


class RpcError(Exception):
    """Becomes a JSON-RPC error answer ``"<name>: <message>"``."""


class CrdsServer:
    """State of one served cache: catalogues, server configs, fault plan.

    Parameters
    ----------
    cache : Path
        Cache root (``mappings/<obs>``, ``references/<obs>``, ``config/<obs>``).
    observatory : str, optional
        The observatory ``get_server_info`` describes; default: ``hst`` if served, else the first.
    faults : FaultPlan, optional
    datasets : object, optional
        An open, read-only dataset catalogue (``crds_async.archive.catalogue.DatasetCatalogue``
        with ``readonly=True``) that answers the dataset RPCs (``get_dataset_ids``,
        ``get_dataset_headers_by_id``): ``ids(instrument, since)``, ``headers_json(ids, since)``.
    max_headers_per_rpc : int, optional
        The page size ``get_server_info`` announces; default: the served server_config's.
    rules_service : object, optional
        What the engine answers about rules (``crds_async.engine.datasets.RulesService``):
        ``answers(observatory, context, header, reftypes)`` for ``get_best_references*`` and
        ``required_parkeys(observatory, context)``; without it those methods answer an error.
    """

    def __init__(self, cache: Path, observatory: str | None = None, faults: FaultPlan | None = None,
                 datasets=None, max_headers_per_rpc: int | None = None,
                 rules_service=None) -> None:
        self.cache = Path(cache).resolve()
        # readonly_cache: nothing in the served tree is written but the catalogue file.
        self.cfg = Config(cache_roots=(("CRDS_PATH", str(self.cache)),), mode="local", readonly_cache=True)
        served = [o for o in OBSERVATORIES if (self.cache / "config" / o / "server_config").is_file()]
        if not served:
            raise CrdsError(f"{self.cache}: no config/<observatory>/server_config: not a CRDS cache")
        if observatory is not None and observatory not in served:
            raise CrdsError(f"{self.cache}: no server_config for observatory {observatory!r}")
        self.observatory = observatory or ("hst" if "hst" in served else served[0])
        self.observatories = served
        self.faults = faults or FaultPlan()
        self.rules_service = rules_service
        self.bucket = TokenBucket(self.faults.bandwidth)
        self.catalogues = {o: Catalogue(self.cfg, o) for o in served}
        self.server_configs = {o: read_server_config(self.cfg.config_dir(o)) for o in served}
        self.rules = {o: RulesView(self.cfg, o) for o in served}
        self.requests = {"rpc": 0, "get": 0}
        self._methods: dict[str, Callable] = {
            "get_server_info": self.get_server_info,
            "get_default_context": self.get_default_context,
            "get_context_history": self.get_context_history,
            "get_context_by_date": self.get_context_by_date,
            "get_mapping_names": self.get_mapping_names,
            "get_reference_names": self.get_reference_names,
            "get_file_info_map": self.get_file_info_map,
            "get_file_info": self.get_file_info,
            "list_mappings": self.list_mappings,
            "list_references": self.list_references,
            "get_best_references": self.get_best_references,
            "get_best_references_by_header_map": self.get_best_references_by_header_map,
        }
        self.base_url = ""
        self.datasets = None
        self.max_headers_per_rpc = max_headers_per_rpc
        if datasets is not None:
            self._serve_datasets(datasets)

    def _serve_datasets(self, catalogue) -> None:
        """Answer the dataset RPCs from an open, read-only dataset catalogue."""
        self.datasets = catalogue
        if self.max_headers_per_rpc is None:
            self.max_headers_per_rpc = int(self.server_configs[self.observatory].get("max_headers_per_rpc") or 1000)
        self._methods.update({
            "get_dataset_ids": self.get_dataset_ids,
            "get_dataset_headers_by_id": self.get_dataset_headers_by_id,
            "get_required_parkeys": self.get_required_parkeys,
        })

    def refresh(self) -> None:
        """Re-walk the cache (new or changed files are hashed)."""
        for catalogue in self.catalogues.values():
            catalogue.refresh()
        # Parsed rules are kept between calls; files may have changed.
        self.rules = {o: RulesView(self.cfg, o) for o in self.observatories}

    # ------------------------------------------------------------------ helpers
    def _obs(self, observatory: object) -> str:
        if observatory is None:
            return self.observatory
        if not isinstance(observatory, str) or observatory.lower() not in self.observatories:
            raise RpcError(f"Unknown observatory {observatory!r}")
        return observatory.lower()

    def _context(self, context: object) -> tuple[str, str]:
        if not isinstance(context, str):
            raise RpcError(f"Context {context!r} is not a string")
        obs = next((o for o in self.observatories if context.startswith(o)), self.observatory)
        try:
            pmap = resolve_context(context, self.server_configs[obs]) if not context.endswith("map") else context
            check_name(pmap, where="context", kinds=("mappings",))
        except CrdsError as exc:
            raise RpcError(str(exc)) from None
        if self.catalogues[obs].get(pmap) is None:
            raise RpcError(f"Unknown context {context!r}")
        return obs, pmap

    def _info(self, obs: str, name: str) -> dict[str, str] | str:
        entry = self.catalogues[obs].get(name)
        if entry is None:
            return "NOT FOUND"
        bad = set(self.server_configs[obs].get("bad_files_list") or ())
        parts = name.rsplit(".", 1)[0].split("_")
        return {
            "name": name, "observatory": obs,
            "instrument": parts[1] if entry.kind == "mapping" and len(parts) > 1 else "",
            "filekind": parts[2] if entry.kind == "mapping" and len(parts) > 2 else "",
            "type": entry.kind, "size": str(entry.size), "sha1sum": entry.sha1,
            "state": "operational" if entry.kind == "mapping" else "archived",
            "rejected": "false", "blacklisted": "true" if name in bad else "false",
        }

    # ------------------------------------------------------------------ RPC methods
    async def get_server_info(self) -> dict:
        info = dict(self.server_configs[self.observatory])
        for key in ("connected", "status", "server"):
            info.pop(key, None)
        obs = self.observatory
        for kind in ("mappings", "references", "config"):
            info[f"{kind[:-1] if kind != 'config' else 'config'}_url"] = {
                obs: f"{self.base_url}/unchecked_get/{kind}/{obs}/"}
        info["pickle_url"] = {obs: f"{self.base_url}/unchecked_get/pickles/{obs}/"}
        info["mappings"] = self.catalogues[obs].names("mapping")
        info["download_metadata"] = crds_encode(self.catalogues[obs].download_metadata())
        info["observatory"] = obs
        if self.max_headers_per_rpc is not None:
            info["max_headers_per_rpc"] = self.max_headers_per_rpc
        return info

    async def get_default_context(self, observatory: object = None, state: object = None) -> str:
        config = self.server_configs[self._obs(observatory)]
        key = {"edit": "edit_context", "versions": "versions_context"}.get(str(state), "latest_context")
        value = config.get(key) or config.get("operational_context")
        if not value:
            raise RpcError(f"No {key} for {self._obs(observatory)}")
        return value

    async def get_context_history(self, observatory: object = None) -> list:
        return list(self.server_configs[self._obs(observatory)].get("context_history") or [])

    async def get_context_by_date(self, spec: object, observatory: object = None) -> str:
        """The context in use at a date (``hst-2019-01-01T00:00:00``, ``2019-01-01``): the
        newest of the served configuration's ``context_history`` delivered by then."""
        obs = self._obs(observatory)
        if not isinstance(spec, str):
            raise RpcError(f"context date {spec!r} is not a string")
        match = _DATE_SPEC.fullmatch(spec.strip())
        if match is None or (match.group("obs") and match.group("obs").lower() != obs):
            raise RpcError(f"{spec!r} is not a {obs} context date (<obs>-YYYY-MM-DD[THH:MM:SS])")
        when = f"{match.group('date')} {match.group('time') or '00:00:00'}"
        history = self.server_configs[obs].get("context_history") or []
        delivered = [(str(row[0]), str(row[1])) for row in history
                     if isinstance(row, (list, tuple)) and len(row) >= 2 and str(row[0]) <= when]
        if not delivered:
            raise RpcError(f"no {obs} context was in use at {when}")
        return max(delivered)[1]

    async def get_mapping_names(self, context: object) -> list[str]:
        obs, pmap = self._context(context)
        return await asyncio.to_thread(self.rules[obs].mapping_closure, pmap)

    async def get_reference_names(self, context: object) -> list[str]:
        obs, pmap = self._context(context)
        return await asyncio.to_thread(self.rules[obs].reference_closure, pmap)

    async def get_file_info_map(self, observatory: object = None, files: object = None, fields: object = None) -> dict:
        obs = self._obs(observatory)
        names = self.catalogues[obs].names() if files is None else files
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise RpcError("files must be a list of names or null")
        if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
            raise RpcError("fields must be a list of names or null")
        out: dict[str, object] = {}
        for name in names:
            info = self._info(obs, name)
            if isinstance(info, dict) and fields is not None:
                info = {f: info.get(f, "none") for f in fields}
            out[name] = info
        return out

    async def get_file_info(self, context: object, name: object) -> dict:
        obs, _pmap = self._context(context) if isinstance(context, str) and context.endswith("map") else (
            self._obs(context), None)
        info = self._info(obs, str(name))
        if not isinstance(info, dict):
            raise RpcError(f"Unknown file {name!r}")
        return info

    async def list_mappings(self, observatory: object = None, glob_pattern: object = "*") -> list[str]:
        return fnmatch.filter(self.catalogues[self._obs(observatory)].names("mapping"), str(glob_pattern))

    async def list_references(self, observatory: object = None, glob_pattern: object = "*") -> list[str]:
        return fnmatch.filter(self.catalogues[self._obs(observatory)].names("reference"), str(glob_pattern))

    async def get_best_references(self, context: object, header: object, reftypes: object = None) -> dict:
        obs, pmap = self._context(context)
        if not isinstance(header, dict):
            raise RpcError("header must be an object of keyword: value")
        return await asyncio.to_thread(self._evaluate, obs, pmap, {"_": header}, reftypes)

    async def get_best_references_by_header_map(self, context: object, header_map: object,
                                                 reftypes: object = None) -> dict:
        obs, pmap = self._context(context)
        if not isinstance(header_map, dict) or not all(isinstance(h, dict) for h in header_map.values()):
            raise RpcError("header_map must be an object of id: header")
        return await asyncio.to_thread(self._evaluate, obs, pmap, header_map, reftypes, True)

    # ------------------------------------------------------------------ dataset RPCs (--datasets)
    async def get_dataset_ids(self, context: object, instrument: object, datasets_since: object = None) -> list[str]:
        self._context(context)
        if not isinstance(instrument, str):
            raise RpcError(f"instrument {instrument!r} is not a string")
        since = _since(datasets_since)
        return await asyncio.to_thread(self.datasets.ids, instrument, since)

    async def get_dataset_headers_by_id(self, context: object, dataset_ids: object,
                                        datasets_since: object = None) -> RawJson:
        self._context(context)
        if not isinstance(dataset_ids, list) or not all(isinstance(i, str) for i in dataset_ids):
            raise RpcError("dataset_ids must be a list of dataset id strings")
        # No page limit: max_headers_per_rpc is advice, and the reference's bestrefs pages by the
        # server_config it has cached (CRDS_MODE=local), not by what this server announces.
        # The catalogue's JSON texts go out as stored: parsing and re-encoding them cost 3/4 of a page.
        return RawJson(await asyncio.to_thread(self.datasets.headers_json, dataset_ids, _since(datasets_since)))

    async def get_required_parkeys(self, context: object) -> dict:
        obs, pmap = self._context(context)
        return await asyncio.to_thread(self._rules().required_parkeys, obs, pmap)

    def _rules(self):
        if self.rules_service is None:
            raise RpcError("this server evaluates no rules")
        return self.rules_service

    def _evaluate(self, obs: str, pmap: str, headers: dict, reftypes: object, by_id: bool = False) -> dict:
        rules = self._rules()
        types = [str(t) for t in reftypes] if isinstance(reftypes, list) else None
        results = {}
        for key, header in headers.items():
            try:
                results[key] = rules.answers(obs, pmap, header, types)  # contexts loaded once, then kept
            except CrdsError as exc:
                if not by_id:
                    raise RpcError(str(exc)) from None
                results[key] = f"NOT FOUND {exc}"
        return results if by_id else results["_"]

    # ------------------------------------------------------------------ HTTP
    async def handle_rpc(self, request: web.Request) -> web.StreamResponse:
        self.requests["rpc"] += 1
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        if self.faults.rpc and (fault := self.faults.choose(body=False)):
            return await self._early_fault(request, fault)
        msg_id = None
        # URLs in get_server_info point back the way this client reached us.
        self.base_url = f"{request.scheme}://{request.host}"
        try:
            body = await request.read()
            message = json.loads(body)
            if not isinstance(message, dict):
                raise RpcError("request is not a JSON-RPC object")
            msg_id = message.get("id")
            method = message.get("method") or request.match_info.get("method")
            params = message.get("params") or []
            handler = self._methods.get(method) if isinstance(method, str) else None
            if handler is None:
                raise RpcError(f"Unknown method {method!r}")
            result = await (handler(**params) if isinstance(params, dict) else handler(*params))
            reply = {"result": result, "error": None, "id": msg_id}
        except TypeError as exc:
            reply = _error_reply(msg_id, "InvalidParams", str(exc))
        except (RpcError, CrdsError, ValueError) as exc:
            reply = _error_reply(msg_id, type(exc).__name__, str(exc))
        return _json_reply(reply)

    async def handle_get(self, request: web.Request) -> web.StreamResponse:
        self.requests["get"] += 1
        kind, obs, name = (request.match_info[k] for k in ("kind", "obs", "name"))
        try:
            check_name(name, where="request", kinds=("mappings", "references", "config"))
        except UnsafeNameError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        if obs not in self.catalogues or kind not in ("mappings", "references", "config") or file_kind(name) != kind:
            raise web.HTTPNotFound(text=f"{kind}/{obs}/{name}: not served")
        if kind == "config":
            path = self.cfg.config_dir(obs) / name
        else:
            entry = self.catalogues[obs].get(name)
            path = entry.path if entry else None
        if path is None or not path.is_file():
            raise web.HTTPNotFound(text=f"{name}: not in the catalogue")
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        fault = self.faults.choose(body=True)
        if fault in ("error500", "reset"):
            return await self._early_fault(request, fault)
        return await self._send_file(request, path, fault)

    async def _early_fault(self, request: web.Request, fault: str) -> web.StreamResponse:
        if fault == "error500":
            raise web.HTTPInternalServerError(text="injected fault")
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)  # never reaches the client: the connection is gone

    async def _send_file(self, request: web.Request, path: Path, fault: str | None) -> web.StreamResponse:
        size = os.path.getsize(path)
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = size
        await resp.prepare(request)
        cut = size // 2 if fault in ("truncate", "stall") else size
        flip = self.faults.corrupt_offset(size) if fault == "corrupt" else -1
        sent = 0
        with open(path, "rb") as handle:
            while sent < cut:
                chunk = handle.read(min(_CHUNK, cut - sent))
                if not chunk:
                    break
                if sent <= flip < sent + len(chunk):
                    i = flip - sent
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                await self.bucket.take(len(chunk))
                await resp.write(chunk)
                sent += len(chunk)
        if fault == "stall":
            await asyncio.sleep(self.faults.stall_seconds)
        if fault in ("truncate", "stall"):
            if request.transport is not None:
                request.transport.abort()
            return resp
        await resp.write_eof()
        return resp


def _json_reply(reply: dict) -> web.Response:
    """The JSON-RPC answer; a :class:`RawJson` result is spliced in as it is."""
    result = reply.get("result")
    if not isinstance(result, RawJson):
        return web.json_response(reply)
    head = json.dumps({"error": None, "id": reply.get("id")})
    return web.Response(text=f'{head[:-1]}, "result": {result}}}', content_type="application/json")


def _since(datasets_since: object) -> str | None:
    """A ``datasets_since`` parameter as the catalogue compares it (None: all dates)."""
    if datasets_since is None or datasets_since == "":
        return None
    if not isinstance(datasets_since, str):
        raise RpcError(f"datasets_since {datasets_since!r} is not a date string")
    return datasets_since


def _error_reply(msg_id: object, name: str, message: str) -> dict:
    return {"result": None, "error": {"name": name, "message": f"{name}: {message}"}, "id": msg_id}


def make_app(server: CrdsServer) -> web.Application:
    """The aiohttp application serving ``server``."""
    app = web.Application(client_max_size=_MAX_REQUEST_BYTES)
    app.router.add_post("/json/", server.handle_rpc)
    app.router.add_post("/json/{method}/", server.handle_rpc)
    app.router.add_post("/json/{method}/{id}/", server.handle_rpc)
    app.router.add_get("/unchecked_get/{kind}/{obs}/{name}", server.handle_get)
    return app


async def run_server(server: CrdsServer, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
    """Start serving; returns the runner (``await runner.cleanup()`` to stop).

    The bound URL is stored in ``server.base_url`` (port 0 picks a free port).
    """
    await asyncio.to_thread(server.refresh)
    runner = web.AppRunner(make_app(server), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = site._server.sockets if site._server else []  # aiohttp exposes no public accessor
    bound_port = sockets[0].getsockname()[1] if sockets else port
    server.base_url = f"http://{host}:{bound_port}"
    return runner
