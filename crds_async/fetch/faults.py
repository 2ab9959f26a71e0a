"""Fault injection for the project's server: latency, a bandwidth cap, and random failures.

Used by tests and benchmarks to show that clients end every transfer either
verified or reported failed.  Fault kinds:

``error500``  answer HTTP 500
``reset``     drop the connection without answering
``truncate``  announce the full length, send part of the body, drop the connection
``corrupt``   send the full length with some bytes flipped
``stall``     send part of the body, then nothing for ``stall_seconds`` (then drop)
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

__all__ = ["FAULT_KINDS", "FaultPlan", "TokenBucket"]

FAULT_KINDS = ("error500", "reset", "truncate", "corrupt", "stall")
#: Kinds that only make sense while a body is being sent.
BODY_FAULTS = frozenset({"truncate", "corrupt", "stall"})


@dataclass
class FaultPlan:
    """What the server does wrong, and how often.

    Parameters
    ----------
    latency : float
        Seconds added before every answer.
    bandwidth : float
        Total bytes/s the server sends, all connections together (0: unlimited).
    rate : float
        Probability that one request gets a fault.
    kinds : tuple of str
        Fault kinds to choose from, uniformly.
    stall_seconds : float
        How long a ``stall`` fault holds the connection silent (bounded).
    rpc : bool
        Also inject ``error500``/``reset`` into JSON-RPC calls (default: downloads only).
    seed : int, optional
        Seed for reproducible fault sequences.
    """

    latency: float = 0.0
    bandwidth: float = 0.0
    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    stall_seconds: float = 30.0
    rpc: bool = False
    seed: int | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s) {sorted(unknown)}; use {', '.join(FAULT_KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate {self.rate} is not between 0 and 1")
        self._random = random.Random(self.seed)

    def choose(self, *, body: bool) -> str | None:
        """The fault for one request, or None."""
        if self.rate <= 0 or self._random.random() >= self.rate:
            return None
        kinds = [k for k in self.kinds if body or k not in BODY_FAULTS]
        if not kinds:
            return None
        kind = self._random.choice(kinds)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return kind

    def corrupt_offset(self, size: int) -> int:
        return self._random.randrange(size) if size else 0


class TokenBucket:
    """Shared bandwidth cap: ``take(n)`` waits until ``n`` more bytes may be sent.

    A token bucket: credit accrues at ``rate`` bytes/s up to ``burst_seconds`` worth,
    as a link's shaper allows a short burst after an idle moment.  Over any interval
    T at most ``rate * (T + burst_seconds)`` bytes pass.
    """

    def __init__(self, rate: float, burst_seconds: float = 0.05) -> None:
        self.rate = rate
        self.burst = rate * burst_seconds
        self._next_free = 0.0  # time at which the bucket is empty with nothing reserved
        self._lock = asyncio.Lock()

    async def take(self, nbytes: int) -> None:
        if self.rate <= 0:
            return
        loop = asyncio.get_running_loop()
        async with self._lock:
            now = loop.time()
            # Unused credit from an idle moment, capped at the burst size.
            start = max(now - self.burst / self.rate, self._next_free)
            self._next_free = start + nbytes / self.rate
            delay = self._next_free - now
        if delay > 0:
            await asyncio.sleep(delay)
