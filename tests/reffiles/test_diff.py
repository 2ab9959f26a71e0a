"""crds-batch diff on reference files: the reference's crds diff exit codes and differences.

FITS: the whole printed report (astropy's FITSDiff plus the table row
differences) equals the reference's, numpy-2 value reprs aside.  ASDF: the
reference shells out to ``asdftool diff``; the paths of the differences it
prints (list positions as ``-``) equal the paths crds_async reports.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from crds_async.cli import main
from crds_async.reffiles.diff import ReferenceDiffError, diff_references, tree_differences

from ..conftest import CACHE, ROOT, SHARED, needs_reference

REFDATA = SHARED / "refdata"
HST, JWST, ROMAN = REFDATA / "hst", REFDATA / "jwst", REFDATA / "roman"

FITS_PAIRS = [
    (HST / "hst_acs_biasfile_0001.fits", HST / "hst_acs_biasfile_0002.fits"),
    (HST / "hst_acs_biasfile_0001.fits", HST / "hst_acs_biasfile_0001.fits"),
    (HST / "test-source.fits", HST / "test-change-row1-valueLeft.fits"),
    (HST / "s7g1700gl_dead.fits", HST / "s7g1700gl_dead_dup1.fits"),
    (HST / "s7g1700gl_dead.fits", HST / "s7g1700gl_dead.fits"),
    (JWST / "jwst_miri_ipc_0004.fits", JWST / "jwst_miri_ipc_0004.replace.fits"),
]
ASDF_PAIRS = [
    (JWST / "jwst_nircam_specwcs_0010.asdf", JWST / "jwst_nircam_specwcs_0011.asdf"),
    (JWST / "jwst_nircam_specwcs_1_4_0.asdf", JWST / "jwst_nircam_specwcs_1_5_0.asdf"),
    (JWST / "jwst_miri_distortion_0001.asdf", JWST / "jwst_miri_distortion_0022.asdf"),
    (ROMAN / "roman_wfi16_f158_flat_small.asdf", ROMAN / "roman_wfi16_grism_flat_small.asdf"),
    (ROMAN / "roman_wfi_pars-exposurepipeline.asdf", ROMAN / "roman_wfi_pars-exposurepipeline.asdf"),
]

NAN_PAIR = (JWST / "valid.asdf", JWST / "valid.asdf")

_RUNNER = """
import contextlib, io, json, sys
from crds.diff import difference
out = []
for obs, a, b in json.loads(sys.stdin.read()):
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        status = difference(obs, a, b)
    out.append([status, text.getvalue()])
