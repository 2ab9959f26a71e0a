"""The worked examples of rules.md §9, Roman, bad files and symbolic contexts, against the reference."""

from __future__ import annotations

import pytest

from crds_async import getrecommendations
from crds_async.config import config_from_env
from crds_async.errors import BadReferenceError, BadRulesError, ChecksumError, UnknownInstrumentError
from crds_async.engine.loader import new_evaluator as Evaluator
from crds_async.engine.loader import load_context
from tests.conftest import CACHE, needs_reference
from tests.reference_runner import reference_answers

CFG = config_from_env({"CRDS_PATH": str(CACHE)})
ACS_HRC = {"INSTRUME": "ACS", "DETECTOR": "HRC", "CCDAMP": "A", "CCDGAIN": "2", "NAXIS1": "1062",
           "NAXIS2": "1044", "LTV1": "19", "LTV2": "20", "BIASCORR": "PERFORM", "APERTURE": "HRC",
           "DATE-OBS": "2006-07-04", "TIME-OBS": "11:29:31"}

# (context, header, reftypes): rules.md §9 worked examples and their variations
EXAMPLES = [
    ("hst_0729.pmap", ACS_HRC, ["biasfile"]),
    ("hst_0729.pmap", {**ACS_HRC, "DATE-OBS": "07/04/2006", "TIME-OBS": "11:29:31.5"}, ["biasfile"]),
    ("hst_0729.pmap", {**ACS_HRC, "TIME-OBS": "11:29:30"}, ["biasfile"]),
    ("hst_0729.pmap", {**ACS_HRC, "DATE-OBS": "1990-01-01"}, ["biasfile"]),
    ("hst_0729.pmap", {k: v for k, v in ACS_HRC.items() if k != "TIME-OBS"}, ["biasfile"]),
    ("hst_0729.pmap", {**ACS_HRC, "DETECTOR": "SBC"}, ["biasfile"]),
    ("hst_0729.pmap", {**ACS_HRC, "BIASCORR": "OMIT"}, ["biasfile"]),
    ("hst_0729.pmap", {"INSTRUME": "COS", "DETECTOR": "FUV", "OBSTYPE": "SPECTROSCOPIC", "CENWAVE": "1055",
                       "TDSCORR": "PERFORM", "DATE-OBS": "2009-05-11", "TIME-OBS": "00:00:00"}, ["tdstab"]),
    ("hst_0729.pmap", {"INSTRUME": "COS", "DETECTOR": "FUV", "OBSTYPE": "SPECTROSCOPIC", "CENWAVE": "9999",
                       "TDSCORR": "PERFORM", "DATE-OBS": "2009-05-10", "TIME-OBS": "00:00:00"}, ["tdstab"]),
    ("hst_0729.pmap", {"INSTRUME": "ACS", "DETECTOR": "WFC", "CCDAMP": "ABCD", "CCDGAIN": "1.4",
                       "SHUTRPOS": "A", "FLSHCORR": "PERFORM", "FLASHCUR": "LOW", "DATE-OBS": "2010-01-01",
                       "TIME-OBS": "00:00:00"}, ["flshfile"]),
    ("hst_0729.pmap", {"INSTRUME": "ACS", "DETECTOR": "SBC", "FILTER1": "F115LP", "FILTER2": "N/A",
                       "OBSTYPE": "IMAGING", "FLATCORR": "PERFORM", "CCDAMP": "A", "DATE-OBS": "2001-06-01",
                       "TIME-OBS": "00:00:00"}, ["pfltfile"]),
    ("hst_0729.pmap", {"INSTRUME": "WFPC2", "IMAGETYP": "EXT", "FILTNAM1": "", "FILTNAM2": "FR533N",
                       "LRFWAVE": "5800", "DATE-OBS": "1995-01-01", "TIME-OBS": "00:00:00"}, ["flatfile"]),
    ("jwst_0541.pmap", {"META.INSTRUMENT.NAME": "MIRI", "META.INSTRUMENT.DETECTOR": "MIRIFULONG",
                        "META.INSTRUMENT.FILTER": "N/A", "META.INSTRUMENT.BAND": "LONG",
                        "META.EXPOSURE.READPATT": "FAST", "META.SUBARRAY.NAME": "FULL",
                        "META.OBSERVATION.DATE": "2019-01-01", "META.OBSERVATION.TIME": "00:00:00"}, ["flat"]),
    ("jwst_0541.pmap", {"META.INSTRUMENT.NAME": "MIRI", "META.INSTRUMENT.DETECTOR": "N/A",
                        "META.EXPOSURE.TYPE": "N/A", "META.OBSERVATION.DATE": "2019-01-01",
                        "META.OBSERVATION.TIME": "00:00:00"}, ["area", "pathloss"]),
    ("jwst_0541.pmap", {"META.INSTRUMENT.NAME": "SYSTEM", "META.CALIBRATION_SOFTWARE_VERSION": "0.5.9rc1"},
     ["datalvl"]),
    ("jwst_0037.pmap", {"META.INSTRUMENT.NAME": "MIRI", "META.INSTRUMENT.DETECTOR": "MIRIMAGE",
                        "META.EXPOSURE.READPATT": "SLOW", "META.SUBARRAY.NAME": "N/A",
                        "META.OBSERVATION.DATE": "2019-01-01", "META.OBSERVATION.TIME": "00:00:00"}, ["dark"]),
]


