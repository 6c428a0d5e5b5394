"""The item layer's rules with no DynamoDB: each condition of a change is written once, and the
refusal it explains is the one a caller gets. (tests/api/test_conditions.py sends the same
conditions to DynamoDB and checks it judges them as `Cond.holds` does.)"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from tally.clock import Moment
from tally.items import counter
from tally.items.counter import Refusal
from tally.items.expression import Attr, Update
from tally.names import INT64_MAX, INT64_MIN

AT = Moment.of(datetime(2026, 11, 23, 10, 30, tzinfo=UTC))
BOUNDS = st.one_of(st.none(), st.integers(-50, 50))


def stored(value: int, hi: int | None = None, lo: int | None = None, **more) -> dict:
    """A counter item as a change left it: the value, its bounds and the room to them."""
    raw = {
        "v": {"N": str(value)},
        "ru": {"N": str((INT64_MAX if hi is None else hi) - value)},
        "rd": {"N": str(value - (INT64_MIN if lo is None else lo))},
        "dy": {"N": str(AT.day)},
        "wk": {"N": str(AT.week)},
    }
    if hi is not None:
        raw["hi"] = {"N": str(hi)}
    if lo is not None:
        raw["lo"] = {"N": str(lo)}
    for name, cell in more.items():
        raw[name] = {"S": cell} if isinstance(cell, str) else {"N": str(cell)}
    return raw


@settings(max_examples=300)
@given(value=st.integers(-50, 50), hi=BOUNDS, lo=BOUNDS, delta=st.integers(-120, 120))
def test_a_change_is_refused_exactly_when_it_would_pass_a_bound_and_says_which(
    value, hi, lo, delta
):
    """For any counter within its bounds and any delta: the refusal judged on the item is the
    bound the result would pass, and none when the result stays within them."""
    if (hi is not None and value > hi) or (lo is not None and value < lo):
        return
    refusal = counter.change(delta, AT, "same_day", open_to=None).refusal(stored(value, hi, lo))
    if hi is not None and value + delta > hi:
        assert refusal is Refusal.ABOVE_UPPER
    elif lo is not None and value + delta < lo:
        assert refusal is Refusal.BELOW_LOWER
    else:
        assert refusal is None


def test_a_repeat_of_the_same_operation_is_told_before_any_other_refusal():
    """An attempt that went through and left the counter at its bound: the retry's room check
    fails too, but what it means is "applied already"."""
    now = AT.epoch_ms
    update = counter.change(1, AT, "same_day", open_to=None)
    counter.stamp(update, "op-1", now, window_ms=1000)
    at_bound = stored(10, hi=10, lop="op-1", ua=now)
    assert update.refusal(at_bound) is Refusal.APPLIED
    other_operation = stored(10, hi=10, lop="op-0", ua=now)
    assert update.refusal(other_operation) is Refusal.ABOVE_UPPER
    long_ago = stored(10, hi=10, lop="op-1", ua=now - 5000)  # an expired key reused
    assert update.refusal(long_ago) is Refusal.ABOVE_UPPER


def test_a_caller_without_a_key_is_refused_a_private_or_billed_counter():
    anyone = counter.change(1, AT, "same_day", open_to="private")
    assert anyone.refusal(stored(0)) is Refusal.NOT_OPEN  # follows the workspace: private
    assert anyone.refusal(stored(0, vis="public")) is None
    assert anyone.refusal(stored(0, vis="public", bt=100)) is Refusal.NOT_OPEN
    follows_public = counter.change(1, AT, "same_day", open_to="public")
    assert follows_public.refusal(stored(0)) is None
    assert follows_public.refusal(stored(0, vis="private")) is Refusal.NOT_OPEN


def test_a_wrong_day_guess_is_told_and_the_item_names_the_right_one():
    yesterday = stored(3)
    yesterday["dy"] = {"N": str(AT.day - 1)}
    assert counter.change(1, AT, "same_day", open_to=None).refusal(yesterday) is Refusal.STALE_DAY
    assert counter.item(yesterday).rollover(AT) == "new_day"
    assert counter.change(1, AT, "new_day", open_to=None).refusal(yesterday) is None
    assert counter.item(None).rollover(AT) == "new_week"


def test_a_total_that_would_pass_64_bits_is_its_own_refusal():
    full = stored(0, uc=INT64_MAX - 1)
    assert counter.change(2, AT, "same_day", open_to=None).refusal(full) is Refusal.UP_TOTAL_FULL


@given(value=st.integers(-50, 50), hi=BOUNDS, lo=BOUNDS, new=st.integers(-60, 60))
def test_set_value_is_refused_exactly_outside_the_bounds(value, hi, lo, new):
    refusal = counter.set_value(new, AT).refusal(stored(value, hi, lo))
    inside = (hi is None or new <= hi) and (lo is None or new >= lo)
    assert refusal is (None if inside else Refusal.OUTSIDE_BOUNDS)


def test_every_name_and_value_a_write_renders_is_declared_and_every_declared_one_used():
    """DynamoDB rejects an expression with an unused (or undeclared) name or value."""
    updates = [
        counter.change(5, AT, rollover, open_to=open_to)
        for rollover in ("same_day", "new_day", "new_week")
        for open_to in (None, "private", "public")
    ]
    updates += [
        counter.set_value(3, AT),
        counter.bill(5, 0, 5, 10, "per 5"),
        counter.bill(5, 0, 5, 10, ""),
    ]
    updates.append(counter.settings({"upper_bound": 9, "lower_bound": None, "billing": None}, 1))
    for update in updates:
        params = update.params()
        text = " ".join(params.get(k, "") for k in ("UpdateExpression", "ConditionExpression"))
        for name in params["ExpressionAttributeNames"]:
            assert name in text
        for value in params.get("ExpressionAttributeValues", {}):
            assert value in text, (value, text)


def test_a_condition_renders_what_it_judges():
    room = Attr("ru")
    update = Update().require(room.missing() | (room >= 5))
    assert update.params()["ConditionExpression"] == "(attribute_not_exists(#ru) OR #ru >= :c0)"
    assert update.params()["ExpressionAttributeValues"] == {":c0": {"N": "5"}}
    assert update.refusal({"ru": {"N": "4"}}) is None  # a check without a refusal of its own
    assert (room >= 5).holds({}) is False  # like DynamoDB: a missing attribute compares false
