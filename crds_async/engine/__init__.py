"""The engine: the one place where rules, observatory personalities, headers and the cache meet.

- :mod:`.loader`, :mod:`.mapping_files`, :mod:`.server_config`: contexts loaded from a
  CRDS cache's files and handed to the pure rules core;
- :mod:`.compiled`: the compiled-context disk cache; :mod:`.registry`: the process's
  loaded contexts; :mod:`.rules_sync`: rules missing from the cache fetched, then loaded;
- :mod:`.datasets`: one dataset (a file or a parameter set) -> its answers;
- :mod:`.results`, :mod:`.batch`: per-dataset outcomes, and many datasets as a stream;
- :mod:`.campaign`: context differences, affected datasets, header updates.

``cli`` parses arguments and formats output around these; ``api`` and
``references_api`` are thin facades over them.
"""

from __future__ import annotations

from .datasets import DatasetAnswers, answer_dataset, dataset_file_format, dataset_parameters
from .registry import REGISTRY, default_context, get_evaluator

__all__ = ["answer_dataset", "dataset_parameters", "dataset_file_format", "DatasetAnswers",
           "get_evaluator", "default_context", "REGISTRY"]
