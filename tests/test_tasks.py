"""run_all: one TaskGroup, siblings cancelled on a failure, the failure raised as itself."""

from __future__ import annotations

import asyncio

import pytest

from crds_async.errors import FetchError
from crds_async.tasks import run_all


async def test_results_in_order():
    async def value(v, delay):
        await asyncio.sleep(delay)
        return v

    assert await run_all([value(1, 0.02), value(2, 0.0), value(3, 0.01)]) == [1, 2, 3]


async def test_a_failure_cancels_the_others_and_is_raised_as_itself():
    cancelled = []

    async def slow():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def failing():
        await asyncio.sleep(0.01)
        raise FetchError("x.fits: transfer failed")

    with pytest.raises(FetchError, match="x.fits"):
        await asyncio.wait_for(run_all([slow(), failing(), slow()]), timeout=5)
    assert cancelled == [True, True]
