"""Verified parallel downloads from the project's server: clean runs, reruns, faults, read-only caches."""

from __future__ import annotations

import asyncio
import os

import pytest

from crds_async.errors import FetchError
from crds_async.fetch.faults import FaultPlan
from crds_async.fetch.fetcher import CacheFetcher
from crds_async.fetch.references import ensure_references
from crds_async.fetch.server import CrdsServer, run_server

from .helpers import add_references, client_config, final_files, make_served_cache, sha1

N_FILES = 40


@pytest.fixture
def served(tmp_path, shared_cache):
    cache = make_served_cache(tmp_path / "served", shared_cache, mappings=False)
    names = [f"z{i:07d}j_drk.fits" for i in range(N_FILES)]
    contents = add_references(cache, "hst", names)
    return cache, contents


async def _start(cache, **faults):
    server = CrdsServer(cache, faults=FaultPlan(**faults))
    runner = await run_server(server)
    return server, runner


def _assert_all_verified(dest_refs, contents):
    files = final_files(dest_refs)
    for name, path in files.items():
        assert sha1(path.read_bytes()) == sha1(contents[name]), f"{name} under its final name is corrupt"
    return files


async def test_sync_into_empty_cache_then_rerun_downloads_nothing(served, tmp_path):
    cache, contents = served
    server, runner = await _start(cache)
    try:
        cfg = client_config(tmp_path / "client", server.base_url)
        async with CacheFetcher(cfg, "hst", jobs=6, progress=False) as fetcher:
            report, refused = await fetcher.fetch(contents)
        assert not refused and not report.failed
        assert len(report.by_status("downloaded")) == N_FILES
        assert report.downloaded_bytes == sum(len(c) for c in contents.values())
        files = _assert_all_verified(tmp_path / "client" / "references", contents)
        assert set(files) == set(contents)
        gets_before = server.requests["get"]
        async with CacheFetcher(cfg, "hst", jobs=6, progress=False) as fetcher:
            report, _ = await fetcher.fetch(contents)
        assert len(report.by_status("cached")) == N_FILES and not report.by_status("downloaded")
        assert server.requests["get"] == gets_before, "a rerun must not download anything"
    finally:
        await runner.cleanup()


async def test_mixed_faults_at_30_percent_end_verified_or_reported(served, tmp_path):
    cache, contents = served
    server, runner = await _start(cache, rate=0.3, seed=7, stall_seconds=1.0)
    try:
        cfg = client_config(tmp_path / "client", server.base_url, retry_count=4, retry_delay_seconds=0.0)
        async with CacheFetcher(cfg, "hst", jobs=8, progress=False, stall_seconds=0.5) as fetcher:
            report, refused = await fetcher.fetch(contents)
        assert sum(server.faults.counts.values()) >= 5, server.faults.counts
        assert len(set(server.faults.counts)) >= 4, f"faults were not mixed: {server.faults.counts}"
        statuses = {o.name: o.status for o in report.outcomes}
        assert set(statuses) == set(contents) and not refused
        assert all(s in ("downloaded", "failed") for s in statuses.values())
        files = _assert_all_verified(tmp_path / "client" / "references", contents)
        # Every file is either verified under its final name or reported failed, never both.
        assert set(files) == {n for n, s in statuses.items() if s == "downloaded"}
        for outcome in report.failed:
            assert outcome.error and outcome.name in outcome.error
        assert any(o.attempts > 1 for o in report.outcomes), "retries were never exercised"
        leftovers = [p for p in (tmp_path / "client").rglob(".*") if p.is_file()]
        assert leftovers == [], f"temp files left behind: {leftovers}"
    finally:
        await runner.cleanup()


