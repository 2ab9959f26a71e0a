"""JSON-RPC client: retries with the reference's meaning, error answers, timeouts, encoded payloads."""

from __future__ import annotations

import pytest

from crds_async.config import config_from_env
from crds_async.errors import FetchError, ServiceError
from crds_async.fetch.client import CrdsClient, crds_decode, crds_encode
from crds_async.fetch.faults import FaultPlan
from crds_async.fetch.server import CrdsServer, run_server

from .helpers import make_served_cache


@pytest.fixture
async def server(tmp_path, shared_cache):
    cache = make_served_cache(tmp_path / "served", shared_cache, mappings=False)
    srv = CrdsServer(cache, faults=FaultPlan())
    runner = await run_server(srv)
    try:
        yield srv
    finally:
        await runner.cleanup()


def _cfg(**env):
    return config_from_env({k: str(v) for k, v in env.items()})


@pytest.mark.parametrize("count, attempts", [(0, 1), (1, 1), (3, 3)])
async def test_retry_count_meaning(server, count, attempts):
    server.faults.rate, server.faults.kinds, server.faults.rpc = 1.0, ("error500",), True
    async with CrdsClient(server.base_url, _cfg(CRDS_CLIENT_RETRY_COUNT=count)) as client:
        with pytest.raises(FetchError, match=f"get_server_info' failed after {attempts} attempt"):
            await client.get_server_info()
    assert server.requests["rpc"] == attempts


async def test_retries_recover_from_resets(server):
    server.faults.rate, server.faults.kinds, server.faults.rpc = 0.5, ("reset", "error500"), True
    server.faults._random.seed(3)
    async with CrdsClient(server.base_url, _cfg(CRDS_CLIENT_RETRY_COUNT=10)) as client:
        for _ in range(5):
            info = await client.get_server_info()
            assert info["observatory"] == "hst"
    assert server.requests["rpc"] > 5  # some calls needed more than one attempt


async def test_error_answers_are_not_retried(server):
    async with CrdsClient(server.base_url, _cfg(CRDS_CLIENT_RETRY_COUNT=5)) as client:
        with pytest.raises(ServiceError, match="CRDS jsonrpc failure 'no_such_method'.*Unknown method"):
            await client.call("no_such_method")
        with pytest.raises(ServiceError, match="Unknown observatory"):
            await client.get_file_info_map("nosuch", [])
    assert server.requests["rpc"] == 2


async def test_timeout_is_reported(server):
    server.faults.latency = 2.0
    cfg = _cfg(CRDS_CLIENT_TIMEOUT_SECONDS=0.2, CRDS_CLIENT_RETRY_COUNT=2)
    async with CrdsClient(server.base_url, cfg) as client:
        with pytest.raises(FetchError, match="failed after 2 attempt") as info:
            await client.get_server_info()
    assert isinstance(info.value, TimeoutError)


async def test_unreachable_server():
    async with CrdsClient("http://127.0.0.1:9", _cfg()) as client:
        with pytest.raises(FetchError, match="127.0.0.1:9 method 'get_server_info' failed"):
            await client.get_server_info()


def test_encode_decode_round_trip_and_bomb_limit():
    obj = {"a": ["x" * 1000] * 100, "b": 1}
    assert crds_decode(crds_encode(obj)) == obj
    assert crds_decode("plain") == "plain"
    with pytest.raises(FetchError, match="inflates beyond"):
        crds_decode(crds_encode({"x": "0" * 100_000}), limit=1000)
    with pytest.raises(FetchError, match="malformed"):
        crds_decode({"crds_encoded": "1.0", "crds_payload": "!!!"})


async def test_server_info_points_back_and_carries_the_catalogue(server, tmp_path):
    async with CrdsClient(server.base_url, _cfg()) as client:
        info = await client.get_server_info()
    assert info["reference_url"] == {"hst": f"{server.base_url}/unchecked_get/references/hst/"}
    metadata = crds_decode(info["download_metadata"])
    assert metadata == server.catalogues["hst"].download_metadata()
