"""Rate limits: a token bucket per (caller, method, path), kept in its own DynamoDB table.

The bucket is stored as one number, its "theoretical arrival time" (GCRA, the token bucket's
equivalent form): `tat` is when the bucket will be full again. Taking n tokens moves it n
intervals later; the bucket is empty when `tat` is a whole window ahead of now. That makes a take
a single conditional write with no read:
  not full (tat >= now):  ADD tat :n*interval       IF tat <= now + (capacity - n) * interval
  full or new:            SET tat = now + n*interval IF tat < now (or no item)
A per-container view picks the likely case; a wrong guess returns the item as it was (ALL_OLD),
which decides the next attempt. Worst case three calls; the common case one, or none (a lease).

Leases. A container that takes often from one bucket takes several tokens in one write, the same
write as for one, and gives them out itself. Those n tokens are the stretch of the bucket's
timeline (tat before, tat after] that the write moved past: no other container can be given a
moment of it. The container spends it as the bucket would: a token is the next interval of the
stretch after max(where it got to, now), so one it did not spend in time is gone, never saved up
(a token spent at `now` always lies in (now, now + window], the rule that bounds a GCRA to
capacity + refill over any interval, across every container, whoever holds which stretch). So a
lease never admits more than the bucket would, and what a container holds unspent is only
withheld from the others: at most LEASE_SECONDS of the bucket's refill, and back as the stretch
passes, whether the container lives or dies. README: Rate limits.

Which buckets a request takes from (`admit`, README: Rate limits):
  - a caller with a valid key: one bucket per key x method x path, the path in canonical form
    (tally.http.Request.limit_path), so one counter or number spelt many ways is one bucket;
    and, before a path this container has not taken from within a window, one token from the
    key's bucket of new paths (SPREAD x the quota per window): varying the path cannot multiply
    a key's allowance without limit, and a busy path costs at most one write a request;
  - anyone else (no key, one that is not valid, or a key of another workspace than the path's):
    one bucket per address and workspace (an
    existing one; every other path shares one bucket per address). At most one write per
    request, refused or not, however the path varies.
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import dataclass, field
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

# A container leases once it has taken about LEASE_AFTER tokens from a bucket within the last
# LEASE_SECONDS (5 a second, or a burst of 10); below that every take is one token, as it was.
# A lease is sized to last about LEASE_REQUESTS requests at the rate this container sees, and
# never covers more than LEASE_SECONDS of the bucket's refill: what one container can withhold
# from the others (2 s of a 60 s window: 1/30 of the capacity).
LEASE_AFTER = 10
LEASE_SECONDS = 2
LEASE_REQUESTS = 100
_TAU = LEASE_SECONDS * 1_000_000  # µs over which a take counts less by a factor e


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


@dataclass
class _Seen:
    """What one container knows of one bucket, under the policy it took with (`interval`, `quota`:
    another policy starts afresh, dropping any lease)."""

    interval: int
    quota: int
    tat: int = 0  # the bucket's tat as this container last wrote or read it
    leases: list[list[int]] = field(default_factory=list)  # [next, end]: stretches it holds
    recent: float = 0.0  # takes here lately, each counting less as LEASE_SECONDS pass
    counted_at: int = 0
    since: int = 0  # when this run of takes began (the count covers no more than since then)

    def count(self, now: int) -> None:
        elapsed = max(0, now - self.counted_at)
        self.recent *= math.exp(-elapsed / _TAU)
        if self.recent < 1:  # idle until now: a new run of takes
            self.since = now
        self.recent += 1
        self.counted_at = now

    def spend(self, now: int) -> bool:
        """Give a token from a lease: the next interval after max(where it got to, now). A lease
        with no whole interval left before its end is done (spent, or passed by)."""
        given = False
        for lease in self.leases:
            start = max(lease[0], now)
            if not given and start + self.interval <= lease[1]:
                lease[0] = start + self.interval
                given = True
        self.leases = [lease for lease in self.leases if max(lease[0], now) < lease[1]]
        return given

    def lease_size(self, now: int) -> int:
        """Tokens to take in the next write: one, unless this container is busy on the bucket;
        then enough for about LEASE_REQUESTS requests at its rate before the stretch passes (a
        caller slower than the refill needs the refill of the time they take), and never more
        than LEASE_SECONDS of refill."""
        if self.recent < LEASE_AFTER:
            return 1
        counted_over = _TAU * -math.expm1(-(now - self.since) / _TAU)  # µs `recent` stands for
        refill_per_take = counted_over / (self.recent * self.interval)  # refill rate / take rate
        wanted = LEASE_REQUESTS * max(1.0, refill_per_take)
        most = LEASE_SECONDS * 1_000_000 // self.interval
        return max(1, min(self.quota, most, int(wanted)))

    def decision(self, policy: Policy, now: int) -> Decision:
        """An admission as this container sees the bucket: what it holds unspent, plus what the
        table had when it last wrote or read it (other containers' takes since are not in it)."""
        held = sum(end - max(start, now) for start, end in self.leases)
        owed = max(0, max(self.tat, now) - now - held)  # of the timeline, spent ahead of now
        return Decision(
            policy,
            allowed=True,
            remaining=max(0, (policy.quota * self.interval - owed) // self.interval),
            full_in_s=math.ceil(owed / 1_000_000),
        )


class Container:
    """One warm container's part in the limits: what it has seen of each bucket and the leases
    it holds. A Lambda process is one container (`take` and `admit` below use its one); tests
    build several to play several containers against one table. The lock is for `tally serve`,
    whose threads share a process."""

    def __init__(self) -> None:
        self._seen = WarmCache()  # bucket -> _Seen, for a window after its last take
        self._lock = threading.Lock()

    def knows(self, bucket: str) -> bool:
        return self._seen.get(bucket, None) is not None

    def take(self, bucket: str, policy: Policy = DEFAULT, *, client: Any = None) -> Decision:
        """Take one token for a request: from a lease this container holds, else from the
        table (several at once when this container is busy on the bucket)."""
        now = clock.now_us()
        with self._lock:
            seen = self._seen.get(bucket, None)
            if seen is None or (seen.interval, seen.quota) != (policy.interval_us, policy.quota):
                seen = _Seen(policy.interval_us, policy.quota, tat=seen.tat if seen else 0)
            self._seen.put(bucket, seen, policy.window)
            seen.count(now)
            if seen.spend(now):
                return seen.decision(policy, now)
            # No more than were left when it last saw the bucket (tat only grows): a lease into a
            # nearly empty bucket would otherwise be refused once before the take that fits.
            seen_left = (now + policy.quota * policy.interval_us - seen.tat) // policy.interval_us
            tokens = max(1, min(seen.lease_size(now), seen_left))
            full = seen.tat < now
        return self._write(bucket, policy, seen, now, tokens, full, client or aws.dynamodb())

    def _write(
        self, bucket: str, policy: Policy, seen: _Seen, now: int, tokens: int, full: bool, client
    ) -> Decision:
        interval, quota = policy.interval_us, policy.quota
        expires = math.ceil((now + quota * interval) / 1_000_000) + _TTL_MARGIN_S
        for attempt in range(_TRIES):
            if attempt == _TRIES - 1:
                tokens = 1  # the last try asks for one token, which settles (tat only grows)
            span = tokens * interval
            if full:
                update = stored.start(now, span, expires)
            else:
                update = stored.take(now, span, now + quota * interval - span, expires)
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
                left = (now + quota * interval - max(tat or 0, now)) // interval
                with self._lock:
                    seen.tat = max(seen.tat, tat or 0)
                if left < 1:  # empty: refused, and nothing was written
                    latest = now + (quota - 1) * interval  # the last tat at which a token is left
                    return Decision(
                        policy,
                        allowed=False,
                        remaining=0,
                        full_in_s=math.ceil((tat - now) / 1_000_000),
                        retry_after_s=max(1, math.ceil((tat - latest) / 1_000_000)),
                    )
                tokens, full = min(tokens, left), tat is None or tat < now
                continue
            tat = stored.tat(answer["Attributes"])
            with self._lock:
                seen.tat = max(seen.tat, tat)
                first = tat - span + interval  # this request's token: the stretch's first
                if first < tat:  # the rest of the stretch is this container's lease
                    seen.leases.append([first, tat])
                    seen.leases.sort()
                return seen.decision(policy, now)
        raise RuntimeError("rate limit bucket did not settle")  # unreachable: tat only grows


# The one container this process is.
_container = Container()


def take(bucket: str, policy: Policy = DEFAULT, *, client: Any = None) -> Decision:
    """Take one token from `bucket` (Container.take, this process's container)."""
    return _container.take(bucket, policy, client=client)


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
    # A key of another workspace has no right here beyond anyone's (a public counter): it is
    # limited as anyone is, by address. Else each key its workspace mints (600 a minute) would
    # bring a bucket of this workspace's quota of its own.
    foreign = policy is not None and home is not None and workspace != home
    if key_id is None or foreign:
        bucket = f"ip:{address}#{workspace if policy else '*'}"
        return take(bucket, (policy or DEFAULT).anonymous, client=client)
    policy = policy or policy_for(home, client=client) or DEFAULT
    bucket = bucket_id(f"key:{key_id}", method, path)
    # A path this container has not taken from within a window is new, as far as it knows: it
    # costs a token of the key's new paths first. Until that is given the path's own bucket is
    # not touched, so a refused new path is still new when it is sent again.
    if not _container.knows(bucket):
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
