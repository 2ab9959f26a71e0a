"""Parameter dumps (crds_async.sources): formats, merging, hostile input, memory; against the reference CLI."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tracemalloc
from collections import OrderedDict
from pathlib import Path

import pytest

from crds_async.errors import CrdsError, HeaderError
from crds_async.sources import (
    DatasetParametersError,
    DumpError,
    clean_reference_name,
    count_datasets,
    iter_dump,
    load_dumps,
    normalize_bestref,
    recorded_bestrefs,
    save_pickle,
)
from tests.conftest import CACHE, CORPUS, needs_reference

CONTEXT = "hst_0729.pmap"


def run_reference_bestrefs(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """The reference's ``crds bestrefs`` offline on the shared cache (read-only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_SERVER_URL="https://hst-crds.stsci.edu",
               CRDS_READONLY_CACHE="1")
    return subprocess.run([sys.executable, "-m", "crds.bestrefs", *args], capture_output=True, text=True,
                          env=env, timeout=600, cwd=cwd)


def read_jsonl(path) -> dict:
    """What the reference's load_bestrefs_headers makes of a JSON-lines file."""
    headers = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            headers.update(json.loads(line))
    return headers


def printed_updates(stdout: str) -> list[tuple[str, str, str, str, str]]:
    """``--print-new-references`` lines: (dataset, instrument, filekind, old, new)."""
    rows = []
    for line in stdout.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and ":" in parts[0]:
            old, new = parts[3].rsplit(" ", 1)
            rows.append((parts[0], parts[1], parts[2], old, new))
    return rows


# ----------------------------------------------------------------------------- the reference's own files


@pytest.fixture(scope="module")
def reference_saved(tmp_path_factory) -> Path:
    """The JSON lines the reference's ``--save-pickle`` writes for four corpus files."""
    out = tmp_path_factory.mktemp("saved") / "saved.json"
    files = sorted(str(p) for p in (CORPUS / "hst").glob("*.fits"))[:4]
    proc = run_reference_bestrefs("--files", *files, "--new-context", CONTEXT, "--save-pickle", str(out))
    assert out.exists(), proc.stderr[-2000:]
    return out


@needs_reference
def test_reference_json_lines_read_as_the_reference_reads_them(reference_saved):
    pairs = list(iter_dump(reference_saved))
    assert len(pairs) == 4 and all(isinstance(p, dict) for _, p in pairs)
    assert dict(pairs) == read_jsonl(reference_saved)
    assert count_datasets(reference_saved) == 4


