"""One bounded memo: a dict that forgets everything when full.

Memos of pure functions (parsed files, conditioned values, layouts) must not grow
without bound over a million-dataset batch.  Clearing all at once keeps each
lookup a plain dict lookup; what is still in use is relearned at once.  Each memo
is owned by the object it serves (an evaluator, a reader), not a module global,
except where a process-wide one is the point (a parsed server_config).
"""

from __future__ import annotations

__all__ = ["BoundedMemo"]


class BoundedMemo(dict):
    """``memo.put(key, value)`` stores, first clearing the memo when it holds ``limit`` entries."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        if limit < 1:
            raise ValueError("a memo holds at least one entry")
        self.limit = limit

    def put(self, key, value):
        """Store ``value`` under ``key`` and return it."""
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value
