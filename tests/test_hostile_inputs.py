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
