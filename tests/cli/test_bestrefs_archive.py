"""``crds-batch bestrefs`` on archive datasets: a served catalogue and parameter dumps (issue #13).

Differential: the reference client (crds 14.0.3, subprocesses, read-only shared cache) and
crds-batch ask the same ``crds-batch serve --datasets DB`` on loopback (a catalogue of the
HST corpus, paged by a small ``max_headers_per_rpc``), and read the same dumps, which the
reference itself saved (``--save-pickle``).  Affected products, answers
(``--print-new-references`` lines) and saved dumps must be the reference's.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
from pathlib import Path

import pytest

from crds_async.archive.catalogue import DatasetCatalogue
from crds_async.sources import normalize_bestref
from tests.archive.test_served_datasets import OLD, NEW, PAGE, reference_affected, saved_affected
from tests.conftest import CACHE, needs_reference
from tests.fetch.helpers import PYTHON, ROOT, make_served_cache, server_process

pytestmark = needs_reference

#: a few datasets by id: two compound ones, one association, one the catalogue does not hold
NAMED = ["I04BZQ010:I04BZQ0VQ", "L0B458010", "la9k03c3q", "JAQXUJ010:JAQXUJAPQ"]


def _env(url: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_SERVER_URL=url or "https://hst-crds.stsci.edu", CRDS_MODE="local", CRDS_READONLY_CACHE="1",
               CRDS_PATH=str(CACHE))
    if url:
        env["CRDS_OBSERVATORY"] = "hst"
    return env


def reference(cwd: Path, *args: str, url: str | None = None) -> subprocess.CompletedProcess:
    """The reference's ``crds bestrefs`` (a subprocess)."""
    return subprocess.run([PYTHON, "-m", "crds.bestrefs", *args], env=_env(url), cwd=cwd, capture_output=True,
                          text=True, timeout=900)


def ours(cwd: Path, *args: str, url: str | None = None) -> subprocess.CompletedProcess:
    """``crds-batch bestrefs`` (a subprocess, one worker: the machine is shared)."""
    return subprocess.run([PYTHON, "-m", "crds_async", "bestrefs", "-j", "1", *args], env=_env(url), cwd=cwd,
                          capture_output=True, text=True, timeout=900)


def lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.strip()]


def printed(stdout: str) -> list[str]:
    """``--print-new-references`` lines, as printed (archive ids lower-cased by both tools)."""
    return lines(stdout)


def products(stdout: str) -> list[str]:
    """Affected products, as printed (archive ids lower-cased by both tools)."""
    return reference_affected(stdout)


@pytest.fixture(scope="module")
def served(tmp_path_factory, shared_cache, corpus):
    """URL of a served catalogue of the whole HST corpus (paged by ``PAGE``)."""
    root = tmp_path_factory.mktemp("archive_served")
    db = root / "datasets.db"
    with DatasetCatalogue(db) as catalogue:
        assert catalogue.add_files(sorted((corpus / "hst").iterdir())).datasets == 300
    cache = make_served_cache(root / "cache", shared_cache)
    with server_process(cache, "--datasets", str(db), "--max-headers-per-rpc", str(PAGE)) as url:
        yield url


