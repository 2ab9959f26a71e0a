"""getreferences / agetreferences: the reference's NOT FOUND / N/A semantics, and real downloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from crds_async.errors import ConfigError, LookupFailure
from crds_async.references_api import _localized, _wanted_files, agetreferences, getreferences
from tests.fetch.helpers import private_mappings

from .conftest import needs_reference

BESTREFS = {
    "xtractab": "z1r1943el_1dx.fits",
    "flatfile": "NOT FOUND n/a",
    "darkfile": "NOT FOUND No match found.",
    "biasfile": "NOT FOUND  parameter='FLASHCUR' value='ZERO' is not in ['HIGH', 'LOW', 'MED']",
    "pair": ("a_one.fits", "a_two.fits"),
}


def test_na_kept_other_not_found_raises_last() -> None:
    with pytest.raises(LookupFailure) as info:
        _wanted_files(BESTREFS)
    assert str(info.value) == ("Error determining best reference for 'biasfile'  =    "
                               "parameter='FLASHCUR' value='ZERO' is not in ['HIGH', 'LOW', 'MED']")
    ok = {k: v for k, v in BESTREFS.items() if k not in ("darkfile", "biasfile")}
    wanted = _wanted_files(ok)
    assert wanted == ["z1r1943el_1dx.fits", "a_one.fits", "a_two.fits"]
    paths = {name: f"/cache/{name}" for name in wanted}
    assert _localized(ok, paths) == {
        "xtractab": "/cache/z1r1943el_1dx.fits",
        "flatfile": "NOT FOUND n/a",
        "pair": ("/cache/a_one.fits", "/cache/a_two.fits"),
    }


@needs_reference
def test_error_text_and_wanted_files_as_reference(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("CRDS_PATH", str(tmp_path))
    monkeypatch.setenv("CRDS_MODE", "local")
    from crds.client import api as reference_api
    from crds.core.exceptions import CrdsLookupError

    with pytest.raises(CrdsLookupError) as theirs:
        reference_api._get_cache_filelist_and_report_errors(dict(BESTREFS))
    with pytest.raises(LookupFailure) as ours:
        _wanted_files(BESTREFS)
    assert str(ours.value) == str(theirs.value)
    ok = {k: v for k, v in BESTREFS.items() if k not in ("darkfile", "biasfile")}
    assert _wanted_files(ok) == reference_api._get_cache_filelist_and_report_errors(dict(ok))


async def test_sync_twin_refuses_a_running_loop() -> None:
    with pytest.raises(ConfigError, match="agetreferences"):
        getreferences({"INSTRUME": "COS"}, context="hst_0729.pmap")
    assert callable(agetreferences)


# --------------------------------------------------------------------------- end to end
CORPUS_FILES = ("i1b480y8q_raw.fits", "i1o7b7ghq_raw.fits")   # all answers are files or NOT FOUND n/a
FAILING_FILE = "i04bzq0vq_raw.fits"                           # biasfile: a real NOT FOUND


def _fits_header(path) -> dict[str, str]:
    """Cards of every HDU, first value wins, values as text (what the pipeline passes)."""
    from astropy.io import fits

    header: dict[str, str] = {}
    with fits.open(path) as hdus:
        for hdu in hdus:
            for card in hdu.header.cards:
                if card.keyword and card.keyword not in ("COMMENT", "HISTORY", ""):
                    header.setdefault(card.keyword, str(card.value))
    return header


@pytest.fixture
async def served(tmp_path, expected_hst):
    """The project's server over a cache with the real hst rules and stand-in reference files."""
    import hashlib
    import os
    import shutil

    from crds_async.fetch.server import CrdsServer, run_server

    from .conftest import CACHE

    root = tmp_path / "served"
    shutil.copytree(CACHE / "config" / "hst", root / "config" / "hst")
    (root / "mappings").mkdir()
    (root / "mappings" / "hst").symlink_to(private_mappings() / "hst")  # never into ../shared
    refdir = root / "references" / "hst"
    refdir.mkdir(parents=True)
    sha1 = {}
    for dataset in CORPUS_FILES + (FAILING_FILE,):
        for answer in expected_hst[dataset].values():
            if not answer.startswith("NOT FOUND"):
                data = answer.encode() + os.urandom(256)
                (refdir / answer).write_bytes(data)
                sha1[answer] = hashlib.sha1(data).hexdigest()
    server = CrdsServer(root, "hst")
    runner = await run_server(server)
    try:
        yield server, sha1
    finally:
        await runner.cleanup()


