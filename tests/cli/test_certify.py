"""crds-batch certify: each defect in hand-broken mappings gives one clear line; real mappings pass."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest


from crds_async.cli import main
from crds_async.fetch.mapping_files import certify_mapping_file as certify_mapping
from crds_async.rules.checksum import mapping_sha1
from crds_async.fetch.mapping_files import FileMappingStore as MappingStore
from tests.fetch.helpers import private_mappings

from ..conftest import CACHE

TEMPLATE = "hst_cos_tdstab_0251.rmap"
TEMPLATE_REFS = ("t2314312l_tds.fits", "ycj1846tl_tds.fits", "t2314314l_tds.fits", "u7d20378l_tds.fits")


def _resign(text: str) -> str:
    """Replace the sha1sum header value with the right one for ``text``."""
    lines = text.splitlines(keepends=True)
    old = next(line for line in lines if "'sha1sum'" in line)
    new = f"    'sha1sum' : '{mapping_sha1(text)}',\n"
    return text.replace(old, new)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache with the real hst config and mappings linked, and references for the template."""
    cache = tmp_path / "cache"
    (cache / "config").mkdir(parents=True)
    shutil.copytree(CACHE / "config" / "hst", cache / "config" / "hst")
    (cache / "mappings").mkdir()
    (cache / "mappings" / "hst").symlink_to(private_mappings() / "hst")  # never into ../shared
    refs = cache / "references" / "hst"
    refs.mkdir(parents=True)
    for name in TEMPLATE_REFS:
        (refs / name).write_bytes(b"x")
    monkeypatch.setenv("CRDS_PATH", str(cache))
    monkeypatch.setenv("CRDS_SERVER_URL", "https://hst-crds.stsci.edu")
    monkeypatch.setenv("CRDS_MODE", "local")
    for var in ("CRDS_OBSERVATORY", "CRDS_CONTEXT", "CRDS_IGNORE_MAPPING_CHECKSUM"):
        monkeypatch.delenv(var, raising=False)
    return cache


def _write(tmp_path: Path, text: str, name: str = TEMPLATE) -> Path:
    out = tmp_path / "delivery"
    out.mkdir(exist_ok=True)
    path = out / name
    path.write_text(text, encoding="utf-8")
    return path


def _template() -> str:
    return (CACHE / "mappings" / "hst" / TEMPLATE).read_text(encoding="utf-8")


def test_template_is_clean(env: Path, tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, _template())
    assert main(["certify", "--check-references", str(path)]) == 0
    assert capsys.readouterr().out == ""


BROKEN = {
    # defect name -> (edit of the template text, re-sign?, expected check, text the line must contain)
    "bad checksum": (lambda t: t.replace("'NUV', 'SPECTROSCOPIC'", "'NUV', 'IMAGING'"), False,
                     "checksum", "sha1sum"),
    "unknown selector": (lambda t: t.replace("UseAfter({\n        '1996-10-01 00:00:00' : 't2314314l",
                                             "UseBefore({\n        '1996-10-01 00:00:00' : 't2314314l"),
                         True, "syntax", "UseBefore"),
    "overlapping keys": (lambda t: t.replace("('NUV', 'SPECTROSCOPIC') : UseAfter({",
                                             "('FUV ', 'spectroscopic') : UseAfter({"),
                         True, "overlap", "('FUV', 'SPECTROSCOPIC')"),
    "duplicate key": (lambda t: t.replace("('NUV', 'SPECTROSCOPIC') : UseAfter({",
                                          "('FUV', 'SPECTROSCOPIC') : UseAfter({"),
                      True, "duplicate", "('FUV', 'SPECTROSCOPIC')"),
    "missing reference": (lambda t: t.replace("u7d20378l_tds.fits", "zzz00000l_tds.fits"), True,
                          "missing", "zzz00000l_tds.fits"),
    "bad parkey name": (lambda t: t.replace("(('DETECTOR', 'OBSTYPE'),", "(('DETECTOR', 'OBS TYPE'),"),
                        True, "parkey", "'OBS TYPE'"),
    "parkey arity": (lambda t: t.replace("(('DETECTOR', 'OBSTYPE'),", "(('DETECTOR', 'OBSTYPE', 'LIFE_ADJ'),"),
                     True, "parkey", "names 3"),
    "bad useafter date": (lambda t: t.replace("'2009-05-11 00:00:00' : 'u7d", "'2009-13-11 00:00:00' : 'u7d"),
                          True, "value", "2009-13-11"),
    "bad relevance expression": (lambda t: t.replace('(TDSCORR != "OMIT")', '(TDSCORR.lower() != "OMIT")'),
                                 True, "value", "rmap_relevance"),
    "missing header key": (lambda t: t.replace("    'filekind' : 'TDSTAB',\n", ""), True, "header", "filekind"),
}


