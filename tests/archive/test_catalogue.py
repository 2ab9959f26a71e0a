"""The dataset catalogue: ids as the archive spells them, incremental builds, dumps, read-only use."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess

import pytest

from crds_async.archive.catalogue import (MIN_DATE, DatasetCatalogue, dataset_id_of, exposure_time,
                                          normalize_id)
from crds_async.errors import CrdsError
from crds_async.headers import read_header
from tests.fetch.helpers import PYTHON, ROOT

HST_FILES = 300


@pytest.fixture(scope="module")
def built(tmp_path_factory, corpus):
    """A catalogue of the whole HST corpus (built once for the module; read-only use)."""
    db = tmp_path_factory.mktemp("catalogue") / "datasets.db"
    with DatasetCatalogue(db) as catalogue:
        counts = catalogue.add_files(sorted((corpus / "hst").iterdir()))
    return db, counts


def test_ids_follow_the_archive(corpus):
    path = corpus / "hst" / "i04bzq0vq_raw.fits"
    header = read_header(path)
    assert dataset_id_of(header, path) == "I04BZQ010:I04BZQ0VQ"
    assert dataset_id_of({"ROOTNAME": "la9k03c3q", "ASN_ID": "NONE"}, "x.fits") == "LA9K03C3Q:LA9K03C3Q"
    assert dataset_id_of({}, "/d/ob8x01abq_raw.fits") == "OB8X01ABQ:OB8X01ABQ"
    jwst = dataset_id_of({}, "jw00601037002_03101_00005_nrs1_uncal.fits")
    assert jwst == "JW00601037002_03101_00005.NRS1:JW00601037002_03101_00005.NRS1"
    assert normalize_id("la9k03c3q") == "LA9K03C3Q:LA9K03C3Q" and normalize_id("a:b") == "A:B"


def test_exposure_time_is_the_references():
    assert exposure_time({"DATE-OBS": "2012-03-12", "TIME-OBS": "05:58:39"}) == "2012-03-12 05:58:39"
    assert exposure_time({"META.EXPOSURE.START_TIME": "2022-01-01T00:00:00"}) == "2022-01-01T00:00:00"
    assert exposure_time({"DATE-OBS": "2012-03-12"}) == MIN_DATE


def test_corpus_build_and_lookups(built, corpus):
    db, counts = built
    assert (counts.added, counts.updated, counts.errors, counts.datasets) == (HST_FILES, 0, [], HST_FILES)
    with DatasetCatalogue(db, readonly=True) as catalogue:
        assert catalogue.instruments() == ["ACS", "COS", "NICMOS", "STIS", "WFC3", "WFPC2"]
        acs = catalogue.ids("acs")
        assert len(acs) == 76 and acs == sorted(acs) and all(":" in i and i == i.upper() for i in acs)
        assert sum(len(catalogue.ids(i)) for i in catalogue.instruments()) == HST_FILES
        # one file's parameters are its header (free text dropped)
        raw = read_header(corpus / "hst" / "i04bzq0vq_raw.fits")
        params = catalogue.headers(["I04BZQ010:I04BZQ0VQ"])["I04BZQ010:I04BZQ0VQ"]
        assert params["DETECTOR"] == raw["DETECTOR"] and params["DATE-OBS"] == raw["DATE-OBS"]
        assert "HISTORY" not in params and "COMMENT" not in params
        # a one-part id is the product's members, or the member of that name; unknown ids are absent
        assert list(catalogue.headers(["i04bzq010"])) == ["I04BZQ010:I04BZQ0VQ"]
        assert list(catalogue.headers(["I04BZQ0VQ", "NOPE:NOPE", "NOPE"])) == ["I04BZQ010:I04BZQ0VQ"]
        # datasets_since keeps datasets observed at or after the date
        wfc3 = catalogue.ids("WFC3")
        late = catalogue.ids("WFC3", "2012-01-01 00:00:00")
        dates = catalogue.headers(wfc3)
        assert late == sorted(k for k, h in dates.items() if exposure_time(h) >= "2012-01-01 00:00:00")
        assert 0 < len(late) < len(wfc3)
        assert set(catalogue.headers(wfc3, "2012-01-01 00:00:00")) == set(late)
        assert json.loads(catalogue.headers_json(late[:3])) == catalogue.headers(late[:3])


def test_rebuild_skips_unchanged_and_rereads_changed(tmp_path, corpus):
    names = sorted(os.listdir(corpus / "hst"))[:5]
    for name in names:
        shutil.copy2(corpus / "hst" / name, tmp_path / name)
    (tmp_path / "broken.fits").write_bytes(b"not a dataset")
    db = tmp_path / "c.db"
    with DatasetCatalogue(db) as catalogue:
        first = catalogue.add_files(sorted(tmp_path.glob("*.fits")))
        assert (first.added, len(first.errors)) == (5, 1) and "broken.fits" in first.errors[0]
        again = catalogue.add_files(sorted(tmp_path.glob("*.fits")))
        assert (again.added, again.updated, again.unchanged, again.errors) == (0, 0, 6, first.errors)
        os.utime(tmp_path / names[0], ns=(1, 1))       # touched: read again, same dataset id
        third = catalogue.add_files(sorted(tmp_path.glob("*.fits")))
        assert (third.added, third.updated, third.unchanged, third.datasets) == (0, 1, 5, 5)
        # a file that now names another dataset takes its old row with it
        old_id = dataset_id_of(read_header(tmp_path / names[1]), names[1])
        shutil.copy2(corpus / "hst" / sorted(os.listdir(corpus / "hst"))[10], tmp_path / names[1])
        # corpus files may share size and mtime (a restored copy): the catalogue, like make and
        # rsync, goes by (size, mtime), so the replaced file gets its own mtime here
        os.utime(tmp_path / names[1], ns=(2, 2))
        fourth = catalogue.add_files([tmp_path / names[1]])
        assert (fourth.added, fourth.datasets) == (1, 5)
        assert old_id not in {i for n in catalogue.instruments() for i in catalogue.ids(n)}


def test_dumps_object_and_json_lines(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({
        "LA9K03C3Q:LA9K03C3Q": {"INSTRUME": "COS", "DATE-OBS": "2010-01-01", "TIME-OBS": "00:00:00", "X": 1},
        "la9k03c4q": {"instrume": "cos", "DATE-OBS": "2011-01-01", "TIME-OBS": "00:00:00"},
        "NOINSTR:NOINSTR": {"DATE-OBS": "2011-01-01"}, "LISTED:LISTED": [1, 2]}))
    (tmp_path / "b.jsonl").write_text(
        json.dumps({"O8K401010:O8K401ABQ": {"INSTRUME": "STIS"}}) + "\n\n"
        + json.dumps({"O8K401010:O8K401ACQ": {"INSTRUME": "STIS"}}) + "\n")
    with DatasetCatalogue(tmp_path / "c.db") as catalogue:
        counts = catalogue.add_dump(tmp_path / "a.json")
        catalogue.add_dump(tmp_path / "b.jsonl", counts)
        assert (counts.added, counts.datasets) == (4, 4)
        assert len(counts.errors) == 2 and "NOINSTR:NOINSTR: no instrument keyword" in counts.errors[0]
        assert "a.json" in counts.errors[1] and "LISTED:LISTED" in counts.errors[1]
        assert catalogue.ids("cos") == ["LA9K03C3Q:LA9K03C3Q", "LA9K03C4Q:LA9K03C4Q"]
        assert catalogue.ids("cos", "2011-01-01 00:00:00") == ["LA9K03C4Q:LA9K03C4Q"]
        assert catalogue.headers(["LA9K03C3Q"])["LA9K03C3Q:LA9K03C3Q"]["X"] == 1
        assert list(catalogue.headers(["O8K401010"])) == ["O8K401010:O8K401ABQ", "O8K401010:O8K401ACQ"]
        assert catalogue.add_dump(tmp_path / "b.jsonl").unchanged == 1
        (tmp_path / "bad.json").write_text("{oops")
        with pytest.raises(CrdsError, match="bad.json"):
            catalogue.add_dump(tmp_path / "bad.json")


def test_readonly_catalogue_never_writes(built, tmp_path):
    db = tmp_path / "ro.db"
    shutil.copy(built[0], db)
    before = hashlib.sha1(db.read_bytes()).hexdigest()
    with DatasetCatalogue(db, readonly=True) as catalogue:
        assert catalogue.count() == HST_FILES
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            catalogue._db.execute("DELETE FROM datasets")
    assert hashlib.sha1(db.read_bytes()).hexdigest() == before
    with pytest.raises(CrdsError, match="missing.db: no such dataset catalogue"):
        DatasetCatalogue(tmp_path / "missing.db", readonly=True)
    (tmp_path / "junk.db").write_text("junk" * 1000)
    with pytest.raises(CrdsError, match="junk.db: not a dataset catalogue"):
        DatasetCatalogue(tmp_path / "junk.db", readonly=True)


def test_cli_build_prints_counts_and_rebuilds_instantly(tmp_path, corpus):
    db = tmp_path / "c.db"
    cmd = [PYTHON, "-m", "crds_async", "catalogue", "build", str(db), str(corpus / "hst")]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert first.returncode == 0, first.stderr
    assert f"{HST_FILES} datasets: {HST_FILES} added, 0 updated, 0 sources unchanged, 0 errors" in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert f"0 added, 0 updated, {HST_FILES} sources unchanged" in second.stdout
    bad = subprocess.run([*cmd[:5], str(db), str(tmp_path / "absent.fits")], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert bad.returncode == 1 and "absent.fits" in bad.stderr


def test_a_served_catalogue_sees_a_rebuild(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"A:A": {"INSTRUME": "ACS"}}))
    (tmp_path / "b.json").write_text(json.dumps({"B:B": {"INSTRUME": "ACS"}}))
    with DatasetCatalogue(tmp_path / "c.db") as writer:
        writer.add_dump(tmp_path / "a.json")
        with DatasetCatalogue(tmp_path / "c.db", readonly=True) as reader:
            assert reader.ids("acs") == ["A:A"]
            writer.add_dump(tmp_path / "b.json")          # WAL: the reader is not blocked and sees it
            assert reader.ids("acs") == ["A:A", "B:B"]


def test_jwst_files_and_their_ids(tmp_path, corpus):
    names = ["jw00601037002_03101_00005_nrs1_uncal.fits", "jw00600020002_02210_00004_mirimage_uncal.fits"]
    with DatasetCatalogue(tmp_path / "c.db") as catalogue:
        counts = catalogue.add_files([corpus / "jwst" / n for n in names])
        assert (counts.added, counts.errors) == (2, [])
        assert catalogue.ids("nirspec") == ["JW00601037002_03101_00005.NRS1:JW00601037002_03101_00005.NRS1"]
        # the reference's command-line form of a JWST id finds the archive's
        found = catalogue.headers(["jw00600020002_02210_00004_mirimage"])
        assert list(found) == ["JW00600020002_02210_00004.MIRIMAGE:JW00600020002_02210_00004.MIRIMAGE"]
        assert found[next(iter(found))]["META.INSTRUMENT.NAME"] == "MIRI"
