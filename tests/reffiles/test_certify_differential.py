"""Reference-file certify against the reference's ``crds certify``, over every shared reference file.

The reference runs once per observatory (HST in two halves) on all its files, two runs at a
time, in a fresh process each, offline on the read-only shared cache, with the context set by
``CRDS_CONTEXT`` (``crds certify`` has no ``--context``; without ``--comparison-context`` it
compares no tables) and ``-z`` (no trial insertion into the rmap, which writes rmaps into
``/tmp``).  Its output is cut per file at its ``Certifying '<path>'`` lines.

For every file: where the reference logs an ERROR, crds_async reports a problem (error or
warning) and names each keyword the reference's errors name; where the reference logs none,
crds_async reports no error.  The disagreements below are listed in the README with reasons.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from crds_async.config import config_from_env
from crds_async.reffiles.certify import certify_references
from crds_async.engine.loader import load_context

from ..conftest import CACHE, SHARED, needs_reference
from ..reference_runner import SERVERS

pytestmark = [needs_reference, pytest.mark.reference, pytest.mark.slow]

CONTEXTS = {"hst": "hst_0729.pmap", "jwst": "jwst_0541.pmap", "roman": "roman_0007.pmap"}

#: Files where the reference logs an ERROR and crds_async reports no problem at all, and why.
REFERENCE_ONLY = {
    # HST synphot conventions the reference implements in its own synphot code, not in any rmap
    "16n1832tm_tmc.fits": "synphot: FILENAME column values need a path prefix / parametrization",
    "hst_synphot_tmc_bad_filename.fits": "synphot: FILENAME column values need a path prefix",
    "tae17277m_tmt.fits": "synphot: FILENAME column values need a path prefix",
    "hst_synphot_tmg_disconnected.fits": "synphot: the TMG graph has disconnected rows",
    "acs_f555w_hrc_006_syn.fits": "synphot: a new _NNN_syn file name must exceed the version in use",
    "wfc3_ir_f098m_002_th.fits": "synphot: a new _NNN_th file name must exceed the version in use",
    "wfc3_ir_g141_src_003_th.fits": "synphot: a new _NNN_th file name must exceed the version in use",
    "wfc3_uvis_f469nf2_003_syn.fits": "synphot: a new _NNN_syn file name must exceed the version in use",
    # the reference has no certify spec for types roman_0007.pmap has rmaps for (its bug)
    "roman_wfi_dark_0001.asdf": "reference: Unknown reference type 'dark' (roman_0007.pmap has its rmap)",
    "roman_wfi_distortion_0001.asdf": "reference: Unknown reference type 'distortion' (the rmap exists)",
}

#: (file, keyword) pairs the reference's errors name and crds_async's problems do not, and why.
REFERENCE_ONLY_KEYWORDS = {
    # the reference's JWST keyword lists (TPN) lack this EXP_TYPE; jwst_miri_flat_0038.rmap selects it
    ("jwst_miri_flat_slitlessprism.fits", "META.EXPOSURE.TYPE"),
}

#: Files where crds_async reports an error and the reference logs none, and why.
OURS_ONLY = {
    "s7g1700gl_dead_bad_xsum.fits": "CHECKSUM and DATASUM are wrong; the reference only warns (astropy's warning)",
    "hst_acs_biasfile_0001.fits": "CCDAMP 'ABCDALL' is in no ACS rmap (the reference's HST lists allow it)",
    "hst_acs_biasfile_0002.fits": "CCDAMP 'ABCDALL' is in no ACS rmap (the reference's HST lists allow it)",
    "acs_fitsverify_warning.fits": "no REFTYPE, CRDS-style name or known suffix; the reference reads FILETYPE",
    "jwst_fgs_distortion_bad_asdf_version.asdf": "the rmap matches on EXP_TYPE, which the file lacks",
    "roman_wfi16_f158_flat_small.asdf": "DETECTOR 'WFI16' is in no Roman rmap of roman_0007.pmap",
    "roman_wfi16_grism_flat_small.asdf": "DETECTOR 'WFI16' is in no Roman rmap of roman_0007.pmap",
    "roman_wfi16_f158_flat_invalid_tpn.asdf": "DETECTOR 'WFI16' and OPTICAL_ELEMENT 'BAD' are in no Roman rmap",
    "roman_wfi16_grism_flat_invalid_tpn.asdf": "DETECTOR 'WFI16' and OPTICAL_ELEMENT 'BAD' are in no Roman rmap",
}

_START = re.compile(r"^CRDS - INFO -  Certifying '([^']+)' \(\d+/\d+\)")
_RECORD = re.compile(r"^CRDS - (ERROR|WARNING|INFO|DEBUG) - ")
_CHECKING = re.compile(r"Checking '([A-Z0-9_.\-]+)(?: \[[A-Z0-9_\-]+\])?' :")


def _files(obs: str) -> list[Path]:
    found = []
    for root in (SHARED / "refdata" / obs, CACHE / "references" / obs):
        found.extend(p for p in sorted(root.glob("*")) if p.is_file() and p.suffix != ".md")
    return found


def _run_reference(obs: str, files: list[Path], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_READONLY_CACHE="1", CRDS_SERVER_URL=SERVERS[obs],
               CRDS_OBSERVATORY=obs, CRDS_CONTEXT=CONTEXTS[obs])
    proc = subprocess.run([sys.executable, "-m", "crds.certify", "-z", *map(str, files)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    return proc.stdout + proc.stderr


def _reference_errors(output: str) -> dict[str, list[str]]:
    """``{file name: [ERROR record text, ...]}`` from one reference run's log."""
    errors: dict[str, list[str]] = {}
    current = None
    record: list[str] | None = None
    for line in output.splitlines():
        started = _START.match(line)
        if started:
            current = Path(started.group(1)).name
            errors.setdefault(current, [])
        if _RECORD.match(line):
            record = None
            if line.startswith("CRDS - ERROR") and current is not None:
                record = [line]
                errors[current].append(line)
        elif record is not None:
            errors[current][-1] += "\n" + line
    return errors