@pytest.mark.parametrize("defect", sorted(BROKEN))
def test_each_defect_gives_one_clear_line(defect: str, env: Path, tmp_path: Path, capsys) -> None:
    edit, resign, check, needle = BROKEN[defect]
    text = edit(_template())
    assert text != _template(), "the edit must change the template"
    if resign:
        text = _resign(text)
    path = _write(tmp_path, text)
    status = main(["certify", "--check-references", str(path)])
    out = capsys.readouterr().out.splitlines()
    assert status == 1
    assert len(out) == 1, out
    line = out[0]
    assert line.startswith(TEMPLATE), line
    assert f": {check}: " in line, line
    assert needle in line, line


def test_missing_submapping_of_a_context(env: Path, tmp_path: Path, capsys) -> None:
    text = (CACHE / "mappings" / "hst" / "hst_0729.pmap").read_text()
    text = _resign(text.replace("hst_acs_0421.imap", "hst_acs_7777.imap"))
    path = _write(tmp_path, text, "hst_0729.pmap")
    assert main(["certify", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and ": missing: " in out[0] and "hst_acs_7777.imap" in out[0], out


def test_context_selection_of_the_wrong_reftype(env: Path, tmp_path: Path, capsys) -> None:
    text = (CACHE / "mappings" / "hst" / "hst_cos_0305.imap").read_text()
    text = _resign(text.replace("'tdstab' : 'hst_cos_tdstab_0257.rmap'", "'tdstab' : 'hst_cos_twozxtab_0260.rmap'"))
    path = _write(tmp_path, text, "hst_cos_0305.imap")
    assert main(["certify", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and ": value: " in out[0] and "TWOZXTAB" in out[0], out


def test_json_output(env: Path, tmp_path: Path, capsys) -> None:
    import json

    path = _write(tmp_path, _template().replace("'FUV', 'SPECTROSCOPIC'", "'FUV', 'IMAGING'"))
    assert main(["certify", "--json", str(path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["checked"] == 1 and report["with_problems"] == 1
    assert any("checksum" in p for p in report["problems"][str(path)])


@pytest.mark.parametrize("obs, context", [("hst", "hst_0729.pmap"), ("jwst", "jwst_0541.pmap")])
def test_every_mapping_of_real_contexts_is_clean(obs: str, context: str) -> None:
    store = MappingStore(CACHE / "mappings" / obs)
    names = store.closure(context)
    assert len(names) > 100
    problems = []
    for name in names:
        problems += certify_mapping(store.path(name), mapping_exists=lambda n: store.path(n).is_file(),
                                    child_header=lambda n: store.load(n).header)
    assert problems == []


def test_whole_cache(capsys) -> None:
    """Every cached jwst and roman mapping is certified (hst: see the report; ~80 MB takes too long here)."""
    started = time.monotonic()
    bad: dict[str, list[str]] = {}
    checked = 0
    for obs in ("jwst", "roman"):
        store = MappingStore(CACHE / "mappings" / obs)
        for name in store.all_names():
            checked += 1
            problems = certify_mapping(store.path(name), mapping_exists=lambda n, s=store: s.path(n).is_file())
            if problems:
                bad[name] = [str(p) for p in problems]
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\ncertify: {checked} mappings in {elapsed:.1f}s, {len(bad)} with problems")
        for name, problems in sorted(bad.items()):
            print("  ", problems[0])
    assert checked > 2500
    # The one real corrupted file the reference also rejects.
    assert any("checksum" in p for p in bad["roman_wfi_epsf_0001.rmap"])
    # Real rules from the two newest contexts never appear.
    for obs, context in (("jwst", "jwst_0541.pmap"),):
        closure = set(MappingStore(CACHE / "mappings" / obs).closure(context))
        assert not closure & set(bad)
