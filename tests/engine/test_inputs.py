"""engine.inputs: archive datasets as batch items, chosen and ordered as the reference's bestrefs does."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import tracemalloc
from pathlib import Path

import pytest

from crds_async.engine.inputs import (
    MIN_DATE,
    Selection,
    affected_instruments,
    auto_datasets_since,
    dump_items,
    exposure_time,
    iterate_async,
    normalize_id,
    since_date,
)
from crds_async.errors import HeaderError
from crds_async.fetch.mapping_files import FileMappingStore
from crds_async.sources import DumpError, DumpWriter, iter_dump, load_dumps, save_pickle
from tests.conftest import CACHE, needs_reference
from tests.fetch.helpers import PYTHON, ROOT

OLD, NEW = "hst_0600.pmap", "hst_0729.pmap"


def params(instrument: str, date: str = "2012-03-12", time: str = "05:58:39", **more) -> dict:
    return {"INSTRUME": instrument, "DATE-OBS": date, "TIME-OBS": time, **more}


def write_lines(path: Path, pairs) -> Path:
    path.write_text("".join(json.dumps({k: v}) + "\n" for k, v in pairs))
    return path


# ----------------------------------------------------------------------------- selection


def test_ids_dates_and_exposure_times_read_as_the_reference_reads_them():
    assert normalize_id("la9k03c3q") == "LA9K03C3Q:LA9K03C3Q" and normalize_id("a:b") == "A:B"
    assert since_date("2010-01-01") == "2010-01-01 00:00:00" and since_date("AUTO") == "auto"
    with pytest.raises(ValueError):
        since_date("yesterday-ish")
    assert exposure_time({"DATE-OBS": "2012-03-12", "TIME-OBS": "05:58:39"}) == "2012-03-12 05:58:39"
    assert exposure_time({"META.OBSERVATION.DATE": "2022-01-01", "META.OBSERVATION.TIME": "01:02:03"}) \
        == "2022-01-01 01:02:03"
    # the reference's one-keyword entries never match (they are strings, not tuples, there)
    assert exposure_time({"META.EXPOSURE.START_TIME": "2022-01-01T00:00:00"}) == MIN_DATE
    assert exposure_time({"DATE-OBS": "2012-03-12"}) == MIN_DATE


def test_selection_only_drop_and_since_per_instrument():
    sel = Selection.of(only_ids=["a", "B:C", "d"], drop_ids=["d"], since={"acs": "2012-01-01 00:00:00"})
    assert sel.only_ids == {"A:A", "B:C", "D:D"} and sel.drop_ids == {"D:D"}
    items = [("A:A", params("ACS", "2011-12-31")), ("B:C", params("ACS", "2012-01-01", "00:00:00")),
             ("D:D", params("ACS")), ("E:E", params("ACS")), ("B:X", params("COS", "1999-01-01"))]
    assert [i for i, _ in sel.filter(items)] == ["B:C"]
    # an instrument without a date of its own gets every date (the reference's MIN_DATE)
    everyone = Selection.of(since={"acs": "2012-01-01 00:00:00"})
    assert [i for i, _ in everyone.filter(items)] == ["B:C", "D:D", "E:E", "B:X"]
    assert Selection.of(only_ids=[]).only_ids is None   # an empty --only-ids is none, as in the reference
    bad = ("Z:Z", HeaderError("Z:Z: broken"))
    assert list(Selection.of(since="2012-01-01 00:00:00").filter([bad])) == [bad]


# ----------------------------------------------------------------------------- dumps


def test_a_sorted_dump_streams_in_order_with_its_total(tmp_path):
    dump = write_lines(tmp_path / "d.json", [(f"X{i:05d}:X{i:05d}", params("ACS")) for i in range(300)])
    items = dump_items([dump], Selection.of(drop_ids=["X00001"]))
    assert items.total == 299 and items._spill is None
    got = list(items)
    assert [i for i, _ in got] == [f"X{i:05d}:X{i:05d}" for i in range(300) if i != 1]


def test_an_unsorted_dump_comes_out_sorted_through_the_spill(tmp_path):
    ids = [f"Y{(i * 7919) % 500:04d}:M" for i in range(500)]
    dump = write_lines(tmp_path / "d.json", [(i, params("COS", n=n)) for n, i in enumerate(ids)])
    items = dump_items([dump], Selection(), spill_dir=str(tmp_path))
    assert items._spill is not None and items.total == 500
    got = list(items)
    assert [i for i, _ in got] == sorted(ids)
    assert dict(got) == dict(iter_dump(dump))
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"]   # the spill is gone


def test_merged_dumps_are_load_dumps_in_id_order(tmp_path):
    first = write_lines(tmp_path / "a.json", [("B:B", params("ACS", DETECTOR="WFC")), ("A:A", params("ACS")),
                                              ("C:C", "the archive could not dump it")])
    later = write_lines(tmp_path / "b.json", [("A:A", {"detector": "hrc", "DARKFILE": "NOT FOUND n/a"}),
                                              ("N:N", {"instrume": "cos"}), ("B:B", "bad again")])
    skipped = []
    got = list(dump_items([first, later], on_skipped=skipped.append, spill_dir=str(tmp_path)))
    expected = load_dumps([first, later])
    assert [i for i, _ in got] == sorted(expected)
    for dataset_id, value in got:
        if isinstance(value, Exception):
            assert str(value) == str(expected[dataset_id])
        else:
            assert value == expected[dataset_id]
    assert dict(got)["A:A"]["DETECTOR"] == "HRC" and dict(got)["A:A"]["DARKFILE"] == "N/A"
    assert len(skipped) == 1 and "B:B" in str(skipped[0])


def test_only_ids_in_order_and_a_missing_one_is_its_error(tmp_path):
    dump = write_lines(tmp_path / "d.json", [(f"D{i}:D{i}", params("ACS")) for i in range(5)])
    got = list(dump_items([dump], Selection.of(only_ids=["d3", "d1", "zz"])))
    assert [i for i, _ in got] == ["D1:D1", "D3:D3", "ZZ:ZZ"]
    assert isinstance(got[2][1], HeaderError) and "ZZ:ZZ: no parameters" in str(got[2][1])


def test_saved_is_every_loaded_dataset_only_ids_allows(tmp_path):
    dump = write_lines(tmp_path / "d.json", [("A:A", params("ACS", "1990-01-01")), ("B:B", params("ACS")),
                                             ("C:C", params("ACS"))])
    saved = []
    sel = Selection.of(only_ids=["A", "B"], drop_ids=["B"], since="2000-01-01 00:00:00")
    got = list(dump_items([dump], sel, saved=lambda i, p: saved.append(i)))
    assert [i for i, _ in got] == [] and saved == ["A:A", "B:B"]   # dropped and old ones are still saved


def test_a_bad_dump_fails_before_any_item(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"A:A": {"INSTRUME": "ACS"}, "B:B": ')
    with pytest.raises(DumpError, match="bad.json"):
        dump_items([bad])


def test_memory_stays_bounded_over_many_datasets(tmp_path):
    """50,000 datasets, sorted and not: the items are streamed, never all held."""
    count = 50_000
    sorted_dump = tmp_path / "sorted.json"
    save_pickle(sorted_dump, ((f"S{i:06d}:S{i:06d}", params("ACS", DETECTOR="WFC", CCDAMP="ABCD"))
                              for i in range(count)))
    shuffled = write_lines(tmp_path / "shuffled.json",
                           ((f"S{(i * 7919) % count:06d}:M", params("ACS")) for i in range(count)))
    for dump in (sorted_dump, shuffled):
        tracemalloc.start()
        seen = sum(1 for _ in dump_items([dump], spill_dir=str(tmp_path)))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert seen == count
        assert peak < 12 * 2**20, f"{dump.name}: {peak / 2**20:.1f} MiB traced"


def test_dump_writer_streams_json_lines_as_save_pickle_writes_them(tmp_path):
    pairs = [("A:A", params("ACS")), ("B:B", HeaderError("B:B: broken")), ("C:C", {"X": 1})]
    expected = tmp_path / "expected.json"
    save_pickle(expected, pairs)
    writer = DumpWriter(tmp_path / "ours.json")
    for pair in pairs:
        writer.add(*pair)
    assert not (tmp_path / "ours.json").exists()      # nothing under the name before close
    assert writer.close() == 3
    assert (tmp_path / "ours.json").read_bytes() == expected.read_bytes()
    aborted = DumpWriter(tmp_path / "expected.json")
    aborted.add("Z:Z", {})
    aborted.abort()
    assert (tmp_path / "expected.json").read_bytes() == (tmp_path / "ours.json").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["expected.json", "ours.json"]
    pkl = DumpWriter(tmp_path / "x.pkl")
    for pair in pairs:
        pkl.add(*pair)
    pkl.close()
    assert dict(iter_dump(tmp_path / "x.pkl"))["A:A"] == pairs[0][1]


# ----------------------------------------------------------------------------- the async bridge


def test_iterate_async_keeps_order_and_stays_bounded():
    produced = []

    async def source():
        for i in range(10_000):
            produced.append(i)
            if i % 100 == 0:
                await asyncio.sleep(0)
            yield i

    items = iterate_async(source, chunk=10, queued_chunks=3)
    assert next(items) == 0
    for _ in range(200):           # let the producer run ahead as far as it can
        if len(produced) >= 60:
            break
        threading.Event().wait(0.01)
    assert len(produced) <= 10 * (3 + 2) + 1
    assert [0, *items] == list(range(10_000))


def test_iterate_async_raises_the_failure_where_it_stands_and_stops_when_closed():
    async def failing():
        for i in range(25):
            yield i
        raise HeaderError("page 3 failed")

    items = iterate_async(failing, chunk=10)
    got = []
    with pytest.raises(HeaderError, match="page 3 failed"):
        for item in items:
            got.append(item)
    assert got == list(range(25))

    async def endless():
        i = 0
        while True:
            i += 1
            yield i

    before = threading.active_count()
    items = iterate_async(endless, chunk=5, queued_chunks=2)
    assert [next(items) for _ in range(12)] == list(range(1, 13))
    items.close()
    assert threading.active_count() == before


# ----------------------------------------------------------------------------- context differences


@pytest.mark.slow
@pytest.mark.timeout(900)  # the reference's auto_datasets_since alone takes ~2 min on an idle core
@needs_reference
def test_auto_datasets_since_and_affected_instruments_are_the_references():
    code = (
        "import json\n"
        "from crds import diff, matches\n"
        "from crds.bestrefs import bestrefs\n"
        f"s = bestrefs.BestrefsScript('crds.bestrefs --load-pickles x.json --old-context {OLD} --new-context {NEW}')\n"
        f"s.old_context, s.new_context = {OLD!r}, {NEW!r}\n"
        "since = s.auto_datasets_since()\n"
        f"d = diff.MappingDifferencer('hst', {OLD!r}, {NEW!r}, include_header_diffs=True, hide_boring_diffs=True)\n"
        "print(json.dumps([since, sorted(d.get_affected()), bool(d.header_modified() or d.files_deleted())]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_READONLY_CACHE="1",
               CRDS_SERVER_URL="https://hst-crds.stsci.edu")
    proc = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    since, instruments, every_date = json.loads(proc.stdout.splitlines()[-1])
    store = FileMappingStore(CACHE / "mappings" / "hst")
    assert auto_datasets_since(store, OLD, NEW) == since
    assert affected_instruments(store, OLD, NEW) == (instruments, every_date)
