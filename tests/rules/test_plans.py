"""Memoised answer plans give exactly the interpreted path's answers, and do most of the work.

The interpreted path (``Evaluator(use_plans=False)``) walks the selector trees for
every type; it is what the corpus and the randomized differential tests compare
with the reference.  Plans memoise outcomes across datasets, so the risky cases
are datasets that share some values with earlier ones but not others: the same
mode at another date, or parameters mixed from different datasets.
"""

from __future__ import annotations

import random

import pytest

from crds_async.config import config_from_env
from crds_async.headers import read_header
from crds_async.instruments import bestrefs_parameters, dataset_header
from crds_async.rules.evaluate import Evaluator
from crds_async.rules.model import load_context
from crds_async.rules.plans import RmapPlan
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
    assert interpreted_calls < 0.1 * answers, (interpreted_calls, answers)


def test_rmap_plan_memo_is_bounded(case, monkeypatch):
    fast, interpreted, headers = case
    monkeypatch.setattr("crds_async.rules.plans._MEMO_LIMIT", 3)
    fresh = Evaluator(fast.context, fast.cfg)
    assert not _differences(fresh, interpreted, headers[:60])
    plans = [plan for per_type in fresh._plans.values() for plan in per_type.values() if isinstance(plan, RmapPlan)]
    assert plans and max(len(plan.memo) for plan in plans) <= 3
