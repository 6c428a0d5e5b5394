"""Leases: a busy container takes several tokens in one write and gives them out itself. However
containers take, spend, idle, die or disagree on the time, the bucket never admits more than
capacity + refill over any interval; what a container holds is bounded, and comes back."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tally import clock, rate_limit
from tally.rate_limit import LEASE_AFTER, LEASE_SECONDS, Container, Policy
from tests.conftest import MovableClock, record_calls

SECOND = 1_000_000


def _tat_ahead(ddb, bucket: str) -> int:
    """How far the table's tat is ahead of now (µs of refill taken or held)."""
    item = ddb.get_item(TableName="RateLimitsTable", Key={"bucket": {"S": bucket}}).get("Item")
    return int(item["tat"]["N"]) - clock.now_us()


def _warm(
    container: Container, bucket: str, policy: Policy, time_: MovableClock, gap_us: int
) -> None:
    """Takes `gap_us` apart, twice LEASE_AFTER of them."""
    for _ in range(2 * LEASE_AFTER):
        assert container.take(bucket, policy).allowed
        time_.move(microseconds=gap_us)


def _until_leased(ddb, container: Container, bucket: str, time_: MovableClock, gap_us: int) -> int:
    """Takes `gap_us` apart until one leases (the table's tat jumps past one interval): the
    microseconds of the bucket that lease covers ahead of now. It spent the lease's first token."""
    for _ in range(100):
        assert container.take(bucket).allowed
        ahead = _tat_ahead(ddb, bucket)
        if ahead > Policy().interval_us:
            return ahead
        time_.move(microseconds=gap_us)
    raise AssertionError("never leased")


def _over_admitted(times: list[int], policy: Policy, spread_us: int = 0) -> list[tuple]:
    """Each interval [times[i], times[j]] holding more admissions than capacity + refill allow
    (with containers' clocks `spread_us` apart, refill over that much longer)."""
    interval = policy.interval_us
    times = sorted(times)
    return [
        (i, j, j - i + 1)
        for i, j in itertools.combinations_with_replacement(range(len(times)), 2)
        if (j - i + 1 - policy.quota) * interval > times[j] - times[i] + spread_us
    ]


# ------------------------------------------------------------------ what a lease is


def test_a_busy_container_takes_a_lease_in_one_write_and_spends_it_with_no_call(ddb, time_):
    one = Container()
    calls = record_calls()
    for _ in range(LEASE_AFTER - 1):
        one.take("b")
    assert calls.pop() == ["UpdateItem"] * (LEASE_AFTER - 1)  # one token a write, as before

    leased = [one.take("b") for _ in range(20)]  # the default: 2 s of 10 a second

    assert calls.pop() == ["UpdateItem"]
    assert [d.remaining for d in leased] == list(range(600 - LEASE_AFTER, 580 - LEASE_AFTER, -1))
    one.take("b")
    assert calls.pop() == ["UpdateItem"]  # the lease spent: the next write


