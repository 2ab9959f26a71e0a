"""Reference name -> (instrument, filekind) equals the reference's for every name the contexts use."""

from __future__ import annotations

import random

import pytest

from crds_async.instruments import hst, jwst, personality, roman
from tests.conftest import CACHE, needs_reference

CONTEXTS = {"hst": "hst_0729.pmap", "jwst": "jwst_0541.pmap", "roman": "roman_0007.pmap"}
SERVERS = {"hst": "https://hst-crds.stsci.edu", "jwst": "https://jwst-crds.stsci.edu",
           "roman": "https://roman-crds.stsci.edu"}


@pytest.fixture
def reference_on_shared_cache(monkeypatch):
    """The reference reading the shared cache; read-only so it writes nothing there."""
    import gc

    # The reference garbage-collects around each file it tries to open (memory hygiene
    # only); in a big test process that dominates the run time.
    monkeypatch.setattr(gc, "collect", lambda *args: 0)
    monkeypatch.setenv("CRDS_PATH", str(CACHE))
    monkeypatch.setenv("CRDS_MODE", "local")
    monkeypatch.setenv("CRDS_READONLY_CACHE", "1")


def _reference_properties(observatory: str, name: str):
    from crds.core import utils

    locator = utils.get_locator_module(observatory)
    try:
        return tuple(locator.get_reference_properties(name)[2:4])
    except Exception:  # noqa: BLE001 - the reference needed the file itself: not decidable by name
        return None


def odd_names(observatory: str, count: int) -> list[str]:
    """Names near the naming rules: wrong fields, cases, extensions, GEIS and synphot forms."""
    rng = random.Random(observatory)
    table = personality(observatory)
    instruments = [*table.INSTRUMENTS, "foo", "ACS", ""]
    filekinds = [*rng.sample(sorted(table.FILEKINDS), 20), "dark", "DRK", ""]
    names = []
    for _ in range(count):
        form = rng.randrange(4)
        if form == 0:
            fields = [rng.choice([observatory, "hst", "jwst", "roman", "x"]), rng.choice(instruments),
                      rng.choice(filekinds), rng.choice(["0001", "", "12a", "ctx0001", "٣"]), rng.choice(["", "x"])]
            stem = "_".join(fields[: rng.randrange(1, 6)])
        elif form == 1:
            stem = f"{rng.randrange(10**8):08d}{rng.choice('jonuilmxJ')}" + rng.choice(
                ["_drk", "_bia", "_DRK", "_pfl", "", "_syn", "_th", "_tmc", "_tmt", "_x_syn", "_1dx", "_bpx_v2"])
        elif form == 2:
            stem = rng.choice(["syn", "th", "_", "a_syn", "x.th", ".hidden", "..", "j_", "wfc3_uvis_th"])
        else:
            stem = f"{rng.choice(['e', 'f', 'g'])}{rng.randrange(10**7)}{rng.choice('ujm')}"
        names.append(stem + rng.choice([".fits", ".r0h", ".r2h", ".r4h", ".r9h", ".R2H", ".asdf", ".json",
                                         ".yaml", ".pmap", ".imap", ".rmap", "", ".FITS", ".c1h"]))
    return names


@needs_reference
@pytest.mark.parametrize("observatory", ["hst", "jwst", "roman"])
def test_reference_properties_equal_reference(observatory, reference_on_shared_cache):
    from crds.core import rmap

    names = rmap.get_cached_mapping(CONTEXTS[observatory], ignore_checksum=True).reference_names()
    assert len(names) > {"hst": 10_000, "jwst": 1000, "roman": 4}[observatory]
    ours = personality(observatory).reference_properties
    mismatches = [(n, ours(n), _reference_properties(observatory, n)) for n in names
                  if ours(n) != _reference_properties(observatory, n)]
    assert mismatches == []
    assert all(ours(n) is not None for n in names)   # every used name is decidable by name
    generated = odd_names(observatory, 1500)
    mismatches = [(n, ours(n), _reference_properties(observatory, n)) for n in generated
                  if ours(n) != _reference_properties(observatory, n)]
    assert mismatches == []


@needs_reference
def test_hst_instrument_from_name_and_iraf_prefixes_equal_reference(reference_on_shared_cache):
    from crds.core import rmap
    from crds.hst import locate, siname

    names = rmap.get_cached_mapping(CONTEXTS["hst"]).reference_names() + odd_names("hst", 1000)
    for name in names:
        try:
            expected = locate.instrument_from_refname(name)
        except AssertionError:
            expected = None
        assert hst.instrument_from_reference_name(name) == expected, name
    for instrument in [*hst.INSTRUMENTS, "multi"]:
        assert hst.iraf_prefix(instrument) == siname.add_IRAF_prefix(instrument.upper())
        assert hst.filekind_to_keyword("biasfile") == locate.filekind_to_keyword("biasfile")


def test_naming_examples():
    assert hst.reference_properties("25b17404j_bia.fits") == ("acs", "biasfile")
    assert hst.reference_properties("e2112126u.r2h") == ("wfpc2", "biasfile")
    assert hst.reference_properties("hst_acs_darkfile_0001.fits") == ("acs", "darkfile")
    assert hst.reference_properties("unknown.fits") is None
    assert jwst.reference_properties("jwst_nircam_pars-tweakregstep_0001.asdf") == ("nircam", "pars-tweakregstep")
    assert roman.reference_properties("roman_wfi_dark_0001.asdf") == ("wfi", "dark")
    assert roman.reference_properties("roman_wfi_dark_00x1.asdf") is None
