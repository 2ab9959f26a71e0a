"""Memoised answer plans give exactly the interpreted path's answers, and do most of the work.

The interpreted path (``Evaluator(use_plans=False)``) walks the selector trees for
every type; it is what the corpus and the randomized differential tests compare
with the reference.  Plans memoise outcomes across datasets, so the risky cases
are datasets that share some values with earlier ones but not others: the same
mode at another date, or parameters mixed from different datasets.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import re

import pytest

from crds_async.config import config_from_env
from crds_async.errors import LookupFailure
from crds_async.headers import read_header
from crds_async.instruments import bestrefs_parameters, dataset_header, hst_hooks
from crds_async.engine.loader import new_evaluator as Evaluator
from crds_async.engine.loader import load_context, load_reference_mapping
from crds_async.rules.plans import RmapPlan
from crds_async.rules.relevance import apply_parkey_relevance
from crds_async.rules.selectors import glob_alternatives
from tests.conftest import CACHE, CORPUS

CASES = [("hst", "hst_0729.pmap"), ("jwst", "jwst_0541.pmap"), ("hst", "hst_0600.pmap"),
         ("jwst", "jwst_0500.pmap")]
DATES = [("1995-01-01", "00:00:00"), ("2002-03-29", "23:59:59"), ("2009-05-14", "00:00:00"),
         ("2016-07-04", "12:30:00.5"), ("2022-10-01", "01:02:03"), ("2040-01-01", "00:00:00")]


@pytest.fixture(scope="module", params=CASES, ids=[c[1] for c in CASES])
def case(request):
    observatory, context = request.param
    cfg = config_from_env({"CRDS_PATH": str(CACHE)})
    loaded = load_context(context, cfg)
    headers = [bestrefs_parameters(dataset_header(read_header(path)))
               for path in sorted((CORPUS / observatory).glob("*.fits"))]
    return Evaluator(loaded, cfg), Evaluator(loaded, cfg, use_plans=False), headers


def _differences(fast: Evaluator, interpreted: Evaluator, headers) -> list:
    out = []
    for header in headers:
        try:
            want = interpreted.evaluate_dataset(header)
        except Exception as exc:  # noqa: BLE001 - e.g. an unknown instrument: both must raise alike
            with pytest.raises(type(exc)):
                fast.evaluate_dataset(header)
            continue
        got = fast.evaluate_dataset(header)
        if got != want or list(got[1]) != list(want[1]):  # same answers, in the same order
            out.append((header.get("DATE-OBS"), got, want))
    return out


def test_corpus_then_other_dates_equal_the_interpreted_answers(case):
    fast, interpreted, headers = case
    assert not _differences(fast, interpreted, headers)
    moved = []
    for index, header in enumerate(headers):
        date, time = DATES[index % len(DATES)]
        moved.append({**header, "DATE-OBS": date, "TIME-OBS": time})
    # the same modes again, at other dates: answers now come from memoised outcomes
    assert not _differences(fast, interpreted, moved)


MALFORMED_DATES = [("2009-13-01", "00:00:00"), ("junk", "00:00:00"), ("2009-05-14", "25:00:00"),
                   ("2009-05-14", "UNDEFINED"), ("UNDEFINED", "UNDEFINED"), ("", "")]


def test_malformed_dates_are_answered_as_the_interpreted_path_words_them(case):
    """A date that does not parse fails the lookup; plans word it as the interpreted path does."""
    fast, interpreted, headers = case
    malformed = [{**header, "DATE-OBS": date, "TIME-OBS": time,
                  **({"META.OBSERVATION.DATE": date, "META.OBSERVATION.TIME": time}
                     if "META.OBSERVATION.DATE" in header else {})}
                 for header in headers[::3] for date, time in MALFORMED_DATES]
    fresh = Evaluator(fast.context, config_from_env({"CRDS_PATH": str(CACHE)}))
    assert not _differences(fresh, interpreted, headers[::3])  # modes memoised at good dates first
    interpreted_calls = 0
    original = fresh._answer

    def counting(imap, reftype, *args):
        nonlocal interpreted_calls
        if not imap.rmaps[reftype].header.get("hooks") if reftype in imap.rmaps else True:
            interpreted_calls += 1
        return original(imap, reftype, *args)

    fresh._answer = counting
    assert not _differences(fresh, interpreted, malformed)
    del fresh._answer
    assert interpreted_calls == 0  # answered by the plans (but for rmaps with hooks)


def test_parameters_mixed_across_datasets_equal_the_interpreted_answers(case):
    fast, interpreted, headers = case
    chooser = random.Random(20261201)
    by_instrument: dict[str, list[dict]] = {}
    for header in headers:
        by_instrument.setdefault(str(header.get("INSTRUME")), []).append(header)
    mixed = []
    for group in by_instrument.values():
        for header in group:
            donor = chooser.choice(group)
            keys = [k for k in donor if chooser.random() < 0.4]
            mixed.append({**header, **{k: donor[k] for k in keys}})
    assert len(mixed) == len(headers)
    assert not _differences(fast, interpreted, mixed)


def test_plans_answer_most_types(case):
    """The speed-up is real: on the corpus, the interpreted path answers only a few types."""
    fast, _interpreted, headers = case
    interpreted_calls = 0
    original = fast._answer

    def counting(*args):
        nonlocal interpreted_calls
        interpreted_calls += 1
        return original(*args)

    fast._answer = counting
    answers = sum(len(fast.evaluate(header)) for header in headers)
    del fast._answer
    assert answers > 5000
    # what is left: hook types whose date does not parse, expression errors
    assert interpreted_calls < 0.001 * answers, (interpreted_calls, answers)


def test_rmap_plan_memo_is_bounded(case, monkeypatch):
    fast, interpreted, headers = case
    monkeypatch.setattr("crds_async.rules.plans._MEMO_LIMIT", 3)
    fresh = Evaluator(fast.context, config_from_env({"CRDS_PATH": str(CACHE)}))
    assert not _differences(fresh, interpreted, headers[:60])
    plans = [plan for per_type in fresh._plans.values() for plan in per_type.values() if isinstance(plan, RmapPlan)]
    assert plans and max(len(plan.memo) for plan in plans) <= 3


# ------------------------------------------------------------------ mode tables
# A dataset's mode is found by its conditioned values read straight from the header
# (evaluate._ModeTable); its minimised parameters are built only for a new mode.

def test_a_seen_mode_is_answered_without_minimising_the_header(case, monkeypatch):
    fast, interpreted, headers = case
    from crds_async.rules import evaluate

    built = 0
    original = evaluate._ModeTable.minimized

    def counting(self, *args):
        nonlocal built
        built += 1
        return original(self, *args)

    monkeypatch.setattr(evaluate._ModeTable, "minimized", counting)
    fresh = Evaluator(fast.context, config_from_env({"CRDS_PATH": str(CACHE)}))
    assert not _differences(fresh, interpreted, headers)
    first = built
    moved = [{**header, "DATE-OBS": "2011-02-03", "TIME-OBS": "04:05:06"} for header in headers]
    built = 0
    assert not _differences(fresh, interpreted, moved)  # the same modes at another date
    assert first > 0 and built < 0.5 * len(headers), (first, built, len(headers))


def test_mode_tables_tell_values_apart_as_conditioning_does(case):
    """``True``, ``1``, ``1.0`` and ``"1"`` are one dict key but condition differently:
    a mode table keyed by raw values would give the first one's answers to the others."""
    fast, interpreted, headers = case
    fresh = Evaluator(fast.context, config_from_env({"CRDS_PATH": str(CACHE)}))
    variants = []
    for header in headers[::14]:
        for key in [k for k in header if k not in ("INSTRUME", "DATE-OBS", "TIME-OBS")]:
            for value in (True, 1, 1.0, "T"):
                variants.append({**header, key: value})
    assert len(variants) > 100
    assert not _differences(fresh, interpreted, variants)