@needs_reference
def test_save_pickle_json_is_byte_identical_to_the_reference(reference_saved, tmp_path):
    pairs = list(iter_dump(reference_saved))
    out = tmp_path / "ours.json"
    assert save_pickle(out, reversed(pairs)) == 4  # sorted by id on the way out, as the reference does
    assert out.read_bytes() == reference_saved.read_bytes()


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, reference_saved) -> dict:
    """Three dumps, worst to best: an archive object, JSON-line corrections, a pickle; and the
    reference's view of them (its --print-new-references, its merged --save-pickle, and
    --compare-source-bestrefs on the first)."""
    folder = tmp_path_factory.mktemp("campaign")
    saved = read_jsonl(reference_saved)
    params = {Path(path).name.split("_")[0].upper(): header for path, header in saved.items()}
    ids = {root: f"{root}:{root}" for root in params}
    r1, r2, r3, r4 = sorted(params)
    first = {ids[r]: dict(params[r]) for r in (r1, r2, r3)}
    recorded = first[ids[r1]]  # recorded best references in every spelling the archive may use
    recorded.update(DARKFILE="crds://x1y2z3_drk.fits", BIASFILE=" JREF$ABCDEF_BIA.FITS ",
                    FLSHFILE="NOT FOUND n/a", PFLTFILE="", NLINFILE="mtab$nlin_lin.fits",
                    BPIXTAB="NOT FOUND parameter FOO is missing", CRREJTAB="NONE")
    recorded.pop("CCDTAB", None)
    first["NODUMP:NODUMP"] = "archive could not dump this dataset"
    archive = folder / "archive.json"
    archive.write_text(json.dumps(first, indent=1))  # pretty-printed: not JSON lines
    corrections = folder / "corrections.json"
    fourth = {key.lower(): value for key, value in params[r4].items()}
    lines = [{ids[r1]: {"darkfile": "NOT FOUND n/a", "ccdgain": 4, "Extra": True, "NONE": None}},
             {ids[r2]: {"FOO": "dropped: a later line replaces the whole dataset"}},
             {ids[r2]: {"FLSHFILE": "iref$abc_fls.fits"}},
             {ids[r4]: fourth}]
    corrections.write_text("".join(json.dumps(line) + "\n" for line in lines))
    best = folder / "best.pkl"
    best.write_bytes(pickle.dumps({ids[r3]: {"DARKFILE": "iref$zzz_drk.fits", "PROPOSID": 1234}}, protocol=4))
    paths = [archive, corrections, best]
    merged = folder / "merged.json"
    run = run_reference_bestrefs("--load-pickles", *map(str, paths), "--new-context", CONTEXT,
                                 "--print-new-references", "--save-pickle", str(merged))
    assert merged.exists(), run.stderr[-2000:]
    as_pickle = folder / "archive-saved.pkl"
    compare = run_reference_bestrefs("--load-pickles", str(archive), "--new-context", CONTEXT,
                                     "--compare-source-bestrefs", "--print-new-references",
                                     "--save-pickle", str(as_pickle))
    assert printed_updates(compare.stdout) and as_pickle.exists(), compare.stderr[-2000:]
    return {"paths": paths, "run": run, "merged": merged, "compare": compare, "archive": archive,
            "pickle": as_pickle}


@needs_reference
def test_merged_dumps_equal_the_references_merge(campaign):
    ours = load_dumps(campaign["paths"])
    theirs = read_jsonl(campaign["merged"])
    assert list(sorted(ours)) == list(theirs)
    for dataset_id, params in theirs.items():
        if isinstance(params, str):  # the reference keeps a dataset it could not dump as its text
            assert isinstance(ours[dataset_id], DatasetParametersError)
            assert params in str(ours[dataset_id]) and str(campaign["paths"][0]) in str(ours[dataset_id])
        else:
            assert ours[dataset_id] == params, dataset_id


@needs_reference
def test_reference_pickles_read_back_and_ours_hold_the_same(campaign, tmp_path):
    theirs = campaign["pickle"]  # the archive object as the reference loaded and pickled it
    loaded = load_dumps([campaign["archive"]])
    got = dict(iter_dump(theirs))
    assert list(got) == list(loaded)  # the reference pickles its dict in load order, not sorted
    for dataset_id, params in loaded.items():
        if isinstance(params, dict):
            assert got[dataset_id] == params
        else:
            assert isinstance(got[dataset_id], DatasetParametersError)
    ours = tmp_path / "ours.pkl"
    save_pickle(ours, {k: v if isinstance(v, dict) else "archive could not dump this dataset"
                       for k, v in loaded.items()})
    assert ours.read_bytes()[:2] == theirs.read_bytes()[:2]  # same protocol
    assert pickle.loads(ours.read_bytes()) == pickle.loads(theirs.read_bytes())  # plain data: safe here
    assert list(pickle.loads(ours.read_bytes())) == list(pickle.loads(theirs.read_bytes()))


@needs_reference
def test_dataset_ids_equal_those_the_reference_processes(campaign):
    printed = {row[0] for row in printed_updates(campaign["run"].stdout)}
    ours = {i.lower() for i, p in load_dumps(campaign["paths"]).items() if isinstance(p, dict)}
    assert printed == ours and len(ours) == 4


