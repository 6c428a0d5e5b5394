"""Conditions as data, against DynamoDB: for random counters and changes, DynamoDB refuses a
write exactly when `Update.refusal` judges one of its conditions false on the item. This is what
lets tally explain a refusal from the condition itself instead of a Python copy of it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tally.clock import Moment
from tally.items import counter
from tests.unit.test_items import stored

AT = Moment.of(datetime(2026, 11, 23, 10, 30, tzinfo=UTC))
_names = itertools.count()

ITEMS = st.builds(
    lambda value, hi, lo, vis, billed, day_back: (value, hi, lo, vis, billed, day_back),
    st.integers(-20, 20),
    st.one_of(st.none(), st.integers(-20, 40)),
    st.one_of(st.none(), st.integers(-40, 20)),
    st.sampled_from([None, "public", "private"]),
    st.booleans(),
    st.sampled_from([0, 1, 8]),  # changed today, yesterday, last week
)


def _raw(value, hi, lo, vis, billed, day_back) -> dict:
    more = {"vis": vis} if vis else {}
    if billed:
        more["bt"] = 100
    raw = stored(value, hi, lo, **more)
    back = Moment.of(datetime.fromtimestamp(AT.epoch_ms / 1000 - day_back * 86400, UTC))
    raw["dy"], raw["wk"] = {"N": str(back.day)}, {"N": str(back.week)}
    return raw


def _refused(ddb, raw: dict, update) -> bool:
    """Whether DynamoDB refuses `update` on a counter stored as `raw` (none if it is empty)."""
    key = counter.key("acme", f"c{next(_names)}")
    if raw:
        ddb.put_item(TableName="CountersTable", Item={**key, **raw})
    try:
        ddb.update_item(TableName="CountersTable", Key=key, **update.params())
    except ClientError as err:
        assert err.response["Error"]["Code"] == "ConditionalCheckFailedException"
        return True
    return False


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    item=ITEMS,
    delta=st.integers(-30, 30),
    rollover=st.sampled_from(["same_day", "new_day", "new_week"]),
    open_to=st.sampled_from([None, "private", "public"]),
)
def test_dynamodb_refuses_a_change_exactly_when_a_condition_judges_false(
    ddb, item, delta, rollover, open_to
):
    raw = _raw(*item)
    update = counter.change(delta, AT, rollover, open_to=open_to)
    expected = update.refusal(raw)
    assert _refused(ddb, raw, update) == (expected is not None), (raw, delta, rollover, expected)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    item=ITEMS,
    change=st.fixed_dictionaries(
        {},
        optional={
            "upper_bound": st.one_of(st.none(), st.integers(-30, 30)),
            "lower_bound": st.one_of(st.none(), st.integers(-30, 30)),
        },
    ),
    never_changed=st.booleans(),
)
def test_dynamodb_refuses_new_bounds_exactly_when_a_condition_judges_false(
    ddb, item, change, never_changed
):
    raw = {} if never_changed else _raw(*item)
    update = counter.settings(change, AT.epoch_ms)
    expected = update.refusal(raw)
    assert _refused(ddb, raw, update) == (expected is not None), (raw, change, expected)