# ------------------------------------------------------------------ precondition hooks
# HST rmaps with a precondition hook (ACS and WFC3 bias) have plans that run the hook when
# they are built and key their memos on what it reads (hst_hooks.HOOK_INPUTS) plus which
# side of its fixed dates (2002-03-30, 2009-05-14) the exposure starts on.

HOOK_DATES = [("2002-03-29", "23:59:59"), ("2002-03-30", "00:00:00"), ("2002-03-30", "00:00:00.5"),
              ("2009-05-13", "23:59:59.999"), ("2009-05-14", "00:00:00"), ("05/14/2009", "00:00"),
              ("2009-05-14", "00:00:01"), ("1997-06-01", "12:00:00"), ("2004-02-29", "08:00:00"),
              ("2016-01-01", "00:00:00")]
BAD_DATES = [("2009-13-01", "00:00:00"), ("junk", "00:00:00"), ("2009-05-14", "25:00:00"), ("2009-05-14", None),
             (None, "00:00:00"), ("2009-05-14", "UNDEFINED")]  # None: the keyword is missing
MISSING = None
HOOK_VALUES = {  # values the hooks react to (both sides of each rule), odd ones, MISSING
    "NAXIS1": ["4144.0", "4144", "2048.0", "2049", "2072.0", "1062.0", "1024.0", "INF", "x", MISSING],
    "NAXIS2": ["2068.0", "4136.0", "2070.0", "1044.0", "2048.0", "1024.0", "INF", "1e3", MISSING],
    "CCDAMP": ["A", "B", "C", "D", "AD", "BC", "ABCD", MISSING],
    "APERTURE": ["WFC1", "WFC1-2K", "WFC2", "HRC", "UVIS1", "UVIS1-2K4-SUB", "UVIS2-M1K1C-SUB", "UVIS2", "N/A",
                 MISSING],
    "XCORNER": ["0.0", "0", "1.0", MISSING],
    "YCORNER": ["0.0", "0", "1.0", MISSING],
    "CCDGAIN": ["0.5", "1.0", "1.4", "2.0", "4.0", "8.0", "x", MISSING],
    "SUBARRAY": ["T", "F", "True", "False", MISSING],
    "DETECTOR": ["WFC", "WFC", "HRC", "UVIS"],
    "LTV1": ["24.0", "19.0", "0.0", "10.0", "x", MISSING],
    "LTV2": ["0.0", "20.0", "5.0", MISSING],
}
HOOK_VALUES["NUMCOLS"], HOOK_VALUES["NUMROWS"] = HOOK_VALUES["NAXIS1"], HOOK_VALUES["NAXIS2"]
HOOK_VALUES["RAW_LTV1"], HOOK_VALUES["RAW_LTV2"] = HOOK_VALUES["LTV1"], HOOK_VALUES["LTV2"]
PARENT_VALUES = {  # what variants start from, mostly: where the other inputs decide something
    "ACS": {"DETECTOR": ["WFC", "WFC", "WFC", "HRC"], "CCDAMP": ["A", "D", "B", "AD", "BC"],
            "CCDGAIN": ["1.0", "2.0", "2.0", "4.0"], "APERTURE": ["WFC1", "WFC1-2K", "HRC"],
            "NAXIS1": ["4144.0", "4096.0", "2048.0", "1062.0"], "NAXIS2": ["4136.0", "2068.0", "2048.0", "1044.0"],
            "XCORNER": ["0.0", "0.0", "1.0"], "YCORNER": ["0.0", "0.0", "1.0"],
            "LTV1": ["24.0", "19.0", "10.0"], "LTV2": ["0.0", "20.0", "5.0"]},
    "WFC3": {"DETECTOR": ["UVIS", "UVIS", "IR"], "SUBARRAY": ["T", "T", "F"], "CCDGAIN": ["1.5", "2.0"],
             "APERTURE": ["UVIS1", "UVIS2", "UVIS1-2K4-SUB", "UVIS2-M1K1C-SUB"]},
}
PARENT_VALUES["ACS"]["NUMCOLS"], PARENT_VALUES["ACS"]["NUMROWS"] = PARENT_VALUES["ACS"]["NAXIS1"], \
    PARENT_VALUES["ACS"]["NAXIS2"]
