"""The test-only selectors of the tobs rmap (ClosestTime, GeometricallyNearest, Bracket,
SelectVersion, tuple and dict leaves) choose what the reference's selector objects choose."""

from __future__ import annotations

import os

import pytest

from crds_async.engine.loader import load_reference_mapping
from tests.conftest import CACHE, needs_reference

TOBS_RMAP = CACHE / "mappings" / "tobs" / "tobs_tinstr_tfilekind.rmap"
CASES = [
    ("USE_AFTER", p) for p in ("2003-09-26 01:28:00", "2004-04-25 21:31:01", "2004-04-25 21:31:02",
                               "2005-01-01 00:00:00", "2003-01-01 00:00:00")
] + [("SELECT_VERSION", p) for p in ("1.0", "3.1", "4.9", "5", "6.5", "default")] + [
    ("CLOSEST_TIME", p) for p in ("2016-01-01", "2017-09-13", "2018-02-01", "2030-01-01")
] + [("BRACKET", p) for p in ("1.0", "1.2", "1.35", "1.5", "4.0", "6.0", "x")] + [
    ("GEOMETRICALLY_NEAREST", p) for p in ("1.0", "1.35", "1.36", "3.0", "9.0", "nan", "bad")
]


def _outcome(function):
    try:
        return ("ok", function())
    except Exception as exc:  # noqa: BLE001
        return ("error", str(exc))


@needs_reference
def test_tobs_selectors_choose_like_the_reference(monkeypatch):
    monkeypatch.setenv("CRDS_PATH", str(CACHE))
    monkeypatch.setenv("CRDS_READONLY_CACHE", "1")
    from crds.core import rmap as ref_rmap

    ours = load_reference_mapping(TOBS_RMAP, "tobs").selector
    reference = ref_rmap.load_mapping(str(TOBS_RMAP)).selector
    for case, parameter in CASES:
        header = {"TEST_CASE": case, "PARAMETER": parameter}
        want = _outcome(lambda: reference.choose(dict(header)))
        got = _outcome(lambda: ours.choose(dict(header)))
        if want[0] == "error":
            assert got[0] == "error", (case, parameter, got)
        else:
            assert got == want, (case, parameter)


def test_every_selector_of_the_tobs_rmap_builds():
    rmap = load_reference_mapping(TOBS_RMAP, "tobs")
    names = set(rmap.reference_names())
    assert {"cref_flatfield_120.fits", "foo_bia.fits", "bar_bia2.fits"} <= names
    assert rmap.selector.choose({"TEST_CASE": "BRACKET", "PARAMETER": "1.35"}) == \
        ("cref_flatfield_120.fits", "cref_flatfield_124.fits")


def test_compiled_contexts_share_matchers_and_dates():
    """Equal Match key elements share one matcher and equal dates one string: a compiled
    context is then far fewer objects to pickle and load (the warm-load budget)."""
    import pickle

    from crds_async.config import config_from_env
    from crds_async.engine.loader import load_context
    from crds_async.rules.selectors import MatchSelector, UseAfterSelector

    cfg = config_from_env({"CRDS_PATH": str(CACHE)})
    context = load_context("hst_0729.pmap", cfg)
    elements, matchers, dates, date_objects = 0, set(), 0, set()
    stack = [rmap.selector for imap in context.instruments.values() for rmap in imap.rmaps.values()]
    while stack:
        selector = stack.pop()
        if isinstance(selector, MatchSelector):
            for row in selector.matchers:
                elements += len(row)
                matchers.update(map(id, row))
        if type(selector) is UseAfterSelector:
            dates += len(selector.dates)
            date_objects.update(map(id, selector.dates))
        stack.extend(c for c in getattr(selector, "choices", ()) if hasattr(c, "choose"))
    assert elements > 10_000 and len(matchers) < elements / 4
    assert dates > 1_000 and len(date_objects) < dates
    assert len(pickle.dumps(context, protocol=pickle.HIGHEST_PROTOCOL)) < 1_500_000


def test_plain_alternative_globs_match_as_their_regex_would():
    """A glob of plain '|' alternatives is a set lookup; it must answer as the fnmatch regex does,
    for every such key element of the HST and JWST contexts, on the alternatives and near misses."""
    import pickle
    import re

    from crds_async.config import config_from_env
    from crds_async.engine.loader import load_context
    from crds_async.rules.selectors import MatchSelector, _OneOf, _Regex

    cfg = config_from_env({"CRDS_PATH": str(CACHE)})
    checked = 0
    for name in ("hst_0729.pmap", "jwst_0541.pmap"):
        context = load_context(name, cfg)
        stack = [rmap.selector for imap in context.instruments.values() for rmap in imap.rmaps.values()]
        seen = set()
        while stack:
            selector = stack.pop()
            stack.extend(c for c in getattr(selector, "choices", ()) if hasattr(c, "choose"))
            if not isinstance(selector, MatchSelector):
                continue
            for matcher in (m for row in selector.matchers for m in row):
                if type(matcher) is not _OneOf or id(matcher) in seen:
                    continue
                seen.add(id(matcher))
                plain = _Regex(matcher.key)  # the same pattern, matched by its regex
                values = [v for member in matcher.members
                          for v in (member, member.lower(), member + "\n", " " + member, member[:-1], member + "X")]
                values += ["*", "N/A", "", "UNDEFINED", matcher.key]
                for value in values:
                    assert matcher.match(value) == plain.match(value), (matcher.key, value)
                    checked += 1
                copy = pickle.loads(pickle.dumps(matcher))
                assert copy.members == matcher.members and copy.key == matcher.key
    assert checked > 5_000


