"""Sharded counters: one counter's changes spread over N items (`"shards": 1..64` in its
settings), so that it takes more than one item's 1,000 write units a second, with every promise
kept: each change counted once, reads strongly consistent, bounds exact, events on the total.

The items (tally.items.counter): shard 0 is the counter's own item, with the settings and `sh`
= N; shard i >= 1 is keyed `"<workspace>/<counter>/<i>"`, so a Query of the workspace (the
listings, the counts) never meets it. An unsharded counter (N = 1, the default) is written and
read exactly as before: the same calls and write units.

**A change** goes to one shard, picked by a jump consistent hash of the operation id (a retry of
the same operation meets the same shard, and its `lop`), as one conditional UpdateItem that
ADDs to the shard: the common case is one write, as unsharded. Its answer is the sum of the
shards after it: the write's own ALL_NEW plus one BatchGetItem of the others.

**Room, escrowed.** Conditions cannot add up items, so each shard holds a share of the room
(`ru`/`rd`, and `ku`/`kd` for the up/down totals' 64 bits) and a change is checked against its
shard's share only. The shares add up to the room of the counter's *band*: the range the value
may move in without reaching a level anything watches, i.e. the bounds, the billing threshold and
the alert levels (from just below the next level above the value down to the highest level at or
below it; a bound itself is reached only through a global operation). So no change on one shard
can pass a bound, and none crosses a level unseen: the events of a sharded counter are exact.
- A shard short of room takes some from the others: one BatchGetItem, then one
  TransactWriteItems that ADDs to it what it takes from the richest (each taken only if still
  there): the total is kept, no freeze.
- When the band's room as read is not enough, the change runs as a **global operation**: it
  freezes every shard (one transaction setting `fz`, an expiry: a crashed operation lets go by
  itself), reads them all (a true snapshot: nothing can land on a frozen shard), decides on the
  exact total (apply the change, crossing a level or reaching a bound, or refuse it: 409 only
  when the whole counter truly has no room), and writes every shard in one transaction, which
  releases them and re-splits the room of the new band. That transaction requires every shard
  to be as the snapshot read it, so an operation whose freeze expired meanwhile changes nothing
  and starts again.
- set and reset are global operations: the value is exactly the one set at one instant (shard 0
  gets it, the others 0) and changes after it count on top of it; so are settings changes on a
  sharded counter and resharding.

**Resharding** (N up or down, a global operation) never loses or double counts a change in
flight: a change either landed before the freeze (it is in the snapshot, and a removed shard's
part is folded into shard 0 in the same transaction that deletes it) or is refused (frozen, or
its shard gone: its condition requires the shard) and sent again to a shard of the new N.

**Reads** sum the shards with one strongly consistent BatchGetItem, not TransactGetItems: a
transactional read is cancelled by any write in flight on its items, which on a hot counter is
always. Each item read is strongly consistent, so a read holds every change answered before it
began. It is checked, and read again (then read with TransactGetItems, a snapshot) if its items
come from either side of a global operation (every shard carries the last one's id, `gx`) or
its sum is outside the bounds (a room moved between shards while they were read).

**History and events** (from the stream, one record per shard item): a change on a shard is that
shard's deltas (history's buckets keep one sequence number per shard); a global operation is
told once, by shard 0's record, which carries its summary (`go`, `gn`, `gu`, `gd`: the total
before and after, and the up and down it applied); the other items it wrote are skipped.
"""

from __future__ import annotations

import random
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tally import aws, clock
from tally import operation as operations
from tally.config import settings
from tally.errors import AppliedUnread, Conflict, OutcomeUnknown, TallyError, Unavailable
from tally.items import counter as stored
from tally.items.counter import CounterItem, Refusal
from tally.items.expression import Update
from tally.names import INT64_MAX, INT64_MIN
from tally.telemetry import count, logger
from tally.warm_cache import WarmCache

FREEZE_MS = 2_000  # how long a global operation may hold a counter before it lets go by itself
_TRIES = 60  # attempts of a change or a global operation (waits for a frozen counter included)
_KNOWN_SECONDS = 60
_known = WarmCache()  # (workspace, counter) -> N, for sharded counters only


# ------------------------------------------------------------------ which shard


def known(workspace: str, name: str) -> int:
    """N as this container last saw it (1 unless it saw the counter sharded)."""
    return _known.get((workspace, name), 1)