PARENT_VALUES["ACS"]["RAW_LTV1"], PARENT_VALUES["ACS"]["RAW_LTV2"] = PARENT_VALUES["ACS"]["LTV1"], \
    PARENT_VALUES["ACS"]["LTV2"]
HOOK_KEYS = {"ACS": ["DETECTOR", "CCDAMP", "CCDGAIN", "APERTURE", "NAXIS1", "NAXIS2", "NUMCOLS", "NUMROWS",
                     "XCORNER", "YCORNER", "LTV1", "LTV2", "RAW_LTV1", "RAW_LTV2"],
             "WFC3": ["DETECTOR", "SUBARRAY", "APERTURE", "CCDGAIN"]}


def _with(header: dict, key: str, value: object) -> dict:
    out = dict(header)
    if value is MISSING:
        out.pop(key, None)
    else:
        out[key] = value
    return out


def _dated(header: dict, date: str | None, time: str | None) -> dict:
    return _with(_with(header, "DATE-OBS", date), "TIME-OBS", time)


def _hook_variants(bases, rng: random.Random, seed_header=None, per_key: int | None = None):
    """Headers that differ from a parent in one hook input at a time (in that order).

    For each base: a parent with a random date and hook inputs (``seed_header`` may then
    make it match an rmap key), then the parent at every date around the thresholds and
    at malformed ones, then with each hook input changed (or missing) in turn, to every
    value of its pool (or ``per_key`` of them).  A plan that left an input out of its memo
    key would answer a variant with its parent's answer.
    """
    for base in bases:
        instrument = str(base.get("INSTRUME")).upper()
        keys = HOOK_KEYS[instrument]
        header = dict(base)
        for key in keys:
            roll = rng.random()
            if roll < 0.85 and key in PARENT_VALUES[instrument]:
                header[key] = rng.choice(PARENT_VALUES[instrument][key])
            elif roll < 0.95:
                header = _with(header, key, rng.choice(HOOK_VALUES[key]))
        if seed_header is not None:
            header = seed_header(header, rng)
        header = _dated(header, *rng.choice(HOOK_DATES))
        yield header
        for date in HOOK_DATES + BAD_DATES:
            yield _dated(header, *date)
        for key in keys:
            for value in rng.sample(HOOK_VALUES[key], per_key) if per_key else HOOK_VALUES[key]:
                yield _with(header, key, value)
        yield _dated(header, *rng.choice(HOOK_DATES))


