"""Randomized headers built from the rules' own values: our answers == the reference's, 0 differences.

Headers draw every matching parameter from the rmaps' match values (each '|'
alternative), N/A, ANY, '*', lower case, re-spelled numbers (1 vs 1.0),
missing keys and junk, and dates on, just before and after UseAfter boundaries
in several accepted spellings.  Both engines answer every type of the
instrument (the reference with fast=True); exceptions compare by message.
"""

from __future__ import annotations

import datetime
import random
import zlib

import pytest

from crds_async.config import config_from_env
from crds_async.engine.loader import new_evaluator as Evaluator
from crds_async.engine.loader import load_context
from crds_async.rules.selectors import MatchSelector, Selector, UseAfterSelector, glob_alternatives
from tests.conftest import CACHE, needs_reference
from tests.reference_runner import reference_answers

CONTEXTS = [
    ("hst", "hst_0729.pmap", 500),
    ("jwst", "jwst_0541.pmap", 500),
    ("hst", "hst_0600.pmap", 250),
    ("jwst", "jwst_0500.pmap", 250),
]
DATE_KEYS = {"hst": ("DATE-OBS", "TIME-OBS"), "jwst": ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME")}


def _walk(selector: Selector, values: dict[str, set[str]], dates: set[str]) -> None:
    if isinstance(selector, MatchSelector):
        for key in selector.keys:
            for parameter, element in zip(selector.parameters, key):
                values.setdefault(parameter, set()).update(glob_alternatives(element))
        children = selector.choices
    elif isinstance(selector, UseAfterSelector):
        dates.update(selector.dates)
        children = selector.choices
    else:
        children = []
    for child in children:
        if isinstance(child, Selector):
            _walk(child, values, dates)


def _respell(value: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.15:
        return value.lower()
    if roll < 0.25:
        try:
            number = float(value)
        except ValueError:
            return value
        return str(int(number)) if number == int(number) else f"{number:.6g}"
    if roll < 0.3:
        return f"  {value} "
    return value


def _date_variants(key: str, rng: random.Random) -> tuple[str, str]:
    try:
        when = datetime.datetime.strptime(key[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return key.split(" ")[0], (key.split(" ") + ["00:00:00"])[1]
    when += rng.choice([datetime.timedelta(0), datetime.timedelta(seconds=-1), datetime.timedelta(days=1),
                        datetime.timedelta(days=-400), datetime.timedelta(seconds=1)])
    form = rng.random()
    if form < 0.6:
        return when.strftime("%Y-%m-%d"), when.strftime("%H:%M:%S")
    if form < 0.75:
        return when.strftime("%m/%d/%Y"), when.strftime("%H:%M:%S.%f")[:12]
    if form < 0.85:
        return when.strftime("%d-%b-%Y"), when.strftime("%H:%M")
    if form < 0.9:
        return "UNDEFINED", when.strftime("%H:%M:%S")
    return when.strftime("%Y-%m-%d"), "25:61:00"


def generate_headers(evaluator: Evaluator, count: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    ctx = evaluator.context
    pools = {}
    for instrument, imap in ctx.instruments.items():
        values: dict[str, set[str]] = {}
        dates: set[str] = set()
        for rmap in imap.rmaps.values():
            _walk(rmap.selector, values, dates)
        pools[instrument] = (imap, {k: sorted(v) for k, v in values.items()}, sorted(dates))
    instruments = sorted(pools)
    headers = []
    for _ in range(count):
        instrument = rng.choice(instruments)
        imap, values, dates = pools[instrument]
        header = {ctx.instrument_key: instrument.upper() if rng.random() > 0.1 else instrument}
        for parkey in imap.required_parkeys:
            if parkey in DATE_KEYS[ctx.observatory] or parkey == ctx.instrument_key:
                continue
            roll = rng.random()
            pool = values.get(parkey) or ["PERFORM", "OMIT", "COMPLETE", "1.0", "T"]
            if roll < 0.04:
                continue  # missing -> UNDEFINED
            if roll < 0.08:
                header[parkey] = rng.choice(["N/A", "ANY", "*", "junk-value", "2.5", "NOT APPLICABLE"])
            else:
                header[parkey] = _respell(rng.choice(pool), rng)
        if dates and rng.random() > 0.03:
            date, time = _date_variants(rng.choice(dates), rng)
            header[DATE_KEYS[ctx.observatory][0]] = date
            header[DATE_KEYS[ctx.observatory][1]] = time
        headers.append(header)
    return headers


def _normal(answer: object) -> object:
    # tuples (ties) may hold selector objects: compare them by their printed form
    return [a if isinstance(a, str) else repr(a) for a in answer] if isinstance(answer, tuple) else answer


@needs_reference
@pytest.mark.parametrize("observatory, context, count", CONTEXTS, ids=[c[1] for c in CONTEXTS])
def test_randomized_headers_equal_the_reference(observatory, context, count):
    cfg = config_from_env({"CRDS_PATH": str(CACHE)})
    evaluator = Evaluator(load_context(context, cfg), cfg)
    headers = generate_headers(evaluator, count, seed=zlib.crc32(context.encode()))
    # every type of the instrument's imap, named explicitly as the corpus answers were made
    requests = [[header, list(evaluator.context.instruments[header[evaluator.context.instrument_key].lower()]
                              .reftypes)] for header in headers]
    wanted = reference_answers(CACHE, context, observatory, requests)
    differences = []
    kinds = {"file": 0, "n/a": 0, "error": 0, "raised": 0}
    for (header, reftypes), want in zip(requests, wanted):
        try:
            got = {k: _normal(v) for k, v in evaluator.evaluate(header, reftypes).items()}
        except Exception as exc:  # noqa: BLE001
            got = ["raised", str(exc)]
        if got != want:
            differences.append((header, want, got))
        if isinstance(want, list):
            kinds["raised"] += 1
        else:
            for answer in want.values():
                kinds["n/a" if answer == "NOT FOUND n/a" else "error" if str(answer).startswith("NOT FOUND")
                      else "file"] += 1
    assert not differences, f"{len(differences)} of {count} headers differ; first: {differences[0]}"
    # the generator must exercise every kind of outcome, or the comparison proves little
    assert kinds["file"] > count and kinds["n/a"] > 0 and kinds["error"] > 0, kinds
