"""What a stream record publishes (tally.events.derive), as pure rules: for any walk of values,
each level is published once per upward crossing and never otherwise."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from tally import events


def _image(value: int, **settings) -> dict:
    image = {
        "workspace": {"S": "w"},
        "counter": {"S": "c"},
        "v": {"N": str(value)},
        "ua": {"N": "1795478400000"},
    }
    if "hi" in settings:
        image["hi"] = {"N": str(settings["hi"])}
    if "lo" in settings:
        image["lo"] = {"N": str(settings["lo"])}
    if "bt" in settings:
        image |= {"bt": {"N": str(settings["bt"])}, "ba": {"N": "1"}, "bd": {"S": "x"}}
    if "al" in settings:
        image["al"] = {"S": settings["al"]}
    return image


def _record(n: int, old: int, new: int, **settings) -> dict:
    return {
        "eventID": f"e{n}",
        "eventName": "MODIFY",
        "dynamodb": {
            "Keys": {"workspace": {"S": "w"}, "counter": {"S": "c"}},
            "OldImage": _image(old, **settings),
            "NewImage": _image(new, **settings),
            "ApproximateCreationDateTime": 1795478400,
        },
    }


def _upward_crossings(walk: list[int], level: int) -> int:
    return sum(a < level <= b for a, b in itertools.pairwise(walk))


@given(
    st.lists(st.integers(-20, 20), min_size=2, max_size=40),
    st.integers(-20, 20),
    st.integers(1, 20),
)
def test_each_level_publishes_once_per_upward_crossing(walk, level, threshold):
    settings = {"al": f'[{{"at":{level}}}]', "bt": threshold, "hi": 20, "lo": -20}
    published = [
        e
        for n, (a, b) in enumerate(itertools.pairwise(walk))
        for e in events.derive(_record(n, a, b, **settings))
    ]
    kinds = [e.type for e in published]

    assert kinds.count(events.ALERT) == _upward_crossings(walk, level)
    assert kinds.count(events.THRESHOLD_CROSSED) == _upward_crossings(walk, threshold)
    upper = [e for e in published if e.type == events.BOUND_REACHED and e.data["bound"] == "upper"]
    assert len(upper) == _upward_crossings(walk, 20)
    lower = [e for e in published if e.type == events.BOUND_REACHED and e.data["bound"] == "lower"]
    assert len(lower) == _upward_crossings([-v for v in walk], 20)
    assert len({e.id for e in published}) == len(published)


@given(st.integers(1, 10**12), st.integers(1, 100))
def test_a_percentage_of_the_upper_bound_is_its_level_rounded_up(upper, percent):
    record = _record(0, 0, upper, hi=upper, al=f'[{{"at_percent_of_upper_bound":{percent}}}]')

    (alert,) = [e for e in events.derive(record) if e.type == events.ALERT]

    assert alert.data["level"] == -(-upper * percent // 100)
    assert (alert.data["level"] - 1) * 100 < upper * percent <= alert.data["level"] * 100


def test_a_percentage_alert_without_an_upper_bound_never_fires():
    record = _record(0, 0, 10**6, al='[{"at_percent_of_upper_bound":50}]')

    assert events.derive(record) == []


def test_a_record_that_moves_no_value_publishes_nothing():
    assert events.derive(_record(0, 5, 5, al='[{"at":5}]', bt=5, hi=5)) == []
    assert events.derive({**_record(0, 0, 9), "eventName": "REMOVE"}) == []
