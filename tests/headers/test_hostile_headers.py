"""Hostile dataset headers (issue #17): each is one HeaderError line naming the file, never a hang,
another exception or a flood of warnings; the work on one file is bounded.

Every file is generated here, in ``tmp_path``.  Each FITS case is read both ways: by the full
reading and by the selective one the batch engine uses; and, with a complex-valued card added
to its primary header, through the astropy fallback too (astropy itself loops forever on a
negative NAXISn when it walks a file, so it must never be handed one).
"""

from __future__ import annotations

import warnings

import pytest

from crds_async.errors import HeaderError
from crds_async.headers import fits as fits_reader
from crds_async.headers import read_header
from crds_async.headers.asdf import MAX_TREE_BYTES
from crds_async.instruments.asdf_tree import MAX_TREE_DEPTH, TreeTooLarge, flatten_tree

pytestmark = pytest.mark.timeout(60)

KEEP = {"INSTRUME", "DETECTOR", "FILTER"}.__contains__


def _card(keyword: str, value: str) -> str:
    return f"{keyword:<8}= {value:>20}".ljust(80)


def _hdu(cards: list[str], data: bytes = b"") -> bytes:
    text = "".join(cards) + "END".ljust(80)
    text += " " * (-len(text) % 2880)
    return text.encode("ascii") + data + b"\0" * (-len(data) % 2880)


PRIMARY = [_card("SIMPLE", "T"), _card("BITPIX", "8"), _card("NAXIS", "0"), _card("EXTEND", "T"),
           _card("INSTRUME", "'ACS     '"), _card("DETECTOR", "'WFC     '")]
#: a card the fast reader leaves to astropy: the whole file then goes the astropy way
ASTROPY_ROUTE = _card("CPLXVAL", "(1.0, 2.0)")


def _image_extension(**values: str) -> list[str]:
    cards = {"XTENSION": "'IMAGE   '", "BITPIX": "16", "NAXIS": "2", "NAXIS1": "4", "NAXIS2": "4",
             "PCOUNT": "0", "GCOUNT": "1", **values}
    return [_card(keyword, value) for keyword, value in cards.items()]


def _error_of(path, keep=None) -> str:
    with pytest.raises(HeaderError) as info:
        read_header(path, keep)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    return message


def _both_routes(tmp_path, name: str, *hdus: list[str]):
    """The file as given, and the same with a card that sends it to the astropy fallback."""
    plain = tmp_path / f"{name}.fits"
    plain.write_bytes(b"".join(_hdu(cards) for cards in hdus))
    via_astropy = tmp_path / f"{name}-astropy.fits"
    via_astropy.write_bytes(b"".join(_hdu(cards + [ASTROPY_ROUTE] if i == 0 else cards)
                                     for i, cards in enumerate(hdus)))
    return plain, via_astropy


@pytest.mark.parametrize("values, problem", [
    ({"NAXIS1": "-2880"}, "NAXIS1 = -2880, which is negative"),  # the reader's offset used to move backwards
    ({"NAXIS2": "-1"}, "NAXIS2 = -1, which is negative"),
    ({"PCOUNT": "-100000"}, "PCOUNT = -100000, which is negative"),
    ({"GCOUNT": "-1"}, "GCOUNT = -1, which is negative"),
    ({"BITPIX": "7"}, "BITPIX = 7, not one of 8, 16, 32, 64, -32, -64"),
    ({"BITPIX": "0"}, "BITPIX = 0, not one of"),
    ({"NAXIS": "-3"}, "NAXIS = -3, not within 0..999"),
    ({"NAXIS": "1000"}, "NAXIS = 1000, not within 0..999"),
    ({"NAXIS1": "1.5"}, "NAXIS1 = '1.5', not an integer"),
])
def test_bad_structural_values_in_an_extension_are_one_error_line(tmp_path, values, problem):
    for path in _both_routes(tmp_path, "bad", PRIMARY, _image_extension(**values)):
        for keep in (None, KEEP):
            message = _error_of(path, keep)
            assert f"bad FITS structure: HDU 1 has {problem}" in message, (path.name, message)