def _seeded_by(context):
    """``header -> header`` matching a random key of the instrument's bias rmap, before the hook's rewrite."""
    def seed(header: dict, rng: random.Random) -> dict:
        rmap = context.instrument(str(header["INSTRUME"]).lower()).rmaps["biasfile"]
        selector = rmap.selector
        key = rng.choice(selector.keys)
        out = dict(header)
        for parameter, element in zip(selector.parameters, key):
            alternatives = [a for a in glob_alternatives(element) if a not in ("N/A", "*")]
            if alternatives:
                out[parameter] = rng.choice(alternatives)
        # undo what the hooks do, so that the rewrite leads back to the key
        if out.get("CCDAMP") in ("AD", "BC") and rng.random() < 0.5:
            out["CCDAMP"] = rng.choice(out["CCDAMP"])
        if rng.random() < 0.4:
            try:
                out["NAXIS2"] = str(float(out.get("NAXIS2", "x")) * 2)
            except ValueError:
                pass
            out["XCORNER"] = out["YCORNER"] = "0.0"
        if out.get("APERTURE") in (None, "N/A") or rng.random() < 0.2:
            out = _with(out, "APERTURE", rng.choice(HOOK_VALUES["APERTURE"]))
        return out
    return seed


def _hook_bases(headers):
    return [h for h in headers if str(h.get("INSTRUME")).upper() in HOOK_KEYS]


def test_hook_types_around_the_hook_dates_and_inputs_equal_the_interpreted_answers(case):
    fast, interpreted, headers = case
    if fast.observatory != "hst":
        pytest.skip("precondition hooks are HST's")
    rng = random.Random(20261202)
    bases = _hook_bases(headers)
    assert len(bases) > 100
    seeded = list(_hook_variants(bases, rng, _seeded_by(fast.context), per_key=2))
    assert not _differences(fast, interpreted, seeded + list(_hook_variants(bases, rng, per_key=3)))
    # and where dates are valid the hook types are answered by plans, ACS's fallback retries included
    valid = [h for h in seeded if (h.get("DATE-OBS"), h.get("TIME-OBS")) in HOOK_DATES]
    by_plans = _plan_answered(fast, valid, "biasfile")
    assert by_plans["wfc3"] > 0.97 and by_plans["acs"] > 0.97, by_plans


def _plan_answered(evaluator: Evaluator, headers, reftype: str) -> dict[str, float]:
    """instrument -> share of the ``reftype`` answers that did not need the interpreted path."""
    answered: dict[str, int] = {}
    interpreted: dict[str, int] = {}
    original = evaluator._answer

    def counting(imap, kind, *args):
        if kind == reftype:
            interpreted[imap.instrument] = interpreted.get(imap.instrument, 0) + 1
        return original(imap, kind, *args)

    evaluator._answer = counting
    try:
        for header in headers:
            try:
                instrument, _answers = evaluator.evaluate_dataset(header, (reftype,))
            except Exception:  # noqa: BLE001 - unknown instruments are no concern here
                continue
            answered[instrument] = answered.get(instrument, 0) + 1
    finally:
        del evaluator._answer
    return {name: 1 - interpreted.get(name, 0) / count for name, count in answered.items()}


