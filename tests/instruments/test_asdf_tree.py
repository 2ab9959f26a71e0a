"""ASDF tree flattening and HISTORY equal the reference's reader on generated trees."""

from __future__ import annotations

import datetime
import random
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.time import Time

from crds_async.instruments import dataset_header
from crds_async.instruments.asdf_tree import asdf_header, flatten_tree, history_text
from tests.conftest import needs_reference


def random_tree(rng: random.Random, depth: int = 0) -> dict:
    leaves = [
        "WFI", "wfi", "", "N/A", 1, 0, -3, 2.5, 1e20, True, False, 1 + 2j, None, np.float64(1.5), np.int64(3),
        np.zeros(3), [1, "a", [2.0, None]], ("x", {"nested": 1}), datetime.datetime(2020, 1, 1, 12, 0, 0, 570000),
        datetime.datetime(2026, 2, 3), Time("2021-05-06T07:08:09.5"), {"k": "v"}, {}, object(),
    ]
    tree = {}
    for _ in range(rng.randrange(1, 6)):
        key = rng.choice(["meta", "Meta", "instrument", "name", "exposure", "start_time", "roman", "a.b", "A", 7])
        if depth < 3 and rng.random() < 0.4:
            tree[key] = random_tree(rng, depth + 1)
        else:
            tree[key] = rng.choice(leaves)
    return tree


@needs_reference
def test_flatten_tree_equals_reference():
    from crds.io.asdf import AsdfFile

    reader = AsdfFile("unused.asdf")
    rng = random.Random(12)
    for _ in range(1500):
        tree = random_tree(rng)
        expected = {str(key).upper(): str(value) for key, value in reader.to_simple_types(tree).items()}
        assert flatten_tree(tree) == expected, tree
        assert list(flatten_tree(tree)) == list(expected)


@needs_reference
@pytest.mark.parametrize("entries", [
    None,
    [],
    [{"time": datetime.datetime(2020, 1, 2, 3, 4, 5, 600000), "description": "made"},
     {"time": "2021-01-01T00:00:00", "description": "edited"}],
    [{"time": datetime.datetime(2020, 1, 2), "description": 5}],
    [{"time": "garbage", "description": "x"}],
    [{"description": "no time"}],
])
def test_history_text_equals_reference(entries):
    from crds.io.asdf import AsdfFile

    tree = {} if entries is None else {"history": {"entries": entries}}
    handle = SimpleNamespace(tree=tree, get_history_entries=lambda: entries)
    assert history_text(entries) == AsdfFile("unused.asdf").get_history(handle)


def test_roman_dataset_header_from_tree():
    tree = {"roman": {"meta": {"instrument": {"name": "WFI"},
                               "exposure": {"start_time": Time("2026-01-01T00:00:00")}}}}
    header = dataset_header(asdf_header(tree, None), "ASDF")
    assert header == {"ROMAN.META.INSTRUMENT.NAME": "WFI", "ROMAN.META.EXPOSURE.START_TIME": "2026-01-01T00:00:00",
                      "HISTORY": "UNDEFINED", "FILE_FORMAT": "ASDF"}


@needs_reference
@pytest.mark.filterwarnings("ignore")   # asdf: roman_datamodels schemas not installed (both sides alike)
def test_real_asdf_files_equal_reference_reader(monkeypatch, tmp_path):
    """The cache's Roman ASDF files: our header from the loaded tree == the reference's file reader."""
    import gc

    import asdf

    from crds.data_file import get_free_header
    from tests.conftest import CACHE

    monkeypatch.setenv("CRDS_PATH", str(tmp_path))
    monkeypatch.setattr(gc, "collect", lambda *args: 0)   # reference's memory hygiene: slow, no effect here
    files = sorted((CACHE / "references" / "roman").glob("*.asdf"))
    assert files
    for path in files:
        with asdf.open(path) as handle:
            entries = handle.get_history_entries() if "history" in handle.tree else None
            ours = dataset_header(asdf_header(handle.tree, entries), "ASDF")
        assert ours == get_free_header(str(path), (), None, "roman"), path.name
