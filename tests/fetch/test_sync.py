"""run_sync against the project's server: contexts with references, reruns, checks, purges, modes."""

from __future__ import annotations

import ast

import pytest

from crds_async.config import Config
from crds_async.errors import FetchError
from crds_async.fetch.closure import mapping_closure, reference_closure
from crds_async.fetch.fetcher import effective_mode
from crds_async.fetch.server import CrdsServer, run_server
from crds_async.fetch.sync import SyncOptions, run_sync

from .helpers import add_references, client_config, final_files, make_served_cache, sha1

CONTEXT = "jwst_0541.pmap"


@pytest.fixture
async def jwst_server(tmp_path, shared_cache):
    """The jwst rules of the shared cache plus a generated file for every reference jwst_0541 names."""
    cache = make_served_cache(tmp_path / "served", shared_cache, observatories=("jwst",))
    names = reference_closure(Config(cache_roots=(("CRDS_PATH", str(cache)),), readonly_cache=True), "jwst", CONTEXT)
    contents = add_references(cache, "jwst", names, size=40)
    server = CrdsServer(cache, "jwst")
    runner = await run_server(server)
    try:
        yield server, contents
    finally:
        await runner.cleanup()


def _expected(server, contents):
    cfg = server.cfg
    mappings = mapping_closure(cfg, "jwst", CONTEXT)
    expected = {m: sha1((cfg.mapping_dir("jwst") / m).read_bytes()) for m in mappings}
    expected.update({n: sha1(c) for n, c in contents.items()})
    return expected


async def test_context_with_references_into_empty_cache_then_rerun(jwst_server, tmp_path):
    server, contents = jwst_server
    dest = tmp_path / "client"
    cfg = client_config(dest, server.base_url)
    options = SyncOptions(contexts=["jwst-operational"], fetch_references=True, jobs=16, progress=False)
    result = await run_sync(cfg, "jwst", options)
    assert result.errors == [] and result.contexts == [CONTEXT]
    expected = _expected(server, contents)
    assert len(result.downloaded) == len(expected) > 1800
    got = {n: sha1(p.read_bytes()) for n, p in final_files(dest / "mappings").items()}
    got.update({n: sha1(p.read_bytes()) for n, p in final_files(dest / "references").items()})
    assert got == expected, "every file present and verified, nothing else"
    assert (dest / "references" / "jwst" / "nircam").is_dir()  # new cache: instrument layout
    saved = ast.literal_eval((dest / "config" / "jwst" / "server_config").read_text())
    assert saved["observatory"] == "jwst" and saved["operational_context"] == CONTEXT

    gets = server.requests["get"]
    again = await run_sync(cfg, "jwst", SyncOptions(contexts=[CONTEXT], fetch_references=True, check_files=True,
                                                     check_sha1sum=True, progress=False))
    assert again.errors == [] and again.downloaded == [] and len(again.cached) == len(expected)
    assert again.checked == len(expected)
    assert server.requests["get"] == gets, "a rerun must download nothing"


async def test_check_repair_and_purge(jwst_server, tmp_path):
    server, contents = jwst_server
    dest = tmp_path / "client"
    cfg = client_config(dest, server.base_url)
    assert (await run_sync(cfg, "jwst", SyncOptions(contexts=[CONTEXT], progress=False))).errors == []
    mapdir = dest / "mappings" / "jwst"
    rmap = sorted(mapdir.glob("*.rmap"))[0]
    rmap.write_text(rmap.read_text().replace("'", '"', 1))  # same size, different sha1
    stranger = mapdir / "jwst_0001.pmap"
    stranger.write_text("header = {}\n")
    refdir = dest / "references" / "jwst"
    refdir.mkdir(parents=True, exist_ok=True)
    orphan = refdir / "jwst_miri_flat_9999.fits"
    orphan.write_bytes(b"orphan")

    checked = await run_sync(cfg, "jwst", SyncOptions(contexts=[CONTEXT], check_files=True, progress=False))
    assert any("checksum mismatch" in e and rmap.name in e for e in checked.errors)

    repaired = await run_sync(cfg, "jwst", SyncOptions(contexts=[CONTEXT], repair_files=True, check_files=True,
                                                       purge_mappings=True, purge_references=True, progress=False))
    assert rmap.name in repaired.downloaded
    assert sha1(rmap.read_bytes()) == sha1((server.cfg.mapping_dir("jwst") / rmap.name).read_bytes())
    assert not stranger.exists() and not orphan.exists()
    assert set(repaired.purged) == {stranger.name, orphan.name}


async def test_readonly_cache_downloads_nothing(jwst_server, tmp_path):
    server, _ = jwst_server
    dest = tmp_path / "client"
    cfg = client_config(dest, server.base_url, readonly_cache=True)
    result = await run_sync(cfg, "jwst", SyncOptions(contexts=[CONTEXT], fetch_references=True, progress=False))
    assert result.downloaded == [] and server.requests["get"] == 0
    assert not dest.exists() or final_files(dest) == {}