def test_plans_answer_the_hook_types_of_the_corpus(case):
    """Bias of ACS and WFC3 (precondition hooks, ACS's fallback retry) come from plans.

    What is left to the interpreted path has a failed first match (a date that does not parse, say).
    """
    fast, _interpreted, headers = case
    if fast.observatory != "hst":
        pytest.skip("precondition hooks are HST's")
    fresh = Evaluator(fast.context, config_from_env({"CRDS_PATH": str(CACHE)}))
    retried = []
    original = fresh._answer

    def recording(imap, reftype, header, names):
        if reftype == "biasfile":
            retried.append((imap.instrument, header))
        return original(imap, reftype, header, names)

    fresh._answer = recording
    bias = [header for header in _hook_bases(headers) for _pass in (1, 2)]
    for header in bias:
        fresh.evaluate_dataset(header)
    for instrument in ("acs", "wfc3"):
        assert isinstance(fresh._plans[fresh.context.instrument(instrument).name]["biasfile"], RmapPlan)
    for instrument, header in retried:
        rmap = fresh.context.instrument(instrument).rmaps["biasfile"]
        precondition, fallback = fresh._hooks_of(rmap)
        with pytest.raises(LookupFailure) as failure:
            rmap.selector.choose(apply_parkey_relevance(rmap, precondition(header)))
        assert fallback is not None or "No match found" not in str(failure.value)
    assert len(retried) < 0.02 * len(bias), (len(retried), len(bias))


# Synthetic bias rmaps whose Match reads few of the hook's inputs, so that every other input
# (and the date class) matters only through the hook: if HOOK_INPUTS left one out, plans
# would answer datasets that differ in it alike.  (The real rmaps match on nearly all of them.)
SYNTHETIC = {  # name -> instrument, hooks, Match parameters, extra keys
    "acs_v1_a": ("ACS", {"precondition_header": "precondition_header_acs_biasfile_v1",
                         "fallback_header": "fallback_header_acs_biasfile_v2"},
                 ("CCDAMP", "NUMROWS", "APERTURE"), ("NUMCOLS", "DETECTOR", "XCORNER", "YCORNER")),
    "acs_v1_b": ("ACS", {"precondition_header": "precondition_header_acs_biasfile_v1"},
                 ("APERTURE",), ("NUMCOLS", "NUMROWS", "CCDAMP", "DETECTOR", "XCORNER", "YCORNER")),
    "acs_v2_a": ("ACS", {"precondition_header": "precondition_header_acs_biasfile_v2"},
                 ("CCDAMP", "NAXIS2", "APERTURE"), ()),
    "acs_v2_b": ("ACS", {"precondition_header": "precondition_header_acs_biasfile_v2",
                         "fallback_header": "fallback_header_acs_biasfile_v2"}, ("APERTURE",), ()),
    "acs_v3_a": ("ACS", {"precondition_header": "precondition_header_acs_biasfile_v3"},
                 ("CCDAMP", "NAXIS2", "APERTURE"), ()),
    "acs_v3_b": ("ACS", {"precondition_header": "precondition_header_acs_biasfile_v3",
                         "fallback_header": "fallback_header_acs_biasfile_v3"}, ("APERTURE",), ()),
    "wfc3_v1": ("WFC3", {"precondition_header": "precondition_header_wfc3_biasfile_v1"}, ("APERTURE",), ()),
    # the fallback's full-frame values decide the second match: LTV1/LTV2 (RAW_ for v3) are matched
    "acs_v2_retry": ("ACS", {"precondition_header": "precondition_header_acs_biasfile_v2",
                             "fallback_header": "fallback_header_acs_biasfile_v2"}, ("LTV1", "LTV2", "APERTURE"),
                     ("NAXIS1", "NAXIS2")),
    "acs_v3_retry": ("ACS", {"precondition_header": "precondition_header_acs_biasfile_v3",
                             "fallback_header": "fallback_header_acs_biasfile_v3"},
                     ("RAW_LTV1", "RAW_LTV2", "APERTURE"), ("NAXIS1", "NAXIS2")),
}
SYNTHETIC_VALUES = {"CCDAMP": ["A", "B", "C", "D", "AD", "BC"], "NAXIS2": [4136, 2068, 1044, 1024],
                    "NUMROWS": [4136, 2068, 1044, 1024], "DETECTOR": ["UVIS", "IR"],
                    "LTV1": [24.0, 19.0, 10.0], "LTV2": [0.0, 20.0], "RAW_LTV1": [24.0, 19.0, 10.0],
                    "RAW_LTV2": [0.0, 20.0]}
