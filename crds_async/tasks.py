"""Structured concurrency with the errors callers expect: :func:`run_all`.

``asyncio.TaskGroup`` cancels the siblings of a failed task and waits for them (what bare
``gather`` does not), but raises an ``ExceptionGroup``; callers of this project catch
its own error classes.  :func:`run_all` gives them the first failure itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

__all__ = ["run_all"]

T = TypeVar("T")


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


async def run_all(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Run ``awaitables`` as tasks of one ``TaskGroup``; their results in order.

    On a failure the others are cancelled, and the first failure is raised as itself.
    """
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_awaited(a)) for a in awaitables]
    except BaseExceptionGroup as group_error:
        raise _first_leaf(group_error) from None
    return [task.result() for task in tasks]


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable
