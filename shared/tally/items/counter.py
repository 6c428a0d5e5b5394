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

Every write here is an `Update` whose conditions carry the `Refusal` their failure means.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from tally.clock import Moment
from tally.items.expression import Attr, Update, decode
from tally.names import INT64_MAX, INT64_MIN

WORKSPACE, COUNTER = Attr("workspace"), Attr("counter")
VALUE, UP_TOTAL, DOWN_TOTAL = Attr("v"), Attr("uc"), Attr("dc")
ROOM_UP, ROOM_DOWN, UPPER, LOWER = Attr("ru"), Attr("rd"), Attr("hi"), Attr("lo")
VISIBILITY, DESCRIPTION = Attr("vis"), Attr("desc")
CREATED, UPDATED, LAST_OP = Attr("ca"), Attr("ua"), Attr("lop")
DAY, WEEK = Attr("dy"), Attr("wk")
THRESHOLD, AMOUNT, BILLING_TEXT, BILLED = Attr("bt"), Attr("ba"), Attr("bd"), Attr("bu")
ALERTS = Attr("al")


def changed_at_s(old: CounterItem, new: CounterItem, approximate_s: float) -> float:
    """When a stream record's change happened: a change or a set stamps its time on the counter;
    billing does not, and is placed at the stream's `ApproximateCreationDateTime`."""
    if new.updated_ms != old.updated_ms:
        return new.updated_ms / 1000
    return float(approximate_s)


def key(workspace: str, name: str) -> dict[str, Any]:
    return {"workspace": {"S": workspace}, "counter": {"S": name}}


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


def change(delta: int, at: Moment, rollover: str, *, open_to: str | None) -> Update:
    """ADD `delta` to the value, the totals and the stats buckets, the bounds checked in the same
    write. With `open_to` (the workspace's default visibility) only a counter open to anyone may
    take it: public, and never billed. `rollover`: the first change of a UTC day (or ISO week)
    resets that bucket, a different expression; "same_day", "new_day" or "new_week"."""
    update = Update()
    update.add(VALUE, delta)
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
    update.require(UPPER.missing() | (UPPER >= value), Refusal.OUTSIDE_BOUNDS)
    update.require(LOWER.missing() | (LOWER <= value), Refusal.OUTSIDE_BOUNDS)
    return update


def settings(change: dict[str, Any], now_ms: int) -> Update:
    """Apply a settings change (the fields given; `None` clears one) in one write, refused if the
    counter's current value is outside the new bounds or they cross the other bound stored."""
    given = set(change)
    update = Update()
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
    _room_after_bounds(update, given, hi, lo)
    # A counter never changed has the value 0: it holds a bound that admits 0.
    if "upper_bound" in given:
        if hi is None:
            update.remove(UPPER)
        else:
            update.set("#hi = :hi", hi=hi)
            holds = VALUE <= hi
            update.require(VALUE.missing() | holds if hi >= 0 else holds, Refusal.OUTSIDE_BOUNDS)
            if "lower_bound" not in given:  # never below the lower bound already stored
                update.require(LOWER.missing() | (LOWER <= hi), Refusal.BOUNDS_CROSS)
    if "lower_bound" in given:
        if lo is None:
            update.remove(LOWER)
        else:
            update.set("#lo = :lo", lo=lo)
            holds = VALUE >= lo
            update.require(VALUE.missing() | holds if lo <= 0 else holds, Refusal.OUTSIDE_BOUNDS)
            if "upper_bound" not in given:  # never above the upper bound already stored
                update.require(UPPER.missing() | (UPPER >= lo), Refusal.BOUNDS_CROSS)
    update.set("#ca = if_not_exists(#ca, :now)", now=now_ms)
    return update


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
    update.require(same_billed & (VALUE >= units))
    text = BILLING_TEXT.eq(description)
    if not description:
        text = BILLING_TEXT.missing() | text
    return update.require(THRESHOLD.eq(threshold) & AMOUNT.eq(amount) & text)


def values_query(workspace: str) -> dict[str, Any]:
    """The Query of every counter of a workspace with its value, strongly consistent."""
    return {
        "KeyConditionExpression": "#ws = :ws",
        "ProjectionExpression": "#c, #v",
        "ExpressionAttributeNames": {"#ws": WORKSPACE.name, "#c": COUNTER.name, "#v": VALUE.name},
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
