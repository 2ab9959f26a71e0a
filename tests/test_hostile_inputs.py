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


# ---------------------------------------------------------------- rules: odd header values
def _rules_texts(instrument: str, filekind: str, header_extra: str = "", selector: str | None = None,
                 parkey: str = "(('DETECTOR',), ('DATE-OBS', 'TIME-OBS'))") -> dict[str, str]:
    """A context of two instruments, CAM (sound) and ``instrument`` (whose rmap is altered)."""
    def rmap(inst: str, kind: str, extra: str, body: str, pk: str) -> str:
        return f"""header = {{
    'mapping' : 'REFERENCE', 'name' : 'demo_{inst}_{kind}_0001.rmap', 'derived_from' : 'none',
    'observatory' : 'DEMO', 'instrument' : '{inst.upper()}', 'filekind' : '{kind.upper()}',
    'parkey' : {pk}, 'sha1sum' : 'none',{extra}
}}
selector = Match({{
    {body}
}})
"""

    def imap(inst: str, kind: str) -> str:
        return f"""header = {{
    'mapping' : 'INSTRUMENT', 'name' : 'demo_{inst}_0001.imap', 'derived_from' : 'none',
    'observatory' : 'DEMO', 'instrument' : '{inst.upper()}', 'parkey' : ('REFTYPE',), 'sha1sum' : 'none',
}}
selector = {{'{kind}' : 'demo_{inst}_{kind}_0001.rmap'}}
"""
    good = "'A' : UseAfter({'2000-01-01 00:00:00' : 'old_dark.fits', '2010-01-01 00:00:00' : 'new_dark.fits'}),"
    return {
        "demo_0001.pmap": f"""header = {{
    'mapping' : 'PIPELINE', 'name' : 'demo_0001.pmap', 'derived_from' : 'none',
    'observatory' : 'DEMO', 'parkey' : ('INSTRUME',), 'sha1sum' : 'none',
}}
selector = {{'CAM' : 'demo_cam_0001.imap', '{instrument.upper()}' : 'demo_{instrument}_0001.imap'}}
""",
        "demo_cam_0001.imap": imap("cam", "dark"),
        "demo_cam_dark_0001.rmap": rmap("cam", "dark", "", good, "(('DETECTOR',), ('DATE-OBS', 'TIME-OBS'))"),
        f"demo_{instrument}_0001.imap": imap(instrument, filekind),
        f"demo_{instrument}_{filekind}_0001.rmap": rmap(instrument, filekind, header_extra,
                                                        good if selector is None else selector, parkey),
    }


ODD_RMAPS = {  # case -> (header entries, selector body or None, parkey or None, what the error says)
    "extra_keys 5": ("'extra_keys' : 5,", None, None, "'extra_keys' must be a tuple"),
    "comment_parkeys 5": ("'comment_parkeys' : 5,", None, None, "'comment_parkeys' must be a tuple"),
    "unhashable Match key": ("", "(['A'],) : 'a_dark.fits',", None, "is not hashable"),
    "unhashable header key": ("'odd' : {('a', ['b']) : 1},", None, None, "is not hashable"),
    "short Match tuple": ("", "('A',) : 'a_dark.fits',", "(('DETECTOR', 'FILTER'),)", "does not have 2 values"),
    "parkey ()": ("", None, "()", "deeper than the parkey header"),
    "parkey 5": ("", None, "5", "'parkey' must be a tuple"),
    "parkey_relevance list": ("'parkey_relevance' : ['DETECTOR'],", None, None, "'parkey_relevance' must be a dict"),
    "hooks 5": ("'hooks' : 5,", None, None, "'hooks' must be a dict"),
    "reference name ../../etc/passwd": ("", "'A' : '../../../../etc/passwd',", "(('DETECTOR',),)",
                                        "reference file name '../../../../etc/passwd' has a directory part"),
    "reference name with a blank": ("", "'A' : 'a b.fits',", "(('DETECTOR',),)",
                                    "reference file name 'a b.fits' has characters"),
}


def _build(texts):
    from crds_async.rules.model import build_context
    from crds_async.rules.parse import parse_checked_mapping

    def load(name: str):
        return parse_checked_mapping(texts[name], name, verify_checksum=False)

    return build_context(load("demo_0001.pmap"), "demo", load)