def test_one_container_draining_through_leases_gives_exactly_the_capacity_and_exact_headers(
    ddb, time_
):
    one = Container()
    decisions = []
    while (decision := one.take("b")).allowed:
        decisions.append(decision)

    assert len(decisions) == 600
    assert [d.remaining for d in decisions] == list(range(599, -1, -1))
    assert [d.full_in_s for d in decisions] == [-(-(i + 1) // 10) for i in range(600)]
    assert (decision.remaining, decision.retry_after_s, decision.full_in_s) == (0, 1, 60)


def test_a_busy_container_on_a_drained_bucket_takes_each_refilled_token_in_one_call(ddb, time_):
    one = Container()
    while one.take("b").allowed:  # busy: it leases while there is anything to lease
        pass
    calls = record_calls()
    for _ in range(5):
        time_.move(microseconds=Policy().interval_us)  # one token of refill
        assert one.take("b").allowed  # asks for what it saw was left: one, in one call
        assert not one.take("b").allowed
    assert calls == ["UpdateItem"] * 10


def test_a_sparse_caller_never_leases_each_request_takes_one_token_in_one_write(ddb, time_):
    one = Container()
    calls = record_calls()
    for _ in range(30):  # one a second on one path: under LEASE_AFTER in any LEASE_SECONDS
        assert one.take("b").remaining == 599
        assert _tat_ahead(ddb, "b") == Policy().interval_us  # nothing held
        time_.move(microseconds=SECOND)
    assert calls == ["UpdateItem"] * 30


@pytest.mark.parametrize(
    ("policy", "gap_us", "lease"),
    [
        (Policy(6000, 60), 20_000, 200),  # 50/s, refill 100/s: LEASE_SECONDS of refill
        (Policy(10**6, 60), 1_000, 1666),  # 1000/s: a lease of ~100 requests, 0.1 s of refill
        (Policy(600, 60), 200_000, 20),  # 5/s at 10/s: LEASE_SECONDS of refill
    ],
    ids=["50-a-second", "1000-a-second", "5-a-second"],
)
def test_a_lease_adapts_to_the_rate_and_never_holds_more_than_lease_seconds_of_refill(
    ddb, time_, policy, gap_us, lease
):
    one = Container()
    _warm(one, "b", policy, time_, gap_us)
    calls = record_calls()
    ahead = []
    for _ in range(1000):
        assert one.take("b", policy).allowed
        ahead.append(_tat_ahead(ddb, "b"))
        time_.move(microseconds=gap_us)

    writes = len(calls)
    refill = LEASE_SECONDS * SECOND
    # the table shows at most the lease's stretch ahead of now (the caller is under its limit)
    assert max(ahead) <= min(refill, lease * policy.interval_us) + policy.interval_us
    assert max(ahead) >= lease * policy.interval_us * 0.9  # and it did lease that much
    served = min(lease, lease * policy.interval_us // gap_us)  # requests a lease serves
    assert writes <= 1000 / served * 1.2 + 2


# ------------------------------------------------------------------ expiry and dying


def test_a_lease_is_spent_as_the_bucket_would_so_an_idle_containers_tokens_expire(ddb, time_):
    one = Container()
    # under 10/s (the bucket stays full) until it leases 20: the stretch (now, now + 2 s]
    assert _until_leased(ddb, one, "b", time_, 105_000) == LEASE_SECONDS * SECOND
    calls = record_calls()
    time_.move(microseconds=1_500_000)  # idle 1.5 s: only (now, end], 0.5 s, is left of it

    spent = [one.take("b") for _ in range(5)]

    assert calls.pop() == [] and all(d.allowed for d in spent)
    one.take("b")
    assert calls.pop() == ["UpdateItem"]  # the rest had passed: a write


def test_a_stale_lease_gives_nothing_after_others_drained_the_refill_it_would_overlap(ddb, time_):
    """The over-admission a lease must not allow: A leases and idles, the bucket refills, B
    drains it whole; A's lease, from a window ago, must not add its tokens to B's."""
    a, b = Container(), Container()
    _until_leased(ddb, a, "b", time_, 105_000)  # A holds 19
    time_.move(microseconds=60 * SECOND)  # a window: the bucket is full again
    drained = 0
    while b.take("b").allowed:
        drained += 1

    assert drained == 600
    assert not a.take("b").allowed


def test_a_container_that_dies_with_a_lease_withholds_only_it_and_only_until_its_stretch_passes(
    ddb, time_
):
    a, b = Container(), Container()
    # leases 20, spends 1: holds 19 of the stretch (now, now + 2 s]
    assert _until_leased(ddb, a, "b", time_, 105_000) == LEASE_SECONDS * SECOND
    del a  # dies: nothing returns its lease

    withheld = 600 - 1 - 1 - b.take("b").remaining  # but A's spent token and B's own
    assert withheld == 19 <= LEASE_SECONDS * Policy().quota // Policy().window  # 2 s of refill
    time_.move(microseconds=LEASE_SECONDS * SECOND)  # the stretch has passed
    assert b.take("b").remaining == 600 - 2  # all back but B's own two


def test_remaining_is_the_containers_own_view_exact_when_it_alone_takes(ddb, time_):
    a, b = Container(), Container()
    for _ in range(LEASE_AFTER - 1):
        a.take("b")
    leased = a.take("b")  # its 10th token, and a lease of 19 more
    b_first, b_second = b.take("b"), b.take("b")  # two tokens after A's write
    a_after = a.take("b")  # the 11th of A's, from its lease

    assert leased.remaining == 600 - 10  # exact: A alone had taken
    assert (b_first.remaining, b_second.remaining) == (
        600 - 29 - 1,
        600 - 29 - 2,
    )  # A's whole lease
    assert a_after.remaining == 600 - 11  # A's view: B's two, since A's last write, not in it


# ------------------------------------------------------------------ never over-admitted

POLICIES = [Policy(8, 2), Policy(30, 3), Policy(600, 60)]  # a lease of a whole bucket, 20, 20
GAPS = [0, 1_000, 10_000, 50_000, 100_000, 250_000, 1_000_000, 5_000_000]
CONTAINERS = 3
buckets = itertools.count()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    policy=st.sampled_from(POLICIES),
    skews=st.lists(st.integers(-200_000, 200_000), min_size=CONTAINERS, max_size=CONTAINERS),
    steps=st.lists(
        st.tuples(
            st.integers(0, CONTAINERS - 1),
            st.sampled_from(GAPS),
            st.integers(0, 24),  # 0: that container dies (a new one takes its place) first
            st.integers(1, 12),  # requests it sends at that instant
        ),
        min_size=1,
        max_size=60,
    ),
)
def test_several_containers_never_admit_more_than_capacity_plus_refill(
    ddb, time_, policy, skews, steps
):
    """Any interleaving of containers taking, leasing, idling and dying, on clocks up to
    0.2 s apart: over every interval, admissions <= capacity + refill over (the interval + the
    clocks' spread)."""
    bucket = f"hyp{next(buckets)}"
    containers = [Container() for _ in range(CONTAINERS)]
    admitted: list[int] = []
    true_us, start = 0, time_.at
    for which, gap, dies, burst in steps:
        true_us += gap
        if dies == 0:
            containers[which] = Container()
        time_.at = start + timedelta(microseconds=true_us + skews[which])
        for _ in range(burst):
            if containers[which].take(bucket, policy).allowed:
                admitted.append(true_us)

    spread = max(skews) - min(skews) + 2  # (+2 µs: the clock's float rounding)
    assert _over_admitted(admitted, policy, spread) == []


def test_threads_in_four_containers_hammering_one_bucket_get_no_more_than_it_holds(
    ddb, time_, monkeypatch
):
    """Concurrent writes (conditional, atomic) and a container's lock shared by its threads:
    at one instant, no refill, nothing more than the capacity is ever given."""
    from moto.core.botocore_stubber import BotocoreStubber

    # moto in-process applies concurrent calls without a lock, so two racing ADDs can lose one
    # (tally_local.dynamodb); DynamoDB applies each call atomically: so does moto here.
    one_at_a_time, send = threading.Lock(), BotocoreStubber.__call__

    def atomic(stubber, *args, **kwargs):
        with one_at_a_time:
            return send(stubber, *args, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", atomic)
    policy = Policy(100, 60)  # a lease: 3 tokens (2 s of 1.67/s)
    containers = [Container() for _ in range(4)]
    lock = threading.Lock()
    given = []

    def hammer(n: int) -> None:
        decision = containers[n % 4].take("hot", policy)
        if decision.allowed:
            with lock:
                given.append(n)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(hammer, range(400)))

    assert 100 - 4 * 3 <= len(given) <= 100  # what a container still holds is not handed out
    assert len(set(given)) == len(given)


def test_the_processs_one_container_is_what_take_and_admit_use(ddb, time_):
    for _ in range(LEASE_AFTER - 1):
        rate_limit.take("b")
    calls = record_calls()
    for _ in range(20):  # the 10th token and a lease of 19
        rate_limit.take("b")
    assert calls == ["UpdateItem"]