async def test_retry_count_one_gives_one_attempt_and_reports_failure(served, tmp_path):
    cache, contents = served
    server, runner = await _start(cache, rate=1.0, kinds=("corrupt",))
    try:
        cfg = client_config(tmp_path / "client", server.base_url, retry_count=1)
        names = sorted(contents)[:3]
        async with CacheFetcher(cfg, "hst", jobs=2, progress=False) as fetcher:
            report, _ = await fetcher.fetch(names)
        assert [o.status for o in report.outcomes] == ["failed"] * 3
        assert all(o.attempts == 1 and "sha1" in o.error for o in report.outcomes)
        assert server.requests["get"] == 3
        assert final_files(tmp_path / "client" / "references") == {}
    finally:
        await runner.cleanup()


async def test_existing_file_with_wrong_size_is_fetched_again(served, tmp_path):
    cache, contents = served
    server, runner = await _start(cache)
    try:
        cfg = client_config(tmp_path / "client", server.base_url)
        name = sorted(contents)[0]
        async with CacheFetcher(cfg, "hst", progress=False) as fetcher:
            target = fetcher.path_of(name)
            assert target.parent.name == "acs"  # a new cache is organized by instrument
            target.parent.mkdir(parents=True)
            target.write_bytes(contents[name][:10])  # what a crashed non-atomic client leaves
            report, _ = await fetcher.fetch([name])
        assert report.outcomes[0].status == "downloaded"
        assert target.read_bytes() == contents[name]
    finally:
        await runner.cleanup()


async def test_ensure_references_and_readonly_cache(served, tmp_path):
    cache, contents = served
    server, runner = await _start(cache)
    try:
        names = sorted(contents)[:5]
        cfg = client_config(tmp_path / "client", server.base_url)
        readonly = cfg.replace(readonly_cache=True)
        with pytest.raises(FetchError, match="CRDS_READONLY_CACHE"):
            await ensure_references(readonly, "hst", names)
        assert not (tmp_path / "client").exists() or final_files(tmp_path / "client") == {}
        paths = await ensure_references(cfg, "hst", names, jobs=3)
        assert sorted(paths) == names
        assert all(paths[n].read_bytes() == contents[n] for n in names)
        # Present files: the read-only cache answers without a server.
        assert await ensure_references(readonly.replace(server_url="http://127.0.0.1:9"), "hst", names) == paths
        with pytest.raises(FetchError, match="unknown|not know|NOT FOUND"):
            await ensure_references(cfg, "hst", ["zzzzzzzzj_drk.fits"])
    finally:
        await runner.cleanup()


async def test_bounded_parallelism(served, tmp_path):
    cache, contents = served
    server = CrdsServer(cache, faults=FaultPlan(latency=0.05))
    active = peak = 0
    original = server.handle_get

    async def counting(request):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            return await original(request)
        finally:
            active -= 1

    server.handle_get = counting  # make_app routes to the instance attribute
    runner = await run_server(server)
    try:
        cfg = client_config(tmp_path / "client", server.base_url)
        async with CacheFetcher(cfg, "hst", jobs=3, progress=False) as fetcher:
            report, _ = await fetcher.fetch(contents)
        assert not report.failed
        assert peak == 3, f"expected exactly 3 concurrent transfers, saw {peak}"
    finally:
        await runner.cleanup()


async def test_geis_pairs_and_package_exports(tmp_path, shared_cache):
    import crds_async.fetch as fetch

    cache = make_served_cache(tmp_path / "served", shared_cache, mappings=False)
    contents = add_references(cache, "hst", ["e1b09593u.r3h", "e1b09593u.r3d"])
    server, runner = await _start(cache)
    try:
        cfg = client_config(tmp_path / "client", server.base_url)
        paths = await fetch.ensure_references(cfg, "hst", ["e1b09593u.r3h"])
        assert sorted(paths) == ["e1b09593u.r3d", "e1b09593u.r3h"]  # the data file comes along
        assert all(paths[n].read_bytes() == contents[n] for n in paths)
        assert paths["e1b09593u.r3h"] == fetch.reference_path(cfg, "hst", "e1b09593u.r3h")
        assert paths["e1b09593u.r3h"].parent.name == "wfpc2"
    finally:
        await runner.cleanup()