SYNTHETIC_APERTURES = {"ACS": ["WFC1", "WFC1-2K", "HRC"], "WFC3": ["UVIS1", "UVIS1-2K4-SUB", "UVIS2-M1K1C-SUB", "N/A"]}
SCHEDULES = [("1990-01-01 00:00:00", "2002-03-30 00:00:00", "2009-05-14 00:00:00"), ("2005-01-01 00:00:00",),
             ("1990-01-01 00:00:00", "2009-05-13 23:59:59")]  # the second fails early dates: no match


def _synthetic_context(context, directory, name: str):
    instrument, hooks, parameters, extra_keys = SYNTHETIC[name]
    values = {**SYNTHETIC_VALUES, "APERTURE": SYNTHETIC_APERTURES[instrument]}
    rmap_name = f"hst_{instrument.lower()}_biasfile_{9000 + list(SYNTHETIC).index(name)}.rmap"
    lines = ["header = {", "    'derived_from' : 'synthetic',", f"    'extra_keys' : {tuple(extra_keys)!r},",
             "    'filekind' : 'BIASFILE',", f"    'hooks' : {hooks!r},", f"    'instrument' : {instrument!r},",
             "    'mapping' : 'REFERENCE',", f"    'name' : {rmap_name!r},", "    'observatory' : 'HST',",
             f"    'parkey' : ({tuple(parameters)!r}, ('DATE-OBS', 'TIME-OBS')),",
             "    'reffile_required' : 'YES',", "    'sha1sum' : 'none',", "}", "", "selector = Match({"]
    for index, key in enumerate(itertools.product(*(values[p] for p in parameters))):
        stem = "_".join(re.sub(r"\W", "", str(v)) for v in key).lower()
        lines.append(f"    {key!r} : UseAfter({{")
        for number, date in enumerate(SCHEDULES[index % len(SCHEDULES)]):
            lines.append(f"        {date!r} : 'syn_{name}_{stem}_{number}.fits',")
        lines.append("    }),")
    lines.append("})")
    path = directory / rmap_name
    path.write_text("\n".join(lines) + "\n")
    rmap = load_reference_mapping(path, "hst", verify_checksum=False)
    imap = context.instrument(instrument.lower())
    imap = dataclasses.replace(imap, rmaps={**imap.rmaps, "biasfile": rmap},
                               required_parkeys=tuple(sorted({*imap.required_parkeys, *rmap.required_parkeys})))
    return dataclasses.replace(context, instruments={**context.instruments, instrument.lower(): imap})


@pytest.fixture(scope="module")
def hst_corpus():
    cfg = config_from_env({"CRDS_PATH": str(CACHE)})
    headers = [bestrefs_parameters(dataset_header(read_header(path)))
               for path in sorted((CORPUS / "hst").glob("*.fits"))]
    return load_context("hst_0729.pmap", cfg), cfg, headers


def _synthetic_differences(hst_corpus, directory, name: str, *, first_only: bool = False) -> list:
    context, cfg, headers = hst_corpus
    synthetic = _synthetic_context(context, directory, name)
    fast, interpreted = Evaluator(synthetic, cfg), Evaluator(synthetic, cfg, use_plans=False)
    instrument = SYNTHETIC[name][0]
    bases = [h for h in headers if str(h.get("INSTRUME")).upper() == instrument][::2]
    out = []
    for header in _hook_variants(bases, random.Random(name)):
        want = interpreted.evaluate(header, ("biasfile",))
        got = fast.evaluate(header, ("biasfile",))
        if got != want:
            out.append((header, got, want))
            if first_only:
                break
    plan = fast._plans[synthetic.instrument(instrument.lower()).name]["biasfile"]
    assert isinstance(plan, RmapPlan)  # the hook's rmap has a plan, and it is used
    assert first_only or len(plan.memo) > 50
    return out


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_hook_rmaps_equal_the_interpreted_answers(hst_corpus, tmp_path, name):
    assert not _synthetic_differences(hst_corpus, tmp_path, name)