sys.stdout.write(json.dumps(out))
"""


def reference_diffs(pairs: list[tuple[Path, Path]]) -> list[tuple[int, str]]:
    """(exit status, printed text) of the reference's ``crds diff A B`` for each pair, in one process.

    The reference's ASDF diff runs ``asdftool`` from PATH: the venv's is put first.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_READONLY_CACHE="1",
               CRDS_SERVER_URL="https://hst-crds.stsci.edu",
               PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""))
    payload = json.dumps([["jwst" if "jwst" in str(a) else "hst", str(a), str(b)] for a, b in pairs])
    proc = subprocess.run([sys.executable, "-c", _RUNNER], input=payload, env=env, capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [tuple(item) for item in json.loads(proc.stdout)]


def plain(text: str) -> str:
    """The reference's numpy-2 scalar reprs reduced to their values: ``np.int16(5748)`` -> ``5748``."""
    return re.sub(r"np\.[a-z_0-9]+\(([^()]*)\)", r"\1", text)


def asdftool_paths(text: str) -> set[str]:
    """The path of each difference ``asdftool diff`` prints (first ``>``/``<`` line below its context)."""
    stack: list[tuple[int, str]] = []
    roots = set()
    for line in text.splitlines():
        marked = line[:2] in ("> ", "< ")
        raw = "  " + line[2:] if marked else line
        content = raw.strip()
        if not content:
            continue
        depth = (len(raw) - len(raw.lstrip(" "))) // 2
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if not marked:
            stack.append((depth, content.rstrip(":")))
            continue
        if depth != (stack[-1][0] + 1 if stack else 0):
            continue  # inside a subtree already counted
        names = [name for _, name in stack[1:]]  # stack[0] is 'tree'
        if content.endswith(":") and not content.startswith("-"):
            names.append(content[:-1])
        roots.add(".".join(names))
    return roots


def our_paths(differences) -> set[str]:
    return {".".join("-" if isinstance(p, int) else p for p in d.path) for d in differences}


@pytest.fixture(scope="module")
def reference_results() -> dict[tuple[Path, Path], tuple[int, str]]:
    pairs = FITS_PAIRS + ASDF_PAIRS + [NAN_PAIR]
    return dict(zip(pairs, reference_diffs(pairs)))


@needs_reference
@pytest.mark.parametrize("pair", FITS_PAIRS, ids=lambda p: f"{p[0].name}-{p[1].name}")
def test_fits_same_output_and_status_as_reference(pair, reference_results, capsys) -> None:
    status, text = reference_results[pair]
    assert main(["diff", str(pair[0]), str(pair[1])]) == status
    assert capsys.readouterr().out == plain(text)


@needs_reference
@pytest.mark.parametrize("pair", ASDF_PAIRS, ids=lambda p: f"{p[0].name}-{p[1].name}")
def test_asdf_same_differences_as_reference(pair, reference_results, capsys) -> None:
    status, text = reference_results[pair]
    outcome = diff_references(*pair)
    assert main(["diff", str(pair[0]), str(pair[1])]) == status
    assert capsys.readouterr().out == outcome.text
    assert our_paths(outcome.differences) == asdftool_paths(text)
    assert (status == 1) == bool(outcome.differences)


@needs_reference
def test_asdf_nan_is_equal_to_itself(reference_results, capsys) -> None:
    """asdftool reports a NaN as differing from itself, so the reference calls valid.asdf different
    from itself; crds_async compares NaN equal to NaN and exits 0 (a documented divergence)."""
    status, text = reference_results[NAN_PAIR]
    assert status == 1 and asdftool_paths(text) == {"apertures.-.zero_point_offset.fill_value"}
    assert main(["diff", str(JWST / "valid.asdf"), str(JWST / "valid.asdf")]) == 0
    assert capsys.readouterr().out == ""


def test_tree_differences() -> None:
    a = {"meta": {"name": "x", "n": 1, "only_a": [1]}, "list": [1, 2, 3], "nan": float("nan"), "flag": True}
    b = {"meta": {"name": "y", "n": 1, "only_b": {"k": 1}}, "list": [1, 5], "nan": float("nan"), "flag": 1}
    texts = [d.text() for d in tree_differences(a, b)]
    assert texts == [
        "changed flag: True -> 1",
        "changed list[1]: 2 -> 5",
        "length of list: 3 -> 2",
        "changed meta.name: 'x' -> 'y'",
        "only in a: meta.only_a: [1 items]",
        "only in b: meta.only_b: {k}",
    ]
    assert tree_differences(a, a) == []


def test_json_and_yaml(tmp_path: Path, capsys) -> None:
    old, new = tmp_path / "a.json", tmp_path / "b.json"
    old.write_text(json.dumps({"meta": {"reftype": "flat", "useafter": "2020-01-01"}}))
    new.write_text(json.dumps({"meta": {"reftype": "flat", "useafter": "2021-01-01"}}))
    assert main(["diff", str(old), str(new)]) == 1
    assert capsys.readouterr().out == "changed meta.useafter: '2020-01-01' -> '2021-01-01'\n"
    assert main(["diff", str(old), str(old)]) == 0
    # key order and layout are not differences
    same = tmp_path / "same.yaml"
    same.write_text("meta:\n  useafter: '2020-01-01'\n  reftype: flat\n")
    other = tmp_path / "other.yaml"
    other.write_text("meta: {reftype: flat, useafter: '2020-01-01'}\n")
    assert main(["diff", str(same), str(other)]) == 0
    # text that does not parse is compared line by line; the reference diffs YAML as text and exits 1
    assert main(["diff", str(JWST / "valid.yaml"), str(JWST / "invalid.yaml")]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{JWST / 'invalid.yaml'}: not valid YAML") and "-reftype: distortion" in out


def test_errors_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["diff", str(HST / "test-source.fits"), str(tmp_path / "missing.fits")]) == 2
    assert main(["diff", str(HST / "test-source.fits"), str(JWST / "valid.asdf")]) == 2
    broken = tmp_path / "broken.asdf"
    broken.write_bytes(b"#ASDF 1.0.0\n%YAML 1.1\n--- !!garbage [\n")
    assert main(["diff", str(broken), str(JWST / "valid.asdf")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3
    assert "missing.fits: no such file" in err[0]
    assert "is FITS but" in err[1] and "valid.asdf is ASDF" in err[1]
    assert "broken.asdf: not a readable ASDF file" in err[2]
    with pytest.raises(ReferenceDiffError):
        diff_references(tmp_path, HST / "test-source.fits")


def test_mappings_keep_their_path(capsys, monkeypatch) -> None:
    """A mapping pair still gets logical differences, not a file comparison."""
    monkeypatch.setenv("CRDS_PATH", str(CACHE))
    monkeypatch.setenv("CRDS_READONLY_CACHE", "1")
    status = main(["diff", str(CACHE / "mappings" / "hst" / "hst_cos_tdstab_0250.rmap"),
                   str(CACHE / "mappings" / "hst" / "hst_cos_tdstab_0257.rmap")])
    assert status == 1 and capsys.readouterr().out.startswith("((")
