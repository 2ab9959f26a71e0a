"""A hostile server: traversal names, wrong sizes, endless bodies, invalid JSON.

Each answer must end in a clear error, and nothing may be written outside the client cache.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from crds_async.errors import FetchError, ServiceError, UnsafeNameError
from crds_async.fetch.client import crds_encode
from crds_async.fetch.fetcher import CacheFetcher
from crds_async.fetch.sync import SyncOptions, run_sync

from .helpers import client_config

GOOD = "z0000001j_drk.fits"
BODY = b"0123456789" * 100


class Hostile:
    """Answers chosen per test: ``rpc[method] -> result`` or raw bytes; ``files[name] -> handler``."""

    def __init__(self):
        self.rpc: dict[str, object] = {}
        self.raw_rpc: bytes | None = None
        self.sizes: dict[str, int] = {GOOD: len(BODY)}
        self.endless_sent = 0
        self.url = ""

    def info(self):
        return {"observatory": "hst", "latest_context": "hst_0729.pmap", "operational_context": "hst_0729.pmap",
                "reference_url": {"hst": f"{self.url}/unchecked_get/references/hst/"},
                "mapping_url": {"hst": f"{self.url}/unchecked_get/mappings/hst/"}}

    async def handle_rpc(self, request):
        if self.raw_rpc is not None:
            return web.Response(body=self.raw_rpc)
        message = json.loads(await request.read())
        method = message["method"]
        if method in self.rpc:
            result = self.rpc[method]
        elif method == "get_server_info":
            result = self.info()
        elif method == "get_file_info_map":
            result = {n: {"size": str(self.sizes.get(n, len(BODY))), "sha1sum": "none"} for n in message["params"][1]}
        else:
            result = []
        return web.json_response({"result": result, "error": None, "id": message["id"]})

    async def handle_get(self, request):
        name = request.match_info["name"]
        if name.startswith("endless"):
            resp = web.StreamResponse()
            await resp.prepare(request)
            # Bounded on our side too: stop after 64 MiB or when the client hangs up.
            try:
                while self.endless_sent < 64 << 20:
                    await resp.write(b"x" * 65536)
                    self.endless_sent += 65536
            except (ConnectionError, RuntimeError):
                pass
            return resp
        return web.Response(body=BODY)


@pytest.fixture
async def hostile():
    server = Hostile()
    app = web.Application()
    app.router.add_post("/json/{method}/{id}/", server.handle_rpc)
    app.router.add_get("/unchecked_get/{kind}/{obs}/{name}", server.handle_get)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    try:
        yield server
    finally:
        await runner.cleanup()


def _only_inside(tmp_path, cache):
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and cache not in p.parents]
    assert outside == [], f"written outside the cache: {outside}"
    hidden = [p for p in cache.rglob(".*") if p.is_file()]
    assert hidden == [], f"temp files left: {hidden}"


@pytest.mark.parametrize("evil", ["../../../escape.rmap", "/tmp/abs.rmap", "x\x00.rmap", "ok.sh"])
async def test_traversal_names_from_get_mapping_names(hostile, tmp_path, evil):
    hostile.rpc["get_mapping_names"] = ["hst_0729.pmap", evil]
    cache = tmp_path / "cache"
    cfg = client_config(cache, hostile.url)
    with pytest.raises(UnsafeNameError, match="refusing file name"):
        await run_sync(cfg, "hst", SyncOptions(contexts=["hst_0729.pmap"], progress=False))
    _only_inside(tmp_path, cache)
    assert not (tmp_path / "escape.rmap").exists()


async def test_traversal_names_in_file_info_map(hostile, tmp_path):
    hostile.rpc["get_file_info_map"] = {"../evil.fits": {"size": "1", "sha1sum": "none"}}
    cache = tmp_path / "cache"
    async with CacheFetcher(client_config(cache, hostile.url), "hst", progress=False) as fetcher:
        with pytest.raises(UnsafeNameError, match="'../evil.fits'"):
            await fetcher.fetch([GOOD])
    _only_inside(tmp_path, cache)


@pytest.mark.parametrize("announced, message", [(len(BODY) + 5, "server's size"), (10, "more than the 10 bytes")])
async def test_wrong_sizes(hostile, tmp_path, announced, message):
    hostile.sizes[GOOD] = announced
    cache = tmp_path / "cache"
    async with CacheFetcher(client_config(cache, hostile.url, retry_count=2), "hst", progress=False) as fetcher:
        report, _ = await fetcher.fetch([GOOD])
    outcome = report.outcomes[0]
    assert outcome.status == "failed" and outcome.attempts == 2 and message in outcome.error
    _only_inside(tmp_path, cache)
    assert not outcome.path.exists()


async def test_endless_body_is_cut_at_the_announced_size(hostile, tmp_path):
    name = "endless1j_drk.fits"
    hostile.sizes[name] = 200_000
    cache = tmp_path / "cache"
    async with CacheFetcher(client_config(cache, hostile.url), "hst", progress=False) as fetcher:
        report, _ = await asyncio.wait_for(fetcher.fetch([name]), 30)
    assert report.outcomes[0].status == "failed" and "more than the 200000 bytes" in report.outcomes[0].error
    assert hostile.endless_sent < 64 << 20
    _only_inside(tmp_path, cache)


@pytest.mark.parametrize("raw, message", [
    (b"<html>oops</html>", "not JSON"),
    (b'["not", "an", "envelope"]', "not a JSON-RPC envelope"),
    (json.dumps({"result": None, "error": {"message": "Boom &amp; bust"}, "id": 1}).encode(), "Boom & bust"),
    (json.dumps({"result": {"crds_encoded": "1.0", "crds_payload": "%%%"}, "error": None}).encode(), "malformed"),
])
async def test_invalid_json_answers(hostile, tmp_path, raw, message):
    hostile.raw_rpc = raw
    cache = tmp_path / "cache"
    with pytest.raises((FetchError, ServiceError), match=message):
        await run_sync(client_config(cache, hostile.url), "hst", SyncOptions(contexts=["hst_0729.pmap"], progress=False))
    _only_inside(tmp_path, cache)


async def test_server_for_another_observatory_is_refused(hostile, tmp_path):
    hostile.rpc["get_server_info"] = dict(hostile.info(), observatory="jwst")
    with pytest.raises(Exception, match="serves observatory 'jwst', not 'hst'"):
        await run_sync(client_config(tmp_path / "c", hostile.url), "hst", SyncOptions(progress=False))


async def test_gzip_bomb_in_server_info(hostile, tmp_path, monkeypatch):
    import crds_async.fetch.client as client_module

    monkeypatch.setattr(client_module, "MAX_REPLY_BYTES", 50_000)
    hostile.rpc["get_server_info"] = crds_encode({"pad": "0" * 1_000_000})
    with pytest.raises(ServiceError, match="inflates beyond"):
        await run_sync(client_config(tmp_path / "c", hostile.url), "hst", SyncOptions(progress=False))
