"""The project's server: catalogue, RPC answers, file serving, refusal of unsafe requests."""

from __future__ import annotations

import json
import os

import aiohttp
import pytest

from crds_async.config import config_from_env
from crds_async.errors import ServiceError
from crds_async.fetch.catalogue import CATALOGUE_FILE
from crds_async.fetch.client import CrdsClient
from crds_async.fetch.server import CrdsServer, run_server

from .helpers import add_references, make_served_cache, sha1


@pytest.fixture
def served(tmp_path, shared_cache):
    cache = make_served_cache(tmp_path / "served", shared_cache)
    contents = add_references(cache, "hst", ["z0000001j_drk.fits", "z0000002j_drk.fits"])
    # an instrument-layout reference is served too
    (cache / "references" / "hst" / "acs").mkdir()
    (cache / "references" / "hst" / "acs" / "z0000003j_bia.fits").write_bytes(b"acs layout")
    contents["z0000003j_bia.fits"] = b"acs layout"
    return cache, contents


async def test_catalogue_is_kept_and_only_changed_files_are_hashed(served, tmp_path, monkeypatch):
    cache, contents = served
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    before = sorted(p.relative_to(cache) for p in cache.rglob("*"))
    server = CrdsServer(cache)
    catalogue = server.catalogues["hst"]
    assert catalogue.refresh() == len(catalogue.entries) > 2000
    # kept with the compiled contexts in the user's cache directory: the served cache gets no writes
    assert sorted(p.relative_to(cache) for p in cache.rglob("*")) == before
    assert (tmp_path / "xdg" / "crds_async") in catalogue.store_path.parents
    assert catalogue.store_path.name.endswith(CATALOGUE_FILE)
    stored = json.loads(catalogue.store_path.read_text())
    assert stored["z0000003j_bia.fits"][2] == sha1(b"acs layout")
    assert CrdsServer(cache).catalogues["hst"].refresh() == 0  # nothing changed: nothing hashed
    path = cache / "references" / "hst" / "z0000001j_drk.fits"
    path.write_bytes(b"changed")
    os.utime(path, ns=(1, 1))
    fresh = CrdsServer(cache).catalogues["hst"]
    assert fresh.refresh() == 1 and fresh.get(path.name).sha1 == sha1(b"changed")


async def test_rpc_answers_and_downloads(served):
    cache, contents = served
    server = CrdsServer(cache)
    runner = await run_server(server)
    try:
        async with CrdsClient(server.base_url, config_from_env({})) as client:
            infos = await client.get_file_info_map("hst", ["z0000003j_bia.fits", "hst_0729.pmap", "nope.fits"])
            assert infos["nope.fits"] == "NOT FOUND"
            assert infos["z0000003j_bia.fits"]["sha1sum"] == sha1(b"acs layout")
            assert infos["hst_0729.pmap"]["size"] == str((cache / "mappings/hst/hst_0729.pmap").stat().st_size)
            assert await client.call("get_default_context", "hst", None) == "hst_0729.pmap"
            assert await client.call("list_references", "hst", "z*_drk.fits") == ["z0000001j_drk.fits",
                                                                                "z0000002j_drk.fits"]
            names = await client.get_mapping_names("hst_0729.pmap")
            assert len(names) == 137 and "hst_0729.pmap" in names
            with pytest.raises(ServiceError, match="Unknown context"):
                await client.get_mapping_names("hst_9999.pmap")
            info = await client.call("get_file_info", "hst_0729.pmap", "z0000001j_drk.fits")
            assert info["size"] == str(len(contents["z0000001j_drk.fits"]))
            async with client.session.get(f"{server.base_url}/unchecked_get/references/hst/z0000003j_bia.fits") as r:
                assert r.status == 200 and await r.read() == b"acs layout"
            async with client.session.get(f"{server.base_url}/unchecked_get/config/hst/server_config") as r:
                assert r.status == 200 and (await r.read()).startswith(b"{")
            for bad, status in [("..%2Fserver_config.fits", 400), ("x.sh", 400), ("hst_0729.pmap", 404),
                                ("nope.fits", 404)]:
                async with client.session.get(f"{server.base_url}/unchecked_get/references/hst/{bad}") as r:
                    assert r.status == status, bad
            async with client.session.get(f"{server.base_url}/unchecked_get/references/hst/../../etc/passwd") as r:
                assert r.status == 404
            async with client.session.post(f"{server.base_url}/json/x/1/", data=b"{not json") as r:
                reply = await r.json()
                assert reply["result"] is None and "JSONDecodeError" in reply["error"]["message"]
    finally:
        await runner.cleanup()


async def test_best_references_from_the_rules_engine(served, corpus, expected_hst):
    from tests.rules.test_corpus import astropy_raw_header

    from crds_async.engine.datasets import RulesService

    cache, _ = served
    server = CrdsServer(cache)
    server.rules_service = RulesService(server.cfg)
    runner = await run_server(server)
    try:
        datasets = sorted(expected_hst)[::60]
        async with CrdsClient(server.base_url, config_from_env({})) as client:
            headers = {d: astropy_raw_header(corpus / "hst" / d) for d in datasets}
            for dataset, header in headers.items():
                answer = await client.get_best_references("hst_0729.pmap", header)
                assert answer == expected_hst[dataset], dataset
            by_id = await client.call("get_best_references_by_header_map", "hst_0729.pmap", headers, None)
            assert by_id == {d: expected_hst[d] for d in datasets}
            with pytest.raises(ServiceError, match="instrument"):
                await client.get_best_references("hst_0729.pmap", {"FOO": "1"})
    finally:
        await runner.cleanup()
