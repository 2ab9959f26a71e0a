"""Rules engine speed against the reference (crds 14.0.3), measured in one run.

Prints, for hst_0729 and jwst_0541:
- cold context load (parse + compile every mapping of the closure; fresh process),
- warm context load (from crds_async's compiled-context cache; fresh process),
- the reference's load of the same context with all its rmaps (fresh process),
- per-dataset evaluation of every reftype over the corpus headers, beside the
  reference's getrecommendations(fast=True) on the same headers (its context
  loaded first, then the best of two passes), with the ratios:
  * first: a fresh evaluator, nothing memoised yet;
  * new dates: the same instrument modes again, each at another observation date
    (what most of an archive looks like: many exposures per mode), so answers
    come from memoised plans plus a date bisection;
  * again: the same headers repeated;
  * modes only (a diagnostic line): the corpus once more with every rmap's
    plan kept but the per-instrument-mode memo emptied, i.e. the first sight
    of a mode whose per-type answers are all known already: a floor for any
    first pass that still assembles a mode's answers.
  Headers are read as the batch engine reads them (only the keywords the rules
  can use); ``--full-headers`` passes every keyword instead.  Both sides freeze
  the loaded rules out of the garbage collector's sight, as crds-batch does.

Targets (issue #2): <= 20 us per dataset for all types; warm load <= 50 ms.

    .venv/bin/python benchmarks/bench_rules.py [--shared ../shared] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = [("hst", "hst_0729.pmap", "https://hst-crds.stsci.edu"),
         ("jwst", "jwst_0541.pmap", "https://jwst-crds.stsci.edu")]

_LOAD_OURS = """
import sys, time
from crds_async.config import config_from_env
from crds_async.engine.compiled import load_context_cached
from crds_async.engine.loader import load_context
cfg = config_from_env()
start = time.perf_counter()
(load_context_cached if sys.argv[2] == "warm" else load_context)(sys.argv[1], cfg)
print(time.perf_counter() - start)
"""

_LOAD_REFERENCE = """
import sys, time
import crds
from crds.core import rmap
start = time.perf_counter()
ctx = rmap.get_cached_mapping(sys.argv[1])
for imap in ctx.selections.normal_values():
    imap.force_load()
print(time.perf_counter() - start)
"""

_EVAL_REFERENCE = """
import json, sys, time
import crds
from crds.core import log
log.set_verbose(False)
from crds.core import rmap
job = json.loads(sys.stdin.read())
# loaded first, as ours is: only evaluation is timed (the reference keeps loaded mappings)
ctx = rmap.get_cached_mapping(job["context"])
for imap in ctx.selections.normal_values():
    imap.force_load()
import gc
gc.freeze()
passes = []
for _ in range(2):  # the first pass also loads what force_load leaves lazy; the second is steady
    start = time.perf_counter()
    for header, reftypes in job["requests"]:
        crds.getrecommendations(header, reftypes=reftypes, context=job["context"], observatory=job["obs"], fast=True)
    passes.append(time.perf_counter() - start)
