"""engine.campaign: the keywords --update-bestrefs writes."""

from __future__ import annotations

from crds_async.config import config_from_env
from crds_async.engine.batch import BatchSpec
from crds_async.engine.campaign import header_updates
from crds_async.engine.results import DatasetResult
from tests.conftest import CACHE


def _spec(observatory: str, context: str) -> BatchSpec:
    return BatchSpec(cfg=config_from_env({"CRDS_PATH": str(CACHE)}), context=context, observatory=observatory)


def test_jwst_types_without_a_schema_keyword_are_written_under_their_name():
    """As the reference (its filekind_to_keyword falls back to the type's name): RESOL = 'N/A'."""
    result = DatasetResult("x.fits", instrument="miri",
                           answers={"flat": "jwst_miri_flat_0371.fits", "resol": "NOT FOUND n/a",
                                    "dark": "NOT FOUND No match found.", "regions": "NOT FOUND bad parameter"})
    cards = header_updates(result, _spec("jwst", "jwst_0541.pmap"))
    assert cards["R_FLAT"] == "crds://jwst_miri_flat_0371.fits"
    assert cards["RESOL"] == "N/A"
    assert cards["R_DARK"] == "N/A"
    assert not any("REGION" in k for k in cards)  # a failed answer is not written
    assert list(cards)[:2] == ["CRDS_CTX", "CRDS_VER"] and cards["CRDS_CTX"] == "jwst_0541.pmap"


def test_hst_cards_carry_the_iraf_prefix_and_nothing_for_no_answers():
    result = DatasetResult("x.fits", instrument="wfc3", answers={"darkfile": "s9j15534i_drk.fits",
                                                                  "biasfile": "NOT FOUND n/a"})
    cards = header_updates(result, _spec("hst", "hst_0729.pmap"))
    assert cards["DARKFILE"] == "iref$s9j15534i_drk.fits" and cards["BIASFILE"] == "N/A"
    assert header_updates(DatasetResult("y.fits", instrument="wfc3", answers={}), _spec("hst", "hst_0729.pmap")) == {}
