"""The counters table's item: its key, its attributes, what each write to it says.

Attributes (short names keep a busy counter under 1 KB, i.e. one write unit a change):
  v            value                       uc / dc      up / down totals over the counter's life
  ru / rd      room to the upper / lower bound (hi - v, v - lo): see "Room to the bounds"
  hi / lo      bounds, absent = signed 64-bit  vis / desc   visibility (absent: the workspace's), description
  ca / ua      created / updated, epoch ms   lop  the last change's operation id (see `stamp`)
  dy, dyu, dyd  UTC day (yyyymmdd) and its up/down; wk, wku, wkd  ISO week (yyyyww) and its up/down
  bt, ba, bd   billing threshold, amount, description   bu  units billed over its life
  al           alerts, compact JSON: [{"at": N} | {"at_percent_of_upper_bound": P}, ...]
  all-time buckets (UTC), two-byte names (`bucket`): hour of day x<h>/y<h> (h in 0-9a-n),
               weekday p<d>/q<d> (0=Monday), quarter r<n>/s<n> (1-4); first letter up, second down

A sharded counter (tally.shards) is N items. Shard 0 is the item above, keyed as ever, holding
the settings; shard i >= 1 is keyed `workspace = "<workspace>/<counter>/<i>"` (neither name may
hold a "/"), so no Query of a workspace ever meets it. Each holds its part of v, uc, dc, the day,
week and all-time buckets, and its share of the room; a read sums them (`combine`). Sharded only:
  sh           on shard 0: N (absent: unsharded)       ku / kd   share of the room left in uc / dc
  ru / rd      share of the room in the counter's band (tally.shards), not to the bound itself
  fz           frozen until (epoch ms) by a global operation: no change lands meanwhile
  gx           the last global operation that wrote the item; on shard 0 with its summary:
  go / gn / gu / gd   the counter's total before and after it, and the up / down it applied
  vis / bt     copies of shard 0's on shards >= 1 (an anonymous change's condition reads them)

Every write here is an `Update` whose conditions carry the `Refusal` their failure means.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from tally.clock import Moment
from tally.items.expression import Attr, Update, decode, encode
from tally.names import INT64_MAX, INT64_MIN

WORKSPACE, COUNTER = Attr("workspace"), Attr("counter")
VALUE, UP_TOTAL, DOWN_TOTAL = Attr("v"), Attr("uc"), Attr("dc")
ROOM_UP, ROOM_DOWN, UPPER, LOWER = Attr("ru"), Attr("rd"), Attr("hi"), Attr("lo")
VISIBILITY, DESCRIPTION = Attr("vis"), Attr("desc")
CREATED, UPDATED, LAST_OP = Attr("ca"), Attr("ua"), Attr("lop")
DAY, WEEK = Attr("dy"), Attr("wk")
THRESHOLD, AMOUNT, BILLING_TEXT, BILLED = Attr("bt"), Attr("ba"), Attr("bd"), Attr("bu")
ALERTS = Attr("al")
SHARDS, UPS_LEFT, DOWNS_LEFT = Attr("sh"), Attr("ku"), Attr("kd")
FROZEN, GLOBAL_OP = Attr("fz"), Attr("gx")
SUM_BEFORE, SUM_AFTER, SUM_UP, SUM_DOWN = Attr("go"), Attr("gn"), Attr("gu"), Attr("gd")
MAX_SHARDS = 64
# The escrowed quantities a sharded counter splits over its shards, by kind: room up and down
# (in the band), room left in the up and down totals.
ROOM_KINDS = {"up": "ru", "down": "rd", "ups": "ku", "downs": "kd"}
ROOMS = tuple(ROOM_KINDS.values())


def changed_at_s(old: CounterItem, new: CounterItem, approximate_s: float) -> float:
    """When a stream record's change happened: a change or a set stamps its time on the counter;
    billing does not, and is placed at the stream's `ApproximateCreationDateTime`."""
    if new.updated_ms != old.updated_ms:
        return new.updated_ms / 1000
    return float(approximate_s)


def key(workspace: str, name: str, shard: int = 0) -> dict[str, Any]:
    """The item of a counter's shard: shard 0 is the counter's own item."""
    partition = workspace if shard == 0 else f"{workspace}/{name}/{shard}"
    return {"workspace": {"S": partition}, "counter": {"S": name}}