print(min(passes))
"""


def _run(code: str, args: list[str], env: dict, stdin: str | None = None) -> float:
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, input=stdin, capture_output=True,
                         text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def _best(code, args, env, repeat, stdin=None) -> float:
    return min(_run(code, args, env, stdin) for _ in range(repeat))


_DATES = ("1996-02-13", "2003-06-01", "2010-11-20", "2017-04-07", "2023-08-15")


def _at_another_date(header: dict, index: int) -> dict:
    """The header with its observation date moved (every date keyword the corpus uses)."""
    date = _DATES[index % len(_DATES)]
    moved = dict(header)
    for key in ("DATE-OBS", "META.OBSERVATION.DATE"):
        if key in moved:
            moved[key] = date
    return moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--full-headers", action="store_true",
                        help="evaluate headers with every keyword (default: the keywords the rules use)")
    args = parser.parse_args()
    cache = (args.shared / "cache").resolve()
    corpus = (args.shared / "corpus").resolve()

    from crds_async.config import config_from_env
    from crds_async.headers import read_header
    from crds_async.instruments import bestrefs_parameters, dataset_header
    from crds_async.engine.loader import new_evaluator as Evaluator
    from crds_async.engine.loader import load_context

    have_reference = not args.no_reference
    try:
        import crds  # noqa: F401
    except ImportError:
        have_reference = False

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for obs, context, server in CASES:
            base_env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
            ours_env = dict(base_env, CRDS_PATH=str(cache), CRDS_READONLY_CACHE="1",
                            XDG_CACHE_HOME=str(Path(scratch) / "xdg"))
            ref_env = dict(base_env, CRDS_PATH=str(cache), CRDS_MODE="local", CRDS_SERVER_URL=server,
                           CRDS_READONLY_CACHE="1")
            cold = _best(_LOAD_OURS, [context, "cold"], ours_env, args.repeat)
            _run(_LOAD_OURS, [context, "warm"], ours_env)  # fills the compiled-context cache
            warm = _best(_LOAD_OURS, [context, "warm"], ours_env, args.repeat)
            ref_load = _best(_LOAD_REFERENCE, [context], ref_env, 1) if have_reference else None

            cfg = config_from_env({"CRDS_PATH": str(cache)})
            evaluator = Evaluator(load_context(context, cfg), cfg)
            gc.freeze()  # as crds-batch does once its rules are loaded (and the reference's run below)
            keep = None if args.full_headers else evaluator.wants
            headers = [bestrefs_parameters(dataset_header(read_header(p, keep)))
                       for p in sorted((corpus / obs).glob("*.fits"))]
            requests = [[h, sorted(evaluator.context.instruments[evaluator.instrument_of(h)].reftypes)]
                        for h in headers]
            start = time.perf_counter()
            for header, reftypes in requests:
                evaluator.evaluate(header, reftypes)
            first = (time.perf_counter() - start) / len(requests)
            moved = [[_at_another_date(h, i), r] for i, (h, r) in enumerate(requests)]
            start = time.perf_counter()
            for header, reftypes in moved:
                evaluator.evaluate(header, reftypes)
            new_dates = (time.perf_counter() - start) / len(moved)
            again = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                for header, reftypes in requests:
                    evaluator.evaluate(header, reftypes)
                again.append((time.perf_counter() - start) / len(requests))
            modes_only = []
            for _ in range(args.repeat):
                for plan in evaluator._instrument_plans.values():  # a diagnostic: the mode layer alone
                    plan.memo.clear()
                start = time.perf_counter()
                for header, reftypes in requests:
                    evaluator.evaluate(header, reftypes)
                modes_only.append((time.perf_counter() - start) / len(requests))
            ref_eval = None
            if have_reference:
                payload = json.dumps({"context": context, "obs": obs, "requests": requests})
                ref_eval = _run(_EVAL_REFERENCE, [], ref_env, payload) / len(requests)
            rows.append((context, cold, warm, ref_load, first, new_dates, min(again), ref_eval, min(modes_only),
                         len(requests)))

    print(f"{'context':<16}{'cold load':>11}{'warm load':>11}{'reference':>11}")
    for context, cold, warm, ref_load, *_rest in rows:
        ref_load_text = f"{ref_load * 1e3:9.0f}ms" if ref_load else "      n/a"
        print(f"{context:<16}{cold * 1e3:9.0f}ms{warm * 1e3:9.1f}ms{ref_load_text}"
              + (f"   warm load {ref_load / warm:.0f}x faster" if ref_load else ""))
    print()
    print(f"{'context':<16}{'eval 1st':>10}{'new dates':>11}{'again':>9}{'reference':>11}"
          f"{'ratio 1st':>11}{'ratio new dates':>17}{'ratio again':>13}")
    for context, _cold, _warm, _ref_load, first, new_dates, again, ref_eval, _modes, n in rows:
        ref_eval_text = f"{ref_eval * 1e6:9.0f}us" if ref_eval else "      n/a"
        ratios = [f"{ref_eval / t:{w}.0f}x" if ref_eval else " " * w + "-"
                  for t, w in ((first, 10), (new_dates, 16), (again, 12))]
        print(f"{context:<16}{first * 1e6:8.0f}us{new_dates * 1e6:9.1f}us{again * 1e6:7.1f}us{ref_eval_text}"
              + "".join(ratios))
    print(f"(per-dataset times are for every reftype of the dataset's instrument, over {rows[0][-1]} "
          f"corpus headers ({'every keyword' if args.full_headers else 'the keywords the rules use'}); "
          "targets: <= 20 us per dataset, warm load <= 50 ms)")
    print("first sight of modes whose every rmap answer is already planned (the mode layer alone): "
          + ", ".join(f"{row[0]} {row[-2] * 1e6:.1f}us" for row in rows))


if __name__ == "__main__":
    main()
