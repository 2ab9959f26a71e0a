"""``crds-batch serve`` speaks the reference client's protocol: crds 14.0.3 syncs from it.

The reference runs as ``python -m crds.sync`` in a subprocess with its own environment
(CRDS_PATH an empty temp cache, CRDS_SERVER_URL the project's server).  Its results are
compared file by file with the shared cache and with ``crds-batch sync`` from the same server.

The full ``crds sync --contexts hst_0729.pmap --fetch-references`` (24,519 generated
references, several minutes for the serial reference client) runs when
``CRDS_ASYNC_SLOW_TESTS=1``; by default the same protocol paths are exercised with the
context's mappings and a sample of its references.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from crds_async.config import Config
from crds_async.fetch.closure import reference_closure
from crds_async.fetch.names import geis_conjugate
from tests.conftest import needs_reference
from tests.fetch.helpers import (PYTHON, ROOT, add_references, final_files, make_served_cache, server_process,
                                 sha1, sync_env)

CONTEXT = "hst_0729.pmap"
SLOW = os.environ.get("CRDS_ASYNC_SLOW_TESTS") == "1"


def _context_references(shared_cache) -> list[str]:
    cfg = Config(cache_roots=(("CRDS_PATH", str(shared_cache)),), readonly_cache=True)
    names = reference_closure(cfg, "hst", CONTEXT)
    return sorted(set(names) | {c for n in names if (c := geis_conjugate(n))})


def _reference_sync(dest, url, *args, timeout=120):
    env = sync_env(dest, url, CRDS_OBSERVATORY="hst")  # a 127.0.0.1 URL names no observatory
    proc = subprocess.run([PYTHON, "-m", "crds.sync", *args], env=env, cwd=dest.parent, capture_output=True,
                          text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def _ours(dest, url, *args, timeout=120):
    proc = subprocess.run([PYTHON, "-m", "crds_async", "sync", *args], env=sync_env(dest, url), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stderr


def _tree(root):
    return {name: sha1(path.read_bytes()) for name, path in final_files(root).items()}


def _served(tmp_path, shared_cache, references):
    cache = make_served_cache(tmp_path / "served", shared_cache)
    return cache, add_references(cache, "hst", references, size=48)


@needs_reference
def test_reference_client_syncs_context_and_references(tmp_path, shared_cache):
    names = _context_references(shared_cache)
    sample = names[:: max(1, len(names) // 40)] + [n for n in names if n.endswith(".r3h")][:3]
    sample = sorted(set(sample) | {c for n in sample if (c := geis_conjugate(n))})
    served, contents = _served(tmp_path, shared_cache, sample)
    ref_cache, our_cache = tmp_path / "reference_cache", tmp_path / "our_cache"
    with server_process(served) as url:
        code, log = _reference_sync(ref_cache, url, "--contexts", CONTEXT)
        assert code == 0, log[-3000:]
        code, log = _reference_sync(ref_cache, url, "--files", *sample, "--check-files", "--check-sha1sum")
        assert code == 0, log[-3000:]
        code, err = _ours(our_cache, url, "--contexts", CONTEXT)
        assert code == 0, err
        code, err = _ours(our_cache, url, "--files", *sample, "--check-sha1sum")
        assert code == 0, err

    mappings = _tree(ref_cache / "mappings")
    shared = {n: sha1((shared_cache / "mappings" / "hst" / n).read_bytes()) for n in mappings}
    assert len(mappings) == 137 and mappings == shared, "the reference got other mappings than the cache holds"
    references = _tree(ref_cache / "references")
    assert references == {n: sha1(c) for n, c in contents.items()}
    # Same files, same places (instrument layout, jref -> acs links) as the reference client.
    assert _tree(our_cache / "mappings") == mappings and _tree(our_cache / "references") == references
    ref_paths = {p.relative_to(ref_cache) for p in (ref_cache / "references").rglob("*")}
    our_paths = {p.relative_to(our_cache) for p in (our_cache / "references").rglob("*")}
    assert our_paths == ref_paths
    # Both leave a server_config the reference can read offline.
    for cache in (ref_cache, our_cache):
        assert (cache / "config" / "hst" / "server_config").is_file()


@needs_reference
@pytest.mark.skipif(not SLOW, reason="full hst_0729 reference sync takes minutes; set CRDS_ASYNC_SLOW_TESTS=1")
@pytest.mark.timeout(1800)
def test_reference_full_fetch_references(tmp_path, shared_cache):
    names = _context_references(shared_cache)
    served, contents = _served(tmp_path, shared_cache, names)
    ref_cache, our_cache = tmp_path / "reference_cache", tmp_path / "our_cache"
    with server_process(served) as url:
        started = time.perf_counter()
        code, log = _reference_sync(ref_cache, url, "--contexts", CONTEXT, "--fetch-references", timeout=1700)
        reference_wall = time.perf_counter() - started
        assert code == 0, log[-3000:]
        started = time.perf_counter()
        code, err = _ours(our_cache, url, "--contexts", CONTEXT, "--fetch-references", "--jobs", "16",
                          timeout=1700)
        ours_wall = time.perf_counter() - started
        assert code == 0, err
    print(f"\n{len(names)} references + 137 mappings: reference crds sync {reference_wall:.1f} s, "
          f"crds-batch sync {ours_wall:.1f} s ({err.strip().splitlines()[-1]})")
    expected = {n: sha1(c) for n, c in contents.items()}
    assert _tree(ref_cache / "references") == expected
    assert _tree(our_cache / "references") == expected
    assert _tree(our_cache / "mappings") == _tree(ref_cache / "mappings")


def test_serve_refuses_a_directory_without_server_config(tmp_path):
    proc = subprocess.run([PYTHON, "-m", "crds_async", "serve", "--cache", str(tmp_path), "--port", "0"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "not a CRDS cache" in proc.stderr


def test_serve_rejects_unknown_fault_kind(tmp_path, shared_cache):
    served = make_served_cache(tmp_path / "served", shared_cache, mappings=False)
    proc = subprocess.run([PYTHON, "-m", "crds_async", "serve", "--cache", str(served), "--faults", "meteor"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "unknown fault kind" in proc.stderr


def test_busy_port_is_one_line_and_exit_2(tmp_path) -> None:
    """serve --port on a port in use: one clear line, exit 2, no traceback."""
    import os
    import socket
    import subprocess
    import sys

    from ..conftest import CACHE

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "crds_async", "serve", "--cache", str(CACHE),
                               "--observatory", "hst", "--port", str(port)], capture_output=True, text=True,
                              timeout=300, env=dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "xdg")))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("crds-batch serve: error:") and str(port) in lines[0]


def test_sigterm_stops_the_server_as_ctrl_c_does_even_with_sigint_ignored(tmp_path, shared_cache):
    """A service manager stops a server with SIGTERM; a shell's background job (``cmd &``)
    starts with SIGINT ignored, so SIGTERM is the stop that always works."""
    import signal

    served = make_served_cache(tmp_path / "served", shared_cache)
    proc = subprocess.Popen([PYTHON, "-m", "crds_async", "serve", "--cache", str(served), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert "serving" in proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert err.strip().splitlines()[-1] == "crds-batch serve: stopped"