async def test_unknown_context_is_a_clear_error(jwst_server, tmp_path):
    server, _ = jwst_server
    cfg = client_config(tmp_path / "client", server.base_url)
    with pytest.raises(FetchError, match="Unknown context 'jwst_9999.pmap'"):
        await run_sync(cfg, "jwst", SyncOptions(contexts=["jwst_9999.pmap"], progress=False))


def test_effective_mode():
    cfg = Config()
    assert effective_mode(cfg.replace(mode="local"), {"force_remote_mode": 1}) == "local"
    assert effective_mode(cfg.replace(mode="auto"), {"force_remote_mode": 0}) == "local"
    assert effective_mode(cfg.replace(mode="auto"), {"force_remote_mode": 1}) == "remote"
    assert effective_mode(cfg.replace(mode="auto"), None) == "local"
    assert effective_mode(cfg.replace(mode="remote"), {}) == "remote"
    with pytest.raises(FetchError, match="CRDS_MODE=remote"):
        effective_mode(cfg.replace(mode="remote"), None)


async def test_dataset_files_fetch_only_their_best_references(tmp_path, shared_cache, corpus, expected_hst,
                                                             monkeypatch):
    import crds_async.headers as headers
    from crds_async.fetch.names import geis_conjugate
    from tests.rules.test_corpus import astropy_raw_header

    if not hasattr(headers, "read_header"):  # the headers/ reader is built by someone else
        monkeypatch.setattr(headers, "read_header", astropy_raw_header, raising=False)

    datasets = sorted(expected_hst)[:4]
    wanted = {a for d in datasets for a in expected_hst[d].values() if not a.startswith("NOT FOUND")}
    wanted |= {c for n in wanted if (c := geis_conjugate(n))}
    cache = make_served_cache(tmp_path / "served", shared_cache)
    contents = add_references(cache, "hst", sorted(wanted), size=32)
    add_references(cache, "hst", ["zzzzzzz1j_drk.fits"], size=32)  # served, not wanted
    server = CrdsServer(cache)
    runner = await run_server(server)
    try:
        from functools import partial

        from crds_async.engine.datasets import references_of_datasets

        dest = tmp_path / "client"
        cfg = client_config(dest, server.base_url)
        result = await run_sync(cfg, "hst", SyncOptions(
            contexts=["hst_0729.pmap"], fetch_references=True, progress=False,
            dataset_files=[str(corpus / "hst" / d) for d in datasets],
            dataset_references=partial(references_of_datasets, cfg)))
        assert result.errors == []
        got = {n: sha1(p.read_bytes()) for n, p in final_files(dest / "references").items()}
        assert got == {n: sha1(c) for n, c in contents.items()}
    finally:
        await runner.cleanup()


async def test_mode_falls_up_and_down(tmp_path, shared_cache):
    from crds_async.fetch.fetcher import CacheFetcher

    cache = make_served_cache(tmp_path / "served", shared_cache, mappings=False)
    server = CrdsServer(cache)
    server.server_configs["hst"]["force_remote_mode"] = 1
    runner = await run_server(server)
    try:
        cfg = client_config(tmp_path / "client", server.base_url, mode="auto")
        async with CacheFetcher(cfg, "hst") as fetcher:
            info, connected = await fetcher.server_info_or_cached()
        assert connected and effective_mode(cfg, info) == "remote"
    finally:
        await runner.cleanup()
    # Server gone: fall down to the cache's server_config, computing locally.
    offline = Config(cache_roots=(("CRDS_PATH", str(shared_cache)),), server_url=server.base_url, mode="auto",
                     readonly_cache=True)
    async with CacheFetcher(offline, "hst") as fetcher:
        info, connected = await fetcher.server_info_or_cached()
    assert not connected and info["operational_context"] == "hst_0729.pmap"
    assert effective_mode(offline, None if not connected else info) == "local"


async def test_all_fetches_every_mapping_the_server_has(tmp_path, shared_cache):
    cache = make_served_cache(tmp_path / "served", shared_cache, observatories=("roman",))
    server = CrdsServer(cache, "roman")
    runner = await run_server(server)
    try:
        dest = tmp_path / "client"
        result = await run_sync(client_config(dest, server.base_url), "roman", SyncOptions(all=True, progress=False))
        assert result.errors == []
        served = {p.name: sha1(p.read_bytes()) for p in (cache / "mappings" / "roman").iterdir()}
        assert {n: sha1(p.read_bytes()) for n, p in final_files(dest / "mappings").items()} == served
        assert result.contexts == sorted(n for n in served if n.endswith(".pmap"))
    finally:
        await runner.cleanup()
