"""crds-batch diff: the same difference tuples as the reference's crds diff, exit codes 0/1/2."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


from crds_async.cli import main
from crds_async.rules.diff import diff_mappings
from crds_async.fetch.mapping_files import FileMappingStore as MappingStore

from ..conftest import CACHE, needs_reference

SERVERS = {"hst": "https://hst-crds.stsci.edu", "jwst": "https://jwst-crds.stsci.edu"}
# (observatory, old, new): hst_0600 and hst_0729 are both in the shared cache.
PAIRS = [
    ("hst", "hst_0600.pmap", "hst_0729.pmap"),
    ("jwst", "jwst_0500.pmap", "jwst_0541.pmap"),
    ("hst", "hst_cos_tdstab_0250.rmap", "hst_cos_tdstab_0257.rmap"),
]


def reference_diff(obs: str, old: str, new: str) -> tuple[int, set[tuple]]:
    """Run the reference's crds diff offline; its difference tuples with basenames in the first pair."""
    env = dict(os.environ, CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_SERVER_URL=SERVERS[obs],
               CRDS_READONLY_CACHE="1")
    mdir = CACHE / "mappings" / obs
    proc = subprocess.run([sys.executable, "-m", "crds.diff", str(mdir / old), str(mdir / new)],
                          env=env, capture_output=True, text=True, timeout=300)
    found = set()
    for line in proc.stdout.splitlines():
        if line.startswith("(("):
            diff = ast.literal_eval(line)
            first = tuple(Path(p).name for p in diff[0])
            found.add((first,) + tuple(diff[1:]))
    return proc.returncode, found


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRDS_PATH", str(CACHE))
    monkeypatch.setenv("CRDS_MODE", "local")
    for var in ("CRDS_OBSERVATORY", "CRDS_CONTEXT", "CRDS_SERVER_URL"):
        monkeypatch.delenv(var, raising=False)


def test_pmaps_exist() -> None:
    for obs, old, new in PAIRS:
        assert (CACHE / "mappings" / obs / old).is_file() and (CACHE / "mappings" / obs / new).is_file()


@needs_reference
@pytest.mark.parametrize("obs, old, new", PAIRS)
def test_same_differences_as_reference(obs: str, old: str, new: str) -> None:
    status, expected = reference_diff(obs, old, new)
    assert status == 1 and expected, "the reference found no differences"
    store = MappingStore(CACHE / "mappings" / obs, verify_checksum=False)
    ours = {d.as_tuple() for d in diff_mappings(old, new, store)}
    assert ours == expected
    # The changed rmaps and references, the question people actually ask:
    assert {p for d in ours for p in d if isinstance(p, tuple) and len(p) == 2 and p[0].endswith(".rmap")} == \
        {p for d in expected for p in d if isinstance(p, tuple) and len(p) == 2 and p[0].endswith(".rmap")}


def test_cli_exit_codes_and_text(capsys) -> None:
    assert main(["diff", "hst_0729.pmap", "hst_0729.pmap"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["diff", "hst_cos_tdstab_0250.rmap", "hst_cos_tdstab_0257.rmap"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(ast.literal_eval(line)[0] == ("hst_cos_tdstab_0250.rmap", "hst_cos_tdstab_0257.rmap")
                         for line in lines)
    assert main(["diff", "hst_0729.pmap", "hst-operational"]) == 0  # resolved offline to hst_0729.pmap
    assert main(["diff", "hst_0729.pmap", "hst_7777.pmap"]) == 2
    assert "hst_7777.pmap" in capsys.readouterr().err
    assert main(["diff", "hst_0729.pmap", "hst_acs_0421.imap"]) == 2


def test_cli_json_summary(capsys) -> None:
    assert main(["diff", "--json", "hst_0600.pmap", "hst_0729.pmap"]) == 1
    report = json.loads(capsys.readouterr().out)
    store = MappingStore(CACHE / "mappings" / "hst", verify_checksum=False)
    diffs = diff_mappings("hst_0600.pmap", "hst_0729.pmap", store)
    assert len(report["differences"]) == len(diffs)
    acs_bias = report["summary"]["acs"]["biasfile"]
    assert "hst_acs_biasfile_0314.rmap -> hst_acs_biasfile_0345.rmap" in acs_bias["mappings"]
    # every reference the new bias rmap adds shows up as a new file
    new_refs = set(store.reference_names("hst_acs_biasfile_0345.rmap")) - \
        set(store.reference_names("hst_acs_biasfile_0314.rmap"))
    assert new_refs and new_refs <= set(acs_bias["new_files"])


def test_summary_text(capsys) -> None:
    assert main(["diff", "--summary", "hst_cos_tdstab_0250.rmap", "hst_cos_tdstab_0257.rmap"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("cos tdstab:")


def test_paths_outside_the_cache(tmp_path: Path, capsys) -> None:
    src = CACHE / "mappings" / "hst" / "hst_cos_tdstab_0251.rmap"
    copy = tmp_path / "hst_cos_tdstab_0251.rmap"
    copy.write_text(src.read_text().replace("ycj1846tl_tds.fits", "new0000tl_tds.fits"))
    assert main(["diff", str(src), str(copy)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "replaced ycj1846tl_tds.fits with new0000tl_tds.fits" in out[0]


def test_summary_is_counts_shorter_than_the_full_diff(capsys) -> None:
    """--summary prints counts (one line per instrument and type, then totals), not every file name."""
    assert main(["diff", "hst_0700.pmap", "hst_0729.pmap"]) == 1
    full = capsys.readouterr().out.splitlines()
    assert main(["diff", "--summary", "hst_0700.pmap", "hst_0729.pmap"]) == 1
    summary = capsys.readouterr().out.splitlines()
    assert len(summary) < len(full) // 10
    assert not any(line.startswith("\t") for line in summary)
    total = summary[-1]
    assert total.startswith("total: ") and f"({len(full)} difference(s))" in total
    counted = 0
    for line in summary[:-1]:
        counts = line.split(": ", 1)[1].split(" (")[0]
        counted += sum(int(part.split()[0]) for part in counts.split(", "))
    assert counted == len(full)


def test_mappings_of_different_observatories(capsys) -> None:
    """hst_... against jwst_...: says so, instead of a mapping being missing."""
    assert main(["diff", "hst_0729.pmap", "jwst_0541.pmap"]) == 2
    err = capsys.readouterr().err
    assert "different observatories" in err and "missing" not in err and "not in" not in err
