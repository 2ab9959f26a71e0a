"""crds-batch matches: the same match cases as the reference's crds matches."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


from crds_async.cli import main
from crds_async.fetch.mapping_files import FileMappingStore as MappingStore
from crds_async.rules.inspect import file_matches

from ..conftest import CACHE, needs_reference

SERVERS = {"hst": "https://hst-crds.stsci.edu", "jwst": "https://jwst-crds.stsci.edu"}


def sample_references(obs: str, context: str, count: int) -> list[str]:
    """An even spread of the context's references (deterministic)."""
    names = MappingStore(CACHE / "mappings" / obs).reference_names(context)
    step = max(1, len(names) // count)
    return names[::step][:count]


def reference_matches(obs: str, context: str, files: list[str]) -> set[str]:
    env = dict(os.environ, CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_SERVER_URL=SERVERS[obs],
               CRDS_READONLY_CACHE="1")
    proc = subprocess.run([sys.executable, "-m", "crds.matches", "--contexts", context, "--files", *files],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.strip() for line in proc.stdout.splitlines() if " : " in line}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRDS_PATH", str(CACHE))
    monkeypatch.setenv("CRDS_MODE", "local")
    for var in ("CRDS_OBSERVATORY", "CRDS_CONTEXT", "CRDS_SERVER_URL"):
        monkeypatch.delenv(var, raising=False)


@needs_reference
@pytest.mark.parametrize("obs, context", [("hst", "hst_0729.pmap"), ("jwst", "jwst_0541.pmap"),
                                          ("hst", "hst_0600.pmap")])
def test_same_lines_as_reference(obs: str, context: str, capsys) -> None:
    files = sample_references(obs, context, 25)
    files.append("not_a_reference_0000.fits")
    expected = reference_matches(obs, context, files)
    assert len(expected) >= 25
    main(["matches", "--contexts", context, "--files", *files])
    ours = {line.strip() for line in capsys.readouterr().out.splitlines()}
    assert ours == expected


def test_known_case_and_json(capsys) -> None:
    import json

    store = MappingStore(CACHE / "mappings" / "hst")
    cases = file_matches(store, "hst_0729.pmap", "q9e1206kj_bia.fits")
    assert cases and all(c.rmap == "hst_acs_biasfile_0345.rmap" for c in cases)
    params = dict(cases[0].parameters)
    assert params["DETECTOR"] == "HRC" and params["DATE-OBS"] == "2006-07-04" and params["TIME-OBS"] == "11:32:35"
    assert main(["matches", "--json", "--contexts", "hst_0729.pmap", "--files", "q9e1206kj_bia.fits"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["hst_0729.pmap"]["q9e1206kj_bia.fits"]) == len(cases)


def test_symbolic_context_and_nothing_found(capsys) -> None:
    # hst-operational resolves offline to hst_0729.pmap through the cached server_config
    assert main(["matches", "--contexts", "hst-operational", "--files", "q9e1206kj_bia.fits"]) == 0
    assert "q9e1206kj_bia.fits : ACS BIASFILE" in capsys.readouterr().out
    assert main(["matches", "--contexts", "hst_0729.pmap", "--files", "nothing_00.fits"]) == 1


@pytest.mark.parametrize("name, observatory, first", [
    ("jwst_miri_flat_0371.fits", "jwst", "jwst_miri_flat_0371.fits : MIRI FLAT "),
    ("s9j15534i_drk.fits", "hst", "s9j15534i_drk.fits : WFC3 DARKFILE "),
])
def test_observatory_from_the_reference_name(name: str, observatory: str, first: str, capsys) -> None:
    """No --observatory, context or server: the reference's name says whose it is."""
    from crds_async.cli.inspect_common import observatory_of_file_name

    assert observatory_of_file_name(name) == observatory
    assert main(["matches", "--files", name]) == 0
    out = capsys.readouterr().out
    assert out.startswith(first), out


def test_names_that_do_not_tell() -> None:
    from crds_async.cli.inspect_common import observatory_of_file_name

    assert observatory_of_file_name("hst_acs_darkfile_0250.rmap") == "hst"
    assert observatory_of_file_name("roman_wfi_dark_0001.asdf") == "roman"
    for name in ("dataset.fits", "readme.txt", "foo_bar.fits"):
        assert observatory_of_file_name(name) is None
