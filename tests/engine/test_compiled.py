"""Compiled contexts: cached per user, reloaded only if ours and unchanged, same answers."""

from __future__ import annotations

import json
import os
import shutil

from crds_async.config import config_from_env
from crds_async.engine import compiled as compiled_cache
from crds_async.engine.compiled import cache_file_for, load_context_cached
from crds_async.engine.loader import new_evaluator as Evaluator
from crds_async.rules.model import Context
from tests.conftest import CACHE, CORPUS
from tests.rules.test_corpus import astropy_raw_header
from crds_async.instruments import bestrefs_parameters, dataset_header


def test_second_load_comes_from_the_cache_and_answers_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cfg = config_from_env({"CRDS_PATH": str(CACHE)})
    first = load_context_cached("jwst_0541.pmap", cfg)
    path = cache_file_for(cfg, "jwst", "jwst_0541.pmap")
    assert path.exists() and str(tmp_path) in str(path)  # never inside the CRDS cache
    second = load_context_cached("jwst-operational", cfg)
    assert isinstance(second, Context) and second is not first and second.name == "jwst_0541.pmap"
    expected = json.loads((CORPUS / "expected_jwst_0541.json").read_text())
    evaluator = Evaluator(second, cfg)
    for name in sorted(expected)[:40]:
        header = bestrefs_parameters(dataset_header(astropy_raw_header(CORPUS / "jwst" / name)))
        got = {k: list(v) if isinstance(v, tuple) else v for k, v in evaluator.evaluate(header).items()}
        assert got == expected[name]


