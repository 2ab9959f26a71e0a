"""Hostile mappings are refused with file and line, fast, and nothing in them runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from crds_async.errors import MappingSyntaxError, RulesError
from crds_async.fetch.mapping_files import load_mapping_file
from crds_async.rules.parse import parse_mapping_text

HEADER = """header = {
    'derived_from' : 'x', 'filekind' : 'DARK', 'instrument' : 'MIRI', 'mapping' : 'REFERENCE',
    'name' : 'evil.rmap', 'observatory' : 'JWST', 'parkey' : (('META.INSTRUMENT.DETECTOR',),),
}
"""


def _cases(sentinel: Path) -> dict[str, tuple[str, int]]:
    """name -> (mapping text, line of the offence)."""
    touch = f"__import__('os').system('touch {sentinel}')"
    return {
        "foreign call": (HEADER + f"selector = Match({{('A',): {touch}}})\n", 5),
        "call as selector": (HEADER + f"selector = {touch}\n", 5),
        "attribute access": (HEADER + "selector = Match({('A',): os.path})\n", 5),
        "subscript": (HEADER + "selector = Match({('A',): x[0]})\n", 5),
        "import": ("import os\n" + HEADER + "selector = Match({})\n", 1),
        "from import": (HEADER + "from os import system\nselector = Match({})\n", 5),
        "lambda": (HEADER + "selector = Match({('A',): (lambda: 1)})\n", 5),
        "comprehension": (HEADER + "selector = Match({k: 'f.fits' for k in 'ab'})\n", 5),
        "list comprehension": (HEADER + "selector = Match({('A',): [open('x') for _ in ()]})\n", 5),
        "expression statement": (HEADER + f"{touch}\nselector = Match({{}})\n", 5),
        "function def": (HEADER + "def f():\n    pass\nselector = Match({})\n", 5),
        "other assignment": (HEADER + "evil = 1\nselector = Match({})\n", 5),
        "two args": (HEADER + "selector = Match({}, {})\n", 5),
        "keyword arg": (HEADER + "selector = Match(choices={})\n", 5),
        "star unpack": (HEADER + "selector = Match({**globals()})\n", 5),
        "f-string": (HEADER + "selector = Match({('A',): f'{1}'})\n", 5),
        "walrus": (HEADER + "selector = Match({('A',): (x := 1)})\n", 5),
        "binop": (HEADER + "selector = Match({('A',): 'a' * 10})\n", 5),
        "set literal": (HEADER + "selector = Match({('A',): {'a'}})\n", 5),
        "bytes": (HEADER + "selector = Match({('A',): b'x'})\n", 5),
        "reassigned header": (HEADER + "header = {}\nselector = Match({})\n", 5),
    }


@pytest.mark.parametrize("case", list(_cases(Path("/nonexistent")).keys()))
def test_hostile_text_is_rejected_with_file_and_line_and_nothing_runs(case, tmp_path, monkeypatch):
    sentinel = tmp_path / "SENTINEL"
    text, line = _cases(sentinel)[case]
    path = tmp_path / "evil.rmap"
    path.write_text(text)
    monkeypatch.chdir(tmp_path)  # a relative side effect would land here
    with pytest.raises(MappingSyntaxError) as info:
        load_mapping_file(path, verify_checksum=False)
    message = str(info.value)
    assert message.startswith(f"evil.rmap:{line}:"), message
    assert "\n" not in message
    assert not sentinel.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.rmap"]


def test_deep_nesting_is_rejected_fast():
    deep = "(" * 10_000 + "'x'," + ",)" * 10_000
    start = time.perf_counter()
    with pytest.raises(MappingSyntaxError, match="deep.rmap:"):
        parse_mapping_text(HEADER + f"selector = Match({{('A',): {deep}}})\n", "deep.rmap")
    assert time.perf_counter() - start < 2


def test_moderately_deep_but_legal_python_is_still_bounded():
    deep = "'x'"
    for _ in range(80):
        deep = f"({deep},)"  # 80 nested tuples: fine for Python, far deeper than any real mapping
    with pytest.raises(MappingSyntaxError, match="nesting deeper"):
        parse_mapping_text(HEADER + f"selector = Match({{('A',): {deep}}})\n", "deep.rmap")


def test_a_100_mb_literal_is_rejected_before_parsing(tmp_path):
    path = tmp_path / "huge.rmap"
    with open(path, "w") as handle:
        handle.write(HEADER + "selector = Match({('A',): '")
        chunk = "x" * (1 << 20)
        for _ in range(100):
            handle.write(chunk)
        handle.write("'})\n")
    start = time.perf_counter()
    with pytest.raises(MappingSyntaxError, match="huge.rmap:1: mapping larger than"):
        load_mapping_file(path, verify_checksum=False)
    assert time.perf_counter() - start < 1


def test_a_long_string_literal_in_a_small_file_is_rejected():
    with pytest.raises(MappingSyntaxError, match="long.rmap:5: string literal longer"):
        parse_mapping_text(HEADER + "selector = Match({('A',): '" + "x" * (2 << 20) + "'})\n", "long.rmap")


def test_non_utf8_and_nul_bytes_are_rejected(tmp_path):
    latin = tmp_path / "latin.rmap"
    latin.write_bytes(HEADER.encode() + b"selector = Match({('\xe9',): 'a.fits'})\n")
    with pytest.raises(MappingSyntaxError, match="latin.rmap:.*not UTF-8"):
        load_mapping_file(latin, verify_checksum=False)
    with pytest.raises(MappingSyntaxError, match="nul.rmap:1: NUL"):
        parse_mapping_text(HEADER + "selector = Match({})\0\n", "nul.rmap")


def test_missing_header_key_and_unreadable_file(tmp_path):
    path = tmp_path / "nokey.rmap"
    path.write_text(HEADER.replace("'filekind' : 'DARK',", "") + "selector = Match({})\n")
    with pytest.raises(RulesError, match="nokey.rmap: Required header key 'filekind' is missing."):
        load_mapping_file(path, verify_checksum=False)
    with pytest.raises(RulesError, match="absent.rmap: cannot read mapping"):
        load_mapping_file(tmp_path / "absent.rmap")
