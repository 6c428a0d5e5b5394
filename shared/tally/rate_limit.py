"""Rate limits: a token bucket per (caller, method, path), kept in its own DynamoDB table.

The bucket is stored as one number, its "theoretical arrival time" (GCRA, the token bucket's
equivalent form): `tat` is when the bucket will be full again. Taking a token moves it one
interval later; the bucket is empty when `tat` is a whole window ahead of now. That makes a take
a single conditional write with no read:
  not full (tat >= now):  ADD tat :interval        IF tat <= now + (capacity - 1) * interval
  full or new:            SET tat = now + interval IF tat < now (or no item)
A per-container hint picks the likely case; a wrong guess returns the item as it was (ALL_OLD),
which decides the next attempt. Worst case three calls; the common case one.

Which buckets a request takes from (`admit`, README: Rate limits):
  - a caller with a valid key: one bucket per key x method x path, the path in canonical form
    (tally.http.Request.limit_path), so one counter or number spelt many ways is one bucket;
    and, before a path this container has not taken from within a window, one token from the
    key's bucket of new paths (SPREAD x the quota per window): varying the path cannot multiply
    a key's allowance without limit, and a busy path costs one write a request;
  - anyone else (no key, or one that is not valid): one bucket per address and workspace (an
    existing one; every other path shares one bucket per address). One write per request,
    refused or not, however the path varies.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from tally import aws, clock, workspaces
from tally.config import settings
from tally.items import bucket as stored
from tally.warm_cache import WarmCache

_TRIES = 3
_TTL_MARGIN_S = 60


# A key may open this many new path buckets per window for every request its quota allows on
# one path: room for a backend touching many counters, a limit to one inventing paths.
SPREAD = 10


@dataclass(frozen=True)
class Policy:
    quota: int = 600  # requests per window = the bucket's capacity
    window: int = 60  # seconds to refill from empty
    name: str = "default"
    counts: str = "requests per {window} s on this path"  # what one bucket counts

    @property
    def anonymous(self) -> Policy:
        counts = "requests per {window} s from this address to this workspace"
        return Policy(self.quota, self.window, self.name, counts)

    @property
    def spread(self) -> Policy:
        counts = "new paths per {window} s for this API key"
        return Policy(self.quota * SPREAD, self.window, "new-paths", counts)

    def describe(self) -> str:
        """What this policy limits, for a 429: "600 requests per 60 s on this path"."""
        return f"{self.quota} {self.counts.format(window=self.window)}"

    @property
    def interval_us(self) -> int:
        return round(self.window * 1_000_000 / self.quota)

    @property
    def header(self) -> str:
        return f'"{self.name}";q={self.quota};w={self.window}'


DEFAULT = Policy()


@dataclass(frozen=True)
class Decision:
    policy: Policy
    allowed: bool
    remaining: int
    full_in_s: int  # seconds until the bucket is full again
    retry_after_s: int = 0

    def headers(self) -> dict[str, str]:
        out = {
            "RateLimit-Policy": self.policy.header,
            "RateLimit": f'"{self.policy.name}";r={self.remaining};t={self.full_in_s}',
            "X-RateLimit-Limit": str(self.policy.quota),
            "X-RateLimit-Remaining": str(self.remaining),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after_s)
        return out


def bucket_id(caller: str, method: str, path: str) -> str:
    # Paths can be long and arbitrary; the key stays short and fixed-size.
    return f"{caller}#{method}#{hashlib.sha256(path.encode()).hexdigest()[:32]}"


# bucket -> the last tat this container saw, kept for a window (after it, the bucket is full anyway)
_hints = WarmCache()


def take(bucket: str, policy: Policy = DEFAULT, *, client: Any = None) -> Decision:
    """Take one token from `bucket`, or learn when one will be there."""
    client = client or aws.dynamodb()
    now = clock.now_us()
    interval = policy.interval_us
    latest = now + (policy.quota - 1) * interval  # the last tat at which a token is left
    expires = math.ceil((now + policy.quota * interval) / 1_000_000) + _TTL_MARGIN_S
    full = _hints.get(bucket, 0) < now
    for _ in range(_TRIES):
        if full:
            update = stored.start(now, interval, expires)
        else:
            update = stored.take(now, interval, latest, expires)
        try:
            answer = client.update_item(
                TableName=settings().rate_limits_table,
                Key=stored.key(bucket),
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **update.params(),
            )
        except client.exceptions.ConditionalCheckFailedException as err:
            tat = stored.tat(err.response.get("Item"))
            if tat is not None and tat > latest:  # empty: refused, and nothing was written
                _hints.put(bucket, tat, policy.window)
                return Decision(
                    policy,
                    allowed=False,
                    remaining=0,
                    full_in_s=math.ceil((tat - now) / 1_000_000),
                    retry_after_s=max(1, math.ceil((tat - latest) / 1_000_000)),
                )
            full = tat is None or tat < now
            continue
        tat = stored.tat(answer["Attributes"])
        _hints.put(bucket, tat, policy.window)
        return Decision(
            policy,
            allowed=True,
            remaining=max(0, (now + policy.quota * interval - tat) // interval),
            full_in_s=math.ceil((tat - now) / 1_000_000),
        )
    raise RuntimeError("rate limit bucket did not settle")  # unreachable: tat only grows


def admit(
    method: str,
    path: str,
    workspace: str | None,
    *,
    key_id: str | None,
    home: str | None = None,
    address: str,
    client: Any = None,
) -> Decision:
    """Take what one request costs (see the module's docstring): the refusal that stops it, or
    the decision on its own path. `workspace` is the one the path names (or the key's), `home`
    the key's own: a key naming a workspace that does not exist keeps its own workspace's limit."""
    policy = policy_for(workspace, client=client)  # None: no such workspace
    if key_id is None:
        bucket = f"ip:{address}#{workspace if policy else '*'}"
        return take(bucket, (policy or DEFAULT).anonymous, client=client)
    policy = policy or policy_for(home, client=client) or DEFAULT
    bucket = bucket_id(f"key:{key_id}", method, path)
    # A path this container has not taken from within a window is new, as far as it knows: it
    # costs a token of the key's new paths first. Until that is given the path's own bucket is
    # not touched, so a refused new path is still new when it is sent again.
    if _hints.get(bucket, None) is None:
        opened = take(f"key:{key_id}#new-paths", policy.spread, client=client)
        if not opened.allowed:
            return opened
    return take(bucket, policy, client=client)


# ------------------------------------------------------------------ per-workspace policies


def policy_for(workspace: str | None, *, client: Any = None) -> Policy | None:
    """The workspace's limit: its own if an operator set one, else the default; None when there
    is no such workspace (tally.workspaces caches both while warm)."""
    found = workspaces.get(workspace, client=client) if workspace else None
    if found is None:
        return None
    if found.rate_limit is None:
        return DEFAULT
    return Policy(*found.rate_limit, "workspace")


def set_policy(workspace: str, quota: int, window: int, *, client: Any = None) -> Policy:
    workspaces.update(workspace, rate_limit=(quota, window), client=client)
    return Policy(quota, window, "workspace")