#: inputs of the retry rmaps' hooks that decide the second match, and that the memo key
#: has only through the declarations (the others rewrite keys these Match tables do not
#: read; DETECTOR and CCDGAIN are the DNR rule's): left out of both hooks' declarations
RETRY_DECIDERS = {"acs_v2_retry": ("CCDAMP", "2009-05-14 00:00:00"),
                  "acs_v3_retry": ("CCDAMP", "2002-03-30 00:00:00", "2009-05-14 00:00:00")}


def _without(inputs, left_out: str):
    return inputs._replace(keys=tuple(k for k in inputs.keys if k != left_out),
                           thresholds=tuple(t for t in inputs.thresholds if t != left_out))


def _omissions():
    """(synthetic rmap, {hook: HookInputs with one input left out}, what) the tests must notice.

    Left out: inputs the plan's memo key has anyway (Match parameters, and the DNR rule's
    keys), and CCDAMP of v1/v2, which decides nothing but its own rewritten value (so its
    memo key entry is the Match parameter's).  For the rmaps with two hooks, the input is
    left out of both (each declares what the other reads too).
    """
    own_value_only = {"precondition_header_acs_biasfile_v1", "precondition_header_acs_biasfile_v2"}
    out, seen = [], set()
    for name, (_instrument, hooks, parameters, _extra) in SYNTHETIC.items():
        if name in RETRY_DECIDERS:
            for left_out in RETRY_DECIDERS[name]:
                out.append((name, {hook: _without(hst_hooks.HOOK_INPUTS[hook], left_out)
                                   for hook in hooks.values()}, left_out))
            continue
        hook = hooks["precondition_header"]
        inputs = hst_hooks.HOOK_INPUTS[hook]
        keyed = {*parameters, *hst_hooks.DNR_KEYWORDS}
        for left_out in (*inputs.keys, *inputs.thresholds):
            if left_out in keyed or (hook, left_out) in seen or (left_out == "CCDAMP" and hook in own_value_only):
                continue
            seen.add((hook, left_out))
            replaced = {hook: _without(inputs, left_out)}
            if "fallback_header" in hooks:
                fallback = hooks["fallback_header"]
                replaced[fallback] = _without(hst_hooks.HOOK_INPUTS[fallback], left_out)
            out.append((name, replaced, left_out))
    return out


@pytest.mark.parametrize("name, replaced, left_out", _omissions(),
                         ids=[f"{o[0]}-{o[2]}" for o in _omissions()])
def test_a_hook_input_left_out_is_noticed(hst_corpus, tmp_path, monkeypatch, name, replaced, left_out):
    """The synthetic cases are strong enough: with any hook input undeclared, plans answer wrongly."""
    for hook, inputs in replaced.items():
        monkeypatch.setitem(hst_hooks.HOOK_INPUTS, hook, inputs)
    assert _synthetic_differences(hst_corpus, tmp_path, name, first_only=True), left_out


def test_a_date_tables_answers_are_its_leaf_answers_worked_out_once():
    """A UseAfter table of leaves answers its file names, NOT FOUND n/a for N/A and the
    omitted marker for OMIT, computed once per table; a table holding a selector has none."""
    from crds_async.rules.plans import NOT_FOUND_NA, OMITTED, _table_answers
    from crds_async.rules.selectors import UseAfterSelector

    names = UseAfterSelector(("DATE-OBS", "TIME-OBS"), [("2001-01-01 00:00:00", "a_drk.fits"),
                                                        ("2000-01-01 00:00:00", "b_drk.fits")])
    special = UseAfterSelector(("DATE-OBS", "TIME-OBS"), [("2000-01-01 00:00:00", "N/A"),
                                                          ("2001-01-01 00:00:00", "OMIT"),
                                                          ("2002-01-01 00:00:00", "c_drk.fits")])
    nested = UseAfterSelector(("DATE-OBS", "TIME-OBS"), [("2000-01-01 00:00:00", names)])
    assert _table_answers(names) == ("b_drk.fits", "a_drk.fits")
    assert _table_answers(names) is _table_answers(names)
    assert _table_answers(special) == (NOT_FOUND_NA, OMITTED, "c_drk.fits")
    assert _table_answers(nested) is None
    assert _table_answers("a_drk.fits") is None
