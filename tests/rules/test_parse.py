"""Loading every real mapping: parse, required keys and checksums, against the reference."""

from __future__ import annotations


import pytest

from crds_async.errors import ChecksumError, RulesError
from crds_async.rules.checksum import mapping_sha1
from crds_async.fetch.mapping_files import load_mapping_file
from crds_async.rules.parse import SelectorCall
from tests.conftest import CACHE, needs_reference

ALL_MAPPINGS = sorted((CACHE / "mappings").rglob("*.[pir]map"))


@pytest.fixture(scope="module")
def load_results() -> dict[str, object]:
    """name -> ParsedMapping or the RulesError our loader raised."""
    out: dict[str, object] = {}
    for path in ALL_MAPPINGS:
        try:
            out[path.name] = load_mapping_file(path)
        except RulesError as exc:
            out[path.name] = exc
    return out


def test_every_cached_mapping_loads_except_the_known_bad_ones(load_results):
    assert len(ALL_MAPPINGS) > 4700
    rejected = {name: exc for name, exc in load_results.items() if isinstance(exc, Exception)}
    # each error is one line naming the file
    for name, exc in rejected.items():
        assert name in str(exc) and "\n" not in str(exc), exc
    assert set(rejected) == {"roman_wfi_epsf_0001.rmap", "hst_acs_darkfile_missing_key.rmap"}
    assert isinstance(rejected["roman_wfi_epsf_0001.rmap"], ChecksumError)


def test_checksum_can_be_skipped(load_results):
    parsed = load_mapping_file(CACHE / "mappings" / "roman" / "roman_wfi_epsf_0001.rmap", verify_checksum=False)
    assert parsed.filename == "roman_wfi_epsf_0001.rmap" and parsed.header["filekind"].upper() == "EPSF"


def test_a_one_character_edit_breaks_the_checksum(tmp_path):
    source = CACHE / "mappings" / "hst" / "hst_acs_biasfile_0345.rmap"
    text = source.read_text()
    edited = tmp_path / source.name
    edited.write_text(text.replace("q9e1206hj_bia.fits", "q9e1206hk_bia.fits", 1))
    with pytest.raises(ChecksumError, match="sha1sum mismatch in 'hst_acs_biasfile_0345.rmap'"):
        load_mapping_file(edited)
    # editing only the sha1sum line's neighbours' line endings is still a change
    assert mapping_sha1(text) != mapping_sha1(text.replace("\n", "\n\n", 3))


def test_selector_tree_shape(load_results):
    rmap = load_results["hst_acs_biasfile_0345.rmap"]
    assert isinstance(rmap.selector, SelectorCall) and rmap.selector.name == "Match"
    key, value = rmap.selector.choices[2]
    assert key == ("HRC", "A", 2.0, "N/A", 1062, 1044, 19.0, 20.0, "N/A", "N/A", "N/A")
    assert isinstance(value, SelectorCall) and value.name == "UseAfter"
    assert dict(value.choices)["2006-07-04 11:29:31"] == "q9e1206hj_bia.fits"
    pmap = load_results["hst_0729.pmap"]
    assert pmap.selector["ACS"] == "hst_acs_0421.imap"


@needs_reference
def test_rejections_and_selections_equal_the_reference(load_results, monkeypatch):
    """The reference's own loader rejects exactly the same files and sees the same selections."""
    monkeypatch.setenv("CRDS_PATH", str(CACHE))
    monkeypatch.setenv("CRDS_READONLY_CACHE", "1")
    from crds.core import rmap as ref_rmap

    rejected_by_us = {n for n, v in load_results.items() if isinstance(v, Exception)}
    sample = [p for p in ALL_MAPPINGS if p.name in rejected_by_us or int(mapping_sha1(p.name), 16) % 20 == 0]
    compared = 0
    for path in sample:
        try:
            ref = ref_rmap.load_mapping(str(path))
        except Exception:  # noqa: BLE001 - any reference rejection
            assert path.name in rejected_by_us, path.name
            continue
        assert path.name not in rejected_by_us, path.name
        ours = load_results[path.name]
        ref_keys = list(ref.selector.keys()) if hasattr(ref, "selector") and hasattr(ref.selector, "keys") else None
        if path.suffix == ".rmap" and ref_keys is not None:
            assert len(ref_keys) == len(ours.selector.choices), path.name
        elif path.suffix != ".rmap":
            assert {k.upper() for k in ours.selector} == {k.upper() for k in ref.selections.keys()}, path.name
        compared += 1
    assert compared > 200
