"""The throttling proxy's token buckets (tally_local.throttle.Buckets), on a clock moved by hand
(steps that are exact in binary, so no rounding decides a take)."""

from __future__ import annotations

from tally_local.throttle import Buckets

A, B = ("CountersTable", '{"counter": "a"}'), ("CountersTable", '{"counter": "b"}')


class Clock:
    def __init__(self) -> None:
        self.at = 100.0

    def __call__(self) -> float:
        return self.at


def test_a_bucket_starts_full_and_refuses_past_its_burst() -> None:
    buckets = Buckets(rate=4, burst=3, clock=Clock())
    assert [buckets.take({A: 1}) for _ in range(4)] == [True, True, True, False]


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    clock = Clock()
    buckets = Buckets(rate=4, burst=3, clock=clock)
    assert buckets.take({A: 3})
    clock.at += 0.25  # one unit back (a quarter second at 4 a second)
    assert [buckets.take({A: 1}) for _ in range(2)] == [True, False]
    clock.at += 60  # a minute idle fills it to its burst, no further
    assert [buckets.take({A: 1}) for _ in range(4)] == [True, True, True, False]


def test_a_call_on_two_items_takes_from_both_or_from_neither() -> None:
    buckets = Buckets(rate=4, burst=3, clock=Clock())
    assert buckets.take({B: 3})
    assert not buckets.take({A: 2, B: 2})  # B is empty: A keeps its 3
    assert buckets.take({A: 3})


def test_a_charge_past_the_minimum_puts_the_bucket_in_debt() -> None:
    clock = Clock()
    buckets = Buckets(rate=4, burst=3, clock=clock)
    assert buckets.take({A: 1})
    buckets.charge(A, 4)  # a 5 KB write: 5 units in all, 2 more than the bucket held
    clock.at += 0.5  # 2 units back: the debt is paid, nothing to spare
    assert not buckets.take({A: 1})
    clock.at += 0.25
    assert buckets.take({A: 1})
