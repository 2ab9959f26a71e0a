"""Leaf functions vs the reference, measured in the same run: conditioning, dates, JWST parkeys.

Runs each function over the same realistic inputs (every conditioned value of the
corpus headers, repeated as a batch would see them; the corpus dates) and prints
the time per call of both and the ratio.

    .venv/bin/python benchmarks/bench_conditioning.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = Path(os.environ.get("CRDS_ASYNC_SHARED", ROOT.parent / "shared")).resolve() / "corpus"


def corpus_headers() -> list[dict[str, str]]:
    from astropy.io import fits

    from crds_async.headers.merge import merge_cards

    headers = []
    for path in sorted(CORPUS.glob("*/*.fits")):
        with fits.open(path) as hdus:
            headers.append(merge_cards((c.keyword, str(c.value)) for h in hdus for c in h.header.cards if c.keyword))
    return headers


def tolerant(function):
    """``function`` with failures swallowed: corpus dates include rejected forms, on both sides."""
    def call(*args):
        try:
            return function(*args)
        except Exception:  # noqa: BLE001
            return None
    return call


def per_call(function, inputs, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for item in inputs:
            function(*item)
        best = min(best, time.perf_counter() - started)
    return best / len(inputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="best of N rounds")
    args = parser.parse_args()
    os.environ.setdefault("CRDS_PATH", tempfile.mkdtemp(prefix="bench-crds-"))
    from crds.core import timestamp, utils
    from crds.jwst.locate import fits_to_parkeys

    from crds_async.instruments import jwst
    from crds_async.rules import conditioning, timestamps

    headers = corpus_headers()
    values = [(value,) for header in headers for value in header.values()] * 5
    dates = [(f"{h['DATE-OBS']} {h['TIME-OBS']}",) for h in headers if "DATE-OBS" in h and "TIME-OBS" in h] * 5
    jwst_headers = [(h,) for h in headers if h.get("TELESCOP") == "JWST"]
    from crds.core.selectors import UseAfterSelector

    parkeys = ("DATE-OBS", "TIME-OBS")
    selector = UseAfterSelector(parkeys, {"2000-01-01 00:00:00": "x.fits"})
    lookups = [(h.get("DATE-OBS", "UNDEFINED"), h.get("TIME-OBS", "UNDEFINED")) for h in headers] * 5
    cases = [
        ("condition_value", utils.condition_value, conditioning.condition_value, values),
        ("parse+format date", tolerant(timestamp.reformat_date), tolerant(timestamps.format_date), dates),
        ("UseAfter lookup date", tolerant(lambda d, t: selector._validate_header({"DATE-OBS": d, "TIME-OBS": t})),
         tolerant(lambda d, t: timestamps.lookup_date((d, t), parkeys)), lookups),
        ("jwst to_parkeys", fits_to_parkeys, jwst.to_parkeys, jwst_headers),
    ]
    print(f"{'function':20} {'calls':>8} {'reference us':>13} {'crds_async us':>14} {'ratio':>7}")
    for label, theirs, ours, inputs in cases:
        reference = per_call(theirs, inputs, args.rounds)
        mine = per_call(ours, inputs, args.rounds)
        print(f"{label:20} {len(inputs):8d} {reference * 1e6:13.2f} {mine * 1e6:14.2f} {reference / mine:6.1f}x")


if __name__ == "__main__":
    main()
