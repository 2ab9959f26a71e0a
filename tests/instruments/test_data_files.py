"""The package data under crds_async/instruments/data equals what the reference derives.

``python -m tests.instruments.test_data_files --write`` regenerates ``types.json`` from
the installed reference (run once per reference upgrade; the test then keeps it honest).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import needs_reference

DATA = Path(__file__).resolve().parents[2] / "crds_async" / "instruments" / "data"
OBSERVATORIES = ("hst", "jwst", "roman")


def reference_types() -> dict:
    """Instruments, filekinds and the per-instrument suffix -> filekind table of each observatory."""
    import importlib

    tables = {}
    for observatory in OBSERVATORIES:
        types = importlib.import_module(f"crds.{observatory}").TYPES
        tables[observatory] = {
            "instruments": list(types.instruments),
            "filekinds": list(types.filekinds),
            "suffix_to_filekind": {instrument: dict(sorted(table.items()))
                                   for instrument, table in sorted(types._suffix_to_filekind.items())}
            if observatory == "hst" else {},
        }
    return {"source": "crds 14.0.3 <obs>.TYPES (the specs/ of each observatory package)", **tables}


@needs_reference
def test_types_json_equals_reference_specs():
    shipped = json.loads((DATA / "types.json").read_text())
    assert shipped == reference_types()


@needs_reference
def test_jwst_table_equals_reference_schema_and_static_synonyms():
    from crds.jwst import locate, schema

    shipped = json.loads((DATA / "jwst_fits_to_dm.json").read_text())
    assert shipped["dm_to_fits"] == schema._get_dm_to_fits()
    assert shipped["cross_strapped_keywords"] == locate.CROSS_STRAPPED_KEYWORDS
    # Key order matters: the synonym pairs are applied in this order.
    assert list(shipped["cross_strapped_keywords"]) == list(locate.CROSS_STRAPPED_KEYWORDS)


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    (DATA / "types.json").write_text(json.dumps(reference_types(), indent=1) + "\n")