def test_a_tampered_or_foreign_file_is_never_unpickled(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cfg = config_from_env({"CRDS_PATH": str(CACHE)})
    load_context_cached("jwst_0541.pmap", cfg)
    path = cache_file_for(cfg, "jwst", "jwst_0541.pmap")
    blob = bytearray(path.read_bytes())
    blob[-10] ^= 0xFF
    path.write_bytes(bytes(blob))
    monkeypatch.setattr(compiled_cache.pickle, "loads", lambda data: (_ for _ in ()).throw(AssertionError("unpickled")))
    assert load_context_cached("jwst_0541.pmap", cfg).name == "jwst_0541.pmap"  # rebuilt from the rules


def test_a_changed_mapping_invalidates_the_compiled_form(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cache = tmp_path / "cache"
    shutil.copytree(CACHE / "config" / "jwst", cache / "config" / "jwst")
    shutil.copytree(CACHE / "mappings" / "jwst", cache / "mappings" / "jwst")
    cfg = config_from_env({"CRDS_PATH": str(cache)})
    load_context_cached("jwst_0541.pmap", cfg)
    rmap = cache / "mappings" / "jwst" / "jwst_miri_area_0011.rmap"
    stat = os.stat(rmap)
    os.utime(rmap, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))
    calls = []
    real = compiled_cache.load_context
    monkeypatch.setattr(compiled_cache, "load_context", lambda *a, **k: calls.append(a) or real(*a, **k))
    load_context_cached("jwst_0541.pmap", cfg)
    assert calls, "a changed rmap must force a rebuild"


def test_changed_rules_code_invalidates_the_compiled_form(tmp_path, monkeypatch):
    """An edited checkout (same version number) never loads objects pickled by the older code."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cfg = config_from_env({"CRDS_PATH": str(CACHE)})
    load_context_cached("jwst_0541.pmap", cfg)
    calls = []
    real = compiled_cache.load_context
    monkeypatch.setattr(compiled_cache, "load_context", lambda *a, **k: calls.append(a) or real(*a, **k))
    load_context_cached("jwst_0541.pmap", cfg)
    assert not calls  # same code: from the cache
    monkeypatch.setattr(compiled_cache, "_CODE_DIGEST", [b"digest of other rules code"])
    load_context_cached("jwst_0541.pmap", cfg)
    assert calls, "other rules code must force a rebuild"


def test_two_builds_keep_their_own_compiled_forms(tmp_path, monkeypatch):
    """Installations of other rules code sharing one home directory do not rebuild over each
    other's compiled form at every run; one unused for a week is removed by the next store."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cfg = config_from_env({"CRDS_PATH": str(CACHE)})
    calls = []
    real = compiled_cache.load_context
    monkeypatch.setattr(compiled_cache, "load_context", lambda *a, **k: calls.append(a) or real(*a, **k))
    digests = [b"rules code of build A", b"rules code of build B"]
    paths = []
    for digest in digests:
        monkeypatch.setattr(compiled_cache, "_CODE_DIGEST", [digest])
        load_context_cached("jwst_0541.pmap", cfg)
        paths.append(cache_file_for(cfg, "jwst", "jwst_0541.pmap"))
    assert len(calls) == 2 and paths[0] != paths[1] and all(p.exists() for p in paths)
    for digest in digests * 2:  # alternating runs: every one from its own file
        monkeypatch.setattr(compiled_cache, "_CODE_DIGEST", [digest])
        assert load_context_cached("jwst_0541.pmap", cfg).name == "jwst_0541.pmap"
    assert len(calls) == 2

    week_ago = paths[0].stat().st_mtime - 8 * 24 * 3600
    legacy = paths[0].parent / "jwst_0541.pmap.pkl"  # named as before builds were tagged
    legacy.write_bytes(b"an old build's pickle")
    for old in (*paths, legacy):
        os.utime(old, (week_ago, week_ago))
    monkeypatch.setattr(compiled_cache, "_CODE_DIGEST", [b"rules code of build C"])
    load_context_cached("jwst_0541.pmap", cfg)
    assert not paths[0].exists() and not paths[1].exists() and not legacy.exists()
    assert cache_file_for(cfg, "jwst", "jwst_0541.pmap").exists()


def test_a_load_marks_the_compiled_form_in_use(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cfg = config_from_env({"CRDS_PATH": str(CACHE)})
    load_context_cached("jwst_0541.pmap", cfg)
    path = cache_file_for(cfg, "jwst", "jwst_0541.pmap")
    os.utime(path, (1_000_000_000, 1_000_000_000))
    load_context_cached("jwst_0541.pmap", cfg)
    assert path.stat().st_mtime > 1_000_000_000


def test_symbolic_names_are_resolved_once_per_server_config(tmp_path, monkeypatch):
    """hst-operational is resolved from HST's 2 MB server_config once; later processes read the
    remembered name, until the server_config changes.  A remembered name that is not a .pmap
    name is not believed."""
    from crds_async.engine.compiled import resolved_context_name
    from crds_async.fetch import server_config as contexts

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cache = tmp_path / "cache"
    shutil.copytree(CACHE / "config" / "hst", cache / "config" / "hst")
    cfg = config_from_env({"CRDS_PATH": str(cache)})
    assert resolved_context_name("hst-operational", cfg, "hst") == "hst_0729.pmap"

    parses = []
    real = contexts.read_server_config
    monkeypatch.setattr(contexts, "read_server_config", lambda d: parses.append(d) or real(d))
    contexts._SERVER_CONFIGS.clear()  # as in a new process
    assert resolved_context_name("hst-operational", cfg, "hst") == "hst_0729.pmap"
    assert resolved_context_name("hst_0600.pmap", cfg, "hst") == "hst_0600.pmap"
    assert parses == []

    server_config = cache / "config" / "hst" / "server_config"
    server_config.chmod(0o644)
    server_config.write_text(server_config.read_text().replace("'hst_0729.pmap'", "'hst_0700.pmap'"))
    assert resolved_context_name("hst-operational", cfg, "hst") == "hst_0700.pmap"
    assert len(parses) == 1

    memo = next((tmp_path / "xdg").rglob("symbolic-contexts.json"))
    data = json.loads(memo.read_text())
    data["names"]["hst-operational"] = "../../etc/passwd"
    memo.write_text(json.dumps(data))
    assert resolved_context_name("hst-operational", cfg, "hst") == "hst_0700.pmap"


def test_a_symbolic_and_a_literal_name_share_one_loaded_context(tmp_path, monkeypatch):
    """A batch resolves hst-operational, then hands its workers hst_0729.pmap: they must find the
    context the main process loaded (and froze) before forking, not load it again."""
    from crds_async.engine import registry

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    fresh = registry.ContextRegistry()
    cfg = config_from_env({"CRDS_PATH": str(CACHE)})
    loads = []
    real = registry.load_context_cached
    monkeypatch.setattr(registry, "load_context_cached", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    symbolic = fresh.evaluator("jwst-operational", cfg)
    assert fresh.evaluator(symbolic.context.name, cfg) is symbolic
    assert fresh.evaluator("jwst-operational", cfg) is symbolic
    assert loads == [symbolic.context.name]  # loaded once, by the name it resolves to