@pytest.fixture(scope="module")
def reference_runs(served, tmp_path_factory):
    """The reference's runs, once per module: its ACS+COS dump (archive ids), its answers
    for named datasets, and its reading of its own dump."""
    work = tmp_path_factory.mktemp("archive_reference")
    dump = work / "acs_cos.json"
    saved = reference(work, "--instruments", "acs", "cos", "--new-context", NEW, "--save-pickle", str(dump),
                      url=served)
    assert saved.returncode in (0, 1) and dump.is_file(), saved.stderr[-3000:]
    named = reference(work, "--datasets", *NAMED, "--new-context", NEW, "--print-new-references", url=served)
    assert named.returncode in (0, 1) and "Traceback" not in named.stderr, named.stderr[-3000:]
    resaved = work / "resaved.json"
    # two kept (one observed 2013, one with a one-part id), one dropped, one too old, one unknown
    chosen = ["--only-ids", "J1CN0X010:J1CN0XJVQ", "L0B458010:L0B458HOQ", "la9k03c3q", "j0vham010:J0VHAMPJQ",
              "JAQXUJ010:JAQXUJAPQ", "--drop-ids", "L0B458010:L0B458HOQ", "--datasets-since", "2010-01-01"]
    loaded = {
        "affected": reference(work, "--load-pickles", str(dump), "--old-context", OLD, "--new-context", NEW,
                              "--print-affected", "--save-pickle", str(resaved)),
        "new": reference(work, "--load-pickles", str(dump), "--new-context", NEW, "--print-new-references"),
        "chosen": reference(work, "--load-pickles", str(dump), "--new-context", NEW, "--print-new-references",
                            *chosen),
    }
    for proc in loaded.values():
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    loaded["chosen_args"] = chosen
    return {"work": work, "dump": dump, "named": named, "resaved": resaved, **loaded}


# ----------------------------------------------------------------------------- served catalogue


def test_instruments_affected_are_the_references(served, tmp_path):
    proc = ours(tmp_path, "--instruments", "acs", "cos", "--old-context", OLD, "--new-context", NEW,
                "--print-affected", "--undefined-differences-matter", "--na-differences-matter", url=served)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert products(proc.stdout) == saved_affected(f"reference_affected_acs_cos_{OLD[:-5]}_{NEW[:-5]}.txt")


def test_affected_datasets_are_the_references(served, tmp_path):
    proc = ours(tmp_path, "--affected-datasets", "--old-context", OLD, "--new-context", NEW, url=served)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "rules differences from hst_0600.pmap to hst_0729.pmap affect" in proc.stderr
    assert products(proc.stdout) == saved_affected(f"reference_affected_datasets_{OLD[:-5]}_{NEW[:-5]}.txt")


@pytest.mark.slow
def test_named_datasets_answers_are_the_references(served, reference_runs, tmp_path):
    proc = ours(tmp_path, "--datasets", *NAMED, "--new-context", NEW, "--format", "json", url=served)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "dataset 'LA9K03C3Q' isn't represented by downloaded parameters" in proc.stderr
    answers = json.loads(proc.stdout)
    assert sorted(answers) == ["I04BZQ010:I04BZQ0VQ", "JAQXUJ010:JAQXUJAPQ", "L0B458010:L0B458HOQ"]
    expected = lines(reference_runs["named"].stdout)
    assert expected, reference_runs["named"].stderr[-2000:]
    assert _as_new_references(answers) == sorted(expected)
    again = ours(tmp_path, "--datasets", *NAMED, "--new-context", NEW, "--print-new-references", url=served)
    assert printed(again.stdout) == expected


def _as_new_references(answers: dict) -> list[str]:
    """Our JSON answers as the reference's ``--print-new-references`` lines (failures left out)."""
    out = []
    for dataset, found in answers.items():
        instrument = "acs" if dataset.startswith("J") else "cos" if dataset.startswith("L") else "wfc3"
        for filekind, answer in found.items():
            ok, name = normalize_bestref(answer)
            if ok:
                out.append(f"{dataset.lower()} {instrument} {filekind} none {name.lower()}")
    return sorted(out)


@pytest.mark.slow
def test_save_pickle_from_the_server_is_the_references(served, reference_runs, tmp_path):
    dump = tmp_path / "ours.json"
    proc = ours(tmp_path, "--instruments", "acs", "cos", "--new-context", NEW, "--save-pickle", str(dump),
                url=served)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert dump.read_bytes() == reference_runs["dump"].read_bytes()


# ----------------------------------------------------------------------------- dumps the reference saved


@pytest.mark.slow
def test_load_pickles_affected_are_the_references(reference_runs, tmp_path):
    proc = ours(tmp_path, "--load-pickles", str(reference_runs["dump"]), "--old-context", OLD, "--new-context", NEW,
                "--print-affected")
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    expected = reference_affected(reference_runs["affected"].stdout)
    assert expected and products(proc.stdout) == expected


