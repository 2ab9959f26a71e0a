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


PRECONDITIONS = sorted(name for name in HOOKS if name.startswith("precondition_header_"))
INPUT_VALUES = {  # both sides of every rule the hooks apply, and values they fail on
    "DETECTOR": ["WFC", "HRC", "SBC", "UVIS"], "CCDAMP": ["A", "B", "C", "D", "AD", "BC", "ABCD"],
    "CCDGAIN": ["1.0", "2.0", "4.0", "8.0", "x"], "APERTURE": ["WFC1", "UVIS1", "UVIS1-2K4-SUB", "UNDEFINED"],
    "NAXIS1": ["4144.0", "2048.0", "2049.0", "1062.0", "x", "INF"], "NUMCOLS": ["4144.0", "2048.0", "2049", "x"],
    "NAXIS2": ["4136.0", "2068.0", "1023.5", "x", "INF"], "NUMROWS": ["4136.0", "2068.0", "x", "INF"],
    "XCORNER": ["0.0", "1.0"], "YCORNER": ["0.0", "1.0"], "SUBARRAY": ["T", "F"],
    "LTV1": ["24.0", "19.0"], "LTV2": ["0.0", "20.0"], "RAW_LTV1": ["24.0", "10.0"], "RAW_LTV2": ["0.0", "5.0"],
    "FILTER1": ["F555W", "CLEAR1L"], "FILTER2": ["F814W", "CLEAR2L"],
}
START_DATES = [("1997-01-01", "00:00:00"), ("2002-03-29", "23:59:59.9"), ("2002-03-30", "00:00:00"),
               ("2005-06-01", "12:00:00"), ("05/13/2009", "23:59:59"), ("2009-05-14", "00:00:00"),
               ("2015-01-01", "00:00:00"), ("2009-13-01", "00:00:00"), ("2009-05-14", "UNDEFINED")]


def _input_headers(count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        header = {key: rng.choice(values) for key, values in INPUT_VALUES.items()}
        header["DATE-OBS"], header["TIME-OBS"] = rng.choice(START_DATES)
        if rng.random() < 0.6:
            header["XCORNER"] = header["YCORNER"] = "0.0"
        yield header


def test_every_hook_declares_its_inputs():
    assert sorted(hst_hooks.HOOK_INPUTS) == sorted(HOOKS)
    for inputs in hst_hooks.HOOK_INPUTS.values():
        assert list(inputs.thresholds) == sorted(set(inputs.thresholds))
        assert not set(inputs.keys) & set(hst_hooks.EXPOSURE_START_KEYS)


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_a_hook_output_depends_only_on_its_declared_inputs(name):
    """Change an undeclared key, or the start within one date class: only that key's own value can follow.

    This is what lets memoised plans (rules/plans.py) key the hook's outcome on the declared
    keys and ``exposure_date_class``; it also shows the hooks never rewrite DATE-OBS/TIME-OBS.
    """
    hook = HOOKS[name]
    inputs = hst_hooks.HOOK_INPUTS[name]
    date_class = hst_hooks.exposure_date_class(inputs.thresholds) if inputs.thresholds else None
    rng = random.Random(name)
    checked = 0
    for header in _input_headers(400, seed=len(name)):
        expected = _outcome(hook, header)
        undeclared = [key for key in INPUT_VALUES if key not in inputs.keys]
        changes = [{key: rng.choice(INPUT_VALUES[key])} for key in undeclared]
        changes.append({"DATE-OBS": rng.choice(START_DATES)[0], "TIME-OBS": rng.choice(START_DATES)[1]})
        for change in changes:
            other = {**header, **change}
            if date_class is not None:
                try:
                    same = date_class(header) == date_class(other)
                except LookupFailure:
                    continue  # the hook fails on one of them (test_hook_equals_reference words it)
                if not same:
                    continue
            got = _outcome(hook, other)
            assert got[0] == expected[0], (header, change)
            if got[0] == "error":
                assert got == expected, (header, change)
                continue
            for key, value in expected[1].items():
                if key in change:
                    # its own value, as it came (a pass-through) or as rewritten (a constant)
                    assert got[1][key] == (other[key] if value == header[key] else value), (header, change, key)
                else:
                    assert got[1][key] == value, (header, change, key)
            checked += 1
    assert checked > 1000


def test_exposure_date_class_is_the_side_of_each_threshold():
    thresholds = ("2002-03-30 00:00:00", "2009-05-14 00:00:00")
    date_class = hst_hooks.exposure_date_class(thresholds)
    assert date_class is hst_hooks.exposure_date_class(thresholds)  # one function per thresholds
    cases = {("2002-03-29", "23:59:59.999"): 0, ("2002-03-30", "00:00:00"): 1, ("03/30/2002", "00:00"): 1,
             ("2009-05-13", "23:59:59"): 1, ("2009-05-14", "00:00:00"): 2, ("2020-01-01", "00:00:00"): 2}
    for (date, time), expected in cases.items():
        assert date_class({"DATE-OBS": date, "TIME-OBS": time}) == expected
        assert date_class({"DATE-OBS": date, "TIME-OBS": time}) == expected  # memoised
    for header in ({"DATE-OBS": "2009-13-01", "TIME-OBS": "00:00:00"}, {"DATE-OBS": "2009-05-14"},
                   {"DATE-OBS": "2009-05-14", "TIME-OBS": "UNDEFINED"}):
        with pytest.raises(LookupFailure):
            date_class(header)