def _client_cfg(tmp_path, url: str):
    from crds_async.config import config_from_env

    empty = tmp_path / "client_cache"
    empty.mkdir()
    return config_from_env({"CRDS_PATH": str(empty), "CRDS_SERVER_URL": url, "CRDS_MODE": "auto"}), empty


async def test_rules_sync_and_downloads_into_an_empty_cache(served, tmp_path, expected_hst) -> None:
    """The two fetch steps getreferences takes: rules first, then verified references."""
    import hashlib

    from crds_async.fetch.sync import sync_context_rules
    from crds_async.references_api import _cache_references

    server, sha1 = served
    cfg, empty = _client_cfg(tmp_path, server.base_url)
    await sync_context_rules(cfg, "hst", "hst_0729.pmap")
    assert (empty / "mappings" / "hst" / "hst_0729.pmap").is_file()
    assert (empty / "mappings" / "hst" / "hst_acs_biasfile_0345.rmap").is_file()
    names = sorted(sha1)
    paths = await _cache_references(cfg, "hst", "hst_0729.pmap", names)
    assert sorted(paths) == names
    for name, path in paths.items():
        assert empty in path.parents and hashlib.sha1(path.read_bytes()).hexdigest() == sha1[name]
    # A name the server does not have: never a path that does not exist, a CrdsDownloadError.
    from crds_async.errors import CrdsDownloadError, FetchError

    with pytest.raises(CrdsDownloadError, match="zzzz0000j_drk.fits") as info:
        await _cache_references(cfg, "hst", "hst_0729.pmap", ["zzzz0000j_drk.fits"])
    assert isinstance(info.value, FetchError)
    assert not (empty / "references" / "hst" / "zzzz0000j_drk.fits").exists()


async def test_into_an_empty_cache_returns_verified_files(served, tmp_path, corpus, expected_hst) -> None:
    import hashlib

    server, sha1 = served
    cfg, empty = _client_cfg(tmp_path, server.base_url)
    for dataset in CORPUS_FILES:
        header = _fits_header(corpus / "hst" / dataset)
        result = await agetreferences(header, context="hst_0729.pmap", observatory="hst", cfg=cfg)
        expected = expected_hst[dataset]
        assert set(result) == set(expected)
        for reftype, answer in expected.items():
            if answer == "NOT FOUND n/a":
                assert result[reftype] == answer
                continue
            path = Path(result[reftype])
            assert path.name == answer
            assert path.is_file() and empty in path.parents
            assert hashlib.sha1(path.read_bytes()).hexdigest() == sha1[answer]
    assert (empty / "mappings" / "hst" / "hst_0729.pmap").is_file()


async def test_real_not_found_raises_after_sync(served, tmp_path, corpus, expected_hst) -> None:
    server, _sha1 = served
    cfg, _empty = _client_cfg(tmp_path, server.base_url)
    header = _fits_header(corpus / "hst" / FAILING_FILE)
    expected = expected_hst[FAILING_FILE]["biasfile"]
    with pytest.raises(LookupFailure) as info:
        await agetreferences(header, context="hst_0729.pmap", observatory="hst", cfg=cfg)
    assert str(info.value) == f"Error determining best reference for 'biasfile'  =  {expected[len('NOT FOUND'):]}"


def test_blocking_twin_uses_cached_files(tmp_path, corpus, expected_hst) -> None:
    """getreferences() with every answer already cached: no server needed, paths returned."""
    import shutil

    from crds_async.config import config_from_env

    from .conftest import CACHE

    cache_copy = tmp_path / "cache"
    shutil.copytree(CACHE / "config" / "hst", cache_copy / "config" / "hst")
    (cache_copy / "mappings").mkdir()
    (cache_copy / "mappings" / "hst").symlink_to(private_mappings() / "hst")  # never into ../shared

    dataset = CORPUS_FILES[0]
    refdir = cache_copy / "references" / "hst"
    refdir.mkdir(parents=True, exist_ok=True)
    for answer in expected_hst[dataset].values():
        if not answer.startswith("NOT FOUND"):
            (refdir / answer).write_bytes(b"cached")
    cfg = config_from_env({"CRDS_PATH": str(cache_copy), "CRDS_MODE": "local"})
    result = getreferences(_fits_header(corpus / "hst" / dataset), context="hst_0729.pmap",
                           observatory="hst", cfg=cfg)
    for reftype, answer in expected_hst[dataset].items():
        if answer.startswith("NOT FOUND"):
            assert result[reftype] == answer
        else:
            assert Path(result[reftype]).read_bytes() == b"cached" and Path(result[reftype]).name == answer