@pytest.fixture(scope="module")
def reference_errors(tmp_path_factory) -> dict[str, list[str]]:
    jobs = []
    for obs in CONTEXTS:
        files = _files(obs)
        half = len(files) // 2 if obs == "hst" else len(files)
        jobs.extend((obs, chunk) for chunk in (files[:half], files[half:]) if chunk)
    cwd = tmp_path_factory.mktemp("reference-certify")
    with ThreadPoolExecutor(max_workers=2) as pool:
        outputs = list(pool.map(lambda job: _run_reference(job[0], job[1], cwd), jobs))
    merged: dict[str, list[str]] = {}
    for (obs, files), output in zip(jobs, outputs):
        found = _reference_errors(output)
        for path in files:
            assert path.name in found, f"the reference did not certify {path}: {output[-2000:]}"
            merged[f"{obs}/{path.parent.parent.name}/{path.name}"] = found[path.name]
    return merged


@pytest.fixture(scope="module")
def ours() -> dict[str, object]:
    cfg = config_from_env({"CRDS_PATH": str(CACHE), "CRDS_READONLY_CACHE": "1", "CRDS_MODE": "local",
                           "CRDS_IGNORE_MAPPING_CHECKSUM": "1"})
    results = {}
    for obs, name in CONTEXTS.items():
        context = load_context(name, cfg, obs)
        files = _files(obs)
        for path, result in zip(files, certify_references(files, context, jobs=2)):
            results[f"{obs}/{path.parent.parent.name}/{path.name}"] = result
    return results


def _named_keywords(errors: list[str]) -> set[str]:
    names = set()
    for text in errors:
        names.update(_CHECKING.findall(text))
    return names


def _our_keywords(result) -> set[str]:
    names = set()
    for problem in result.problems:
        if problem.where:
            first = problem.where.split()[0]
            names.add(first)
            if first == "USEAFTER":
                names.update({"META.USEAFTER", "ROMAN.META.USEAFTER"})
    return names


def test_every_shared_reference_file_is_compared(reference_errors, ours):
    assert set(reference_errors) == set(ours)
    assert len(ours) == sum(len(_files(obs)) for obs in CONTEXTS) >= 90


def test_a_problem_wherever_the_reference_logs_an_error(reference_errors, ours):
    missed = []
    for key, errors in sorted(reference_errors.items()):
        name = key.rsplit("/", 1)[1]
        if not errors or name in REFERENCE_ONLY:
            continue
        result = ours[key]
        if not result.problems:
            missed.append(f"{key}: no problem; the reference: {errors[0][:300]}")
            continue
        for keyword in sorted(_named_keywords(errors) - _our_keywords(result)):
            if (name, keyword) not in REFERENCE_ONLY_KEYWORDS:
                missed.append(f"{key}: {keyword} not named; ours: {[str(p) for p in result.problems]}")
    assert not missed, "\n".join(missed)


def test_no_error_where_the_reference_logs_none(reference_errors, ours):
    extra = [f"{key}: {[str(p) for p in ours[key].errors]}" for key, errors in sorted(reference_errors.items())
             if not errors and ours[key].errors and key.rsplit("/", 1)[1] not in OURS_ONLY]
    assert not extra, "\n".join(extra)


def test_the_listed_disagreements_are_still_disagreements(reference_errors, ours):
    """A listed disagreement that no longer occurs is taken off the list (and out of the README)."""
    stale = []
    for key, errors in reference_errors.items():
        name = key.rsplit("/", 1)[1]
        if name in REFERENCE_ONLY and not errors:
            stale.append(f"{key}: the reference no longer logs an error")
        if name in OURS_ONLY and not (ours[key].errors and not errors):
            stale.append(f"{key}: no longer an error of ours alone")
        if name in REFERENCE_ONLY and ours[key].problems:
            stale.append(f"{key}: crds_async now reports a problem")
    assert not stale, "\n".join(stale)
