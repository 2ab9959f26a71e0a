"""Download limits against a misbehaving server: trickles, oversize announcements, endless bodies, full disks.

Each limit must end the transfer with one line naming the file, write nothing past
the size the catalogue promised, and leave no temp file behind.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import types

import aiohttp
import pytest
from aiohttp import web

from crds_async.errors import ConfigError
from crds_async.fetch import locks
from crds_async.fetch.download import Downloader, RemoteFile

from .helpers import client_config

BODY = b"0123456789" * 60  # 600 bytes
#: what the test server sends at most of an endless body, whatever the client does
ENDLESS_CAP = 64 << 20


class Misbehaving:
    """Serves ``/f/<kind>_<anything>``: the kind chooses the misbehaviour."""

    def __init__(self) -> None:
        self.url = ""
        self.requests = 0
        self.sent = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        kind = request.match_info["name"].split("_")[0]
        if kind == "good":
            await asyncio.sleep(0.2)  # long enough for a sibling transfer to start meanwhile
            return web.Response(body=BODY)
        resp = web.StreamResponse()
        if kind == "huge":
            resp.content_length = 10**15
        await resp.prepare(request)
        try:
            if kind == "trickle":  # one byte every 20 ms: never silent, never done
                for _ in range(1500):
                    await resp.write(b"x")
                    self.sent += 1
                    await asyncio.sleep(0.02)
            else:  # huge or endless: as fast as the client takes it, bounded here too
                while self.sent < ENDLESS_CAP:
                    await resp.write(b"x" * 65536)
                    self.sent += 65536
        except (ConnectionError, RuntimeError):
            pass  # the client hung up, as it should
        return resp


@pytest.fixture
async def server():
    state = Misbehaving()
    app = web.Application()
    app.router.add_get("/f/{name}", state.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
def written(monkeypatch):
    """Size of each temp file at the moment it is discarded (what an abort had written)."""
    sizes: list[int] = []
    original = locks.PartFile.discard

    def recording(self):
        if self.owned():
            sizes.append(os.fstat(self.fd).st_size)
        original(self)

    monkeypatch.setattr(locks.PartFile, "discard", recording)
    return sizes


def _fake_free(monkeypatch, free: int) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: types.SimpleNamespace(total=free, used=0, free=free))


async def _fetch(server, tmp_path, sizes: dict[str, int | None], *, jobs: int = 1, cfg_changes=None, **limits):
    cache = tmp_path / "client"
    cache.mkdir(exist_ok=True)
    cfg = client_config(cache, server.url, **(cfg_changes or {}))
    files = [RemoteFile(name, f"{server.url}/f/{name}", cache / name, size, None) for name, size in sizes.items()]
    async with aiohttp.ClientSession() as session:
        downloader = Downloader(session, cfg, jobs=jobs, progress=False, **limits)
        # A guard against a hang, not a timing assertion: each case ends in about a second.
        report = await asyncio.wait_for(downloader.fetch_all(files), 60)
    leftovers = [p for p in cache.rglob(".*") if p.is_file()]
    assert leftovers == [], f"temp files left behind: {leftovers}"
    return {o.name: o for o in report.outcomes}


async def test_trickle_trips_the_minimum_rate(server, tmp_path, written):
    # 50 bytes/s, a byte every 20 ms: a 5 s stall limit never fires on it.
    name = "trickle_1.fits"
    outcome = (await _fetch(server, tmp_path, {name: 100_000}, stall_seconds=5.0,
                            min_rate=1000.0, rate_window=0.5))[name]
    assert outcome.status == "failed" and outcome.attempts == 1
    assert outcome.error.startswith(f"{name}: ") and "under the minimum of 1000 bytes/s" in outcome.error
    assert not (tmp_path / "client" / name).exists()
    assert written and written[0] < 100_000


async def test_overall_deadline_scales_with_the_size(server, tmp_path):
    # Rate check off: the deadline (0.5 s + 200 bytes at 1024 bytes/s) ends the 4 s trickle.
    name = "trickle_2.fits"
    outcome = (await _fetch(server, tmp_path, {name: 200}, stall_seconds=5.0, min_rate=0.0,
                            deadline_floor=0.5))[name]
    assert outcome.status == "failed"
    assert "not complete after 0.7 s, the time allowed for 200 bytes" in outcome.error
    assert not (tmp_path / "client" / name).exists()


async def test_content_length_over_the_catalogue_size_is_refused_before_writing(server, tmp_path, written):
    name = "huge_1.fits"
    outcome = (await _fetch(server, tmp_path, {name: 1000}))[name]
    assert outcome.status == "failed"
    assert "announces 1000000000000000 bytes, more than the 1000 bytes the catalogue promised" in outcome.error
    assert "refused before writing" in outcome.error
    assert written == [0], "bytes were written before the refusal"
    assert not (tmp_path / "client" / name).exists()


async def test_catalogue_size_beyond_the_free_space_is_refused_without_a_request(server, tmp_path, monkeypatch):
    _fake_free(monkeypatch, 5_000_000)
    name = "huge_2.fits"
    outcome = (await _fetch(server, tmp_path, {name: 10**15}, cfg_changes={"retry_count": 3}))[name]
    assert outcome.status == "failed" and outcome.attempts == 1, "a full disk is not retried"
    assert outcome.error == (f"{name}: needs 1000000000000000 bytes but only 5000000 bytes are free in "
                             f"{tmp_path / 'client'}; not downloaded")
    assert server.requests == 0 and server.sent == 0


async def test_free_space_counts_what_transfers_in_progress_still_need(server, tmp_path, monkeypatch):
    _fake_free(monkeypatch, 1000)  # room for one 600-byte file, not two
    outcomes = await _fetch(server, tmp_path, {"good_1.fits": 600, "good_2.fits": 600}, jobs=2)
    assert sorted(o.status for o in outcomes.values()) == ["downloaded", "failed"]
    failed = next(o for o in outcomes.values() if o.status == "failed")
    assert "needs 600 bytes but only 1000 bytes are free" in failed.error
    assert "(600 more are expected by transfers in progress)" in failed.error
    done = next(o for o in outcomes.values() if o.status == "downloaded")
    assert done.path.read_bytes() == BODY


async def test_endless_body_stops_at_the_catalogue_size_even_without_length_checks(server, tmp_path, written):
    # CRDS_DOWNLOAD_LENGTHS=0 lets a file be shorter than announced, never longer.
    name = "endless_1.fits"
    outcome = (await _fetch(server, tmp_path, {name: 200_000}, cfg_changes={"download_lengths": False}))[name]
    assert outcome.status == "failed" and "more than the 200000 bytes" in outcome.error
    assert written and max(written) <= 200_000
    assert server.sent < ENDLESS_CAP
    assert not (tmp_path / "client" / name).exists()


async def test_endless_body_of_unknown_size_stops_at_the_free_space(server, tmp_path, monkeypatch, written):
    _fake_free(monkeypatch, 1_000_000)
    name = "endless_2.fits"
    outcome = (await _fetch(server, tmp_path, {name: None}, cfg_changes={"retry_count": 3}))[name]
    assert outcome.status == "failed" and outcome.attempts == 1
    assert outcome.error.startswith(f"{name}: needs more than the 1000000 bytes free in ")
    assert written and max(written) <= 1_000_000
    assert server.sent < ENDLESS_CAP
    assert not (tmp_path / "client" / name).exists()


@pytest.mark.parametrize("limits, message", [
    ({"min_rate": -1.0}, "min_rate -1.0 must be a finite number >= 0"),
    ({"stall_seconds": float("inf")}, "stall seconds inf must be a finite number > 0"),
    ({"stall_seconds": 0.0}, "stall seconds 0.0 must be a finite number > 0"),
    ({"deadline_floor": float("nan")}, "deadline_floor nan must be"),
])
def test_limits_are_checked(limits, message):
    with pytest.raises(ConfigError, match=message):
        Downloader(None, client_config(None, ""), **limits)  # type: ignore[arg-type]


async def test_trickled_headers_end_at_the_deadline_floor(tmp_path):
    # Headers arrive a byte at a time: never silent, and no body for the rate check to see.
    async def trickle_headers(reader, writer):
        try:
            writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(1500):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.02)
        except ConnectionError:
            pass
        finally:
            writer.close()

    raw = await asyncio.start_server(trickle_headers, "127.0.0.1", 0)
    port = raw.sockets[0].getsockname()[1]
    try:
        state = types.SimpleNamespace(url=f"http://127.0.0.1:{port}")
        name = "slowheaders_1.fits"
        outcome = (await _fetch(state, tmp_path, {name: None}, stall_seconds=5.0, min_rate=1000.0,
                                rate_window=0.5, deadline_floor=0.5))[name]
    finally:
        raw.close()
    assert outcome.status == "failed"
    assert "not complete after 0.5 s, the time allowed for the connection and headers" in outcome.error