@pytest.mark.slow
def test_load_pickles_answers_are_the_references(reference_runs, tmp_path):
    dump = str(reference_runs["dump"])
    proc = ours(tmp_path, "--load-pickles", dump, "--new-context", NEW, "--print-new-references")
    expected = lines(reference_runs["new"].stdout)
    assert len(expected) > 1000 and printed(proc.stdout) == expected
    answers = json.loads(ours(tmp_path, "--load-pickles", dump, "--new-context", NEW, "--format", "json").stdout)
    assert len(answers) == 121 and list(answers) == sorted(answers)   # every ACS and COS dataset, in id order
    assert _as_new_references(answers) == sorted(expected)


@pytest.mark.slow
def test_only_drop_since_choose_as_the_reference(reference_runs, tmp_path):
    proc = ours(tmp_path, "--load-pickles", str(reference_runs["dump"]), "--new-context", NEW,
                "--print-new-references", *reference_runs["chosen_args"])
    expected = lines(reference_runs["chosen"].stdout)
    assert expected and printed(proc.stdout) == expected
    names = {line.split()[0] for line in expected}
    assert "j1cn0x010:j1cn0xjvq" in names and not names & {"l0b458010:l0b458hoq", "j0vham010:j0vhampjq"}


@pytest.mark.slow
def test_save_pickle_of_loaded_dumps_is_the_references(reference_runs, tmp_path):
    dump = tmp_path / "resaved.json"
    proc = ours(tmp_path, "--load-pickles", str(reference_runs["dump"]), "--new-context", NEW,
                "--save-pickle", str(dump))
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert dump.read_bytes() == reference_runs["resaved"].read_bytes()


@pytest.mark.slow
def test_merged_dumps_answer_as_the_reference(reference_runs, tmp_path):
    """A later dump corrects an earlier one parameter by parameter (unsorted, so spilled and sorted)."""
    lines_in = reference_runs["dump"].read_text().splitlines()
    first = tmp_path / "first.json"
    first.write_text("\n".join(reversed(lines_in)) + "\n")    # out of order: the datasets are sorted
    fix = tmp_path / "fix.json"
    some = json.loads(lines_in[3])
    dataset = next(iter(some))
    fix.write_text(json.dumps({dataset: {"detector": "hrc", "DATE-OBS": "2012-01-01"}}) + "\n")
    args = ("--load-pickles", str(first), str(fix), "--new-context", NEW, "--print-new-references")
    expected = reference(tmp_path, *args)
    proc = ours(tmp_path, *args)
    assert lines(expected.stdout) and printed(proc.stdout) == lines(expected.stdout)


def test_a_hostile_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"

    class Hostile:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    dump = tmp_path / "hostile.pkl"
    dump.write_bytes(pickle.dumps({"X:X": {"INSTRUME": "ACS"}, "Y:Y": Hostile()}))
    proc = ours(tmp_path, "--load-pickles", str(dump), "--new-context", NEW, "--format", "json")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "refused" in proc.stderr and "posix.system" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout.strip() in ("", "{}", "{\n}")
    assert not marker.exists()


def test_usage_problems_are_one_line(tmp_path):
    both = ours(tmp_path, "--instruments", "acs", "--datasets", "X", "--new-context", NEW)
    assert both.returncode == 2 and "give one source of datasets, not --datasets and --instruments" in both.stderr
    auto = ours(tmp_path, "--load-pickles", "x.json", "--datasets-since", "auto", "--new-context", NEW)
    assert auto.returncode == 2 and "--datasets-since auto needs --old-context" in auto.stderr
    bad = ours(tmp_path, "--load-pickles", "x.json", "--datasets-since", "yesterday-ish")
    assert bad.returncode == 2 and "is not a date" in bad.stderr
    missing = ours(tmp_path, "--load-pickles", str(tmp_path / "none.json"), "--new-context", NEW)
    assert missing.returncode == 2 and "none.json" in missing.stderr and "Traceback" not in missing.stderr
