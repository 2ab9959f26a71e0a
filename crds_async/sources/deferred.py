"""Dataset parameters fetched where they are evaluated, not where the batch is read.

A batch item ``(dataset id, source)`` whose source is a :class:`Deferred` carries where the
parameters are (a dump's line, a server's page), not the parameters: the process that reads
the input only lists ids, and a worker (a pool process, a cluster task) gets them itself.
:func:`prefetch` lets each kind get a task's worth at once (one read, one call), then
:meth:`Deferred.parameters` gives each dataset's, or raises that dataset's error.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Deferred", "prefetch"]


class Deferred:
    """Where one dataset's parameters are; subclasses say how to get them."""

    __slots__ = ()

    def parameters(self) -> dict:
        """The dataset's parameters (raises a :class:`~crds_async.errors.HeaderError`
        subclass naming the dataset and the problem)."""
        raise NotImplementedError

    def identity(self) -> bytes:
        """What identifies the dataset's source in a journal (its place, not its content)."""
        raise NotImplementedError

    @classmethod
    def prefetch(cls, group: list) -> None:
        """Get the parameters of ``group`` (all of this class) at once, where that is
        cheaper.  A dataset's own problem is left for its :meth:`parameters` to raise; what
        raises here fails the whole task (a server gone after its retries)."""


def prefetch(sources: Iterable[object]) -> None:
    """:meth:`Deferred.prefetch` of the deferred ``sources``, kind by kind."""
    groups: dict[type, list] = {}
    for source in sources:
        if isinstance(source, Deferred):
            groups.setdefault(type(source), []).append(source)
    for kind, group in groups.items():
        kind.prefetch(group)
