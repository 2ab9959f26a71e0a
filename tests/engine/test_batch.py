"""The batch engine: discovery, ordered streaming, bounded look-ahead, pluggable executors."""

from __future__ import annotations

import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from crds_async.config import config_from_env
from crds_async.errors import CrdsError
from crds_async.engine.batch import _FIRST_CHUNK, _MAX_CHUNK, BatchSpec, _chunks, discover, run_batch
from tests.conftest import CACHE, CORPUS

SPEC = BatchSpec(cfg=config_from_env({"CRDS_PATH": str(CACHE)}), context="hst_0729.pmap", observatory="hst")


@pytest.fixture
def tree(tmp_path):
    sources = sorted((CORPUS / "hst").glob("*.fits"))
    (tmp_path / "a" / "b").mkdir(parents=True)
    for i, source in enumerate(sources[:6]):
        folder = tmp_path / ("a" if i % 2 else "a/b")
        os.link(source, folder / source.name)
    (tmp_path / "a" / "notes.txt").write_text("not a dataset")
    return tmp_path


def test_discovery_walks_directories_globs_lists_and_stdin(tree):
    walked = list(discover([str(tree / "a")]))
    assert len(walked) == 6 and all(type(p) is str and p.endswith(".fits") for p in walked)
    assert walked[:3] == sorted(walked[:3])  # a directory's own files come out sorted
    assert list(discover([str(tree / "a" / "*.fits")])) == sorted(map(str, (tree / "a").glob("*.fits")))
    listing = tree / "list.txt"
    listing.write_text("# a comment\n" + "\n".join(str(p) for p in walked[:2]) + "\n\n")
    assert list(discover([f"@{listing}"])) == walked[:2]
    assert list(discover(["-"], stdin=io.StringIO(f"{walked[3]}\n"))) == [walked[3]]
    assert list(discover([str(tree / "a" / "notes.txt")])) == [str(tree / "a" / "notes.txt")]  # named: always read
    with pytest.raises(CrdsError, match="missing.txt: cannot read list file"):
        list(discover([f"@{tree / 'missing.txt'}"]))


def test_a_walk_goes_depth_first_in_name_order(tmp_path):
    """Each directory's own dataset files in name order, then its subdirectories in name order,
    depth first; the path given is joined as os.path.join would, trailing separator or not."""
    for relative in ("b.fits", "a.FITS", "z/c.asdf", "m/n/d.fit", "m/e.fts", "m/skip.txt", "c.fits"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"")
    want = [os.path.join(str(tmp_path), p) for p in ("a.FITS", "b.fits", "c.fits", "m/e.fts", "m/n/d.fit",
                                                     "z/c.asdf")]
    assert list(discover([str(tmp_path)])) == want
    assert list(discover([str(tmp_path) + os.sep])) == want


def test_a_large_directory_is_walked_with_little_memory(tmp_path):
    """A flat directory is held as sorted names while it is walked (about 100 bytes a file
    here), not as DirEntry objects (about 260)."""
    import tracemalloc

    count = 10_000
    for index in range(count):
        (tmp_path / f"j8cw03abq_{index:06d}_raw.fits").write_bytes(b"")
    tracemalloc.start()
    try:
        walk = discover([str(tmp_path)])
        first = next(walk)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first.endswith("j8cw03abq_000000_raw.fits")
    assert peak < 150 * count, peak
    assert sum(1 for _ in walk) == count - 1


async def _collect(paths, spec=SPEC, **kw):
    return [r async for r in run_batch(paths, spec, **kw)]


async def test_results_keep_input_order_and_match_across_job_counts():
    paths = [p for p in sorted((CORPUS / "hst").glob("*.fits"))] * 2  # several chunks
    assert len(list(_chunks(paths))) > 4  # several chunks
    one = await _collect(iter(paths), jobs=1)
    two = await _collect(iter(paths), jobs=2)
    assert [r.path for r in two] == [str(p) for p in paths]
    assert [(r.path, r.answers, r.error) for r in one] == [(r.path, r.answers, r.error) for r in two]
    want = json.loads((CORPUS / "expected_hst_0729.json").read_text())
    assert all(r.answers == want[Path(r.path).name] for r in two)


def test_chunks_start_small_then_double_up_to_the_largest():
    """Worker tasks: a short batch is split finely (every core gets work), a long one into
    tasks of at most _MAX_CHUNK paths; nothing is lost, reordered or read ahead."""
    paths = [f"d{i}.fits" for i in range(5_000)]
    sizes = [len(chunk) for chunk in _chunks(iter(paths))]
    assert sizes[:5] == [_FIRST_CHUNK, 2 * _FIRST_CHUNK, 4 * _FIRST_CHUNK, 8 * _FIRST_CHUNK, 16 * _FIRST_CHUNK]
    assert max(sizes) == _MAX_CHUNK and sum(sizes) == len(paths)
    assert [p for chunk in _chunks(iter(paths)) for p in chunk] == paths
    source = iter(paths)
    first = next(_chunks(source))
    assert len(first) == _FIRST_CHUNK and next(source) == paths[_FIRST_CHUNK]  # lazy