def test_bad_structural_values_in_the_primary_header_are_one_error_line(tmp_path):
    primary = [card for card in PRIMARY if not card.startswith("NAXIS ")] + [_card("NAXIS", "1"),
                                                                              _card("NAXIS1", "-5")]
    for path in _both_routes(tmp_path, "primary", primary):
        for keep in (None, KEEP):
            assert "HDU 0 has NAXIS1 = -5, which is negative" in _error_of(path, keep)


def test_naxis_999_without_its_axes_is_read_not_a_crash(tmp_path):
    """astropy's own walk raised KeyError('NAXIS1') here; missing axes count as 0 (an empty data unit)."""
    primary = [card for card in PRIMARY if not card.startswith("NAXIS ")] + [_card("NAXIS", "999")]
    for path in _both_routes(tmp_path, "naxis999", primary):
        assert read_header(path)["INSTRUME"] == "ACS"
        assert read_header(path, KEEP) == {"BITPIX": "8", "NAXIS": "999", "INSTRUME": "ACS", "DETECTOR": "WFC"}


def test_an_unterminated_string_value_is_one_error_line(tmp_path):
    """astropy raised VerifyError from the value of this card: now one line naming file and card."""
    path = tmp_path / "unterminated.fits"
    path.write_bytes(_hdu(PRIMARY + ["FILTER  = 'F555W".ljust(80)]))
    for keep in (None, KEEP):
        message = _error_of(path, keep)
        assert "not a readable FITS file (HDU 0: Unparsable card (FILTER)" in message


def test_sizes_far_beyond_the_file_are_never_read_or_allocated(tmp_path):
    huge = _image_extension(BITPIX="-64", NAXIS="3", NAXIS1="999999999999", NAXIS2="999999999999",
                            NAXIS3="999999999999")
    for path in _both_routes(tmp_path, "huge", PRIMARY, huge, _image_extension()):
        assert read_header(path, KEEP)["DETECTOR"] == "WFC"
        assert read_header(path)["NAXIS1"] == "999999999999"  # the first extension's, never its data


def test_astropy_fallback_is_quiet_and_ignores_bytes_after_the_last_hdu(tmp_path, capfd):
    path = tmp_path / "trailing.fits"
    path.write_bytes(_hdu(PRIMARY + [ASTROPY_ROUTE]) + b"garbage after the last HDU".ljust(2880))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        header = read_header(path)
    assert header["CPLXVAL"] == "(1+2j)" and header["INSTRUME"] == "ACS"
    assert not caught and capfd.readouterr().err == ""


def test_any_exception_while_reading_becomes_the_datasets_header_error(tmp_path, monkeypatch):
    path = tmp_path / "ok.fits"
    path.write_bytes(_hdu(PRIMARY))

    def explode(raw, keep):
        raise KeyError("NAXIS1")

    monkeypatch.setattr("crds_async.headers.read_fits_raw", explode)
    assert _error_of(path) == f"{path}: unreadable header (KeyError: 'NAXIS1')"


def test_the_fast_route_still_reads_a_good_file_with_many_extensions(tmp_path):
    path = tmp_path / "good.fits"
    data = bytes(32)
    path.write_bytes(_hdu(PRIMARY) + _hdu(_image_extension(), data) + _hdu(_image_extension(EXTNAME="'SCI'"), data))
    assert read_header(path, KEEP) == {"BITPIX": "8", "NAXIS": "0", "INSTRUME": "ACS", "DETECTOR": "WFC",
                                       "XTENSION": "IMAGE", "NAXIS1": "4", "NAXIS2": "4", "PCOUNT": "0",
                                       "GCOUNT": "1"}
    assert read_header(path)["EXTNAME"] == "SCI"
    assert fits_reader._data_size({"BITPIX": "16", "NAXIS": "2", "NAXIS1": "4", "NAXIS2": "4"}, 1) == 32


# ------------------------------------------------------------------------------------------ ASDF