@needs_reference
def test_recorded_bestrefs_read_as_compare_source_bestrefs_reads_them(campaign):
    params = {i.lower(): p for i, p in load_dumps([campaign["archive"]]).items()}
    rows = printed_updates(campaign["compare"].stdout)
    assert len(rows) > 10
    for dataset, _instrument, filekind, old, _new in rows:
        assert recorded_bestrefs(params[dataset], [filekind]) == {filekind: old}, (dataset, filekind)
    kinds = {(row[0].split(":")[0], row[2]): row[3] for row in rows}
    first = min(d.split(":")[0] for d in params)
    assert kinds[(first, "darkfile")] == "x1y2z3_drk.fits"  # crds:// stripped
    assert kinds[(first, "biasfile")] == "jref$abcdef_bia.fits"  # the reference strips only a lower-case ref$


# ----------------------------------------------------------------------------- formats (no reference needed)

TRICKY = {
    "A:A": {"INSTRUME": "WFC3", "N": 12345678901234567890, "F": -1.5e-07, "T": True, "Z": None,
            "U": "caf\u00e9 \u2603 \"q\" \\ \n", "E": ""},
    "B:B": {},
    "C:C": {"LONG": "x" * 300, "NEG": -0, "EXP": 1e300},
}


def write_json(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("layout", ["object", "pretty", "lines", "mixed"])
@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64, 1 << 20])
def test_every_layout_and_chunk_boundary_gives_the_same_datasets(tmp_path, layout, chunk):
    if layout == "object":
        text = json.dumps(TRICKY)
    elif layout == "pretty":
        text = json.dumps(TRICKY, indent=3)
    elif layout == "lines":
        text = "".join(json.dumps({k: v}) + "\n" for k, v in TRICKY.items())
    else:  # several datasets a line, blank lines, CRLF, no final newline
        items = list(TRICKY.items())
        text = json.dumps(dict(items[:2])) + "\r\n\r\n  " + json.dumps(dict(items[2:]))
    path = write_json(tmp_path / "d.json", text)
    assert list(iter_dump(path, chunk_chars=chunk)) == list(TRICKY.items())
    assert count_datasets(path, chunk_chars=chunk) == 3


def test_a_pickle_of_plain_values_reads_whatever_the_protocol(tmp_path):
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(TRICKY, protocol=protocol))
        assert list(iter_dump(path)) == list(TRICKY.items()), protocol
        assert count_datasets(path) == 3


def test_the_format_comes_from_the_content_not_the_name(tmp_path):
    as_json = tmp_path / "looks.pkl"
    as_json.write_text(json.dumps(TRICKY))
    as_pickle = tmp_path / "looks.json"
    as_pickle.write_bytes(pickle.dumps(TRICKY, protocol=2))
    assert dict(iter_dump(as_json)) == dict(iter_dump(as_pickle)) == TRICKY
    garbage = tmp_path / "notes.txt"
    garbage.write_text("hello")
    with pytest.raises(DumpError, match=r"notes\.txt: byte 0: not a parameter dump"):
        list(iter_dump(garbage))


def test_empty_files_hold_no_datasets(tmp_path):
    for text in ("", "  \n", "{}", "{}\n{}\n"):
        assert list(iter_dump(write_json(tmp_path / "e.json", text))) == []


def test_a_missing_file_is_one_line_naming_it(tmp_path):
    with pytest.raises(DumpError, match=r"nope\.json: No such file"):
        list(iter_dump(tmp_path / "nope.json"))


# ----------------------------------------------------------------------------- malformed input

def one_line_error(path, **kw) -> str:
    with pytest.raises(DumpError) as info:
        list(iter_dump(path, **kw))
    assert isinstance(info.value, HeaderError) and isinstance(info.value, CrdsError)
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path))
    return text


