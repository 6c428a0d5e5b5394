"""The two public dialects. Each turns domain answers and errors into its own shapes."""

from __future__ import annotations

from types import ModuleType

from tally.dialects import backstack, v2


def for_path(path: str) -> ModuleType:
    """CounterAPI V2 owns /v2/...; every other path speaks Backstack."""
    return v2 if path == "/v2" or path.startswith("/v2/") else backstack
