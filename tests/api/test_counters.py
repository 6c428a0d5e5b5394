"""The counter domain: atomic changes, totals, stats buckets, 64-bit limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tally import counters
from tally.errors import Conflict, Unauthorized
from tally.names import INT64_MAX, INT64_MIN
from tests.conftest import make_public, record_calls

MON = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)  # a Monday in Q4, 09:30 UTC


def test_first_up_creates_the_counter(ddb):
    counter = counters.change("acme", "visits", +1, now=MON)

    assert (counter.value, counter.up_count, counter.down_count) == (1, 1, 0)
    assert counter.created_at == counter.updated_at == "2026-11-16T09:30:00.000Z"
    assert counter.visibility == "private"
    assert counters.get("acme", "visits").value == 1


def test_up_and_down_totals_count_amounts_not_calls(ddb):
    counters.change("acme", "c", +41, now=MON)
    counters.change("acme", "c", -1, now=MON)
    counter = counters.change("acme", "c", -2, now=MON)

    assert (counter.value, counter.up_count, counter.down_count) == (38, 41, 3)


def test_set_and_reset_count_in_neither_total(ddb):
    counters.change("acme", "c", +5, now=MON)
    counters.set_value("acme", "c", 100, now=MON)
    counter = counters.set_value("acme", "c", 0, now=MON)

    assert (counter.value, counter.up_count, counter.down_count) == (0, 5, 0)
    assert counter.stats(MON)["today"] == {"up": 5, "down": 0}


def test_change_after_set_respects_the_new_value(ddb):
    counters.set_value("acme", "c", -7, now=MON)
    assert counters.change("acme", "c", +10, now=MON).value == 3


def test_counters_are_per_workspace(ddb):
    counters.change("acme", "c", +3, now=MON)
    counters.change("other", "c", +1, now=MON)

    assert counters.get("acme", "c").value == 3
    assert counters.get("other", "c").value == 1
    assert counters.get("nobody", "c") is None


def test_up_past_int64_max_is_refused_and_changes_nothing(ddb):
    counters.set_value("acme", "big", INT64_MAX - 1, now=MON)
    counters.change("acme", "big", +1, now=MON)

    with pytest.raises(Conflict) as refused:
        counters.change("acme", "big", +1, now=MON)

    assert refused.value.fields == {"value": "above upper bound"}
    after = counters.get("acme", "big")
    assert (after.value, after.up_count) == (INT64_MAX, 1)


def test_down_past_int64_min_is_refused_and_changes_nothing(ddb):
    counters.set_value("acme", "small", INT64_MIN, now=MON)

    with pytest.raises(Conflict):
        counters.change("acme", "small", -1, now=MON)

    after = counters.get("acme", "small")
    assert (after.value, after.down_count) == (INT64_MIN, 0)


def test_up_count_past_int64_is_refused_and_changes_nothing(ddb):
    counters.change("acme", "busy", INT64_MAX, now=MON)
    counters.set_value("acme", "busy", 0, now=MON)

    with pytest.raises(Conflict) as refused:
        counters.change("acme", "busy", +1, now=MON)

    assert "up_count" in refused.value.message
    after = counters.get("acme", "busy")
    assert (after.value, after.up_count) == (0, INT64_MAX)


def test_a_private_counter_refuses_a_change_that_requires_public(ddb):
    counters.change("acme", "secret", +1, now=MON)

    with pytest.raises(Unauthorized):
        counters.change("acme", "secret", +1, refuse_private=Unauthorized(), now=MON)
    with pytest.raises(Unauthorized):  # nor may it create one
        counters.change("acme", "new", +1, refuse_private=Unauthorized(), now=MON)

    assert counters.get("acme", "secret").value == 1
    assert counters.get("acme", "new") is None


def test_a_public_counter_accepts_a_change_that_requires_public(ddb):
    counters.change("acme", "hits", +1, now=MON)
    make_public(ddb, "acme", "hits")

    counter = counters.change("acme", "hits", +1, refuse_private=Unauthorized(), now=MON)

    assert counter.value == 2


def test_stats_fall_into_utc_hour_weekday_and_quarter(ddb):
    counters.change("acme", "c", +2, now=MON)  # Monday 09h, Q4
    counters.change("acme", "c", -1, now=datetime(2026, 2, 4, 23, 5, tzinfo=UTC))  # Wed 23h, Q1

    temporal = counters.get("acme", "c").stats(MON)["temporal"]

    assert temporal["hours"]["09"] == {"up": 2, "down": 0}
    assert temporal["hours"]["23"] == {"up": 0, "down": 1}
    assert temporal["weekdays"]["monday"] == {"up": 2, "down": 0}
    assert temporal["weekdays"]["wednesday"] == {"up": 0, "down": 1}
    assert temporal["quarters"] == {
        "q1": {"up": 0, "down": 1},
        "q2": {"up": 0, "down": 0},
        "q3": {"up": 0, "down": 0},
        "q4": {"up": 2, "down": 0},
    }
    assert sum(h["up"] for h in temporal["hours"].values()) == 2


def test_today_starts_again_at_utc_midnight_and_the_week_on_monday(ddb):
    sunday = MON - timedelta(hours=10)  # Sunday 23:30, the week before
    counters.change("acme", "c", +5, now=sunday)
    counters.change("acme", "c", -1, now=sunday)
    counters.change("acme", "c", +1, now=MON)  # new day and new ISO week
    tuesday = MON + timedelta(days=1)
    counters.change("acme", "c", +2, now=tuesday)  # new day, same week
    counters.change("acme", "c", -3, now=tuesday)

    counter = counters.get("acme", "c")
    assert counter.stats(tuesday)["today"] == {"up": 2, "down": 3}
    assert counter.stats(tuesday)["this_week"] == {"up": 3, "down": 3}
    assert counter.stats(sunday)["today"] == {"up": 0, "down": 0}  # that day is gone
    assert counter.stats(tuesday + timedelta(days=7))["this_week"] == {"up": 0, "down": 0}
    assert (counter.up_count, counter.down_count) == (8, 4)


def test_a_warm_up_is_one_dynamodb_call_and_a_new_day_costs_one_more(ddb):
    calls = record_calls(ddb)
    counters.change("acme", "c", +1, now=MON, client=ddb)
    first_ever = calls.pop()
    counters.change("acme", "c", +1, now=MON, client=ddb)
    warm = calls.pop()
    counters.change("acme", "c", +1, now=MON + timedelta(days=1), client=ddb)
    first_of_day = calls.pop()

    assert warm == ["UpdateItem"]
    assert first_ever == first_of_day == ["UpdateItem", "UpdateItem"]