@pytest.mark.parametrize("chunk", [1, 4, 1 << 20])
def test_truncated_json_names_the_file_and_position(tmp_path, chunk):
    full = json.dumps(TRICKY, indent=1)
    for cut in (len(full) - 1, len(full) // 2, 5):
        path = write_json(tmp_path / "cut.json", full[:cut])
        text = one_line_error(path, chunk_chars=chunk)
        assert "truncated" in text, text


@pytest.mark.parametrize("chunk", [1, 3, 1 << 20])
def test_syntax_errors_give_line_and_column(tmp_path, chunk):
    cases = {
        '{"A:A": {"X": "1"}\n\n   "B:B": {}}': ":3:4: expected ',' or '}'",
        '{"A:A": {"X": "1"},\n 5: {}}': ":2:2: expected a dataset id in double quotes",
        '{"A:A"  {}}': ":1:9: expected ':' after dataset id",
        '{"A:A": {"X": "1",}}': ":1:19: Expecting property name",
        '[{"A:A": {}}]': ":1:1: expected a JSON object",
        '{"A:A": {}} trailing': ":1:13: expected a JSON object",
        '{"A:A": {"X": tru}}': ":1:15: Expecting value",
        '{"A:A": {"X": "bad \\q escape"}}': ":1:20: Invalid \\escape",
    }
    for text, where in cases.items():
        message = one_line_error(write_json(tmp_path / "bad.json", text), chunk_chars=chunk)
        assert where in message, (text, message)


def test_invalid_utf8_names_the_byte(tmp_path):
    path = tmp_path / "latin.json"
    path.write_bytes(b'{"A:A": {"X": "caf\xe9"}}')
    assert "latin.json: byte 18: not UTF-8 text" in one_line_error(path)


def test_deep_nesting_is_an_error_not_a_crash(tmp_path):
    path = write_json(tmp_path / "deep.json", '{"A:A": ' + "[" * 100000 + "]" * 100000 + "}")
    assert "nested too deeply" in one_line_error(path)


def test_one_bad_dataset_is_its_own_error_and_the_stream_goes_on(tmp_path):
    bad = {"S:S": "archive error text", "L:L": [1, 2], "N:N": 7, "V:V": {"X": {"nested": 1}},
           "W:W": {"X": [1]}, "OK:OK": {"X": "1"}}
    for path in (write_json(tmp_path / "bad.json", json.dumps(bad, indent=1)), tmp_path / "bad.pkl"):
        if path.suffix == ".pkl":
            path.write_bytes(pickle.dumps({**bad, 5: {"X": "1"}, "K:K": {1: "int key"}}))
        got = dict(iter_dump(path))
        assert got["OK:OK"] == {"X": "1"}
        errors = {k: v for k, v in got.items() if k != "OK:OK"}
        assert all(isinstance(e, DatasetParametersError) and "\n" not in str(e) for e in errors.values())
        assert str(path) in str(errors["S:S"]) and "'archive error text'" in str(errors["S:S"])
        assert "parameters are a list" in str(errors["L:L"])
        assert "parameters are a int" in str(errors["N:N"])
        assert "parameter 'X' holds a dict" in str(errors["V:V"])
        assert "parameter 'X' holds a list" in str(errors["W:W"])
        if path.suffix == ".json":
            assert f"{path}:3:9:" in str(errors["L:L"])  # the line of the member's value
        else:
            assert "dataset id 5 is not a string" in str(errors["5"])
            assert "parameter name 1 is not a string" in str(errors["K:K"])


def test_a_pickle_that_is_not_a_dict_is_refused(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([("A:A", {})]))
    assert "holds a list, not a dict" in one_line_error(path)
    path.write_bytes(pickle.dumps(TRICKY)[:-7])
    assert "truncated" in one_line_error(path)


# ----------------------------------------------------------------------------- hostile pickles


class _Shell:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Spawn:
    def __init__(self, argv):
        self.argv = argv

    def __reduce__(self):
        return (subprocess.call, (self.argv,))


def test_a_pickle_that_would_run_a_command_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    payloads = {
        "system.pkl": {"A:A": {"X": _Shell(f"touch {marker}")}},
        "spawn.pkl": {"A:A": _Spawn(["touch", str(marker)])},
        "top.pkl": _Shell(f"touch {marker}"),
    }
    for name, payload in payloads.items():
        path = tmp_path / name
        for protocol in (0, 2, 5):
            path.write_bytes(pickle.dumps(payload, protocol=protocol))
            text = one_line_error(path)
            assert "refused" in text and ("system" in text or "call" in text), text
            with pytest.raises(DumpError):
                load_dumps([path])
            with pytest.raises(DumpError):
                count_datasets(path)
    assert not marker.exists()


def test_any_named_object_is_refused_even_harmless_ones(tmp_path):
    for value in (OrderedDict(a=1), {1, 2}, b"bytes", _Spawn(["true"]), complex(1, 2)):
        path = tmp_path / "obj.pkl"
        path.write_bytes(pickle.dumps({"A:A": {"X": value}}, protocol=2))
        assert "refused" in one_line_error(path), value


# ----------------------------------------------------------------------------- merging several dumps


def test_later_dumps_merge_parameter_by_parameter_and_the_first_stays_raw(tmp_path):
    first = write_json(tmp_path / "a.json", json.dumps(
        {"A:A": {"lower": 1, "DARKFILE": "iref$old_drk.fits"}, "E:E": "no dump"}))
    second = write_json(tmp_path / "b.json", "".join(json.dumps(line) + "\n" for line in [
        {"A:A": {"darkfile": "NOT FOUND n/a", "gain": 4, "flag": True}},
        {"B:B": {"X": "1"}}, {"B:B": {"Y": "two"}},          # the last line for an id wins, whole
        {"E:E": {"INSTRUME": "wfc3"}},                        # an error entry is replaced
        {"S:S": "bad later entry"},                           # skipped, reported
    ]))
    skipped = []
    merged = load_dumps([first, second], on_skipped=skipped.append)
    assert merged["A:A"] == {"lower": 1, "DARKFILE": "N/A", "GAIN": "4.0", "FLAG": "T"}
    assert merged["B:B"] == {"Y": "TWO"}
    assert merged["E:E"] == {"INSTRUME": "WFC3"}
    assert "S:S" not in merged and len(skipped) == 1 and "bad later entry" in str(skipped[0])
    assert list(load_dumps([first], only_ids={"A:A"})) == ["A:A"]


def test_an_empty_first_dump_leaves_the_next_one_raw(tmp_path):
    empty = write_json(tmp_path / "empty.json", "")
    raw = write_json(tmp_path / "raw.json", json.dumps({"A:A": {"lower": 1}}))
    assert load_dumps([empty, raw]) == {"A:A": {"lower": 1}}  # as the reference: first non-empty replaces


# ----------------------------------------------------------------------------- recorded best references


def test_recorded_reference_spellings():
    assert clean_reference_name("jref$x.fits") == "x.fits"
    assert clean_reference_name("crds://y.fits") == "y.fits"
    assert clean_reference_name("mtab$z.fits") == "mtab$z.fits"  # only *ref$ prefixes are IRAF references
    params = {"DARKFILE": "jref$X1Y2Z3_DRK.FITS", "BIASFILE": "N/A", "FLATFILE": "JREF$F.FITS",
              "R_FLAT": "crds://f.fits", "FLAT": "ignored", "PFLTFILE": "NOT FOUND n/a", "CCDTAB": "NOT FOUND bad"}
    got = recorded_bestrefs(params, ["darkfile", "biasfile", "idctab", "pfltfile", "ccdtab", "flatfile"])
    assert got == {"darkfile": "x1y2z3_drk.fits", "biasfile": "n/a", "idctab": "n/a", "pfltfile": "n/a",
                   "ccdtab": "not found bad", "flatfile": "jref$f.fits"}  # as the reference: 'JREF$' stays
    jwst = recorded_bestrefs({**params, "DARK": "crds://d.fits"}, ["flat", "dark", "mask"],
                             keyword_of={"flat": "R_FLAT", "mask": "R_MASK"}.get)
    assert jwst == {"flat": "f.fits", "dark": "d.fits", "mask": "n/a"}  # no schema keyword: the type's name
    assert normalize_bestref("UNDEFINED", undefined_is_error=True) == (False, "UNDEFINED")
    assert normalize_bestref("NOT FOUND No match found.") == (True, "N/A")


# ----------------------------------------------------------------------------- writing


def test_round_trip_through_both_formats(tmp_path):
    for name in ("r.json", "r.pkl"):
        pairs = list(TRICKY.items()) + [("E:E", DatasetParametersError("x.json:1:1: dataset 'E:E': broken"))]
        assert save_pickle(tmp_path / name, pairs) == 4
        back = dict(iter_dump(tmp_path / name))
        assert {k: v for k, v in back.items() if k != "E:E"} == TRICKY
        assert isinstance(back["E:E"], DatasetParametersError) and "broken" in str(back["E:E"])
        assert count_datasets(tmp_path / name) == 4
    raw = pickle.loads((tmp_path / "r.pkl").read_bytes())
    assert list(raw) == list(TRICKY) + ["E:E"]  # a pickle keeps the given order, as the reference's does


def test_a_dict_subclass_is_written_as_a_plain_dict(tmp_path):
    save_pickle(tmp_path / "o.pkl", {"A:A": OrderedDict(X="1")})
    assert dict(iter_dump(tmp_path / "o.pkl")) == {"A:A": {"X": "1"}}


def test_unsorted_json_lines_stream_in_the_given_order(tmp_path):
    def pairs():
        yield "B:B", {"X": "1"}
        yield "A:A", {"X": "2"}

    save_pickle(tmp_path / "s.json", pairs(), sort=False)
    assert [k for k, _ in iter_dump(tmp_path / "s.json")] == ["B:B", "A:A"]


def test_a_failed_save_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "keep.json"
    save_pickle(target, {"A:A": {"X": "1"}})
    os.chmod(target, 0o640)
    before = target.read_bytes()
    with pytest.raises(DumpError, match=r"keep\.json: dataset 'B:B': cannot be stored as JSON"):
        save_pickle(target, {"A:A": {"X": "1"}, "B:B": {"X": {1, 2}}})
    assert target.read_bytes() == before and os.listdir(tmp_path) == ["keep.json"]
    save_pickle(target, {"C:C": {}})
    assert (os.stat(target).st_mode & 0o777) == 0o640  # the existing file's mode stays, as open("w") keeps it
    assert os.listdir(tmp_path) == ["keep.json"]


def test_a_name_without_a_known_suffix_is_refused(tmp_path):
    with pytest.raises(DumpError, match=r"x\.txt: a parameter dump must be named \.json or \.pkl"):
        save_pickle(tmp_path / "x.txt", {})
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- bounded memory


def test_a_200k_dataset_dump_streams_in_bounded_memory(tmp_path):
    path = tmp_path / "big.json"
    note = "iref$x1y2z3_drk.fits archive comment " * 3  # few values (tracemalloc is slow per object), a big file
    entry = f'"I{{0:08d}}:I{{0:08d}}": {{{{"INSTRUME": "WFC3", "NOTE": "{note}"}}}}'
    with open(path, "w") as out:  # one line: the worst case for a line-based reader
        out.write("{" + ", ".join(entry.format(i) for i in range(200_000)) + "}")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        count = 0
        for dataset_id, params in iter_dump(path, chunk_chars=1 << 18):
            count += 1
            assert params["INSTRUME"] == "WFC3"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 200_000 and dataset_id == "I00199999:I00199999"
    assert size > 30_000_000 and peak < size / 20, (peak, size)
