"""A batch driven in this process into open_sinks, as ``crds-batch bestrefs`` drives its sinks."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from crds_async.cli import bestrefs_output
from crds_async.config import config_from_env
from crds_async.engine.batch import BatchSpec, discover, run_batch
from crds_async.engine.campaign import changed_types
from crds_async.engine.registry import get_evaluator
from tests.conftest import CACHE


def run_with_sinks(paths, *, context: str, old_context: str | None, fmt: str | None = None,
                   output: str | None = None, report: str | None = None):
    """Run a batch of ``paths`` into ``open_sinks`` (jsonl into ``output``, if named); the sink."""
    fmt = fmt or ("jsonl" if output else "none")
    cfg = config_from_env({"CRDS_PATH": str(CACHE), "CRDS_READONLY_CACHE": "1"})
    new = get_evaluator(context, cfg, "hst").context
    changed = old_name = None
    if old_context:
        old = get_evaluator(old_context, cfg, "hst").context
        changed, old_name = changed_types(old, new), old.name
    spec = BatchSpec(cfg=cfg, context=new.name, observatory="hst", old_context=old_name,
                     changed_types=changed, screen_types=True)
    args = argparse.Namespace(format=fmt, output=output, report=report, verbose=False, print_affected=False)
    assert bestrefs_output.check_arguments(args) is None

    async def drive():
        sink = bestrefs_output.open_sinks(fmt, args, spec)
        try:
            async with contextlib.aclosing(run_batch(discover([str(p) for p in paths]), spec, jobs=1)) as results:
                async for result in results:
                    sink.write(result)
            sink.close()
            return sink
        except BaseException:
            sink.abort()
            raise

    return asyncio.run(drive())
