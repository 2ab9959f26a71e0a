"""``crds-batch sync`` as a process against ``crds-batch serve``: kills, concurrency, checks and repairs."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest

from tests.fetch.helpers import (PYTHON, ROOT, add_references, final_files, make_served_cache, server_process,
                                 sha1, sync_env, wait_for)


def _sync(dest, url, *args, **popen):
    cmd = [PYTHON, "-m", "crds_async", "sync", *args]
    return subprocess.Popen(cmd, env=sync_env(dest, url), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def _run_sync(dest, url, *args, timeout=60):
    proc = _sync(dest, url, *args)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def _verified(dest, contents):
    files = final_files(dest / "references")
    bad = [n for n, p in files.items() if sha1(p.read_bytes()) != sha1(contents[n])]
    assert bad == [], f"corrupt or partial files under final names: {bad}"
    return files


@pytest.fixture
def served(tmp_path, shared_cache):
    cache = make_served_cache(tmp_path / "served", shared_cache, mappings=False)
    return cache


def test_files_sync_rerun_and_unknown_file(served, tmp_path):
    contents = add_references(served, "hst", [f"z{i:07d}j_drk.fits" for i in range(30)])
    dest = tmp_path / "client"
    with server_process(served) as url:
        code, err = _run_sync(dest, url, "--files", *contents, "--jobs", "4")
        assert code == 0, err
        assert "30 downloaded" in err and "0 failed" in err
        assert set(_verified(dest, contents)) == set(contents)
        code, err = _run_sync(dest, url, "--files", *contents)
        assert code == 0 and "0 downloaded" in err and "30 already cached" in err, err
        code, err = _run_sync(dest, url, "--files", "zzzzzzzzj_drk.fits")
        assert code == 1 and "FAILED zzzzzzzzj_drk.fits" in err and "does not know" in err, err
        # --files takes paths (the basename is the name, as in the reference); the name is still checked.
        code, err = _run_sync(dest, url, "--files", "some/dir/evil.sh")
        assert code == 2 and "refusing file name 'evil.sh'" in err, err


def test_check_and_repair_files(served, tmp_path):
    contents = add_references(served, "hst", [f"z{i:07d}j_drk.fits" for i in range(5)])
    dest = tmp_path / "client"
    names = sorted(contents)
    with server_process(served) as url:
        assert _run_sync(dest, url, "--files", *names)[0] == 0
        victim = final_files(dest / "references")[names[2]]
        data = bytearray(victim.read_bytes())
        data[7] ^= 0xFF  # same size, different bytes: only a sha1 check sees it
        victim.write_bytes(bytes(data))
        code, err = _run_sync(dest, url, "--files", *names, "--check-files")
        assert code == 0, err  # size checks pass; references' sha1 only with --check-sha1sum
        code, err = _run_sync(dest, url, "--files", *names, "--check-sha1sum")
        assert code == 1 and f"File '{names[2]}' checksum mismatch" in err, err
        code, err = _run_sync(dest, url, "--files", *names, "--check-sha1sum", "--repair-files")
        assert "1 downloaded" in err, err
        code, err = _run_sync(dest, url, "--files", *names, "--check-sha1sum")
        assert code == 0, err
        _verified(dest, contents)


def test_sigkill_mid_download_leaves_no_partial_file(served, tmp_path):
    contents = add_references(served, "hst", [f"z{i:07d}j_drk.fits" for i in range(8)], size=200_000)
    dest = tmp_path / "client"
    # 400 kB/s: the whole set takes ~4 s, so the kill lands mid-transfer.
    with server_process(served, "--bandwidth", "400000") as url:
        proc = _sync(dest, url, "--files", *contents, "--jobs", "4")
        try:
            assert wait_for(lambda: any(p.name.endswith(".part") for p in dest.rglob(".*")), timeout=30), \
                "no download started"
            wait_for(lambda: len(final_files(dest / "references")) >= 1, timeout=5)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        survivors = _verified(dest, contents)
        assert len(survivors) < len(contents), "the kill came too late to test anything"
        code, err = _run_sync(dest, url, "--files", *contents, "--jobs", "8")
        assert code == 0, err
        assert set(_verified(dest, contents)) == set(contents)
        assert [p for p in dest.rglob(".*") if p.is_file()] == [], "stale temp files were not cleaned"


def test_four_concurrent_syncs_share_one_cache(served, tmp_path):
    contents = add_references(served, "hst", [f"z{i:07d}j_drk.fits" for i in range(60)], size=20_000)
    dest = tmp_path / "client"
    with server_process(served, "--latency", "0.01") as url:
        procs = [_sync(dest, url, "--files", *contents, "--jobs", "4") for _ in range(4)]
        results = [(p.wait(timeout=90), p.communicate()[1]) for p in procs]
    for code, err in results:
        assert code == 0, err
    downloaded = [int(re.search(r"(\d+) downloaded", err).group(1)) for _, err in results]
    assert sum(downloaded) == len(contents), f"each file should be fetched exactly once, got {downloaded}"
    assert set(_verified(dest, contents)) == set(contents)
    assert [p for p in dest.rglob("*.lock")] == []


def test_faulty_server_everything_verified_or_reported(served, tmp_path):
    contents = add_references(served, "hst", [f"z{i:07d}j_drk.fits" for i in range(40)], size=30_000)
    dest = tmp_path / "client"
    env = sync_env(dest, "", CRDS_CLIENT_RETRY_COUNT="8")
    with server_process(served, "--fault-rate", "0.3", "--fault-rpc", "--stall-seconds", "1", "--seed", "5") as url:
        env["CRDS_SERVER_URL"] = url
        proc = subprocess.run([PYTHON, "-m", "crds_async", "sync", "--files", *contents, "--jobs", "8",
                               "--stall-seconds", "0.3"], env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    downloaded = int(re.search(r"(\d+) downloaded", proc.stderr).group(1))
    failed = int(re.search(r"(\d+) failed", proc.stderr).group(1))
    files = _verified(dest, contents)
    assert len(files) == downloaded and downloaded + failed == len(contents)
    assert (proc.returncode == 0) == (failed == 0)
    assert [p for p in dest.rglob(".*") if p.is_file()] == []