@pytest.mark.parametrize("case", list(ODD_RMAPS))
def test_an_odd_rmap_fails_only_its_instrument_and_certify_flags_it(case):
    from crds_async.rules.certify import certify_mapping_text
    from crds_async.rules.evaluate import Evaluator
    from crds_async.rules.personality import GENERIC

    extra, selector, parkey, says = ODD_RMAPS[case]
    kwargs = {"parkey": parkey} if parkey else {}
    texts = _rules_texts("spec", "flat", extra, selector, **kwargs)
    ctx = _build(texts)
    assert set(ctx.instruments) == {"cam"}
    error = str(ctx.load_errors["spec"])
    assert "demo_spec_flat_0001.rmap" in error and says in error and "\n" not in error
    evaluator = Evaluator(ctx, GENERIC)
    header = {"INSTRUME": "CAM", "DETECTOR": "A", "DATE-OBS": "2012-05-01", "TIME-OBS": "00:00:00"}
    assert evaluator.evaluate(header) == {"dark": "new_dark.fits"}
    with pytest.raises(Exception, match="demo_spec_flat_0001.rmap"):
        evaluator.evaluate(dict(header, INSTRUME="SPEC"))
    # certify refuses what the loader refuses, and passes the sound rmap
    name = "demo_spec_flat_0001.rmap"
    problems = [p for p in certify_mapping_text(texts[name], name) if p.check != "checksum"]
    assert problems and all(p.file == name for p in problems), problems
    sound = [p for p in certify_mapping_text(texts["demo_cam_dark_0001.rmap"], "demo_cam_dark_0001.rmap")
             if p.check != "checksum"]
    assert sound == []


def test_certify_runs_the_loaders_checks_on_imaps_and_contexts():
    from crds_async.rules.certify import certify_mapping_text

    texts = _rules_texts("spec", "flat")
    imap = texts["demo_spec_0001.imap"].replace("'parkey' : ('REFTYPE',),", "'parkey' : ('REFTYPE',), "
                                                "'extra_keys' : 5,")
    problems = [str(p) for p in certify_mapping_text(imap, "demo_spec_0001.imap") if p.check != "checksum"]
    assert problems == ["demo_spec_0001.imap: rules: 'extra_keys' must be a tuple of parameter names, not 5"]
    pmap = texts["demo_0001.pmap"].replace("('INSTRUME',)", "()")
    problems = [str(p) for p in certify_mapping_text(pmap, "demo_0001.pmap") if p.check != "checksum"]
    assert problems == ["demo_0001.pmap: rules: 'parkey' names no instrument keyword"]


def test_an_unknown_hook_name_is_that_rmaps_error():
    from crds_async.instruments import rules_personality
    from crds_async.instruments.hst_hooks import find_hook
    from crds_async.rules.evaluate import Evaluator

    hooks = {"precondition_header": "precondition_header_acs_biasfile_v9"}
    with pytest.raises(Exception, match="'precondition_header_acs_biasfile_v9' for precondition_header, "
                                        "which is not a hook of acs"):
        find_hook("precondition_header", "acs", "biasfile", hooks)
    # 'none' unplugs a hook; a kind the dict does not name has none; known names resolve
    assert find_hook("precondition_header", "acs", "biasfile", {"precondition_header": "none"}) is None
    assert find_hook("fallback_header", "acs", "biasfile", hooks) is None
    assert find_hook("fallback_header", "acs", "biasfile", {"fallback_header": "fallback_header_acs_biasfile_v2"})

    texts = _rules_texts("acs", "biasfile", f"'hooks' : {hooks!r},")
    texts = {k: v.replace("'DEMO'", "'HST'") for k, v in texts.items()}
    evaluator = Evaluator(_build(texts), rules_personality("hst"))
    header = {"INSTRUME": "ACS", "DETECTOR": "A", "DATE-OBS": "2012-05-01", "TIME-OBS": "00:00:00"}
    # that rmap's type is answered with the error, naming the rmap and the hook; other
    # instruments (and the plans and interpreted paths alike) are answered
    for use_plans in (True, False):
        evaluator = Evaluator(_build(texts), rules_personality("hst"), use_plans=use_plans)
        answer = evaluator.evaluate(header)["biasfile"]
        assert answer.startswith("NOT FOUND ") and "biasfile" in answer and ".rmap" in answer, answer
        assert "'precondition_header_acs_biasfile_v9'" in answer
        assert evaluator.evaluate(dict(header, INSTRUME="CAM")) == {"dark": "new_dark.fits"}
