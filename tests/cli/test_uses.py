"""crds-batch uses: the same mappings as the reference's crds uses, from an index built once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


from crds_async.cli import main
from crds_async.fetch.mapping_files import FileMappingStore as MappingStore
from crds_async.rules.inspect import UsesIndex
from tests.fetch.helpers import private_mappings

from ..conftest import CACHE, needs_reference

SERVERS = {"hst": "https://hst-crds.stsci.edu", "jwst": "https://jwst-crds.stsci.edu"}
# A few recent contexts per observatory: the reference's uses crashes on the whole shared cache
# (hst_acs_0001.imap names an rmap that is not cached), so both sides run on a cache made of
# these contexts' mappings.
CONTEXTS = {"hst": [f"hst_{n:04d}.pmap" for n in range(725, 730)],
            "jwst": [f"jwst_{n:04d}.pmap" for n in range(537, 542)]}

REFERENCE_SCRIPT = textwrap.dedent("""
    import json, sys
    from crds import uses
    obs, names = sys.argv[1], sys.argv[2:]
    print(json.dumps({name: uses.uses([name], obs) for name in names}))
""")


def _subset_cache(tmp_path: Path, obs: str) -> Path:
    cache = tmp_path / f"cache_{obs}"
    shutil.copytree(CACHE / "config" / obs, cache / "config" / obs)
    mdir = cache / "mappings" / obs
    mdir.mkdir(parents=True)
    store = MappingStore(CACHE / "mappings" / obs)
    for name in sorted({m for ctx in CONTEXTS[obs] for m in store.closure(ctx)}):
        (mdir / name).symlink_to(private_mappings() / obs / name)  # never into ../shared
    return cache


def _queries(obs: str) -> list[str]:
    store = MappingStore(CACHE / "mappings" / obs)
    newest, oldest = CONTEXTS[obs][-1], CONTEXTS[obs][0]
    refs = store.reference_names(newest)
    old_only = sorted(set(store.reference_names(oldest)) - set(refs))
    mappings = store.closure(newest)
    rmaps = [m for m in mappings if m.endswith(".rmap")]
    imaps = [m for m in mappings if m.endswith(".imap")]
    return refs[::max(1, len(refs) // 12)][:12] + old_only[:3] + rmaps[::20] + imaps[:2] + [newest, "nothing.fits"]


@needs_reference
@pytest.mark.parametrize("obs", ["hst", "jwst"])
def test_same_as_reference(obs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import json

    cache = _subset_cache(tmp_path, obs)
    queries = _queries(obs)
    env = dict(os.environ, CRDS_PATH=str(cache), CRDS_MODE="local", CRDS_SERVER_URL=SERVERS[obs],
               CRDS_READONLY_CACHE="1")
    proc = subprocess.run([sys.executable, "-c", REFERENCE_SCRIPT, obs, *queries], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = json.loads(proc.stdout.splitlines()[-1])
    assert sum(len(v) for v in expected.values()) > 20

    monkeypatch.setenv("CRDS_PATH", str(cache))
    monkeypatch.setenv("CRDS_MODE", "local")
    monkeypatch.delenv("CRDS_SERVER_URL", raising=False)
    monkeypatch.setenv("CRDS_OBSERVATORY", obs)
    assert main(["uses", "--json", "--files", *queries]) == 0
    ours = json.loads(capsys.readouterr().out)
    assert ours == expected


def test_whole_cache_index_agrees_with_closures(capsys) -> None:
    """Over every cached jwst mapping: a context uses a reference iff the reference is in its closure."""
    import time

    store = MappingStore(CACHE / "mappings" / "jwst")
    started = time.monotonic()
    index = UsesIndex.build(store, store.all_names())
    built = time.monotonic() - started
    started = time.monotonic()
    users = index.uses("jwst_miri_flat_0242.fits")
    lookup = time.monotonic() - started
    with capsys.disabled():
        print(f"\nuses index over {len(store.all_names())} jwst mappings: {built:.1f}s; lookup {lookup * 1e3:.2f} ms;"
              f" {len(index.failures)} unloadable")
    assert {"jwst_0541.pmap", "jwst_miri_flat_0038.rmap"} <= set(users)
    pmaps = [m for m in users if m.endswith(".pmap")]
    assert len(pmaps) > 5
    for pmap in ("jwst_0300.pmap", "jwst_0500.pmap", "jwst_0541.pmap", pmaps[0]):
        refs = set(store.reference_names(pmap))
        assert ("jwst_miri_flat_0242.fits" in refs) == (pmap in users)
    # files the index could not load are named, not silently dropped
    assert all(name in problem for name, problem in index.failures.items())


def test_cli_text_and_contexts(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("CRDS_PATH", str(CACHE))
    monkeypatch.setenv("CRDS_MODE", "local")
    monkeypatch.delenv("CRDS_OBSERVATORY", raising=False)
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    monkeypatch.setenv("CRDS_READONLY_CACHE", "1")  # never write into the shared cache
    assert main(["uses", "--contexts", "hst_0729.pmap", "-i", "--files", "q9e1206kj_bia.fits"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["q9e1206kj_bia.fits hst_0729.pmap", "q9e1206kj_bia.fits hst_acs_0421.imap",
                     "q9e1206kj_bia.fits hst_acs_biasfile_0345.rmap"]


def test_saved_index_is_reused_and_refreshed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import json

    cache = _subset_cache(tmp_path, "hst")
    monkeypatch.setenv("CRDS_PATH", str(cache))
    monkeypatch.setenv("CRDS_MODE", "local")
    monkeypatch.setenv("CRDS_OBSERVATORY", "hst")
    monkeypatch.setenv("CRDS_IGNORE_MAPPING_CHECKSUM", "1")  # the edited rmap below is not re-signed
    monkeypatch.delenv("CRDS_READONLY_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    before = sorted(p.relative_to(cache) for p in cache.rglob("*"))

    assert main(["uses", "--json", "--files", "ycj1846tl_tds.fits"]) == 0
    first = json.loads(capsys.readouterr().out)["ycj1846tl_tds.fits"]
    assert "hst_cos_tdstab_0257.rmap" in first and "hst_0729.pmap" in first
    # The index is kept with the compiled contexts in the user's cache directory, never in
    # the CRDS cache (which may be served or read-only).
    assert sorted(p.relative_to(cache) for p in cache.rglob("*")) == before
    (index_file,) = (tmp_path / "xdg" / "crds_async" / "uses").glob("*/crds_async_uses_index.json")
    saved_at = index_file.stat().st_mtime_ns
    assert main(["uses", "--json", "--files", "ycj1846tl_tds.fits"]) == 0
    assert json.loads(capsys.readouterr().out)["ycj1846tl_tds.fits"] == first
    assert index_file.stat().st_mtime_ns == saved_at, "an unchanged cache reuses the saved index"

    # Edit one rmap: the saved index must notice (size/mtime) and re-read only that file.
    rmap = cache / "mappings" / "hst" / "hst_cos_tdstab_0257.rmap"
    text = rmap.read_text()
    rmap.unlink()
    rmap.write_text(text.replace("ycj1846tl_tds.fits", "new0000tl_tds.fits"))
    assert main(["uses", "--json", "--files", "ycj1846tl_tds.fits", "new0000tl_tds.fits"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert "hst_cos_tdstab_0257.rmap" not in second["ycj1846tl_tds.fits"]
    assert "hst_cos_tdstab_0257.rmap" in second["new0000tl_tds.fits"]
    assert "hst_0729.pmap" in second["new0000tl_tds.fits"]


def test_observatory_from_a_reference_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """``uses --files s9j15534i_drk.fits`` (a CDBS name) and a JWST name need no --observatory."""
    monkeypatch.setenv("CRDS_PATH", str(CACHE))
    monkeypatch.setenv("CRDS_MODE", "local")
    monkeypatch.setenv("CRDS_READONLY_CACHE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for var in ("CRDS_OBSERVATORY", "CRDS_CONTEXT", "CRDS_SERVER_URL"):
        monkeypatch.delenv(var, raising=False)
    assert main(["uses", "--contexts", "hst_0729.pmap", "--files", "s9j15534i_drk.fits"]) == 0
    assert "hst_0729.pmap" in capsys.readouterr().out.split()
    assert main(["uses", "--contexts", "jwst_0541.pmap", "--files", "jwst_miri_flat_0371.fits"]) == 0
    assert "jwst_0541.pmap" in capsys.readouterr().out.split()
    assert main(["uses", "--files", "s9j15534i_drk.fits"]) == 0  # whole cache: hst's
    assert "hst_0729.pmap" in capsys.readouterr().out.split()


@needs_reference
def test_whole_jwst_cache_same_as_reference(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The reference's uses works on the whole cached jwst tree (not on hst): compare there too."""
    import json

    queries = _queries("jwst")[::2]
    env = dict(os.environ, CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_SERVER_URL=SERVERS["jwst"],
               CRDS_READONLY_CACHE="1")
    proc = subprocess.run([sys.executable, "-c", REFERENCE_SCRIPT, "jwst", *queries], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = json.loads(proc.stdout.splitlines()[-1])
    monkeypatch.setenv("CRDS_PATH", str(CACHE))
    monkeypatch.setenv("CRDS_MODE", "local")
    monkeypatch.setenv("CRDS_READONLY_CACHE", "1")  # never write the index into the shared cache
    monkeypatch.setenv("CRDS_OBSERVATORY", "jwst")
    assert main(["uses", "--json", "--files", *queries]) == 0
    assert json.loads(capsys.readouterr().out) == expected
