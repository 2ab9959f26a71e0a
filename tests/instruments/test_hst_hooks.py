"""HST hooks and the DNR rule equal the reference's functions on randomized headers."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from crds_async.errors import LookupFailure
from crds_async.instruments import hst_hooks
from crds_async.instruments.hst_hooks import HOOKS, find_hook, is_dnr_dataset
from tests.conftest import CACHE, needs_reference

MAPPINGS = CACHE / "mappings" / "hst"
RMAPS = {  # rmap whose parkeys and values feed the headers of each hook
    "precondition_header_acs_biasfile_v1": "hst_acs_biasfile_0001.rmap",
    "precondition_header_acs_biasfile_v2": "hst_acs_biasfile_0345.rmap",
    "fallback_header_acs_biasfile_v2": "hst_acs_biasfile_0345.rmap",
    "precondition_header_acs_biasfile_v3": "hst_acs_biasfile_0345.rmap",
    "fallback_header_acs_biasfile_v3": "hst_acs_biasfile_0345.rmap",
    "precondition_header_wfc3_biasfile_v1": "hst_wfc3_biasfile_0260.rmap",
    "fallback_header_wfpc2_flatfile_v1": "hst_wfpc2_flatfile_0250.rmap",
}
ODD_VALUES = ["UNDEFINED", "N/A", "*", "0.0", "0", "4096.0", "4096", "2049.0", "2047", "1e3", " 12 ", "NAN", "INF",
              "x", "", "4.0", "8.0", "0.5", "1.4", "1.40", "T", "F", "A", "B", "C", "D", "AD", "BC", "WFC", "HRC",
              "SBC", "UVIS", "IR", "SUB512", "UVIS1-C512A-SUB", "F555W", "F814W", "1023.5", "-1.0", "9" * 30]
DATES = ["2009-05-13", "2009-05-14", "2009-05-15", "2002-03-29", "2002-03-30", "2002-03-31", "1995-01-01",
         "2020-06-01", "UNDEFINED", "2009-13-01", "14/05/09", "May 14 2009", "junk"]
TIMES = ["00:00:00", "23:59:59", "12:00:00.5", "UNDEFINED", "25:00:00", "", "1:2"]


def _reference_hook(name):
    import crds.hst.acs
    import crds.hst.wfc3
    import crds.hst.wfpc2

    module = {"acs": crds.hst.acs, "wfc3": crds.hst.wfc3, "wfpc2": crds.hst.wfpc2}[name.split("_")[2]]
    return getattr(module, name)


def _value_pools(rmap_name: str) -> dict[str, list[str]]:
    from crds.core import rmap

    loaded = rmap.load_mapping(str(MAPPINGS / rmap_name))
    pools = {key: list(values) for key, values in loaded.get_parkey_map().items()}
    for key in ("NAXIS1", "NAXIS2", "NUMCOLS", "NUMROWS", "LTV1", "LTV2", "RAW_LTV1", "RAW_LTV2", "XCORNER",
                "YCORNER", "FILTER1", "FILTER2", "SUBARRAY", "APERTURE", "CCDGAIN", "CCDAMP", "DETECTOR"):
        pools.setdefault(key, [])
    return pools


def random_headers(rmap_name: str, count: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    pools = _value_pools(rmap_name)
    headers = []
    for _ in range(count):
        header = {}
        for key, pool in pools.items():
            roll = rng.random()
            if roll < 0.04:
                continue                       # missing key
            header[key] = rng.choice(ODD_VALUES) if roll < 0.25 or not pool else rng.choice(pool)
        if rng.random() < 0.5:                 # both sides of SM4 and of the 2002 subarray cut
            header["XCORNER"] = header["YCORNER"] = "0.0"
        if rng.random() > 0.03:
            header["DATE-OBS"] = rng.choice(DATES) if rng.random() < 0.7 else f"{rng.randrange(1994, 2024)}-0{rng.randrange(1, 10)}-1{rng.randrange(10)}"
        if rng.random() > 0.03:
            header["TIME-OBS"] = rng.choice(TIMES)
        headers.append(header)
    return headers


def _outcome(function, *args):
    try:
        return "ok", function(*args)
    except Exception as exc:  # noqa: BLE001 - compare the failure texts of both sides
        return "error", str(exc)


@needs_reference
@pytest.mark.parametrize("name", sorted(RMAPS))
def test_hook_equals_reference(name):
    reference = _reference_hook(name)
    ours = HOOKS[name]
    fake_rmap = SimpleNamespace(filekind=name.split("_")[3], instrument=name.split("_")[2])
    outcomes = {"ok": 0, "error": 0}
    for header in random_headers(RMAPS[name], 700, seed=len(name)):
        expected = _outcome(reference, fake_rmap, dict(header))
        got = _outcome(ours, header)
        assert got == expected, header
        outcomes[got[0]] += 1
    assert outcomes["ok"] > 200 and outcomes["error"] > 10   # both paths exercised


def test_hooks_do_not_mutate_their_input():
    header = {"FILTER1": "F555W", "FILTER2": "F814W"}
    assert hst_hooks.fallback_header_wfpc2_flatfile_v1(header) == {"FILTER1": "F814W", "FILTER2": "F555W"}
    assert header == {"FILTER1": "F555W", "FILTER2": "F814W"}


def test_acs_v2_documented_rules():
    header = {"DATE-OBS": "2005-01-01", "TIME-OBS": "00:00:00", "APERTURE": "WFC1", "NAXIS1": "4144",
              "NAXIS2": "4136.0", "CCDAMP": "A", "DETECTOR": "WFC", "XCORNER": "0.0", "YCORNER": "0.0"}
    rewritten = hst_hooks.precondition_header_acs_biasfile_v2(header)
    assert (rewritten["APERTURE"], rewritten["CCDAMP"], rewritten["NAXIS1"], rewritten["NAXIS2"]) == \
        ("N/A", "AD", "4144.0", "2068.0")
    with pytest.raises(LookupFailure, match="One or more required date/time values is UNDEFINED"):
        hst_hooks.precondition_header_acs_biasfile_v2({**header, "TIME-OBS": "UNDEFINED"})


@needs_reference
def test_dnr_rule_equals_reference():
    from crds.hst.locate import dnr_check

    rng = random.Random(9)
    for _ in range(2000):
        header = {}
        if rng.random() < 0.95:
            header["DETECTOR"] = rng.choice(["WFC", "HRC", "UVIS", "wfc", "UNDEFINED"])
        if rng.random() < 0.95:
            header["CCDGAIN"] = rng.choice(["0.5", "1.4", "1.40", " 0.5", "2.0", "x", "UNDEFINED", "N/A", "1.4000001"])
        try:   # the reference's rmap wraps the locator's check: any failure means "not DNR"
            expected = dnr_check(header)
        except Exception:  # noqa: BLE001
            expected = False
        assert is_dnr_dataset(header) == expected


@needs_reference
def test_find_hook_equals_reference_lookup():
    """The hook the reference's rmap would use, for every HST rmap of the cache."""
    import ast

    from crds.core import utils

    checked = 0
    for path in sorted(MAPPINGS.glob("hst_*_*.rmap")):
        text = path.read_text()
        start = text.index("header = ") + len("header = ")
        header_text = text[start:text.index("\n}\n", start) + 2]
        header = ast.literal_eval(header_text.strip())
        instrument, filekind = header["instrument"].lower(), header["filekind"].lower()
        package = utils.get_object("crds.hst." + instrument)
        rmap_hooks = header.get("hooks")
        for kind in ("precondition_header", "fallback_header"):
            name = rmap_hooks.get(kind, kind) if rmap_hooks else f"{kind}_{instrument}_{filekind}_v1"
            expected = getattr(package, name, None)
            got = find_hook(kind, instrument, filekind, rmap_hooks)
            assert (got.__name__ if got else None) == (expected.__name__ if expected else None), path.name
            checked += 1
    assert checked > 1000
