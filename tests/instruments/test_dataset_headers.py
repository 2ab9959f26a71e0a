"""Dataset headers and parkeys equal the reference's for every corpus FITS file and for generated headers."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from crds_async.errors import UnknownInstrumentError
from crds_async.headers.merge import merge_cards
from crds_async.instruments import (
    INSTRUMENT_KEYWORDS,
    bestrefs_parameters,
    context_instrument,
    dataset_header,
    header_instrument,
    personality,
)
from crds_async.instruments import jwst, roman
from crds_async.rules.conditioning import condition_header
from tests.conftest import CORPUS, needs_reference


def raw_cards(path: Path) -> dict[str, str]:
    """All HDUs' cards merged, first value wins, values as str(astropy value)."""
    from astropy.io import fits

    with fits.open(path) as hdus:
        cards = [(card.keyword, str(card.value)) for hdu in hdus for card in hdu.header.cards if card.keyword]
    return merge_cards(cards)


@pytest.fixture
def reference_env(monkeypatch, tmp_path):
    """The reference offline, with a throw-away cache (these checks read no mappings)."""
    monkeypatch.setenv("CRDS_PATH", str(tmp_path / "crds"))
    monkeypatch.setenv("CRDS_MODE", "local")
    monkeypatch.setenv("CRDS_READONLY_CACHE", "1")


@needs_reference
@pytest.mark.parametrize("observatory", ["hst", "jwst"])
def test_corpus_headers_and_parkeys_equal_reference(observatory, reference_env, monkeypatch):
    import gc

    # The reference garbage-collects around every FITS open (memory hygiene only); in a
    # big test process that is 90 % of this test's time.
    monkeypatch.setattr(gc, "collect", lambda *args: 0)
    from crds.bestrefs.headers import add_instrument
    from crds.core import utils
    from crds.data_file import get_free_header

    locator = utils.get_locator_module(observatory)
    files = sorted((CORPUS / observatory).glob("*.fits"))
    assert len(files) >= 300
    for path in files:
        expected = get_free_header(str(path), (), None, observatory)
        ours = dataset_header(raw_cards(path))
        assert ours == expected, path.name
        try:
            expected_parameters = add_instrument(dict(expected))
        except KeyError:
            with pytest.raises(UnknownInstrumentError):
                bestrefs_parameters(ours)
            continue
        parameters = bestrefs_parameters(ours)
        assert parameters == expected_parameters, path.name
        conditioned = condition_header(parameters)
        assert personality(observatory).to_parkeys(conditioned) == locator.fits_to_parkeys(conditioned), path.name


@needs_reference
def test_jwst_to_parkeys_equals_reference_on_generated_keys(reference_env):
    from crds.jwst.locate import fits_to_parkeys

    rng = random.Random(4)
    names = [*jwst.FITS_TO_DM, *jwst.DM_TO_FITS, "FOO", "meta.foo.bar", "Meta.Instrument.Name", "subarray",
             "date-obs", "NAXIS1", "HISTORY", "COMMENT", "META_INSTRUMENT_NAME"]
    for _ in range(300):
        header = {rng.choice(names): rng.choice(["A", "1.0", "UNDEFINED", ""]) for _ in range(rng.randrange(1, 30))}
        assert jwst.to_parkeys(header) == fits_to_parkeys(header)


@needs_reference
def test_cross_strapping_equals_reference_on_generated_headers(reference_env):
    from crds.io.abstract import cross_strap_header

    rng = random.Random(5)
    instrument_values = ["NIRCAM", "miri", "ACS", "wfii", "WFII", "hst", "WFI", "foo", "UNDEFINED", "undefined",
                         "NONHST", "all", "SYSTEM"]
    names = [*INSTRUMENT_KEYWORDS, *[k.lower() for k in INSTRUMENT_KEYWORDS], *rng.sample(sorted(jwst.FITS_TO_DM), 80),
             *rng.sample(sorted(jwst.DM_TO_FITS), 80), "DATE-OBS", "TIME-OBS", "CAL_VER", "TELESCOP", "DESCRIP",
             "META.TELESCOPE", "REFTYPE", "USEAFTER", "ROMAN.META.INSTRUMENT.NAME"]
    for _ in range(1500):
        header = {}
        for _ in range(rng.randrange(0, 25)):
            name = rng.choice(names)
            header[name] = rng.choice(instrument_values) if "INSTRUM" in name.upper() else \
                rng.choice(["X", "UNDEFINED", "2020-01-01", "1.0"])
        expected = cross_strap_header(header)
        expected["FILE_FORMAT"] = "FITS"
        assert dataset_header(header) == expected, header


@needs_reference
def test_header_instrument_and_context_instrument_equal_reference(reference_env):
    from crds.core import utils
    from crds.core.exceptions import CrdsError
    from crds.core.rmap import PipelineContext

    rng = random.Random(6)
    known = {"acs": None, "wfpc2": None, "nircam": None, "wfi": None}
    fake = PipelineContext.__new__(PipelineContext)   # only get_instrument/get_imap are used
    fake.header = {"instrument_key": "INSTRUME"}
    fake.selections = known
    fake.filename = "fake_0001.pmap"
    keys = [*INSTRUMENT_KEYWORDS, "instrume", "meta.instrument.name", "OTHER"]
    values = ["ACS", "acs", "WFII", "wfii", "NIRCAM", "UNDEFINED", "undefined", "Undefined", "WFI", "FOO", "hst"]
    for _ in range(2000):
        header = {rng.choice(keys): rng.choice(values) for _ in range(rng.randrange(0, 4))}
        expected_reader = utils.header_to_instrument(header, default=None) if any(
            header.get(k, header.get(k.lower())) not in (None, "UNDEFINED", "undefined") for k in INSTRUMENT_KEYWORDS) \
            else None
        assert header_instrument(header) == expected_reader, header
        for instrument_key in ("INSTRUME", "META.INSTRUMENT.NAME"):
            fake.header["instrument_key"] = instrument_key
            try:
                instrument = fake.get_instrument(header)
                fake.get_imap(instrument)            # raises for an instrument the context lacks
                expected = {"wfii": "wfpc2"}.get(instrument.lower(), instrument.lower())
            except CrdsError as exc:
                expected = f"error: {exc}"
            try:
                got = context_instrument(header, instrument_key, fake.basename, known)
            except UnknownInstrumentError as exc:
                got = f"error: {exc}"
            assert got == expected, (header, instrument_key)


@needs_reference
def test_roman_input_parameters_equal_reference(reference_env):
    from crds.roman.locate import dataset_to_ref_header

    rng = random.Random(7)
    keys = ["META.INSTRUMENT.NAME", "meta.exposure.start_time", "Meta.x", "ROMAN.META.INSTRUMENT.NAME", "METAX.Y",
            "META", "OTHER.META.X", "roman.meta.y"]
    for _ in range(500):
        header = {rng.choice(keys): rng.choice(["WFI", "1", "x"]) for _ in range(rng.randrange(0, 6))}
        assert roman.input_parameters(header) == dataset_to_ref_header(header)
        assert roman.to_parkeys(roman.to_parkeys(header)) == roman.to_parkeys(header)
