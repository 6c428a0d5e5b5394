"""History's pure rules: what a stream record did, and which buckets a request asks for (time
zones across daylight-saving changes included)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tally import history
from tally.errors import BadRequest
from tally.items.history import Sums, bucket_start

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)


def record(event: str, old: dict | None, new: dict | None, created: int = 1_795_000_000) -> dict:
    def image(fields: dict | None) -> dict | None:
        if fields is None:
            return None
        keys = {"workspace": {"S": "acme"}, "counter": {"S": "c"}}
        return {**keys, **{k: {"N": str(v)} for k, v in fields.items()}}

    dynamodb = {
        "ApproximateCreationDateTime": created,
        "Keys": {"workspace": {"S": "acme"}, "counter": {"S": "c"}},
        "SequenceNumber": "1",
    }
    for name, fields in (("OldImage", old), ("NewImage", new)):
        if fields is not None:
            dynamodb[name] = image(fields)
    return {"eventName": event, "dynamodb": dynamodb}


def test_an_up_a_down_a_set_and_billing_are_told_apart():
    first = history.derive(record("INSERT", None, {"v": 1, "uc": 1, "ua": 5000}))
    assert (first.sums, first.at_s) == (Sums(up=1, value_change=1), 5.0)
    down = history.derive(
        record("MODIFY", {"v": 1, "uc": 1, "ua": 5000}, {"v": -2, "uc": 1, "dc": 3, "ua": 6000})
    )
    assert down.sums == Sums(down=3, value_change=-3)
    reset = history.derive(
        record("MODIFY", {"v": 7, "uc": 7, "ua": 1}, {"v": 0, "uc": 7, "ua": 9000})
    )
    assert reset.sums == Sums(value_change=-7)  # a set is no usage
    billed = history.derive(
        record(
            "MODIFY",
            {"v": 1200, "uc": 1200, "ua": 1},
            {"v": 200, "uc": 1200, "bu": 1000, "ua": 1},
            777,
        )
    )
    assert (billed.sums, billed.at_s) == (Sums(value_change=-1000, billed=1000), 777.0)


def test_settings_marks_and_removals_count_nothing():
    same = {"v": 3, "uc": 3, "ua": 1}
    assert history.derive(record("MODIFY", same, {**same, "hi": 10})) is None
    assert history.derive(record("REMOVE", same, None)) is None


def test_buckets_are_utc_hours_days_and_months():
    at = datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC).timestamp()
    assert bucket_start(at, "h") == datetime(2026, 2, 28, 23, tzinfo=UTC).timestamp()
    assert bucket_start(at, "d") == datetime(2026, 2, 28, tzinfo=UTC).timestamp()
    assert bucket_start(at, "m") == datetime(2026, 2, 1, tzinfo=UTC).timestamp()


def test_the_default_window_is_the_last_24_hours_by_hour_the_current_one_included():
    window = history.window({}, NOW)
    starts = window.starts()
    assert len(starts) == 24
    assert starts[-1] == datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 23, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "hours"), [("2026-03-29", 23), ("2026-10-25", 25), ("2026-10-26", 24)]
)
def test_a_day_in_paris_is_23_or_25_hours_across_a_dst_change(day, hours):
    now = datetime.fromisoformat(day).replace(tzinfo=UTC)
    query = {"group_by": "hour", "tz": "Europe/Paris", "from": day, "to": f"{day}T23:59:59"}
    starts = history.window(query, now).starts()
    assert len(starts) == hours
    assert len({s.astimezone(UTC) for s in starts}) == hours  # every real hour, none twice
    days = history.window({**query, "group_by": "day"}, now).starts()
    assert len(days) == 1 and days[0].isoformat().startswith(day)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"group_by": "year"}, "group_by"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"tz": "../../etc/passwd"}, "tz"),
        ({"tz": "Asia/Kolkata"}, "tz"),  # 5:30 from UTC: hours cannot be split
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-11-23", "to": "2026-11-22"}, "from"),
        ({"from": "0001-01-01", "group_by": "month"}, "from"),
        ({"to": "9999-12-31T23:00:00"}, "to"),
        ({"from": "2026-10-01"}, "from"),  # hours are kept 14 days
        ({"group_by": "day", "from": "2024-01-01"}, "from"),  # days 400
        ({"group_by": "day", "tz": "Europe/Paris", "from": "2026-11-01"}, "from"),
    ],
)
def test_a_bad_window_is_a_400_naming_its_field(query, field):
    with pytest.raises(BadRequest) as refused:
        history.window(query, NOW)
    assert field in refused.value.fields


def test_windows_within_what_is_kept_are_answered():
    hours = {"group_by": "hour", "from": "2026-11-10", "to": "2026-11-23"}
    assert len(history.window(hours, NOW).starts()) == 13 * 24
    months = {"group_by": "month", "from": "1970-01-01"}  # months are kept for good
    assert len(history.window(months, NOW).starts()) == 683


def test_more_than_a_thousand_points_is_refused():
    with pytest.raises(BadRequest, match="at most 1000 points"):
        history.window({"group_by": "day", "from": "2023-01-01"}, datetime(2026, 1, 1, tzinfo=UTC))