def identity(keys: dict[str, Any]) -> tuple[str, str, int]:
    """(workspace, counter, shard) of an item's key (or a stream record's Keys)."""
    partition, name = keys[WORKSPACE.name]["S"], keys[COUNTER.name]["S"]
    if "/" not in partition:
        return partition, name, 0
    workspace, _, shard = partition.split("/")
    return workspace, name, int(shard)


_SLOTS = "0123456789abcdefghijklmn"  # hour 0-23 in one character
_LETTERS = {"hour": ("x", "y"), "weekday": ("p", "q"), "quarter": ("r", "s")}


def bucket(kind: str, slot: int, side: str) -> Attr:
    """An all-time stats bucket: two bytes, since a busy counter carries 70 of them and every
    change rewrites the item (one write unit up to 1 KB)."""
    up, down = _LETTERS[kind]
    return Attr((up if side == "up" else down) + _SLOTS[slot])


class Refusal(Enum):
    """Why a write to a counter was refused, named by the condition that failed."""

    APPLIED = "this very operation was applied already"
    NOT_OPEN = "not open to a caller without a key of its workspace"
    ABOVE_UPPER = "would pass the upper bound"
    BELOW_LOWER = "would pass the lower bound"
    UP_TOTAL_FULL = "up_count would pass signed 64-bit"
    DOWN_TOTAL_FULL = "down_count would pass signed 64-bit"
    OUTSIDE_BOUNDS = "the value would be outside the bounds"
    BOUNDS_CROSS = "a bound would cross the other one"
    STALE_DAY = "the day or week guessed is not the counter's (try again with the right one)"
    RACED = "every condition holds on the item as it was: it changed meanwhile"
    SHARDED = "the counter is sharded: send the change to one of its shards"
    UNSHARDED = "this shard is not there (the counter was resharded, or is not sharded)"
    FROZEN = "a global operation holds the counter for a moment"
    SHORT = "this shard's share of the room is short (move room from other shards)"