def _ours(context, header, reftypes):
    try:
        got = Evaluator(load_context(context, CFG), CFG).evaluate(header, reftypes)
    except Exception as exc:  # noqa: BLE001
        return ["raised", str(exc)]
    return {k: [a if isinstance(a, str) else repr(a) for a in v] if isinstance(v, tuple) else v
            for k, v in got.items()}


@needs_reference
@pytest.mark.parametrize("context", sorted({c for c, _, _ in EXAMPLES}))
def test_worked_examples_equal_the_reference(context):
    cases = [(h, t) for c, h, t in EXAMPLES if c == context]
    wanted = reference_answers(CACHE, context, context.split("_")[0], [[h, t] for h, t in cases])
    for (header, reftypes), want in zip(cases, wanted):
        assert _ours(context, header, reftypes) == want, header


def test_known_answers_from_the_rules_doc():
    assert _ours("hst_0729.pmap", ACS_HRC, ["biasfile"]) == {"biasfile": "q9e1206hj_bia.fits"}
    assert _ours("hst_0729.pmap", {**ACS_HRC, "DETECTOR": "SBC"}, ["biasfile"]) == {"biasfile": "NOT FOUND n/a"}
    assert _ours("jwst_0541.pmap", {"META.INSTRUMENT.NAME": "SYSTEM",
                                    "META.CALIBRATION_SOFTWARE_VERSION": "0.5.9rc1"}, ["datalvl"]) == \
        {"datalvl": "NOT FOUND No selection <= (0, 5, 9)"}


def test_roman_needs_the_checksum_flag_and_then_answers():
    with pytest.raises(ChecksumError, match="roman_wfi_epsf_0001.rmap"):
        ctx = load_context("roman_0007.pmap", CFG)
        ctx.instrument("wfi")
    lenient = config_from_env({"CRDS_PATH": str(CACHE), "CRDS_IGNORE_MAPPING_CHECKSUM": "1"})
    evaluator = Evaluator(load_context("roman_0007.pmap", lenient), lenient)
    header = {"META.INSTRUMENT.NAME": "WFI", "META.INSTRUMENT.DETECTOR": "WFI01",
              "META.INSTRUMENT.OPTICAL_ELEMENT": "F158", "META.EXPOSURE.START_TIME": "2020-01-02T00:00:00"}
    assert evaluator.evaluate(header, ["distortion"]) == {"distortion": "roman_wfi_distortion_0001.asdf"}
    late = {**header, "META.EXPOSURE.START_TIME": "2020-01-01T23:59:59"}
    assert evaluator.evaluate(late, ["distortion"]) == {"distortion": "NOT FOUND No match found."}
    other = {**header, "META.INSTRUMENT.DETECTOR": "WFI02"}
    assert evaluator.evaluate(other, ["distortion"]) == {
        "distortion": "NOT FOUND  parameter='ROMAN.META.INSTRUMENT.DETECTOR' value='WFI02' is not in ['WFI01']"}