async def test_paths_are_consumed_lazily_with_bounded_look_ahead():
    source = sorted((CORPUS / "hst").glob("*.fits"))
    consumed = 0

    def endless():
        nonlocal consumed
        while True:
            for path in source:
                consumed += 1
                yield path

    seen = 0
    with ThreadPoolExecutor(2) as pool:
        async for _result in run_batch(endless(), SPEC, jobs=2, executor=pool):
            seen += 1
            if seen == 3 * _MAX_CHUNK:
                break
    # never more than the in-flight window (2 x jobs chunks) ahead of what was yielded
    assert consumed <= seen + (2 * 2 + 1) * _MAX_CHUNK


async def test_an_injected_executor_is_used_and_left_open():
    calls = []

    class Recording(ThreadPoolExecutor):
        def submit(self, fn, *args, **kwargs):
            calls.append(len(args[0]))
            return super().submit(fn, *args, **kwargs)

    paths = sorted((CORPUS / "jwst").glob("*.fits"))
    jwst = BatchSpec(cfg=SPEC.cfg, context="jwst_0541.pmap", observatory="jwst")
    with Recording(2) as pool:
        results = await _collect(iter(paths), spec=jwst, jobs=2, executor=pool)
        assert pool.submit(sum, [1, 2]).result() == 3  # still usable: the batch does not own it
    assert sum(calls[:-1]) == len(paths) and len(results) == len(paths)


def test_workers_render_json_equal_to_the_answers():
    """With render_json, each result carries its answers as JSON text, equal to the answers."""
    from dataclasses import replace

    from crds_async.engine.batch import evaluate_paths
    from crds_async.engine.results import answers_json, plain_answer

    paths = [str(p) for p in sorted((CORPUS / "hst").glob("*.fits"))[:60]]
    plain = evaluate_paths(paths, SPEC)
    rendered = evaluate_paths(paths, replace(SPEC, render_json=True))
    assert all(r.answers_json is None for r in plain)
    for without, with_text in zip(plain, rendered):
        assert with_text.answers == without.answers
        if without.answers is None:
            assert with_text.answers_json is None
            continue
        assert json.loads(with_text.answers_json) == {t: plain_answer(a) for t, a in without.answers.items()}
    tied = {"b": ("x.fits", "y.fits"), "a": "NOT FOUND n/a"}
    assert answers_json(tied) == '{"a": "NOT FOUND n/a", "b": ["x.fits", "y.fits"]}'


def test_problem_lines_name_each_problem_once_with_every_type_it_hit():
    from crds_async.engine.results import AnswerProblems

    bad = frozenset({"x_bad.fits"})
    _problems_of = {}

    def _problems(path, answers, bad_files):  # one finder per bad-files list, as a batch chunk has
        return _problems_of.setdefault(bad_files, AnswerProblems(bad_files))(path, answers)
    answers = {"biasfile": "NOT FOUND No match found.", "darkfile": "NOT FOUND n/a", "flatfile": "x_bad.fits",
               "idctab": "NOT FOUND  parameter='FILTER' value='X' is not in ['A']", "imphttab": "ok.fits",
               "pfltfile": "NOT FOUND  parameter='FILTER' value='X' is not in ['A']", "tied": ("a.fits", "b.fits")}
    expected = ["d.fits: idctab, pfltfile: NOT FOUND  parameter='FILTER' value='X' is not in ['A']",
                "d.fits: flatfile: recommended reference 'x_bad.fits' is designated scientifically invalid"]
    for _pass in range(2):  # the second from the memo of answers
        assert sorted(_problems("d.fits", answers, bad)) == sorted(expected)
    assert _problems("d.fits", {"a": "ok.fits", "b": "NOT FOUND n/a"}, bad) == []
    assert _problems("d.fits", {"a": "x_bad.fits"}, frozenset()) == []  # bad files are per context
    assert _problems("d.fits", {"a": {"unhashable": "leaf"}, "b": "NOT FOUND oops"}, bad) == ["d.fits: b: NOT FOUND oops"]


def test_an_unreadable_dataset_is_one_line_and_the_rest_is_answered(monkeypatch):
    """A file the user may not read (EACCES, as a non-root user meets it: root reads anything,
    so the refusal is made here) is a one-line error naming it; the batch answers the others."""
    import errno

    from crds_async.headers import rawfile
    from crds_async.engine.batch import evaluate_paths

    locked, good = [str(p) for p in sorted((CORPUS / "hst").glob("*.fits"))[:2]]
    real_open = rawfile.os.open

    def guarded_open(path, *args, **kwargs):
        if os.fspath(path) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(rawfile.os, "open", guarded_open)
    refused, answered = evaluate_paths([locked, good], SPEC)
    assert refused.error == f"{locked}: permission denied" and refused.answers is None
    want = json.loads((CORPUS / "expected_hst_0729.json").read_text())
    assert answered.error is None and answered.answers == want[Path(good).name]


def test_results_carry_the_observation_date():
    """Reports plot changes over time: each answered dataset carries its observation date."""
    from crds_async.engine.batch import evaluate_paths

    paths = [str(p) for p in sorted((CORPUS / "hst").glob("*.fits"))[:20]]
    results = [r for r in evaluate_paths(paths, SPEC) if r.answers is not None]
    assert results and all(r.observed and r.observed[:2] in ("19", "20") or r.observed for r in results)
    from astropy.io import fits

    for r in results:
        assert r.observed == str(fits.getval(r.path, "DATE-OBS")), r.path
