"""What a warm container may remember: API keys, workspaces and rate-limit hints for a while
(entries expire by their own deadline, so a change elsewhere reaches every container in time),
and what is built once (the settings, the DynamoDB client).

Every cache registers itself here, so `reset_all()` (tests, the local runtime) forgets them all:
a new cache cannot leak state from one test to the next by being left off a list."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

_MISSING = object()
_ALL: list[Any] = []  # every WarmCache and once() function of the process


def once(build: Callable[[], Any]) -> Callable[[], Any]:
    """`build()` run on the first call only, its result kept for the container's life."""
    cached = functools.lru_cache(maxsize=1)(build)
    _ALL.append(cached)
    return cached


def reset_all() -> None:
    for cache in _ALL:
        cache.cache_clear()


class WarmCache:
    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: dict[Any, tuple[float, Any]] = {}
        self._max = max_entries
        _ALL.append(self)

    def get(self, key: Any, default: Any = _MISSING) -> Any:
        """The value, or `default` when absent or expired."""
        hit = self._entries.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        return default

    def get_or_load(self, key: Any, load: Any, seconds: float) -> Any:
        """The cached value, or `load()`'s, kept for `seconds` (None and empty results too)."""
        value = self.get(key)
        if value is _MISSING:
            value = load()
            self.put(key, value, seconds)
        return value

    def put(self, key: Any, value: Any, seconds: float) -> None:
        if len(self._entries) >= self._max:  # a flood of distinct keys cannot grow it unbounded
            self._entries.clear()
        self._entries[key] = (time.monotonic() + seconds, value)

    def pop(self, key: Any) -> None:
        self._entries.pop(key, None)

    def cache_clear(self) -> None:
        self._entries.clear()
