"""Per-client and per-address token buckets: past the rate, a request gets 429 ``rate_limited`` at once.

A bucket holds up to ``burst`` tokens and refills at ``rate`` per second; each request takes one. A refused
request is told, in ``Retry-After``, when its next token will be there. Buckets per source address are kept
for at most ``max_keys`` addresses (least recently seen evicted), so memory stays bounded whatever the
number of addresses. Note that many applicants share an address behind carrier-grade NAT: the per-address
rate is a guard against floods, not a fairness quota.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    """One bucket. Not thread-safe; used from one event loop."""

    rate: float
    burst: int
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take a token: 0.0 when granted, else the seconds until one is available."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """Token buckets by key, bounded in number (LRU)."""

    def __init__(self, rate: float, burst: int, max_keys: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = burst
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def check(self, key: str) -> int:
        """0 when ``key`` may proceed; otherwise the whole seconds to wait (at least 1) before retrying."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self._rate, self._burst, float(self._burst), now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        wait = bucket.take(now)
        return 0 if wait == 0.0 else max(1, math.ceil(wait))

    def __len__(self) -> int:
        return len(self._buckets)
