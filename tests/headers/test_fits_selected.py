"""Reading only wanted keywords (the batch engine's way) gives what reading every card gives.

``read_header(path, keep)`` takes a faster route (keyword fields cut out per
block, wanted cards found by set operations); it must equal the full reading
filtered to the kept keywords, on the corpus and on headers built to trip it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from astropy.io import fits

from crds_async.config import config_from_env
from crds_async.errors import HeaderError
from crds_async.headers import fits as fits_reader
from crds_async.headers import read_header
from crds_async.engine.loader import new_evaluator as Evaluator
from crds_async.engine.loader import load_context
from tests.conftest import CACHE, CORPUS
from tests.headers.test_fits import astropy_merged


def _kept(header: dict[str, str], keep) -> dict[str, str]:
    # structural keywords (BITPIX, NAXISn, ...) always come along: reading needs them
    return {k: v for k, v in header.items() if keep(k) or k in fits_reader._STRUCTURAL}


def _full_then_filtered(path, keep) -> dict[str, str]:
    return _kept(read_header(path), keep)


@pytest.mark.parametrize("observatory,context", [("hst", "hst_0729.pmap"), ("jwst", "jwst_0541.pmap")])
def test_corpus_kept_keywords_equal_full_reading_and_astropy(observatory, context):
    cfg = config_from_env({"CRDS_PATH": str(CACHE)})
    keep = Evaluator(load_context(context, cfg), cfg).wants
    paths = sorted((CORPUS / observatory).glob("*.fits"))
    for path in paths:
        selected = read_header(path, keep)
        assert selected == _full_then_filtered(path, keep), path.name
        assert selected == _kept(astropy_merged(path), keep), path.name
        assert "INSTRUME" in selected


def _card(text: str) -> str:
    assert len(text) <= 80
    return text.ljust(80)


def _fits_bytes(*hdus: tuple[list[str], bytes]) -> bytes:
    out = b""
    for cards, data in hdus:
        header = "".join(_card(c) for c in cards) + _card("END")
        header += " " * (-len(header) % 2880)
        out += header.encode("ascii") + data + b"\0" * (-len(data) % 2880)
    return out


PRIMARY = ["SIMPLE  =                    T", "BITPIX  =                    8", "NAXIS   =                    0",
           "EXTEND  =                    T"]


def _extension(cards: list[str], rows: int = 3) -> tuple[list[str], bytes]:
    return (["XTENSION= 'IMAGE   '", "BITPIX  =                   16", "NAXIS   =                    2",
             "NAXIS1  =                   10", f"NAXIS2  = {rows:20d}", "PCOUNT  =                    0",
             "GCOUNT  =                    1", *cards], b"\1" * (20 * rows))


KEEP = {"INSTRUME", "DETECTOR", "FILTER", "EXPTIME", "CCDGAIN", "OBSMODE", "TARGNAME", "BUNIT"}.__contains__

TRICKY = {
    "repeat across HDUs: first wins": _fits_bytes(
        (PRIMARY + ["INSTRUME= 'ACS     '", "DETECTOR= 'WFC'"], b""),
        _extension(["DETECTOR= 'HRC'", "FILTER  = 'F606W'  / in the extension only", "BUNIT   = 'COUNTS'"]),
        _extension(["FILTER  = 'CLEAR'", "EXPTIME =                 1.5E2"], rows=5)),
    "a header of several blocks": _fits_bytes(
        (PRIMARY + [f"JUNK{i:04d}= {i}" for i in range(70)] + ["INSTRUME= 'WFC3'", "CCDGAIN =                  1.5"],
         b"")),
    "lower-case keyword": _fits_bytes((PRIMARY + ["instrume= 'STIS'", "DETECTOR= 'CCD'"], b"")),
    "first card of a wanted keyword has no value": _fits_bytes(
        (PRIMARY + ["DETECTOR  no value indicator here", "DETECTOR= 'IR'", "INSTRUME= 'WFC3'"], b"")),
    "END keyword with text after it": _fits_bytes(
        (PRIMARY + ["INSTRUME= 'COS'", "END     not the end card", "DETECTOR= 'FUV'"], b"")),
    "CONTINUE long string": _fits_bytes(
        (PRIMARY + ["INSTRUME= 'ACS'", "TARGNAME= 'a long &'", "CONTINUE  'name'", "DETECTOR= 'SBC'"], b"")),
    "quotes, logicals, numbers, comments": _fits_bytes(
        (PRIMARY + ["INSTRUME= 'NICMOS'", "TARGNAME= 'it''s'  / quoted quote", "OBSMODE =                    F",
                    "EXPTIME =                    10 / an int", "CCDGAIN =               2.0D0"], b"")),
    "blank keyword and COMMENT cards": _fits_bytes(
        (PRIMARY + ["COMMENT INSTRUME= 'NOPE'", "        DETECTOR= 'NOPE'", "INSTRUME= 'WFPC2'"], b"")),
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_headers_equal_full_reading(tmp_path: Path, name: str):
    path = tmp_path / "tricky.fits"
    path.write_bytes(TRICKY[name])
    assert read_header(path, KEEP) == _full_then_filtered(path, KEEP)
    assert read_header(path, KEEP) == _kept(astropy_merged(path), KEEP)


def test_tricky_headers_take_both_routes(tmp_path: Path, monkeypatch):
    """The fast route answers the plain cases itself and hands the odd ones to the card walk."""
    walked = []
    original = fits_reader._fast_cards
    monkeypatch.setattr(fits_reader, "_fast_cards", lambda raw, keep=None: walked.append(1) or original(raw, keep))
    routes = {}
    for name, data in TRICKY.items():
        path = tmp_path / f"{len(routes)}.fits"
        path.write_bytes(data)
        walked.clear()
        read_header(path, KEEP)
        routes[name] = bool(walked)
    assert not routes["repeat across HDUs: first wins"] and not routes["a header of several blocks"]
    assert routes["lower-case keyword"] and routes["first card of a wanted keyword has no value"]


def test_truncated_and_missing_end_are_one_line_errors(tmp_path: Path):
    whole = TRICKY["repeat across HDUs: first wins"]
    path = tmp_path / "cut.fits"
    path.write_bytes(whole[:1000])
    with pytest.raises(HeaderError, match="truncated in the header of HDU 0"):
        read_header(path, KEEP)
    no_end = ("".join(_card(c) for c in PRIMARY + ["INSTRUME= 'ACS'"]).ljust(2880)).encode() * 3
    path.write_bytes(no_end)
    with pytest.raises(HeaderError) as info:
        read_header(path, KEEP)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_astropy_written_file_with_extensions(tmp_path: Path):
    primary = fits.PrimaryHDU()
    primary.header["INSTRUME"] = "ACS"
    primary.header["DETECTOR"] = "WFC"
    table = fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=[1.0, 2.0, 3.0])])
    table.header["FILTER"] = "F814W"
    table.header["DETECTOR"] = "later"
    image = fits.ImageHDU(data=[[1, 2], [3, 4]])
    image.header["BUNIT"] = "ELECTRONS"
    path = tmp_path / "written.fits"
    fits.HDUList([primary, table, image]).writeto(path)
    got = read_header(path, KEEP)
    assert got == _kept(astropy_merged(path), KEEP)
    assert got["DETECTOR"] == "WFC" and got["BUNIT"] == "ELECTRONS"
