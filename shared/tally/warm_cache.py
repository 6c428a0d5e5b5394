"""What a warm container may remember for a while: API keys, workspace rate-limit policies and
rate-limit hints.
Entries expire by their own deadline, so a change elsewhere reaches every container in time."""

from __future__ import annotations

import time
from typing import Any

_MISSING = object()


class WarmCache:
    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: dict[Any, tuple[float, Any]] = {}
        self._max = max_entries

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

    def clear(self) -> None:
        self._entries.clear()