def learn(workspace: str, name: str, shards: int) -> None:
    if shards > 1:
        _known.put((workspace, name), shards, _KNOWN_SECONDS)
    else:
        _known.pop((workspace, name))


def jump(key: int, buckets: int) -> int:
    """Lamping and Veach's jump consistent hash: from N to N+1 buckets, only 1/(N+1) keys move."""
    chosen, j = -1, 0
    while j < buckets:
        chosen = j
        key = (key * 2862933555777941757 + 1) % 2**64
        j = int((chosen + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return chosen


def choose(op: str, shards: int) -> int:
    return jump(zlib.crc32(op.encode()), shards)


# ------------------------------------------------------------------ the band and its room


def levels(item: CounterItem) -> list[int]:
    """The values something watches upward (tally.events): the upper bound, the billing
    threshold, the alert levels."""
    found = [level for _, level in item.alert_levels()]
    if item.upper_bound is not None:
        found.append(item.upper_bound)
    if item.billing is not None:
        found.append(item.billing[0])
    return found


def rooms(total: CounterItem, settings_of: CounterItem, shards: int) -> list[dict[str, int]]:
    """Each shard's share of the room, for a counter whose sum is `total` and whose settings are
    `settings_of`'s. Unsharded: the room to the bounds themselves (as tally.items.counter keeps
    it). Sharded: the room of the band, and of the totals' 64 bits, split evenly."""
    value, hi, lo = total.value, settings_of.upper_bound, settings_of.lower_bound
    hard_max = INT64_MAX if hi is None else hi
    hard_min = INT64_MIN if lo is None else lo
    if shards == 1:
        return [{"up": hard_max - value, "down": value - hard_min}]
    watched = levels(settings_of)
    above = [level for level in watched if level > value]
    top = min(min(above) - 1, hard_max) if above else hard_max
    under = [level for level in watched if level <= value]
    floor = max([*under, hard_min])  # never below the lower bound, whatever the levels
    if lo is not None and value > lo:
        floor = max(floor, lo + 1)  # reaching the lower bound is an event too
    whole = {
        "up": max(top - value, 0),
        "down": max(value - floor, 0),
        "ups": INT64_MAX - total.up_count,
        "downs": INT64_MAX - total.down_count,
    }
    out = []
    for shard in range(shards):
        share = {name: amount // shards for name, amount in whole.items()}
        if shard == 0:
            share = {
                name: amount - (amount // shards) * (shards - 1) for name, amount in whole.items()
            }
        out.append(share)
    return out


# ------------------------------------------------------------------ reading


def _table() -> str:
    return settings().counters_table


def batch_get(client: Any, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items of `keys` that exist, strongly consistent: BatchGetItem, 100 keys a call, keys
    left unprocessed (throttled) asked again a few times, then a 503."""
    table, found, pending = _table(), [], list(keys)
    for attempt in range(5):
        left: list[dict[str, Any]] = []
        for start in range(0, len(pending), 100):
            answer = client.batch_get_item(
                RequestItems={table: {"Keys": pending[start : start + 100], "ConsistentRead": True}}
            )
            found += answer["Responses"].get(table, [])
            left += answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        if not left:
            return found
        pending = left
        time.sleep(random.uniform(0, 0.02 * 2**attempt))
    raise Unavailable("the counter's shards could not be read; retry", retry_after=1)


def _by_shard(raws: list[dict[str, Any]]) -> dict[int, CounterItem]:
    return {stored.identity(raw)[2]: stored.item(raw) for raw in raws}


def read_shards(client: Any, workspace: str, name: str, shards: range) -> dict[int, CounterItem]:
    keys = [stored.key(workspace, name, i) for i in shards]
    return _by_shard(batch_get(client, keys)) if keys else {}


def _consistent(items: dict[int, CounterItem]) -> bool:
    """Whether items read one by one make a counter that was: one side of every global
    operation, and no room caught on its way between two shards."""
    first = items[0]
    shards = first.shards
    if any(i >= shards for i in items):
        return False  # read before a shrink deleted them, shard 0 after
    if first.sharded and first.split and len(items) < shards:
        return False  # a shard deleted and shard 0 read before it was folded in
    if len({item.global_op for item in items.values()}) > 1:
        return False
    total = stored.combine([items[i] for i in sorted(items)])
    hi, lo = first.upper_bound, first.lower_bound
    return (hi is None or total.value <= hi) and (lo is None or total.value >= lo)


def total(
    client: Any,
    workspace: str,
    name: str,
    shards: int,
    given: dict[int, CounterItem] | None = None,
) -> CounterItem:
    """The counter summed over its shards (shard 0 from `given`, or read; `shards`: N as known):
    one BatchGetItem in the common case; an empty item if it was never created."""
    given = dict(given or {})
    for _ in range(3):
        wanted = [i for i in range(shards) if i not in given]
        items = dict(given)
        if wanted:
            keys = [stored.key(workspace, name, i) for i in wanted]
            items |= _by_shard(batch_get(client, keys))
        first = items.get(0)
        if first is None or not first.exists:
            return stored.item(None)
        if first.shards > shards:  # more shards than this container knew
            items |= read_shards(client, workspace, name, range(shards, first.shards))
        learn(workspace, name, first.shards)
        if _consistent(items):
            return stored.combine([items[i] for i in sorted(items)])
        shards, given = max(first.shards, 1), {}
    return _snapshot(client, workspace, name, shards)


def after(
    client: Any,
    workspace: str,
    name: str,
    shards: int,
    given: dict[int, CounterItem] | None = None,
) -> CounterItem:
    """The counter after a change (or a global operation) this request made: its `total`, read
    patiently (tally.aws.patiently). If it still cannot be read the change is not undone, nor
    answered with a 503 that invites sending it again (counting it twice): AppliedUnread says it
    was made, final under an Idempotency-Key."""
    try:
        return aws.patiently(lambda: total(client, workspace, name, shards, given))
    except (ClientError, BotoCoreError, Unavailable) as err:
        raise _reported(AppliedUnread(), workspace, name, err) from err


def _reported(answer: OutcomeUnknown, workspace: str, name: str, err: Exception) -> Exception:
    """A change's final 503 (it must not be sent again): logged and counted under its name."""
    what = type(answer).__name__
    logger.warning(
        f"a change that may have been applied is answered {what}",
        extra={"workspace": workspace, "counter": name, "error": repr(err)},
    )
    count(what)
    return answer


def checked(
    client: Any, workspace: str, name: str, first: CounterItem, parts: dict[str, dict[int, Any]]
) -> CounterItem:
    """A listed sharded counter: shard 0 as the Query read it and its other shards (`parts`,
    by counter) summed, or read again whole if they do not make one counter."""
    items = {0: first} | parts.get(name, {})
    if _consistent(items):
        return stored.combine([items[i] for i in sorted(items)])
    return total(client, workspace, name, first.shards)


def _snapshot(client: Any, workspace: str, name: str, shards: int) -> CounterItem:
    """The shards in one TransactGetItems: a snapshot, when reads one by one kept disagreeing."""
    table = _table()
    try:
        answer = client.transact_get_items(
            TransactItems=[
                {"Get": {"TableName": table, "Key": stored.key(workspace, name, i)}}
                for i in range(shards)
            ]
        )
    except ClientError as err:
        if aws.error_code(err) == "TransactionCanceledException":
            raise Unavailable("the counter is changing too fast to read; retry") from err
        raise
    items = [stored.item(r.get("Item")) for r in answer["Responses"]]
    if not items[0].exists:
        return stored.item(None)
    return stored.combine([item for item in items if item.exists])


# ------------------------------------------------------------------ a change


@dataclass
class Outcome:
    """What a sharded change did: the counter after it, or the refusal and the counter as the
    global operation saw it (to word the 409)."""

    item: CounterItem
    refusal: Refusal | None = None


def change(
    client: Any,
    workspace: str,
    name: str,
    delta: int,
    at: Any,
    *,
    open_to: str | None,
    op: str,
    shards: int,
    send: Callable[[int, Update], tuple[CounterItem, Refusal | None]],
) -> Outcome | None:
    """A change to a sharded counter (`shards`: N as known): one conditional write to one
    shard in the common case; room moved when its shard is short; a global operation when the
    band's room is not enough (exact: applied, or refused for want of room in the whole
    counter). `send(shard, update)` writes one shard as tally.counters writes the counter.
    None: the counter is not sharded (any more); send the change unsharded."""
    rollover: dict[int, str] = {}
    for _ in _attempts():
        shard = choose(op, shards)
        update = stored.change(
            delta,
            at,
            rollover.get(shard, "same_day"),
            open_to=open_to,
            sharded=True,
            now_ms=clock.now_ms(),
        )
        item, refusal = send(shard, update)
        if refusal in (None, Refusal.APPLIED):
            return Outcome(after(client, workspace, name, shards, given={shard: item}))
        if refusal in (Refusal.STALE_DAY, Refusal.RACED):
            rollover[shard] = item.rollover(at)
        elif refusal is Refusal.NOT_OPEN:
            return Outcome(item, refusal)
        elif refusal is Refusal.FROZEN:
            _wait(item)
        elif refusal is Refusal.UNSHARDED:
            first = _shard0(client, workspace, name)
            if not first.sharded:
                learn(workspace, name, 1)
                return None
            shards = first.shards
            learn(workspace, name, shards)
            if first.frozen(clock.now_ms()):
                _wait(first)
            elif shard < shards:  # the shard should be there: an operation that never ended
                run(client, workspace, name, Reshard(shards))
        elif refusal is Refusal.SHORT and not _rebalance(
            client, workspace, name, shards, shard, delta
        ):
            apply = Apply(shard, delta, at, op, open_to)
            refused = _refused(client, workspace, name, shards, apply)
            if refused is not None:
                return refused
            outcome = run(client, workspace, name, apply)
            if outcome is not None and outcome.refusal is not Refusal.FROZEN:
                return outcome
            _wait(stored.item(None))  # another global operation holds it: try the change again
    raise Unavailable("the counter is changing too fast to record; retry", retry_after=1)


def _refused(client: Any, workspace: str, name: str, shards: int, apply: Apply) -> Outcome | None:
    """A change the whole counter has no room for, refused on a snapshot of its shards read in
    one TransactGetItems (a refusal writes nothing, so it needs no freeze); None if it may fit,
    or the snapshot could not be read (a write in flight cancelled it)."""
    try:
        answer = client.transact_get_items(
            TransactItems=[
                {"Get": {"TableName": _table(), "Key": stored.key(workspace, name, i)}}
                for i in range(shards)
            ]
        )
    except ClientError as err:
        if aws.error_code(err) == "TransactionCanceledException":
            return None
        raise
    items = {i: stored.item(r.get("Item")) for i, r in enumerate(answer["Responses"])}
    items = {i: item for i, item in items.items() if item.exists}
    if 0 not in items or items[0].shards != shards:
        return None
    outcome = apply.judge(Snapshot(items))
    return outcome if outcome is not None and outcome.refusal is not None else None


def _attempts() -> Iterator[int]:
    """Attempts (a busy counter's global operations take turns): each a few calls, or a wait of
    at most 50 ms, so that 60 of them end well within a function's 10 s."""
    yield from range(_TRIES)


def _shard0(client: Any, workspace: str, name: str) -> CounterItem:
    answer = client.get_item(
        TableName=_table(), Key=stored.key(workspace, name), ConsistentRead=True
    )
    return stored.item(answer.get("Item"))


def _wait(item: CounterItem) -> None:
    """A frozen shard: wait a moment (a global operation takes a few round trips)."""
    time.sleep(random.uniform(0.01, 0.05))


def _rebalance(client: Any, workspace: str, name: str, shards: int, short: int, delta: int) -> bool:
    """Move room to the `short` shard from the others, in one transaction, so that it holds what
    the change needs and, if there is enough, an even share. False when the band's room as read
    is not enough (or a shard is frozen or missing): the caller runs a global operation."""
    items = read_shards(client, workspace, name, range(shards))
    now = clock.now_ms()
    if len(items) < shards or any(item.frozen(now) for item in items.values()):
        return False
    need = abs(delta)
    kinds = ("up", "ups") if delta > 0 else ("down", "downs")
    moves: dict[int, dict[str, int]] = {}
    for kind in kinds:
        held = {i: item.room(kind) for i, item in items.items()}
        whole = sum(held.values())
        if whole < need:
            return False
        want = max(need, whole // shards) - held[short]
        if want <= 0:
            continue
        fair = whole // shards
        donors = sorted((i for i in held if i != short), key=lambda i: -held[i])
        for floor in (fair, 0):  # what is above a fair share first, then the rest
            for i in donors:
                give = min(max(held[i] - floor, 0), want)
                if give:
                    held[i] -= give
                    want -= give
                    moves.setdefault(i, {})[kind] = moves.get(i, {}).get(kind, 0) - give
                    moves.setdefault(short, {})[kind] = moves.get(short, {}).get(kind, 0) + give
        if want > 0:
            return False
    if not moves:
        return True
    try:
        client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": _table(),
                        "Key": stored.key(workspace, name, i),
                        **stored.move_room(amounts, now).params(),
                    }
                }
                for i, amounts in sorted(moves.items())
            ]
        )
    except ClientError as err:
        if aws.error_code(err) != "TransactionCanceledException":
            raise
    count("ShardRebalances")
    return True


# ------------------------------------------------------------------ global operations


@dataclass
class Plan:
    """What a global operation writes, decided on its snapshot."""

    shards: int
    states: dict[int, dict[str, int]]
    summary: tuple[int, int, int, int]
    settings_of: CounterItem  # shard 0's settings as the operation leaves them
    base: Update | None = None  # shard 0's settings write
    stamped: int | None = None  # the shard a change or a set is stamped on
    op: str = ""  # the change's or set's operation (its `lop`)
    gx: str = ""  # this global operation's id
    now_ms: int = 0
    result: Outcome | None = None  # set: nothing to write (refused, or applied before)
    # Items of other tables written in the same transaction (a billing run's invoice item).
    extra: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Snapshot:
    items: dict[int, CounterItem]
    states: dict[int, dict[str, int]] = field(default_factory=dict)

    @property
    def first(self) -> CounterItem:
        return self.items[0]

    @property
    def shards(self) -> int:
        return self.first.shards

    def whole(self) -> CounterItem:
        return stored.combine([self.items[i] for i in sorted(self.items)])

    def base_states(self, shards: int) -> dict[int, dict[str, int]]:
        """Each shard's state under `shards` shards: a removed shard folded into shard 0."""
        states = {
            i: stored.periods(self.items[i]) if i in self.items else {} for i in range(shards)
        }
        for i, item in self.items.items():
            if i >= shards:
                states[0] = stored.fold(states[0], stored.periods(item))
        return states


class Operation:
    """A global operation: `target` is N after it (from shard 0 as read first), `decide` the
    plan on the snapshot (raising a TallyError refuses it, and lets the counter go)."""

    patient = True  # waits its turn; a change's operation gives up soon and is sent again
    answered = True  # its outcome is the counter after it (a billing run's is not: no read)

    def target(self, first: CounterItem) -> int:
        return first.shards

    def decide(self, snap: Snapshot, op: str, now_ms: int) -> Plan:
        raise NotImplementedError


def run(client: Any, workspace: str, name: str, operation: Operation) -> Outcome | None:
    """Freeze every shard, read them, write the plan in one transaction that lets them go.
    A change's operation that finds the counter held by another returns Outcome(FROZEN)."""
    for attempt in _attempts():
        if attempt >= 2 and not operation.patient:
            return Outcome(stored.item(None), Refusal.FROZEN)
        first = _shard0(client, workspace, name)
        if first.frozen(clock.now_ms()):
            _wait(first)  # another global operation's turn
            continue
        current = first.shards
        existing = {0: first} | read_shards(client, workspace, name, range(1, current))
        target = operation.target(first)
        if not first.sharded and target == 1:
            return None  # unsharded: tally.counters writes it as ever
        now = clock.now_ms()
        until = now + FREEZE_MS
        freezes = [
            (i, stored.freeze(until, now, shard=i, sharded=first.sharded, shards=target))
            for i in sorted(existing)
        ]
        if not _write_all(client, workspace, name, [("Update", i, u) for i, u in freezes]):
            _wait(first)
            continue
        items = read_shards(client, workspace, name, range(max(current, target)))
        if 0 not in items or any(not item.frozen(now) for item in items.values()):
            continue  # (cannot be: they are held) read again from the start
        snap = Snapshot(items)
        gx = _op_id()
        try:
            plan = operation.decide(snap, gx, now)
            plan.gx = gx
        except TallyError:
            _let_go(client, workspace, name, snap, until, unshard=not first.sharded)
            raise
        if plan.result is not None:
            _let_go(client, workspace, name, snap, until, unshard=not first.sharded)
            return plan.result
        writes = _writes(workspace, name, snap, plan, until)
        if _write_plan(client, workspace, name, writes, plan, operation):
            learn(workspace, name, plan.shards)
            count("ShardGlobalOperations")
            if not operation.answered:
                return Outcome(stored.item(None))
            return Outcome(after(client, workspace, name, plan.shards))
    raise Unavailable("the counter is changing too fast to record; retry", retry_after=1)


def _op_id() -> str:
    return f"g{random.getrandbits(64):016x}"


def _writes(
    workspace: str, name: str, snap: Snapshot, plan: Plan, until: int
) -> list[tuple[str, int, Any]]:
    shares = rooms(stored.total_of(list(plan.states.values())), plan.settings_of, plan.shards)
    writes: list[tuple[str, int, Any]] = []
    for i in range(plan.shards):
        if i in snap.items:
            update = stored.rewrite(
                snap.items[i],
                plan.states[i],
                shares[i],
                op=plan.gx,
                until_ms=until,
                base=plan.base if i == 0 else None,
            )
            if i == 0:
                stored.summarize(update, plan.shards, *plan.summary)
            else:
                stored.mirror(update, plan.settings_of)
            if plan.stamped == i:
                stored.stamp_change(update, plan.op, plan.now_ms)
            writes.append(("Update", i, update))
        else:
            put = stored.new_shard(
                workspace,
                name,
                i,
                shares[i],
                op=plan.gx,
                settings_of=plan.settings_of,
                now_ms=plan.now_ms,
            )
            writes.append(("Put", i, put))
    for i, item in snap.items.items():
        if i >= plan.shards:
            writes.append(("Delete", i, stored.drop(item, until)))
    return writes


def _write_plan(
    client: Any,
    workspace: str,
    name: str,
    writes: list[tuple[str, int, Any]],
    plan: Plan,
    operation: Operation,
) -> bool:
    """A global operation's last write, which lets the counter go: sent patiently with one
    ClientRequestToken (a transaction resent with it after a lost answer is applied once). If it
    still fails it may have been applied: a change's answer is OutcomeUnknown, never a 503 that
    invites sending it again."""
    try:
        return _write_all(client, workspace, name, writes, extra=plan.extra, patient=True)
    except (ClientError, BotoCoreError) as err:
        if not (operation.answered and aws.transient(err)):
            raise
        raise _reported(OutcomeUnknown(), workspace, name, err) from err


def _let_go(
    client: Any, workspace: str, name: str, snap: Snapshot, until: int, *, unshard: bool
) -> None:
    """Release a frozen counter unchanged (a refused operation); a counter this operation had
    begun to shard is unsharded again."""
    writes = []
    for i in snap.items:
        update = stored.release(until)
        if i == 0 and unshard:
            update.remove(stored.SHARDS)
        writes.append(("Update", i, update))
    _write_all(client, workspace, name, writes)


def _write_all(
    client: Any,
    workspace: str,
    name: str,
    writes: list[tuple[str, int, Any]],
    *,
    extra: list[dict[str, Any]] | None = None,
    patient: bool = False,
) -> bool:
    """The writes (and `extra`, items of other tables) in one transaction (one UpdateItem when
    there is one): False if a condition or a conflict cancelled it. `patient`: a transaction that
    fails is sent again (tally.aws.patiently) with the same ClientRequestToken."""
    table = _table()
    if len(writes) == 1 and writes[0][0] == "Update" and not extra:
        _, i, update = writes[0]
        try:
            client.update_item(
                TableName=table, Key=stored.key(workspace, name, i), **update.params()
            )
        except ClientError as err:
            if aws.condition_failed(err):
                return False
            raise
        return True
    items = []
    for kind, i, body in writes:
        if kind == "Put":
            items.append({"Put": {"TableName": table, **body}})
            continue
        params = body.params()
        if kind == "Delete":
            params.pop("UpdateExpression", None)
        items.append({kind: {"TableName": table, "Key": stored.key(workspace, name, i), **params}})
    items += extra or []
    token = uuid.uuid4().hex  # one for every resend of this transaction (botocore's and ours)

    def send() -> Any:
        return client.transact_write_items(TransactItems=items, ClientRequestToken=token)

    try:
        aws.patiently(send) if patient else send()
    except ClientError as err:
        if aws.error_code(err) in ("TransactionCanceledException", "TransactionConflictException"):
            return False
        raise
    return True


# ------------------------------------------------------------------ the operations


class Apply(Operation):
    """A change the band's room could not take: applied on the exact total, or refused."""

    patient = False

    def __init__(self, shard: int, delta: int, at: Any, op: str, open_to: str | None) -> None:
        self.shard, self.delta, self.at, self.op, self.open_to = shard, delta, at, op, open_to

    def decide(self, snap: Snapshot, op: str, now_ms: int) -> Plan:
        shards = snap.shards
        whole = snap.whole()
        shard = self.shard if self.shard in snap.items and self.shard < shards else 0
        mine = snap.items[shard]
        plan = Plan(shards, snap.base_states(shards), (0, 0, 0, 0), snap.first)
        if mine.applied(self.op, now_ms, operations.REPEAT_WINDOW_MS):
            plan.result = Outcome(whole)
            return plan
        plan.result = self.judge(snap)
        if plan.result is not None:
            return plan
        value, amount = whole.value + self.delta, abs(self.delta)
        plan.states[shard] = stored.usage(plan.states[shard], self.delta, self.at)
        up, down = (amount, 0) if self.delta > 0 else (0, amount)
        plan.summary = (whole.value, value, up, down)
        plan.stamped, plan.op, plan.now_ms = shard, self.op, self.at.epoch_ms
        return plan

    def judge(self, snap: Snapshot) -> Outcome | None:
        """The refusal the exact total gives this change, if any."""
        whole = snap.whole()
        if self.open_to is not None and not _open(snap.first, self.open_to):
            return Outcome(whole, Refusal.NOT_OPEN)
        value, amount = whole.value + self.delta, abs(self.delta)
        hi, lo = snap.first.upper_bound, snap.first.lower_bound
        if self.delta > 0 and value > (INT64_MAX if hi is None else hi):
            return Outcome(whole, Refusal.ABOVE_UPPER)
        if self.delta < 0 and value < (INT64_MIN if lo is None else lo):
            return Outcome(whole, Refusal.BELOW_LOWER)
        if self.delta > 0 and whole.up_count > INT64_MAX - amount:
            return Outcome(whole, Refusal.UP_TOTAL_FULL)
        if self.delta < 0 and whole.down_count > INT64_MAX - amount:
            return Outcome(whole, Refusal.DOWN_TOTAL_FULL)
        return None


def _open(first: CounterItem, default_visibility: str) -> bool:
    visibility = first.own_visibility or default_visibility
    return visibility == "public" and first.billing is None


class SetValue(Operation):
    """set / reset on a sharded counter: the value is exactly `value` at one instant."""

    def __init__(self, value: int, at: Any, op: str) -> None:
        self.value, self.at, self.op = value, at, op

    def decide(self, snap: Snapshot, op: str, now_ms: int) -> Plan:
        shards = snap.shards
        whole = snap.whole()
        hi, lo = snap.first.upper_bound, snap.first.lower_bound
        if (hi is not None and self.value > hi) or (lo is not None and self.value < lo):
            raise Conflict(
                f"{self.value} is outside the counter's bounds", fields={"value": "outside bounds"}
            )
        plan = Plan(shards, snap.base_states(shards), (whole.value, self.value, 0, 0), snap.first)
        if snap.first.applied(self.op, now_ms, operations.REPEAT_WINDOW_MS):
            plan.result = Outcome(whole)  # this set was written (its answer lost): not twice
            return plan
        plan.states = {
            i: stored.with_value(state, self.value if i == 0 else 0)
            for i, state in plan.states.items()
        }
        plan.stamped, plan.op, plan.now_ms = 0, self.op, self.at.epoch_ms
        return plan


class Reshard(Operation):
    """N changed (and nothing else), or an operation that never ended repaired."""

    def __init__(self, shards: int) -> None:
        self.shards = shards

    def target(self, first: CounterItem) -> int:
        return self.shards

    def decide(self, snap: Snapshot, op: str, now_ms: int) -> Plan:
        whole = snap.whole()
        return Plan(
            self.shards,
            snap.base_states(self.shards),
            (whole.value, whole.value, 0, 0),
            snap.first,
            now_ms=now_ms,
        )


class Grow(Reshard):
    """Twice the shards (64 at most) for a counter whose changes are throttled; nothing if its N
    is no longer the one that was throttled (another container grew it first)."""

    def __init__(self, seen: int) -> None:
        super().__init__(min(stored.MAX_SHARDS, max(2, seen * 2)))
        self.seen, self.still = seen, True

    def target(self, first: CounterItem) -> int:
        self.still = first.shards == self.seen  # (read before the freeze, which sets N)
        return self.shards if self.still else first.shards

    def decide(self, snap: Snapshot, op: str, now_ms: int) -> Plan:
        if not self.still:
            plan = Plan(snap.shards, {}, (0, 0, 0, 0), snap.first)
            plan.result = Outcome(snap.whole())
            return plan
        return super().decide(snap, op, now_ms)


_GROW_SECONDS = 10
_grown = WarmCache()  # (workspace, counter): grown (or tried) by this container lately


def grow(client: Any, workspace: str, name: str) -> None:
    """A change to this counter was throttled past its retries (its items take no more writes a
    second): double its shards (an unsharded counter gets 2), so that its next changes spread
    over more items. At most once a counter per container per 10 s, so that one burst of
    throttled changes grows it once; and only from the N that was throttled. The throttled change
    itself is answered 503 as ever: it changed nothing. A grow that fails (throttled too) is
    tried on a later throttle. Not at all with TALLY_SHARDS_GROW=off (the stack's ShardsGrow)."""
    if not settings().shards_grow or _grown.get((workspace, name), False):
        return
    _grown.put((workspace, name), True, _GROW_SECONDS)
    seen = known(workspace, name)
    if seen >= stored.MAX_SHARDS:
        return
    try:
        run(client, workspace, name, Grow(seen))
    except (ClientError, BotoCoreError, TallyError) as err:
        logger.warning(
            "could not add shards to a throttled counter",
            extra={"workspace": workspace, "counter": name, "error": repr(err)},
        )
        return
    count("ShardsGrown")


class Settings(Operation):
    """A settings change on a sharded counter (or one that shards it): bounds checked against
    the exact total, the room re-split for the new band, N changed if asked."""

    def __init__(self, change: dict[str, Any], now_ms: int) -> None:
        self.change, self.now_ms = change, now_ms

    def target(self, first: CounterItem) -> int:
        if "shards" not in self.change:
            return first.shards
        return self.change["shards"] or 1

    def decide(self, snap: Snapshot, op: str, now_ms: int) -> Plan:
        shards = self.target(snap.first)
        whole = snap.whole()
        after = stored.with_settings(snap.first, self.change)
        hi, lo = after.upper_bound, after.lower_bound
        if (
            (hi is not None and whole.value > hi)
            or (lo is not None and whole.value < lo)
            or (hi is not None and lo is not None and lo > hi)
        ):
            raise Conflict(
                f"the new bounds would exclude the counter's value {whole.value} or cross its "
                "other bound",
                fields={
                    "lower_bound" if "lower_bound" in self.change else "upper_bound": "violated"
                },
            )
        return Plan(
            shards,
            snap.base_states(shards),
            (whole.value, whole.value, 0, 0),
            after,
            base=stored.settings(self.change, self.now_ms, sharded=True),
            now_ms=now_ms,
        )


class Bill(Operation):
    """A billing run's bill of a sharded counter (tally.billing): k = total // threshold decided
    on the exact total, the value lowered by k x threshold on shard 0 and the units billed raised,
    every shard rewritten and the invoice item put in one transaction, which requires every
    shard to be as read: exactly once, like an unsharded bill's conditions. `invoice(total
    billed so far, k)` makes the item's Put (or None: nothing to bill); `billed` says what was."""

    answered = False

    def __init__(self, invoice: Callable[[CounterItem, int], dict[str, Any] | None]) -> None:
        self.invoice = invoice
        self.billed: tuple[int, int] | None = None  # (k, units) of the bill written

    def decide(self, snap: Snapshot, op: str, now_ms: int) -> Plan:
        shards, whole = snap.shards, snap.whole()
        self.billed = None
        plan = Plan(shards, snap.base_states(shards), (whole.value,) * 2 + (0, 0), snap.first)
        billing = snap.first.billing
        k = whole.value // billing[0] if billing else 0
        put = self.invoice(snap.first, k) if k > 0 else None
        if put is None:
            plan.result = Outcome(whole)
            return plan
        k, units = put.pop("k"), put.pop("units")
        plan.states[0] = stored.with_value(plan.states[0], plan.states[0].get("v", 0) - units)
        plan.summary = (whole.value, whole.value - units, 0, 0)
        plan.base = stored.billed_more(units)
        plan.extra, plan.now_ms = [{"Put": put}], now_ms
        self.billed = (k, units)
        return plan
