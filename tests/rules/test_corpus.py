"""Every answer for every corpus dataset equals the reference's (expected_*.json), 100 %."""

from __future__ import annotations

import json

import pytest
from astropy.io import fits

from crds_async.config import config_from_env
from crds_async.instruments import bestrefs_parameters, dataset_header
from crds_async.engine.loader import new_evaluator as Evaluator
from crds_async.engine.loader import load_context
from tests.conftest import CACHE, CORPUS

CASES = [("hst", "hst_0729.pmap"), ("jwst", "jwst_0541.pmap")]


def astropy_raw_header(path) -> dict[str, str]:
    """Cards of all HDUs merged in order, first value wins, values as str(astropy value)."""
    raw: dict[str, str] = {}
    with fits.open(path) as hdul:
        for hdu in hdul:
            for card in hdu.header.cards:
                key = card.keyword.upper()
                if key and key not in raw and key not in ("COMMENT", "HISTORY"):
                    raw[key] = str(card.value)
    return raw


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def corpus_case(request):
    observatory, context = request.param
    cfg = config_from_env({"CRDS_PATH": str(CACHE)})
    evaluator = Evaluator(load_context(context, cfg), cfg)
    expected = json.loads((CORPUS / f"expected_{context[:-5]}.json").read_text())
    return observatory, evaluator, expected


def test_every_answer_equals_the_reference(corpus_case):
    observatory, evaluator, expected = corpus_case
    assert len(expected) == 300
    mismatches = []
    total = 0
    for filename, want in expected.items():
        header = bestrefs_parameters(dataset_header(astropy_raw_header(CORPUS / observatory / filename)))
        got = evaluator.evaluate(header)  # every type of the instrument's imap, omitted types absent
        got = {k: list(v) if isinstance(v, tuple) else v for k, v in got.items()}
        total += len(want)
        if got != want:
            mismatches.append((filename, {k: (want.get(k), got.get(k)) for k in set(want) | set(got)
                                          if want.get(k) != got.get(k)}))
    assert not mismatches, f"{len(mismatches)} datasets differ, e.g. {mismatches[:3]}"
    assert total > 6000


def test_the_corpus_exercises_errors_and_na(corpus_case):
    """Guard against a vacuous pass: the corpus has real errors, n/a and file answers."""
    _observatory, _evaluator, expected = corpus_case
    answers = [a for per_file in expected.values() for a in per_file.values()]
    assert any(a == "NOT FOUND n/a" for a in answers)
    assert any(isinstance(a, str) and a.startswith("NOT FOUND") and a != "NOT FOUND n/a" for a in answers)
    assert sum(isinstance(a, str) and not a.startswith("NOT FOUND") for a in answers) > 1000
