"""Running a batch past one machine, on an existing distributed engine (issue #14).

:mod:`.dask` connects to a Dask scheduler (or starts a local cluster) and hands
:func:`crds_async.engine.batch.run_batch` an executor whose workers evaluate partitions of
datasets with the engine's own :func:`~crds_async.engine.batch.evaluate_paths`.  Dask is an
optional extra (``pip install crds_async[dask]``): it is imported only when a cluster is asked for.
"""

from __future__ import annotations

from . import dask  # the module itself imports Dask only when a cluster is asked for

__all__ = ["dask"]