def _brute_force_weights(selector, values):
    """Every row's matchers applied in turn: {weight: [row, ...]} (what the row masks must give)."""
    weights = {}
    for index, row in enumerate(selector.matchers):
        weight = 0
        for matcher, value in zip(row, values):
            status = matcher.match(value)
            if status == -1:
                break
            weight -= status
        else:
            weights.setdefault(weight, []).append(index)
    return {weight: weights[weight] for weight in sorted(weights)}


def test_row_masks_rank_rows_as_the_matchers_do():
    """Match winnowing by per-value row masks equals applying every row's matchers, on every
    Match of hst_0729 and jwst_0541, for values drawn from the keys, '*', 'N/A' and misses."""
    import random

    from crds_async.config import config_from_env
    from crds_async.errors import LookupFailure
    from crds_async.engine.loader import load_context
    from crds_async.rules.selectors import MatchSelector, glob_alternatives

    cfg = config_from_env({"CRDS_PATH": str(CACHE)})
    rng = random.Random(5)
    compared = 0
    for name in ("hst_0729.pmap", "jwst_0541.pmap"):
        context = load_context(name, cfg)
        stack = [rmap.selector for imap in context.instruments.values() for rmap in imap.rmaps.values()]
        while stack:
            selector = stack.pop()
            stack.extend(c for c in getattr(selector, "choices", ()) if hasattr(c, "choose"))
            if not isinstance(selector, MatchSelector) or not selector.keys:
                continue
            pools = [sorted({alternative for key in selector.keys for alternative in glob_alternatives(key[i])})
                     + ["*", "N/A", "NO-SUCH-VALUE"] for i in range(len(selector.parameters))]
            for _ in range(30):
                values = tuple(rng.choice(pool) for pool in pools)
                if rng.random() < 0.5:  # a real key's values: rows that survive
                    values = tuple(rng.choice(glob_alternatives(element) or [element])
                                   for element in rng.choice(selector.keys))
                selector._memo.clear()
                try:
                    selector._candidates(values)
                except LookupFailure:
                    continue  # validation: checked before any row, as before
                weights = {}
                failing = 0
                matching = []
                for position, value in enumerate(values):
                    masks = selector._masks[position][value]
                    failing |= masks[0]
                    matching.append(masks[1])
                for index in range(len(selector.matchers)):
                    if not failing >> index & 1:
                        weights.setdefault(-sum(m >> index & 1 for m in matching), []).append(index)
                assert {w: weights[w] for w in sorted(weights)} == _brute_force_weights(selector, values), \
                    (selector.name, values)
                compared += 1
    assert compared > 5_000


def test_tied_rows_are_merged_once_and_as_a_fresh_merge_would():
    """Rows that tie are merged into one UseAfter table once per set of rows: asking again
    (another parameter tuple reaching the same rows) gives the same object, whose dates and
    choices are those of merging the tied tables afresh."""
    from crds_async.config import config_from_env
    from crds_async.engine.loader import load_context
    from crds_async.rules.selectors import MatchSelector, UseAfterSelector, glob_alternatives

    cfg = config_from_env({"CRDS_PATH": str(CACHE)})
    context = load_context("hst_0729.pmap", cfg)
    checked = 0
    for imap in context.instruments.values():
        for rmap in imap.rmaps.values():
            selector = rmap.selector
            if not isinstance(selector, MatchSelector) or not selector.merge_overlaps:
                continue
            for key in selector.keys:
                values = tuple(glob_alternatives(element)[0] for element in key)
                selector._memo.clear()
                try:
                    first = selector.groups(values)
                except Exception:  # noqa: BLE001 - a value the Match refuses: no groups to compare
                    continue
                merged = [g for g in first if isinstance(g, UseAfterSelector) and g not in selector.choices]
                if not merged:
                    continue
                selector._memo.clear()
                again = selector.groups(values)
                assert [id(g) for g in again] == [id(g) for g in first], (selector.name, values)
                members = next(m for m, g in selector._merged.items() if g is merged[0])
                fresh = selector.choices[members[0]]
                for index in members[1:]:
                    fresh = fresh.merge(selector.choices[index])
                assert (merged[0].dates, merged[0].choices) == (fresh.dates, fresh.choices)
                checked += 1
    assert checked > 20
