"""Dataset parameter sources other than dataset files: archive and ``--save-pickle`` dumps.

- ``iter_dump(path)``: stream ``(dataset_id, parameters or error)`` from one dump
  (JSON object, JSON lines or a restricted pickle, told apart by content).
- ``iter_dump_lines(path)``: the same for a one-dataset-a-line dump, each dataset's
  parameters left undecoded (:class:`DumpLine`) for the process that evaluates it.
- ``load_dumps(paths)``: several dumps, worst to best, merged as the reference's
  ``crds bestrefs --load-pickles`` merges them.
- ``count_datasets(path)``: a progress total.
- ``recorded_bestrefs(params, reftypes)``: the archive's recorded best references.
- ``save_pickle(path, pairs)``: write what the reference's ``--save-pickle`` writes, atomically.
- ``DumpWriter(path)``: the same, fed one dataset at a time while a batch streams.
"""

from __future__ import annotations

from .dumps import (
    DatasetParametersError,
    DumpError,
    DumpLine,
    read_dump_lines,
    clean_reference_name,
    count_datasets,
    dump_ids,
    iter_dump,
    iter_dump_lines,
    load_dumps,
    normalize_bestref,
    recorded_bestrefs,
)
from .save import DumpWriter, save_pickle

__all__ = [
    "DumpError",
    "DatasetParametersError",
    "iter_dump",
    "iter_dump_lines",
    "DumpLine",
    "read_dump_lines",
    "load_dumps",
    "count_datasets",
    "dump_ids",
    "recorded_bestrefs",
    "normalize_bestref",
    "clean_reference_name",
    "save_pickle",
    "DumpWriter",
]
