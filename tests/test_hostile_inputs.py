"""Hostile rules, names and text (issue #17): one odd input costs one error, never the run.

Every input here is generated in the test.  Each class of input has its own test, and
each test failed before its fix.  ``HOSTILE_INPUT_COUNT`` sums what the README cites.
"""

from __future__ import annotations

import io
import itertools
import os
from pathlib import Path

import pytest

from crds_async.engine.discover import discover


# ---------------------------------------------------------------- names and text
def _touch(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return str(path)


def test_a_list_file_and_stdin_with_non_utf8_names_name_their_files(tmp_path):
    odd = os.fsdecode(os.fsencode(str(tmp_path)) + b"/ds\xff\xfe.fits")
    _touch(Path(odd))
    plain = _touch(tmp_path / "plain.fits")
    listing = tmp_path / "list.txt"
    listing.write_bytes(os.fsencode(odd) + b"\n# comment \xe9\n" + plain.encode() + b"\r\n")
    found = list(discover([f"@{listing}"]))
    assert found == [odd, plain]
    assert all(os.path.exists(p) for p in found)  # the decoded name opens the file
    stdin = io.TextIOWrapper(io.BytesIO(os.fsencode(odd) + b"\n"), encoding="utf-8")
    assert list(discover(["-"], stdin=stdin)) == [odd]


def test_a_recursive_glob_does_not_follow_directory_link_loops(tmp_path):
    files = [_touch(tmp_path / rel) for rel in ("a/x.fits", "a/b/y.fits", "a/b/c/z.fits")]
    os.symlink("..", tmp_path / "a" / "b" / "up")  # a loop: b/up/b/up/... (two loops: exponential)
    found = list(itertools.islice(discover([str(tmp_path / "**" / "*.fits")]), 1000))
    assert sorted(found) == sorted(files)
    assert list(itertools.islice(discover([str(tmp_path / "a" / "**")]), 1000)) == [
        files[0], files[1], files[2]]


def test_literal_names_with_glob_characters_are_read_as_named(tmp_path, monkeypatch):
    names = ["x[1].fits", "y*.fits", "z?.asdf", "w[!a].fits"]
    paths = [_touch(tmp_path / name) for name in names]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(paths) + "\n")
    assert list(discover(paths)) == paths
    assert list(discover([f"@{listing}"])) == paths
    monkeypatch.chdir(tmp_path)
    assert list(discover(["x[1].fits"])) == ["x[1].fits"]
    # a pattern that names no file literally is still a pattern
    _touch(tmp_path / "x1.fits")
    assert list(discover(["x[12].fits"])) == ["x1.fits"]


# ---------------------------------------------------------------- rules: parse work
RMAP_HEADER = """header = {
    'derived_from' : 'x', 'filekind' : 'DARK', 'instrument' : 'MIRI', 'mapping' : 'REFERENCE',
    'name' : 'evil.rmap', 'observatory' : 'JWST', 'parkey' : (('META.INSTRUMENT.DETECTOR',),),
}
"""


@pytest.mark.parametrize("body", [
    "(" + "1," * 1_100_000 + ")",              # one huge tuple: 2.2 MB
    "(" + "1 and " * 600_000 + "1)",         # a flat chain without separators
    "[" + "[]," * 600_000 + "]",              # empty containers
])
def test_a_mapping_of_millions_of_items_is_refused_before_it_is_parsed(body):
    from crds_async.errors import MappingSyntaxError
    from crds_async.rules.parse import MAX_MAPPING_TOKENS, parse_mapping_text

    text = RMAP_HEADER + "selector = Match({('A',): " + body + "})\n"
    with pytest.raises(MappingSyntaxError, match=rf"^huge\.rmap:1: mapping of ~[\d,]+ syntax items: "
                                                 rf"more than {MAX_MAPPING_TOKENS:,}"):
        parse_mapping_text(text, "huge.rmap")


def test_one_tuple_longer_than_any_real_one_is_refused_with_its_line():
    from crds_async.errors import MappingSyntaxError
    from crds_async.rules.parse import parse_mapping_text

    text = RMAP_HEADER + "selector = Match({('A',): (" + "'a.fits'," * 20_000 + ")})\n"
    with pytest.raises(MappingSyntaxError, match=r"^long\.rmap:5: tuple of 20000 items: more than 10000$"):
        parse_mapping_text(text, "long.rmap")


def test_the_largest_real_mappings_are_far_below_the_parse_bounds(shared_cache):
    from crds_async.rules.parse import MAX_MAPPING_TOKENS, token_estimate

    sizes = sorted((p.stat().st_size, p) for p in (shared_cache / "mappings" / "hst").glob("*.rmap"))
    for _size, path in sizes[-5:]:
        assert token_estimate(path.read_text()) * 10 < MAX_MAPPING_TOKENS
