"""The rules of a sharded counter that need no DynamoDB (tally.shards): where a change goes, how
the room of the band is split, and how shards add up."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from tally import shards
from tally.clock import Moment
from tally.items import counter as stored
from tally.names import INT64_MAX, INT64_MIN

small = st.integers(-1000, 1000)


@given(key=st.integers(0, 2**64 - 1), n=st.integers(1, 63))
def test_a_change_goes_to_a_shard_that_exists_and_growing_moves_it_only_to_the_new_one(key, n):
    before, after = shards.jump(key, n), shards.jump(key, n + 1)
    assert 0 <= before < n
    assert after in (before, n)


def _item(value: int, hi: int | None, lo: int | None, alerts: list[int], threshold: int | None):
    raw = {"v": {"N": str(value)}}
    if hi is not None:
        raw["hi"] = {"N": str(hi)}
    if lo is not None:
        raw["lo"] = {"N": str(lo)}
    if alerts:
        raw["al"] = {"S": json.dumps([{"at": a} for a in alerts])}
    if threshold is not None:
        raw["bt"], raw["ba"], raw["bd"] = {"N": str(threshold)}, {"N": "1"}, {"S": "x"}
    return stored.item(raw)


@given(
    value=small,
    above=st.none() | st.integers(0, 500),
    below=st.none() | st.integers(0, 500),
    alerts=st.lists(small, max_size=4),
    threshold=st.none() | st.integers(1, 1000),
    n=st.integers(2, 64),
)
def test_the_room_split_over_shards_never_reaches_a_watched_level(
    value, above, below, alerts, threshold, n
):
    """Every shard using all of its share at once still stops short of the next level up (the
    bound itself included) and never drops below the level it is at, or onto the lower bound."""
    hi = None if above is None else value + above
    lo = None if below is None else value - below
    item = _item(value, hi, lo, alerts, threshold)
    shares = shards.rooms(item, item, n)

    assert len(shares) == n
    up, down = sum(s["up"] for s in shares), sum(s["down"] for s in shares)
    assert all(min(s.values()) >= 0 for s in shares)
    assert max(s["up"] for s in shares) - min(s["up"] for s in shares) <= up // n + n
    for level in shards.levels(item):
        if level > value:
            assert value + up < level
        else:
            assert value - down >= level
    assert value + up <= (INT64_MAX if hi is None else hi)
    assert value - down >= (INT64_MIN if lo is None else (lo + 1 if value > lo else lo))
    assert sum(s["ups"] for s in shares) == INT64_MAX


@given(parts=st.lists(st.tuples(st.integers(-50, 50), st.integers(0, 2)), min_size=1, max_size=6))
def test_shards_add_up_to_the_counter_today_counting_only_the_latest_day(parts):
    """Each shard saw one change (a delta, that many days ago): summed as they are (`combine`,
    a read) or folded into one (`fold`, resharding), the counter is the same, and today counts
    only today's changes."""
    at = Moment.of(None)
    items = []
    for delta, days_ago in parts:
        state = stored.usage({}, delta, at)
        if days_ago and "dy" in state:
            state["dy"] -= days_ago  # an earlier day (any smaller number is one)
        items.append(stored.item({k: {"N": str(v)} for k, v in state.items()}))
    folded = {}
    for item in items:
        folded = stored.fold(folded, stored.periods(item))
    whole, one = stored.combine(items), stored.item({k: {"N": str(v)} for k, v in folded.items()})

    assert whole.value == one.value == sum(delta for delta, _ in parts)
    assert whole.up_count == one.up_count == sum(d for d, _ in parts if d > 0)
    today = [d for d, ago in parts if ago == 0]
    assert (
        whole.today(at)
        == one.today(at)
        == (
            sum(d for d in today if d > 0),
            -sum(d for d in today if d < 0),
        )
    )
