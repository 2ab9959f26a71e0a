"""Reference-file certify: each check on small files made in tmp_path, and the CLI's exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from crds_async.config import config_from_env
from crds_async.reffiles.certify import certify_reference, certify_references
from crds_async.reffiles.kinds import kind_of
from crds_async.reffiles.open import UnusableInput, open_reference
from crds_async.engine.loader import load_context

from ..conftest import CACHE, ROOT, SHARED

REFDATA = SHARED / "refdata"


@pytest.fixture(scope="module")
def cfg():
    return config_from_env({"CRDS_PATH": str(CACHE), "CRDS_READONLY_CACHE": "1", "CRDS_MODE": "local",
                            "CRDS_IGNORE_MAPPING_CHECKSUM": "1"})


@pytest.fixture(scope="module")
def hst(cfg):
    return load_context("hst_0729.pmap", cfg, "hst")


@pytest.fixture(scope="module")
def jwst(cfg):
    return load_context("jwst_0541.pmap", cfg, "jwst")


def _where(result, severity="error"):
    return {(p.check, p.where) for p in result.problems if p.severity == severity}


def _dead(tmp_path, name="s7g1700gl_dead.fits", **cards):
    """A copy of the COS deadtab with header cards changed (checksums rewritten)."""
    target = tmp_path / name
    shutil.copy(REFDATA / "hst" / "s7g1700gl_dead.fits", target)
    with fits.open(target, mode="update") as hdul:
        for key, value in cards.items():
            if value is None:
                del hdul[0].header[key]
            else:
                hdul[0].header[key] = value
    return target


def test_kind_from_suffix_then_bytes(tmp_path):
    assert kind_of("x.FITS") == "fits" and kind_of("x.yml") == "yaml" and kind_of("x.asdf") == "asdf"
    odd = tmp_path / "noext"
    odd.write_bytes(b"#ASDF 1.0.0\n")
    assert kind_of(odd) == "asdf"
    odd.write_bytes(b"hello")
    assert kind_of(odd) is None


def test_a_clean_reference_has_no_problem(hst):
    result = certify_reference(REFDATA / "hst" / "s7g1700gl_dead.fits", hst)
    assert (result.instrument, result.filekind) == ("cos", "deadtab")
    assert result.problems == []


def test_checksum_and_datasum_mismatches_name_the_keyword(hst):
    result = certify_reference(REFDATA / "hst" / "s7g1700gl_dead_bad_xsum.fits", hst)
    assert {("checksum", "CHECKSUM"), ("checksum", "DATASUM")} <= _where(result)


def test_a_value_no_rmap_accepts_is_an_error_naming_the_keyword(hst, tmp_path):
    result = certify_reference(_dead(tmp_path, DETECTOR="BROKEN"), hst)
    assert _where(result) == {("value", "DETECTOR")}
    assert "'BROKEN'" in str(result.problems[0]) and "FUV, NUV" in str(result.problems[0])


def test_alternatives_are_checked_one_by_one(hst, tmp_path):
    assert certify_reference(_dead(tmp_path, DETECTOR="FUV|NUV"), hst).errors == []
    assert _where(certify_reference(_dead(tmp_path, DETECTOR="FUV|XUV"), hst)) == {("value", "DETECTOR")}


def test_useafter_must_parse_and_must_be_there_when_the_rmap_selects_by_date(hst, tmp_path):
    assert _where(certify_reference(_dead(tmp_path, USEAFTER="yesterday"), hst)) == {("useafter", "USEAFTER")}
    assert _where(certify_reference(_dead(tmp_path, USEAFTER=None), hst)) == {("useafter", "USEAFTER")}


def test_hst_missing_match_keyword_is_a_warning(hst, tmp_path):
    result = certify_reference(_dead(tmp_path, DETECTOR=None), hst)
    assert result.errors == []
    assert _where(result, "warning") == {("keyword", "DETECTOR")}


def test_jwst_missing_match_keyword_and_pattern_keywords(jwst):
    missing = certify_reference(REFDATA / "jwst" / "niriss_ref_photom_missing_detector.fits", jwst)
    assert ("keyword", "META.INSTRUMENT.DETECTOR") in _where(missing)
    bad = certify_reference(REFDATA / "jwst" / "jwst_miri_ipc.bad-value.fits", jwst)
    assert _where(bad) == {("value", "META.INSTRUMENT.DETECTOR [P_DETECT]")}
    assert certify_reference(REFDATA / "jwst" / "jwst_miri_ipc.bad-keyword.fits", jwst).errors == []


def test_table_rows_identical_or_overlapping_in_mode_columns(hst, tmp_path):
    path = _dead(tmp_path)
    with fits.open(path, mode="update") as hdul:
        data = hdul[1].data
        rows = np.concatenate([data, data[:1], data[1:2]])
        rows["LIVETIME"][-1] = 0.5
        table = fits.BinTableHDU(rows, header=hdul[1].header)
        table.header["DETECTOR"] = "FUV"
        hdul[1] = table
    result = certify_reference(path, hst)
    assert ("duplicate", "row 11") in _where(result, "warning")
    assert result.errors == []


def test_overlapping_modes_use_the_rmap_match_columns(hst, tmp_path):
    from crds_async.reffiles.certify import _check_table
    from crds_async.reffiles.open import Table

    table = Table(1, "T", ["DETECTOR", "X"], [("FUV", 1.0), ("NUV", 1.0), ("FUV", 2.0), ("FUV", 1.0)])
    found = {(p.check, p.where) for p in _check_table("t.fits", table, ["DETECTOR"])}
    assert found == {("overlap", "row 3"), ("duplicate", "row 4")}


def test_json_yaml_asdf_syntax(jwst, tmp_path):
    for name, check in (("invalid.json", "format"), ("invalid.yaml", "format"), ("invalid.asdf", "format")):
        result = certify_reference(REFDATA / "jwst" / name, jwst)
        assert [p.check for p in result.errors] == [check], name
    assert certify_reference(REFDATA / "jwst" / "valid.json", jwst).errors == []


def test_asdf_that_does_not_load_is_one_finding(tmp_path):
    path = tmp_path / "broken.asdf"
    path.write_bytes(b"#ASDF 1.0.0\n#ASDF_STANDARD 1.5.0\n%YAML 1.1\n--- !core/asdf-1.1.0\nmeta: {a: [1, 2\n...\n")
    findings = open_reference(path).findings
    assert [f.check for f in findings] == ["format"]
    assert findings[0].message.startswith("not a readable ASDF file")


def test_unusable_input_raises(jwst, tmp_path):
    with pytest.raises(UnusableInput, match="no such file"):
        certify_reference(tmp_path / "absent.fits", jwst)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UnusableInput, match="not a FITS, ASDF, JSON or YAML"):
        certify_reference(tmp_path / "notes.txt", jwst)
    results = list(certify_references([tmp_path / "absent.fits", REFDATA / "jwst" / "valid.json"], jwst, jobs=2))
    assert isinstance(results[0], UnusableInput) and results[1].errors == []


def test_comparison_context_says_what_would_be_replaced(hst, tmp_path):
    same = certify_reference(REFDATA / "hst" / "s7g1700gl_dead.fits", hst, hst)
    assert [n.message for n in same.notes] == ["already in hst_cos_deadtab_0250.rmap: no change"]
    renamed = certify_reference(_dead(tmp_path, name="newdead_dead.fits"), hst, hst)
    assert [n.message for n in renamed.notes] == [
        "replaces s7g1700gl_dead.fits at hst_cos_deadtab_0250.rmap ('FUV',) 1996-10-01 00:00:00"]
    later = certify_reference(_dead(tmp_path, name="later_dead.fits", USEAFTER="Jan 01 2020 00:00:00"), hst, hst)
    assert [n.message for n in later.notes] == ["adds 2020-01-01 00:00:00 to hst_cos_deadtab_0250.rmap ('FUV',)"]


def _cli(*args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(CACHE), CRDS_READONLY_CACHE="1", CRDS_MODE="local")
    return subprocess.run([sys.executable, "-m", "crds_async", "certify", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_exit_codes_and_one_line_per_problem(tmp_path):
    clean = _cli(REFDATA / "hst" / "s7g1700gl_dead.fits", "--context", "hst_0729.pmap", cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout == ""
    broken = _cli(REFDATA / "hst" / "s7g1700gm_dead_broken.fits", "--context", "hst_0729.pmap", cwd=tmp_path)
    assert broken.returncode == 1
    assert broken.stdout.splitlines() == [
        f"{REFDATA / 'hst' / 's7g1700gm_dead_broken.fits'}: DETECTOR: value: value 'BROKEN' is not one "
        "hst_cos_deadtab_0250.rmap accepts (FUV, NUV)"]
    missing = _cli(tmp_path / "absent.fits", REFDATA / "hst" / "s7g1700gl_dead.fits", "--context",
                   "hst_0729.pmap", cwd=tmp_path)
    assert missing.returncode == 2
    assert f"ERROR: {tmp_path / 'absent.fits'}: no such file" in missing.stderr


def test_cli_json_and_mappings_still_go_to_the_mapping_certifier(tmp_path):
    out = _cli(REFDATA / "jwst" / "jwst_miri_ipc.bad-value.fits", "--json", cwd=tmp_path)
    assert out.returncode == 1
    report = json.loads(out.stdout)
    assert report["with_errors"] == 1 and report["context"].startswith("jwst_")
    mapping = _cli("hst_cos_deadtab_0250.rmap", cwd=tmp_path)
    assert mapping.returncode == 0, mapping.stderr
    assert "mapping(s) checked" in mapping.stderr


def test_no_table_reader_of_our_own():
    """Tables are read by astropy (the issue forbids a hand-written FITS table reader)."""
    source = (ROOT / "crds_async" / "reffiles" / "open.py").read_text()
    assert "astropy.io import fits" in source and "BinTableHDU" in source
