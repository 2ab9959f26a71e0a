"""getreferences / agetreferences: the reference's NOT FOUND / N/A semantics, and real downloads."""

from __future__ import annotations

import pytest

from crds_async.errors import ConfigError, LookupFailure
from crds_async.references_api import _localized, _wanted_files, agetreferences, getreferences

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