@needs_reference
def test_roman_every_type_equals_the_reference():
    lenient = config_from_env({"CRDS_PATH": str(CACHE), "CRDS_IGNORE_MAPPING_CHECKSUM": "1"})
    evaluator = Evaluator(load_context("roman_0007.pmap", lenient), lenient)
    headers = [{"META.INSTRUMENT.NAME": "WFI", "META.INSTRUMENT.DETECTOR": detector,
                "META.INSTRUMENT.OPTICAL_ELEMENT": element, "META.EXPOSURE.TYPE": "WFI_IMAGE",
                "META.EXPOSURE.START_TIME": when}
               for detector in ("WFI01", "WFI02") for element in ("F158", "GRISM", "BOGUS")
               for when in ("2020-01-01T23:59:59", "2020-01-02T00:00:00", "2025-06-01T12:00:00")]
    wanted = reference_answers(CACHE, "roman_0007.pmap", "roman", [[h, None] for h in headers],
                               extra_env={"CRDS_IGNORE_MAPPING_CHECKSUM": "1"})
    for header, want in zip(headers, wanted):
        got = evaluator.evaluate(header)
        assert got == want, header


def test_bad_files_raise_unless_allowed_or_fast():
    header = {"META.INSTRUMENT.NAME": "MIRI", "META.INSTRUMENT.DETECTOR": "MIRIMAGE",
              "META.EXPOSURE.READPATT": "SLOW", "META.SUBARRAY.NAME": "SLITLESSPRISM",
              "META.OBSERVATION.DATE": "2019-01-01", "META.OBSERVATION.TIME": "00:00:00"}
    with pytest.raises(BadReferenceError, match="'jwst_miri_dark_0025.fits' of type 'dark'"):
        getrecommendations(header, context="jwst_0037.pmap", reftypes=["dark"], cfg=CFG)
    assert getrecommendations(header, context="jwst_0037.pmap", reftypes=["dark"], cfg=CFG, fast=True) == \
        {"dark": "jwst_miri_dark_0025.fits"}
    allowed = CFG.replace(allow_bad_references=True)
    assert getrecommendations(header, context="jwst_0037.pmap", reftypes=["dark"], cfg=allowed)["dark"] == \
        "jwst_miri_dark_0025.fits"
    with pytest.raises(BadRulesError, match="jwst_miri_dark_0008.rmap"):
        getrecommendations(header, context="jwst_0040.pmap", reftypes=["flat"], cfg=CFG)
    assert "flat" in getrecommendations(header, context="jwst_0040.pmap", reftypes=["flat"],
                                        cfg=CFG.replace(allow_bad_rules=True))


def test_symbolic_contexts_and_instrument_errors():
    assert load_context("hst-operational", CFG).name == "hst_0729.pmap"
    assert load_context("jwst-edit", CFG).name == "jwst_0541.pmap"
    assert load_context("jwst-versions", CFG).name == "jwst_0526.pmap"
    assert load_context("latest", CFG, "jwst").name == "jwst_0541.pmap"
    with pytest.raises(UnknownInstrumentError, match="Missing 'INSTRUME' keyword"):
        getrecommendations({"DETECTOR": "HRC"}, context="hst_0729.pmap", cfg=CFG)
    with pytest.raises(UnknownInstrumentError, match="Unknown instrument 'foo' for context 'hst_0729.pmap'"):
        getrecommendations({"INSTRUME": "FOO"}, context="hst_0729.pmap", cfg=CFG)
    assert getrecommendations(ACS_HRC, context="hst_0729.pmap", reftypes=["nosuchtype"], cfg=CFG, fast=True) == \
        {"nosuchtype": "NOT FOUND Unknown reference type 'nosuchtype'"}