@dataclass(frozen=True)
class CounterItem:
    """A stored counter, decoded: what the rest of tally reads instead of attributes."""

    raw: dict[str, Any]

    def _n(self, attr: Attr) -> int:
        return decode(self.raw.get(attr.name)) or 0

    def _maybe(self, attr: Attr) -> Any:
        return decode(self.raw.get(attr.name))

    @property
    def exists(self) -> bool:
        return bool(self.raw)

    @property
    def value(self) -> int:
        return self._n(VALUE)

    @property
    def up_count(self) -> int:
        return self._n(UP_TOTAL)

    @property
    def down_count(self) -> int:
        return self._n(DOWN_TOTAL)

    @property
    def own_visibility(self) -> str | None:
        return self._maybe(VISIBILITY)

    @property
    def description(self) -> str:
        return self._maybe(DESCRIPTION) or ""

    @property
    def lower_bound(self) -> int | None:
        return self._maybe(LOWER)

    @property
    def upper_bound(self) -> int | None:
        return self._maybe(UPPER)

    @property
    def created_ms(self) -> int:
        return self._n(CREATED)

    @property
    def updated_ms(self) -> int:
        return self._n(UPDATED)

    @property
    def billing(self) -> tuple[int, int, str] | None:
        """(threshold, amount in cents, description), if it is billed."""
        if THRESHOLD.name not in self.raw:
            return None
        return self._n(THRESHOLD), self._n(AMOUNT), self._maybe(BILLING_TEXT) or ""

    @property
    def alerts(self) -> list[dict[str, int]]:
        return json.loads(self._maybe(ALERTS) or "[]")

    def alert_levels(self) -> list[tuple[dict[str, int], int]]:
        """Each alert with the value it fires at; a percentage of an upper bound the counter does
        not have (or one at or below 0) fires at no value."""
        out = []
        for alert in self.alerts:
            if "at" in alert:
                out.append((alert, alert["at"]))
            elif (hi := self.upper_bound) is not None and hi > 0:
                out.append((alert, -(-hi * alert["at_percent_of_upper_bound"] // 100)))  # ceil
        return out

    @property
    def billed_units(self) -> int:
        return self._n(BILLED)

    @property
    def shards(self) -> int:
        """N on shard 0 (1: unsharded)."""
        return self._n(SHARDS) or 1

    @property
    def sharded(self) -> bool:
        return SHARDS.name in self.raw

    @property
    def last_op(self) -> str | None:
        return self._maybe(LAST_OP)

    def frozen(self, now_ms: int) -> bool:
        return self._n(FROZEN) > now_ms

    @property
    def global_op(self) -> str | None:
        return self._maybe(GLOBAL_OP)

    def summary(self) -> tuple[int, int, int, int]:
        """(total before, total after, up, down) of the last global operation (shard 0)."""
        return tuple(self._n(a) for a in (SUM_BEFORE, SUM_AFTER, SUM_UP, SUM_DOWN))  # type: ignore[return-value]

    def room(self, kind: str) -> int:
        """A room by its kind (ROOM_KINDS), 0 if absent."""
        return self._n(Attr(ROOM_KINDS[kind]))

    @property
    def split(self) -> bool:
        """Whether its room is split over shards (a sharded counter's shard, resharding done)."""
        return UPS_LEFT.name in self.raw

    def state(self) -> dict[str, int]:
        """The summed attributes (SUMMED) as numbers: what a shard holds of the counter."""
        return {name: self._n(Attr(name)) for name in SUMMED if name in self.raw}

    def today(self, at: Moment) -> tuple[int, int]:
        """(up, down) on the day of `at`: zero if the counter last changed on another day."""
        if self._n(DAY) != at.day:
            return 0, 0
        return self._n(Attr("dyu")), self._n(Attr("dyd"))

    def this_week(self, at: Moment) -> tuple[int, int]:
        if self._n(WEEK) != at.week:
            return 0, 0
        return self._n(Attr("wku")), self._n(Attr("wkd"))

    def all_time(self, kind: str, slot: int) -> tuple[int, int]:
        """(up, down) of an all-time bucket: hour of day, weekday or quarter."""
        return self._n(bucket(kind, slot, "up")), self._n(bucket(kind, slot, "down"))

    def applied(self, op: str, now_ms: int, window_ms: int) -> bool:
        """Whether this is the counter as operation `op` left it (within `window_ms`)."""
        return self._maybe(LAST_OP) == op and self.updated_ms >= now_ms - window_ms

    def rollover(self, at: Moment) -> str:
        """Which day/week buckets a change at `at` starts anew (see `change`)."""
        if self._n(DAY) >= at.day:
            return "same_day"
        if self._n(WEEK) >= at.week:
            return "new_day"
        return "new_week"


def item(raw: dict[str, Any] | None) -> CounterItem:
    return CounterItem(raw or {})


# ------------------------------------------------------------------ a sharded counter's sum

_BUCKETS = tuple(
    bucket(kind, slot, side).name
    for kind, slots in (("hour", range(24)), ("weekday", range(7)), ("quarter", range(1, 5)))
    for slot in slots
    for side in ("up", "down")
)
SUMMED = ("v", "uc", "dc", *_BUCKETS)  # added up over the shards as they are
_PERIODS = (("dy", "dyu", "dyd"), ("wk", "wku", "wkd"))  # the latest period's, added up


def combine(shards: list[CounterItem]) -> CounterItem:
    """The counter a sharded counter's items make (shard 0 first): its settings, and the sum of
    the shards' values, totals, buckets and rooms; today and this week from the shards that
    counted in the latest day and week; updated when the last shard was."""
    raw = dict(shards[0].raw)
    for name in (*SUMMED, *ROOMS):
        present = [s.raw[name] for s in shards if name in s.raw]
        if present:
            raw[name] = {"N": str(sum(int(cell["N"]) for cell in present))}
    for period, up, down in _PERIODS:
        latest = max((s._n(Attr(period)) for s in shards), default=0)
        if latest:
            raw[period] = {"N": str(latest)}
            for name in (up, down):
                total = sum(s._n(Attr(name)) for s in shards if s._n(Attr(period)) == latest)
                raw[name] = {"N": str(total)}
    updated = max(s.updated_ms for s in shards)
    if updated:
        raw[UPDATED.name] = {"N": str(updated)}
    return CounterItem(raw)


def fold(into: dict[str, int], other: dict[str, int]) -> dict[str, int]:
    """Two shards' states (`CounterItem.state` plus the periods) as one: what a removed shard
    leaves to shard 0."""
    out = dict(into)
    for name in SUMMED:
        if name in other:
            out[name] = out.get(name, 0) + other[name]
    for period, up, down in _PERIODS:
        mine, theirs = out.get(period, 0), other.get(period, 0)
        if theirs > mine:
            out.update({period: theirs, up: other.get(up, 0), down: other.get(down, 0)})
        elif theirs == mine and theirs:
            out[up] = out.get(up, 0) + other.get(up, 0)
            out[down] = out.get(down, 0) + other.get(down, 0)
    return out


def periods(shard: CounterItem) -> dict[str, int]:
    """A shard's state with its day and week buckets (what `fold` and `usage` work on)."""
    out = shard.state()
    for names in _PERIODS:
        out.update({name: shard._n(Attr(name)) for name in names if name in shard.raw})
    return out


def total_of(states: list[dict[str, int]]) -> CounterItem:
    """The value and totals of shards' states, as an item (what the room is split from)."""
    raw = {
        name: {"N": str(sum(state.get(name, 0) for state in states))}
        for name in (VALUE.name, UP_TOTAL.name, DOWN_TOTAL.name)
    }
    return CounterItem(raw)


def with_value(state: dict[str, int], value: int) -> dict[str, int]:
    return {**state, VALUE.name: value}


def with_settings(first: CounterItem, change: dict[str, Any]) -> CounterItem:
    """Shard 0 as a settings change (`settings`) will leave its settings."""
    raw = dict(first.raw)
    for name, attr in (
        ("visibility", VISIBILITY),
        ("description", DESCRIPTION),
        ("upper_bound", UPPER),
        ("lower_bound", LOWER),
    ):
        if name in change:
            raw.pop(attr.name, None)
            if change[name] is not None:
                raw[attr.name] = encode(change[name])
    if "billing" in change:
        for attr in (THRESHOLD, AMOUNT, BILLING_TEXT):
            raw.pop(attr.name, None)
        if change["billing"]:
            billing = change["billing"]
            raw[THRESHOLD.name] = encode(billing["threshold"])
            raw[AMOUNT.name] = encode(billing["amount"])
            raw[BILLING_TEXT.name] = encode(billing["description"])
    if "alerts" in change:
        raw.pop(ALERTS.name, None)
        if change["alerts"]:
            raw[ALERTS.name] = encode(json.dumps(change["alerts"], separators=(",", ":")))
    return CounterItem(raw)


def usage(state: dict[str, int], delta: int, at: Moment) -> dict[str, int]:
    """`state` after the change `change` would write (delta, at): the same arithmetic, done on
    a snapshot by a global operation (tally.shards)."""
    out = dict(state)
    out["v"] = out.get("v", 0) + delta
    if delta == 0:
        return out
    amount, up = abs(delta), delta > 0
    side, other, total = ("u", "d", "uc") if up else ("d", "u", "dc")
    out[total] = out.get(total, 0) + amount
    direction = "up" if up else "down"
    for kind, slot in (("hour", at.hour), ("weekday", at.weekday), ("quarter", at.quarter)):
        name = bucket(kind, slot, direction).name
        out[name] = out.get(name, 0) + amount
    for period, now in (("dy", at.day), ("wk", at.week)):
        if out.get(period, 0) >= now:
            out[f"{period}{side}"] = out.get(f"{period}{side}", 0) + amount
        else:
            out.update({period: now, f"{period}{side}": amount, f"{period}{other}": 0})
    return out


# ------------------------------------------------------------------ room to the bounds
# Condition expressions cannot do arithmetic, so the bound check `v + d <= hi` is kept as
# `ru >= d` on stored room, and every write that moves the value or a bound moves the room with
# it, here and nowhere else: ru = hi - v, rd = v - lo (hi, lo absent: signed 64-bit).


def _room_after_add(update: Update, delta: int) -> None:
    update.set("#ru = if_not_exists(#ru, :ru0) - :d", ru0=INT64_MAX, d=delta)
    update.set("#rd = if_not_exists(#rd, :rd0) + :d", rd0=-INT64_MIN)


def _room_after_set(update: Update) -> None:
    """After `#v = :n`."""
    update.set("#ru = if_not_exists(#hi, :max) - :n", max=INT64_MAX)
    update.set("#rd = :n - if_not_exists(#lo, :min)", min=INT64_MIN)


def _room_after_bounds(update: Update, given: set[str], hi: int | None, lo: int | None) -> None:
    """After new bounds (`given` names the ones set or cleared), from the value stored now."""
    if "upper_bound" in given:
        if hi is None:
            update.set("#ru = :max - if_not_exists(#v, :zero)", max=INT64_MAX, zero=0)
        else:
            update.set("#ru = :hi - if_not_exists(#v, :zero)", hi=hi, zero=0)
    if "lower_bound" in given:
        if lo is None:
            update.set("#rd = if_not_exists(#v, :zero) - :min", min=INT64_MIN, zero=0)
        else:
            update.set("#rd = if_not_exists(#v, :zero) - :lo", lo=lo, zero=0)


def _room_after_billing(update: Update, units: int) -> None:
    """After the value is lowered by `units` (billing)."""
    update.add(ROOM_UP, units)
    update.add(ROOM_DOWN, -units)


# ------------------------------------------------------------------ the writes


def stamp(update: Update, op: str, now_ms: int, window_ms: int) -> None:
    """Every change records its operation id; the same operation cannot apply twice in a row.
    A stamp older than an operation id lives (`ua`, the last change's time, is the stamp's) was
    another request reusing an expired Idempotency-Key: that one is applied."""
    update.set("#lop = :op", op=op)
    update.require(
        LAST_OP.missing() | LAST_OP.ne(op) | (UPDATED < now_ms - window_ms),
        Refusal.APPLIED,
        first=True,  # an attempt that went through explains any other failure after it
    )


def change(
    delta: int,
    at: Moment,
    rollover: str,
    *,
    open_to: str | None,
    sharded: bool = False,
    now_ms: int = 0,
) -> Update:
    """ADD `delta` to the value, the totals and the stats buckets, the bounds checked in the same
    write. With `open_to` (the workspace's default visibility) only a counter open to anyone may
    take it: public, and never billed. `rollover`: the first change of a UTC day (or ISO week)
    resets that bucket, a different expression; "same_day", "new_day" or "new_week".
    An unsharded change is refused by a sharded counter (SHARDED: its shard 0 holds only a share
    of the room); a `sharded` one goes to one shard, and is checked against that shard's share of
    the room and of the totals' 64 bits (SHORT), never while the counter is frozen."""
    update = Update()
    update.add(VALUE, delta)
    if sharded:
        update.require(UPS_LEFT.exists(), Refusal.UNSHARDED)
        update.require(FROZEN.missing() | (FROZEN < (now_ms or at.epoch_ms)), Refusal.FROZEN)
        update.set("#ru = #ru - :d, #rd = #rd + :d", d=delta)
    else:
        update.require(SHARDS.missing(), Refusal.SHARDED)
        _room_after_add(update, delta)
    update.set("#ua = :now", now=at.epoch_ms)
    update.set("#ca = if_not_exists(#ca, :now)")
    if open_to is not None:
        public = VISIBILITY.eq("public")
        if open_to == "public":  # a counter with no visibility of its own follows the workspace
            public = VISIBILITY.missing() | public
        update.require(public, Refusal.NOT_OPEN)
        update.require(THRESHOLD.missing(), Refusal.NOT_OPEN)
    if delta == 0:
        return update
    # One direction per change: an up touches only the *u buckets, a down only the *d ones.
    amount = abs(delta)
    if delta > 0:
        room, total, side, other = ROOM_UP, UP_TOTAL, "u", "d"
        refusals = Refusal.ABOVE_UPPER, Refusal.UP_TOTAL_FULL
    else:
        room, total, side, other = ROOM_DOWN, DOWN_TOTAL, "d", "u"
        refusals = Refusal.BELOW_LOWER, Refusal.DOWN_TOTAL_FULL
    if sharded:
        left = UPS_LEFT if delta > 0 else DOWNS_LEFT
        update.require((room >= amount) & (left >= amount), Refusal.SHORT)
        update.add(left, -amount)
    else:
        update.require(room.missing() | (room >= amount), refusals[0])
        update.require(total.missing() | (total <= INT64_MAX - amount), refusals[1])
    direction = "up" if delta > 0 else "down"
    update.add(total, amount)
    for kind, slot in (("hour", at.hour), ("weekday", at.weekday), ("quarter", at.quarter)):
        update.add(bucket(kind, slot, direction), amount)
    if rollover == "same_day":
        update.require(DAY >= at.day, Refusal.STALE_DAY)
        update.add(Attr(f"dy{side}"), amount)
        update.add(Attr(f"wk{side}"), amount)
        return update
    update.set(
        f"#dy = :day, #dy{side} = :amount, #dy{other} = :zero", day=at.day, amount=amount, zero=0
    )
    if rollover == "new_day":
        update.require((DAY.missing() | (DAY < at.day)) & (WEEK >= at.week), Refusal.STALE_DAY)
        update.add(Attr(f"wk{side}"), amount)
    else:
        update.require(WEEK.missing() | (WEEK < at.week), Refusal.STALE_DAY)
        update.set(f"#wk = :week, #wk{side} = :amount, #wk{other} = :zero", week=at.week)
    return update


def set_value(value: int, at: Moment) -> Update:
    """Set the value outright (reset is value 0): it counts in neither up nor down."""
    update = Update()
    update.set("#v = :n", n=value)
    _room_after_set(update)
    update.set("#ua = :now", now=at.epoch_ms)
    update.set("#ca = if_not_exists(#ca, :now)")
    update.require(SHARDS.missing(), Refusal.SHARDED)
    update.require(UPPER.missing() | (UPPER >= value), Refusal.OUTSIDE_BOUNDS)
    update.require(LOWER.missing() | (LOWER <= value), Refusal.OUTSIDE_BOUNDS)
    return update


def settings(change: dict[str, Any], now_ms: int, *, sharded: bool = False) -> Update:
    """Apply a settings change (the fields given; `None` clears one) in one write, refused if the
    counter's current value is outside the new bounds or they cross the other bound stored.
    `sharded`: the part of a global operation (tally.shards) that writes shard 0's settings; the
    value and the rooms are the operation's (its snapshot holds the total), not this write's."""
    given = set(change) - {"shards"}
    update = Update()
    if not sharded:
        update.require(SHARDS.missing(), Refusal.SHARDED)
    if "visibility" in given:
        if change["visibility"] is None:
            update.remove(VISIBILITY)
        else:
            update.set("#vis = :vis", vis=change["visibility"])
    if "description" in given:
        update.set("#desc = :desc", desc=change["description"] or "")
    if "billing" in given:
        billing = change["billing"]
        if billing is None:
            update.remove(THRESHOLD, AMOUNT, BILLING_TEXT)
        else:
            update.set(
                "#bt = :bt, #ba = :ba, #bd = :bd",
                bt=billing["threshold"],
                ba=billing["amount"],
                bd=billing["description"],
            )
    if "alerts" in given:
        if change["alerts"]:
            update.set("#al = :al", al=json.dumps(change["alerts"], separators=(",", ":")))
        else:
            update.remove(ALERTS)
    hi, lo = change.get("upper_bound"), change.get("lower_bound")
    if not sharded:
        _room_after_bounds(update, given, hi, lo)
    # A counter never changed has the value 0: it holds a bound that admits 0.
    if "upper_bound" in given:
        if hi is None:
            update.remove(UPPER)
        else:
            update.set("#hi = :hi", hi=hi)
            holds = VALUE <= hi
            if not sharded:
                update.require(
                    VALUE.missing() | holds if hi >= 0 else holds, Refusal.OUTSIDE_BOUNDS
                )
            if "lower_bound" not in given:  # never below the lower bound already stored
                update.require(LOWER.missing() | (LOWER <= hi), Refusal.BOUNDS_CROSS)
    if "lower_bound" in given:
        if lo is None:
            update.remove(LOWER)
        else:
            update.set("#lo = :lo", lo=lo)
            holds = VALUE >= lo
            if not sharded:
                update.require(
                    VALUE.missing() | holds if lo <= 0 else holds, Refusal.OUTSIDE_BOUNDS
                )
            if "upper_bound" not in given:  # never above the upper bound already stored
                update.require(UPPER.missing() | (UPPER >= lo), Refusal.BOUNDS_CROSS)
    update.set("#ca = if_not_exists(#ca, :now)", now=now_ms)
    return update


def billed_more(units: int) -> Update:
    """Shard 0's part of a sharded counter's bill (tally.shards.Bill): its units billed raised."""
    return Update().add(BILLED, units)


def bill(units: int, billed: int, threshold: int, amount: int, description: str) -> Update:
    """Lower the value by `units` and add them to the units billed, as a billing mark showed
    them: refused if another run billed meanwhile (the units billed moved), the value fell below
    them, or the billing setting changed. The value moves by ADD, so changes landing meanwhile
    are kept."""
    update = Update()
    update.add(VALUE, -units)
    update.add(BILLED, units)
    _room_after_billing(update, units)
    same_billed = BILLED.eq(billed) if billed else BILLED.missing() | BILLED.eq(0)
    update.require(SHARDS.missing())  # shard 0 of a sharded counter holds a part of the value
    update.require(same_billed & (VALUE >= units))
    text = BILLING_TEXT.eq(description)
    if not description:
        text = BILLING_TEXT.missing() | text
    return update.require(THRESHOLD.eq(threshold) & AMOUNT.eq(amount) & text)


# ------------------------------------------------------------------ a sharded counter's writes
# (tally.shards decides them: a global operation freezes every shard, reads them, and rewrites
# them in one transaction; a rebalance moves room between shards in one transaction)


def freeze(until_ms: int, now_ms: int, *, shard: int, sharded: bool, shards: int) -> Update:
    """Hold a shard until `until_ms` (a global operation's first step): no change lands on it
    meanwhile. Shard 0 of an unsharded counter becomes sharded by it (`shards`): its unsharded
    changes are refused from then on, and wait like the others."""
    update = Update()
    update.set(f"#fz = {update.value(until_ms)}")
    update.require(FROZEN.missing() | (FROZEN < now_ms), Refusal.FROZEN)
    if shard:
        update.require(UPS_LEFT.exists(), Refusal.UNSHARDED)
    elif sharded:
        update.require(SHARDS.exists(), Refusal.UNSHARDED)
    else:
        update.require(SHARDS.missing(), Refusal.SHARDED)
        update.set(f"#sh = {update.value(shards)}")
        update.set(f"#ca = if_not_exists(#ca, {update.value(now_ms)})")
    return update


def _as_seen(update: Update, seen: CounterItem, until_ms: int) -> Update:
    """Conditions: the shard is still held by this operation and as its snapshot read it."""
    update.require(FROZEN.eq(until_ms), Refusal.RACED)
    for attr in (VALUE, LAST_OP, *(Attr(name) for name in ROOMS)):
        known = decode(seen.raw.get(attr.name))
        update.require(attr.missing() if known is None else attr.eq(known), Refusal.RACED)
    return update


def rewrite(
    seen: CounterItem,
    state: dict[str, int],
    rooms: dict[str, int],
    *,
    op: str,
    until_ms: int,
    base: Update | None = None,
) -> Update:
    """A shard as a global operation leaves it: `state` (its summed attributes and periods) and
    `rooms`, stamped with the operation, released; only if still as `seen`. `base`: shard 0's
    settings, written in the same update."""
    update = base or Update()
    before = periods(seen)
    for name, number in state.items():
        if before.get(name) != number:
            update.set(f"#{name} = {update.value(number)}")
    for kind, name in ROOM_KINDS.items():
        if kind in rooms:
            update.set(f"#{name} = {update.value(rooms[kind])}")
        else:
            update.remove(Attr(name))
    update.set(f"#gx = {update.value(op)}")
    update.remove(FROZEN)
    return _as_seen(update, seen, until_ms)


def summarize(update: Update, shards: int, before: int, after: int, up: int, down: int) -> None:
    """Shard 0's part of a global operation: N (none: unsharded again) and what the operation did
    to the counter's total, which history and events read from the stream."""
    if shards > 1:
        update.set(f"#sh = {update.value(shards)}")
    else:
        update.remove(SHARDS)
    for attr, number in ((SUM_BEFORE, before), (SUM_AFTER, after), (SUM_UP, up), (SUM_DOWN, down)):
        update.set(f"#{attr.name} = {update.value(number)}")


def stamp_change(update: Update, op: str, now_ms: int) -> None:
    """The change or set a global operation applies: stamped like any change."""
    update.set(f"#lop = {update.value(op)}, #ua = {update.value(now_ms)}")


def mirror(update: Update, settings_of: CounterItem) -> None:
    """On shards >= 1: shard 0's visibility and billing mark, which an anonymous change checks."""
    if settings_of.own_visibility is None:
        update.remove(VISIBILITY)
    else:
        update.set(f"#vis = {update.value(settings_of.own_visibility)}")
    if settings_of.billing is None:
        update.remove(THRESHOLD)
    else:
        update.set(f"#bt = {update.value(settings_of.billing[0])}")


def new_shard(
    workspace: str,
    name: str,
    shard: int,
    rooms: dict[str, int],
    *,
    op: str,
    settings_of: CounterItem,
    now_ms: int,
) -> dict[str, Any]:
    """A shard a global operation adds: empty, with its share of the room; put only if absent."""
    fields: dict[str, Any] = {**key(workspace, name, shard), CREATED.name: {"N": str(now_ms)}}
    fields |= {ROOM_KINDS[kind]: {"N": str(number)} for kind, number in rooms.items()}
    fields[GLOBAL_OP.name] = {"S": op}
    if settings_of.own_visibility is not None:
        fields[VISIBILITY.name] = {"S": settings_of.own_visibility}
    if settings_of.billing is not None:
        fields[THRESHOLD.name] = {"N": str(settings_of.billing[0])}
    return {
        "Item": fields,
        "ConditionExpression": "attribute_not_exists(#ws)",
        "ExpressionAttributeNames": {"#ws": WORKSPACE.name},
    }


def drop(seen: CounterItem, until_ms: int) -> Update:
    """The conditions of deleting a shard a global operation folded into shard 0."""
    return _as_seen(Update(), seen, until_ms)


def release(until_ms: int) -> Update:
    """A global operation that changes nothing lets its shard go."""
    return Update().remove(FROZEN).require(FROZEN.eq(until_ms))


def move_room(amounts: dict[str, int], now_ms: int) -> Update:
    """A rebalance's write to one shard: ADD each room's amount (negative: taken from it, and
    then only if it holds that much); never while frozen, never on a shard no longer there."""
    update = Update()
    update.require(UPS_LEFT.exists(), Refusal.UNSHARDED)
    update.require(FROZEN.missing() | (FROZEN < now_ms), Refusal.FROZEN)
    for kind, amount in amounts.items():
        room = Attr(ROOM_KINDS[kind])
        update.add(room, amount)
        if amount < 0:
            update.require(room >= -amount, Refusal.SHORT)
    return update


def values_query(workspace: str) -> dict[str, Any]:
    """The Query of every counter of a workspace with its value, strongly consistent (and what
    a sharded one's sum is checked by: N, the last global operation, the bounds, the room)."""
    wanted = (COUNTER, VALUE, SHARDS, GLOBAL_OP, UPPER, LOWER, UPS_LEFT)
    return {
        "KeyConditionExpression": "#ws = :ws",
        "ProjectionExpression": ", ".join(attr.ref for attr in wanted),
        "ExpressionAttributeNames": {"#ws": WORKSPACE.name} | {a.ref: a.name for a in wanted},
        "ExpressionAttributeValues": {":ws": {"S": workspace}},
        "ConsistentRead": True,
    }


def every_query(workspace: str) -> dict[str, Any]:
    """The Query of every counter of a workspace, whole items, strongly consistent."""
    return {
        "KeyConditionExpression": "#ws = :ws",
        "ExpressionAttributeNames": {"#ws": WORKSPACE.name},
        "ExpressionAttributeValues": {":ws": {"S": workspace}},
        "ConsistentRead": True,
    }


def names(raw: dict[str, Any]) -> tuple[str, str]:
    """(workspace, counter) of an item (or an index entry)."""
    return raw[WORKSPACE.name]["S"], name(raw)


def name(raw: dict[str, Any]) -> str:
    """The counter's name (all `values_query` projects, besides its value)."""
    return raw[COUNTER.name]["S"]