ASDF_HEAD = ("#ASDF 1.0.0\n#ASDF_STANDARD 1.5.0\n%YAML 1.1\n%TAG ! tag:stsci.edu:asdf/\n"
             "--- !core/asdf-1.1.0\nroman:\n  meta:\n    instrument: {name: WFI, detector: WFI01}\n")


def _asdf(tmp_path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.asdf"
    path.write_text(ASDF_HEAD + body + "...\n")
    return path


def _laughs_lists(levels: int = 12) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _laughs_maps(levels: int = 9) -> str:
    lines = ["m0: &m0 {x: 1, y: 2}"]
    lines += [f"m{i}: &m{i} {{" + ", ".join(f"k{j}: *m{i - 1}" for j in range(10)) + "}" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name, body, problem", [
    ("laughs-lists", _laughs_lists(), "more than 100,000 nodes (aliases expanded)"),  # ~10^12 when expanded
    ("laughs-maps", _laughs_maps(), "more than 100,000 nodes (aliases expanded)"),
    ("wide", "".join(f"k{i}: {i}\n" for i in range(300_000)), "more than 100,000 nodes"),
    ("self-alias", "loop: &loop [1, *loop]\n", "alias *loop to itself or to nothing"),
    ("deep", "deep: " + "[" * (MAX_TREE_DEPTH + 5) + "]" * (MAX_TREE_DEPTH + 5) + "\n", "nested deeper than 100"),
    ("bad-yaml", "key: [unclosed\n", "not a readable ASDF file (YAML:"),
])
def test_asdf_trees_that_explode_are_refused_cheaply(tmp_path, name, body, problem):
    path = _asdf(tmp_path, name, body)
    assert problem in _error_of(path)


def test_an_asdf_tree_larger_than_the_cap_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "big.asdf"
    with open(path, "w") as handle:
        handle.write(ASDF_HEAD + "blob: '")
        handle.write("x" * (MAX_TREE_BYTES + 1024))
        handle.write("'\n...\n")
    assert "ASDF tree larger than 8 MB" in _error_of(path)


def test_a_modest_tree_just_below_the_cap_is_read(tmp_path):
    path = _asdf(tmp_path, "modest", "".join(f"k{i}: {i}\n" for i in range(5_000)) + _laughs_lists(3))
    header = read_header(path)
    assert header["ROMAN.META.INSTRUMENT.NAME"] == "WFI" and header["K4999"] == "4999"
    assert len(header) == 5_000 + 3 + 2 + 1  # k*, a0..a2, instrument name/detector, HISTORY


def test_roman_unknown_tags_and_times_read_without_warnings(tmp_path, capfd):
    path = _asdf(tmp_path, "roman", "    exposure:\n      start_time: !time/time-1.1.0 2026-01-01T00:00:00.000\n"
                                    "    thing: !<tag:example.org/unknown-1.0.0> {a: 1}\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        header = read_header(path)
    assert header["ROMAN.META.EXPOSURE.START_TIME"] == "2026-01-01T00:00:00"
    assert header["ROMAN.META.THING.A"] == "1"
    assert [str(w.message) for w in caught] == []
    assert capfd.readouterr().err == ""


def test_flattening_counts_shared_and_self_referencing_subtrees():
    shared: dict = {"x": 1, "y": 2}
    for _level in range(12):
        shared = {f"k{j}": shared for j in range(10)}  # 10^12 paths through 120 dict entries
    with pytest.raises(TreeTooLarge, match="more than 100,000 nodes"):
        flatten_tree({"root": shared})
    looped: dict = {"a": 1}
    looped["self"] = looped
    with pytest.raises(TreeTooLarge):
        flatten_tree(looped)
    listed: list = [1]
    listed.append(listed)
    with pytest.raises(TreeTooLarge):
        flatten_tree({"l": listed})
    assert flatten_tree({"a": {"b": [1, [2, 3]]}}, max_nodes=6) == {"A.B": "('1', ('2', '3'))"}
    with pytest.raises(TreeTooLarge):
        flatten_tree({"a": {"b": [1, [2, 3]]}}, max_nodes=5)
