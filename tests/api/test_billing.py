"""Threshold billing: exactly once, nothing lost, reading only what is due. The marks a run
reads are kept by CounterStreamFunction from the counters' stream (`counter_stream()` hands it
what the stream holds since the last call, as Lambda would)."""

from __future__ import annotations

import contextlib

import pytest
from botocore.exceptions import ClientError

from tally import aws, billing, counter_settings, counters, invoices
from tally.bodies import SETTINGS_CHANGE
from tally_local.gateway import LambdaContext
from tests.conftest import TEMPLATE, record_calls

T, AMOUNT = 1000, 500


@pytest.fixture
def run(counter_stream):
    """A billing run once the stream has been read up to now (the marks up to date)."""

    def run_(**kwargs) -> billing.Report:
        assert not counter_stream()["batchItemFailures"]
        return billing.run(**kwargs)

    return run_


def _marks() -> list[tuple[str, int, int]]:
    """(counter, value, units billed) of every mark."""
    return sorted((m.counter, m.value, m.billed) for m in billing.marks())


def _billed(name: str = "api_calls", threshold: int = T, amount: int = AMOUNT, **bounds) -> None:
    billing_ = {"threshold": threshold, "amount": amount, "description": "API calls over 1000"}
    change = SETTINGS_CHANGE.validate_python({"billing": billing_, **bounds})
    counter_settings.put("acme", name, change)


def _state(ddb, name: str = "api_calls") -> tuple[int, int]:
    """(value, units billed over the counter's life)."""
    stored = counters.get("acme", name).stored
    return stored.value, stored.billed_units


def _billing_items(workspace: str = "acme") -> list[dict]:
    return [i for i in invoices.page(workspace, limit=100)["list"] if i["source"] == "billing"]


class Faults:
    """Fail the n-th DynamoDB call of a client, before it is sent or after it was applied."""

    def __init__(self, client, at: int, after: bool) -> None:
        self.calls, self.at, self.after = 0, at, after
        event = "after-call" if after else "before-call"
        client.meta.events.register(f"{event}.dynamodb.*", self._maybe_fail)

    def _maybe_fail(self, **_):
        self.calls += 1
        if self.calls == self.at:
            raise ConnectionError(
                f"crash at call {self.at} ({'after' if self.after else 'before'})"
            )


# ------------------------------------------------------------------ what a run does


def test_a_counter_past_its_threshold_is_invoiced_and_lowered(ddb, run):
    _billed()
    counters.change("acme", "api_calls", 1000)

    report = run()

    assert (report.items_created, report.units_billed, report.cents_billed) == (1, 1000, 500)
    (item,) = _billing_items()
    assert {k: item[k] for k in ("account_id", "amount", "description", "source")} == {
        "account_id": "acme",
        "amount": 500,
        "description": "API calls over 1000",
        "source": "billing",
    }
    assert _state(ddb) == (0, 1000)


def test_units_above_the_threshold_are_kept_for_the_next_invoice(ddb, run):
    _billed()
    counters.change("acme", "api_calls", 2500)

    run()

    assert [i["amount"] for i in _billing_items()] == [2 * AMOUNT]
    assert _state(ddb) == (500, 2000)
    counters.change("acme", "api_calls", 500)
    run()
    assert [i["amount"] for i in _billing_items()] == [AMOUNT, 2 * AMOUNT]
    assert _state(ddb) == (0, 3000)


def test_a_counter_below_its_threshold_is_not_even_read(ddb, counter_stream):
    _billed()
    counters.change("acme", "api_calls", 999)
    counters.change("acme", "unbilled", 5000)
    counter_stream()
    calls = record_calls(ddb)

    report = billing.run(client=ddb)

    assert calls == ["Scan"]
    assert (report.examined, report.items_created) == (0, 0)


def test_an_invoiced_counter_costs_a_run_one_read_and_one_transaction(ddb, counter_stream):
    _billed("a")
    _billed("b")
    counters.change("acme", "a", 1000)
    counters.change("acme", "b", 2000)
    counter_stream()
    calls = record_calls(ddb)

    report = billing.run(client=ddb)

    assert report.items_created == 2
    assert calls == ["Scan", "TransactWriteItems", "TransactWriteItems"]


def test_the_change_path_writes_no_mark(ddb):
    _billed()
    counters.change("acme", "api_calls", 998, client=ddb)
    calls = record_calls(ddb)

    for _ in range(3):  # 999, then 1000 (crossing), then 1001
        counters.change("acme", "api_calls", 1, client=ddb)
        assert calls.pop() == ["UpdateItem"]


def test_a_mark_is_written_at_the_crossing_and_at_each_threshold_not_each_change(
    ddb, counter_stream
):
    _billed()
    writes = record_calls(tables=True)  # tally's client: the stream function's calls

    counters.change("acme", "api_calls", 999)
    counter_stream()
    assert [w for w in writes.pop() if w[1] == "BillingDueTable"] == []
    counters.change("acme", "api_calls", 1)  # 1000: crosses
    counter_stream()
    assert [w for w in writes.pop() if w[1] == "BillingDueTable"] == [
        ("PutItem", "BillingDueTable")
    ]
    for _ in range(5):  # 1001..1005: the same bill, one batch each
        counters.change("acme", "api_calls", 1)
        counter_stream()
    assert [w for w in writes.pop() if w[1] == "BillingDueTable"] == []
    assert _marks() == [("api_calls", 1000, 0)]
    counters.change("acme", "api_calls", 995)  # 2000: a second threshold
    counter_stream()
    assert _marks() == [("api_calls", 2000, 0)]


def test_billing_drops_the_mark_through_the_stream_or_keeps_it_while_still_due(ddb, run):
    _billed()
    counters.change("acme", "api_calls", 1500)
    run()
    counters.change("acme", "api_calls", 0)  # nothing: the billing's own record is read
    run()
    assert _marks() == []
    counters.change("acme", "api_calls", 600)  # 1100: due again
    run()
    assert _state(ddb) == (100, 2000)


def test_a_lower_threshold_set_later_marks_the_counter_at_once(ddb, run):
    counters.change("acme", "api_calls", 1500)
    _billed()

    assert run().items_created == 1
    assert _state(ddb) == (500, 1000)


def test_removing_billing_or_raising_the_threshold_bills_nothing(ddb, run, counter_stream):
    _billed("a")
    _billed("b")
    counters.change("acme", "a", 1000)
    counters.change("acme", "b", 1000)
    counter_stream()
    assert len(_marks()) == 2
    counter_settings.put("acme", "a", SETTINGS_CHANGE.validate_python({"billing": None}))
    _billed("b", threshold=5000)

    report = run()

    assert report.items_created == 0
    assert _marks() == []  # the stream dropped both marks


def test_a_changed_description_is_billed_as_the_counter_says(ddb, counter_stream):
    _billed()
    counters.change("acme", "api_calls", 1000)
    counter_stream()  # marked; the change below is not streamed yet
    billing_ = {"threshold": T, "amount": AMOUNT, "description": "renamed"}
    counter_settings.put(
        "acme", "api_calls", SETTINGS_CHANGE.validate_python({"billing": billing_})
    )

    report = billing.run()  # the mark still has the old description: the counter's is billed

    assert report.items_created == 1
    assert [i["description"] for i in _billing_items()] == ["renamed"]


def test_billing_lowers_the_counter_within_its_bounds_bookkeeping(ddb, run):
    _billed(upper_bound=1200)
    counters.change("acme", "api_calls", 1200)

    run()

    assert _state(ddb) == (200, 1000)
    assert counters.change("acme", "api_calls", 1000).value == 1200  # room to 1200 is back


def test_a_counter_that_keeps_failing_does_not_stop_the_others(ddb, run, monkeypatch):
    _billed("broken")
    _billed("fine")
    counters.change("acme", "broken", 2000)
    counters.change("acme", "fine", 1000)
    record_of = invoices.record_of

    def fail_for_broken(workspace, amount, description, source, item_id):
        if item_id == billing.item_id("acme", "broken", 0):
            raise RuntimeError("this counter cannot be billed")
        return record_of(workspace, amount, description, source, item_id)

    monkeypatch.setattr(invoices, "record_of", fail_for_broken)
    report = run()

    assert (report.items_created, report.failed) == (1, 1)
    assert _state(ddb, "fine") == (0, 1000)
    assert _state(ddb, "broken") == (2000, 0)


def test_a_bill_too_large_for_one_item_is_billed_in_parts_run_by_run(ddb, run):
    _billed("huge", threshold=1, amount=10**12)  # one item holds at most 10**12 cents
    counters.change("acme", "huge", 3)

    reports = [run() for _ in range(4)]

    assert [r.items_created for r in reports] == [1, 1, 1, 0]
    assert all(r.failed == 0 for r in reports)
    assert _state(ddb, "huge") == (0, 3)


def test_marks_lost_are_rebuilt_from_the_counters(ddb, counter_stream):
    _billed("a")
    _billed("b")
    counters.change("acme", "a", 1000)
    counters.change("acme", "b", 999)
    counter_stream()
    ddb.delete_item(
        TableName="BillingDueTable", Key={"workspace": {"S": "acme"}, "counter": {"S": "a"}}
    )
    assert billing.run().items_created == 0  # nothing marked, nothing billed

    handler = TEMPLATE.functions["BillingFunction"].load()
    report = handler({"rebuild_marks": True}, LambdaContext(TEMPLATE.functions["BillingFunction"]))

    assert report["items_created"] == 1
    assert _state(ddb, "a") == (0, 1000)
    assert _state(ddb, "b") == (999, 0)


# ------------------------------------------------------------------ a mark behind its counter


def test_a_change_landing_during_a_run_is_kept(ddb, run):
    _billed()
    counters.change("acme", "api_calls", 1000)

    def change_meanwhile(**_):
        counters.change("acme", "api_calls", 7)  # between the mark's read and the transaction

    ddb.meta.events.register_first("before-call.dynamodb.TransactWriteItems", change_meanwhile)
    run(client=ddb)

    assert _state(ddb) == (7, 1000)


def test_changes_the_mark_has_not_seen_are_billed_next_run(ddb, run, counter_stream):
    _billed()
    counters.change("acme", "api_calls", 1000)
    counter_stream()
    counters.change("acme", "api_calls", 1500)  # 2500, not streamed yet

    first = billing.run()  # bills what the mark shows
    assert (first.units_billed, _state(ddb)) == (1000, (1500, 1000))
    second = run()  # the billing's record showed 1500: due, marked again

    assert (second.units_billed, _state(ddb)) == (1000, (500, 2000))
    assert [i["amount"] for i in _billing_items()] == [AMOUNT, AMOUNT]


def test_a_mark_left_behind_by_its_counter_is_billed_from_the_counter(ddb, counter_stream):
    _billed()
    counters.change("acme", "api_calls", 3000)
    counter_stream()
    counters.change("acme", "api_calls", -1500)  # 1500, not streamed: the mark says 3000
    calls = record_calls(ddb)

    report = billing.run(client=ddb)

    assert calls == ["Scan", "TransactWriteItems", "GetItem", "TransactWriteItems"]
    assert (report.units_billed, report.skipped_for_conflict) == (1000, 0)
    assert _state(ddb) == (500, 1000)


def test_a_stale_mark_of_a_counter_due_no_more_is_dropped(ddb, counter_stream):
    _billed()
    counters.change("acme", "api_calls", 1000)
    counter_stream()
    counters.change("acme", "api_calls", -1)  # 999, not streamed

    report = billing.run()

    assert (report.examined, report.items_created) == (1, 0)
    assert _marks() == []
    counter_stream()  # the stream then finds nothing more to drop
    assert _marks() == []


def test_a_stale_mark_is_kept_when_the_stream_wrote_a_newer_one_meanwhile(ddb, counter_stream):
    _billed()
    counters.change("acme", "api_calls", 1000)
    counter_stream()
    counters.change("acme", "api_calls", -1)  # 999: the mark is stale

    def newer_mark_meanwhile(**_):
        counters.change("acme", "api_calls", 2001)  # 3000: the stream marks it
        counter_stream()

    ddb.meta.events.register_first("before-call.dynamodb.DeleteItem", newer_mark_meanwhile)
    billing.run(client=ddb)

    assert _marks() == [("api_calls", 3000, 0)]


# ------------------------------------------------------------------ exactly once


def test_a_repeated_run_bills_nothing_more(ddb, run):
    _billed()
    counters.change("acme", "api_calls", 1000)

    run()
    second = billing.run()  # before the stream dropped the mark: the counter is read
    third = run()

    assert second.items_created == third.items_created == 0
    assert len(_billing_items()) == 1


def test_two_overlapping_runs_bill_the_same_units_once(ddb, run, demo):
    _billed()
    counters.change("acme", "api_calls", 1000)
    ran_inside = []

    def other_run_first(**_):
        if not ran_inside:
            ran_inside.append(billing.run())  # a whole run between this one's read and write

    ddb.meta.events.register_first("before-call.dynamodb.TransactWriteItems", other_run_first)
    outer = run(client=ddb)

    assert ran_inside[0].items_created == 1
    assert outer.items_created == 0
    assert len(_billing_items()) == 1
    assert _state(ddb) == (0, 1000)


@pytest.mark.parametrize("after", [False, True], ids=["before-send", "after-apply"])
@pytest.mark.parametrize("step", [1, 2], ids=["scan", "transaction"])
def test_a_run_that_crashes_at_any_step_and_is_rerun_bills_exactly_once(ddb, run, step, after):
    _billed()
    counters.change("acme", "api_calls", 2345)
    faults = Faults(ddb, at=step, after=after)

    with contextlib.suppress(ConnectionError):  # the crash
        run(client=ddb)
    assert faults.calls >= step  # it did crash there
    run()  # the retry, with a healthy client
    run()

    value, billed = _state(ddb)
    assert (value, billed) == (345, 2000)
    assert value + billed == 2345
    assert [i["amount"] for i in _billing_items()] == [2 * AMOUNT]


def test_a_mark_write_that_fails_is_reported_and_written_when_the_batch_comes_again(
    ddb, run, counter_stream, monkeypatch
):
    _billed()
    counters.change("acme", "api_calls", 1000)
    put_item = aws.dynamodb().put_item

    def throttled(**params):
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
            "PutItem",
        )

    monkeypatch.setattr(aws.dynamodb(), "put_item", throttled)
    assert counter_stream()["batchItemFailures"]  # reported, to be sent again
    monkeypatch.setattr(aws.dynamodb(), "put_item", put_item)

    assert run().items_created == 1


def test_invoice_item_ids_are_made_of_what_they_bill():
    first = billing.item_id("acme", "api_calls", 0)
    assert first == billing.item_id("acme", "api_calls", 0)
    assert first != billing.item_id("acme", "api_calls", 1000)
    assert first != billing.item_id("acme", "other", 0)
    assert first.startswith("ivi_")


# ------------------------------------------------------------------ any interleaving


class Feed:
    """Hand the counters' stream to CounterStreamFunction in random batches, some sent twice
    (as Lambda may), never past what was written."""

    def __init__(self, ddb, rng) -> None:
        from tests.conftest import StreamFeed

        self.feed, self.rng = StreamFeed(ddb), rng
        self.function = self.feed.function

    def some(self, *, all_of_it: bool = False) -> None:
        from tally_local.gateway import LambdaContext
        from tally_local.streams import read_all

        records = read_all(self.feed.ddb, self.feed.streams, "CountersTable")
        while self.feed.delivered < len(records):
            start = self.feed.delivered
            if self.rng.random() < 0.2 and start:  # the last batch, or part of it, again
                start = self.rng.randint(max(0, start - 5), start - 1)
            end = min(len(records), start + self.rng.randint(1, 6))
            answer = self.function.load()(
                {"Records": records[start:end]}, LambdaContext(self.function)
            )
            assert not answer["batchItemFailures"]
            self.feed.delivered = max(self.feed.delivered, end)
            if not all_of_it and self.rng.random() < 0.4:
                return


@pytest.mark.parametrize("seed", [3, 17, 29, 41])
def test_any_interleaving_of_changes_settings_runs_and_stream_bills_every_unit_once(ddb, seed):
    import random

    rng = random.Random(seed)
    feed = Feed(ddb, rng)
    _billed()  # T 1000, 500 cents
    net = 0  # what the changes and sets made of the value, billing aside

    for _ in range(60):
        step = rng.choice(["up", "up", "up", "down", "set", "describe", "run", "stream"])
        if step == "up":
            amount = rng.choice([1, 250, 999, 1000, 2600])
            counters.change("acme", "api_calls", amount)
            net += amount
        elif step == "down":
            amount = rng.choice([1, 300, 1200])
            counters.change("acme", "api_calls", -amount)
            net -= amount
        elif step == "set":
            value, _ = _state(ddb)
            target = rng.choice([0, 999, 1000, 3500])
            counters.set_value("acme", "api_calls", target)
            net += target - value
        elif step == "describe":
            text = rng.choice(["API calls over 1000", "calls, renamed"])
            billing_ = {"threshold": T, "amount": AMOUNT, "description": text}
            change = SETTINGS_CHANGE.validate_python({"billing": billing_})
            counter_settings.put("acme", "api_calls", change)
        elif step == "run":
            assert billing.run().failed == 0
        else:
            feed.some()

    feed.some(all_of_it=True)  # the stream read to its end: one run bills all that is due
    billing.run()
    feed.some(all_of_it=True)

    value, billed = _state(ddb)
    items = _billing_items()
    assert value + billed == net  # every unit either still counted or billed
    assert value < T  # anything due was marked, and billed by now
    assert billed == sum(i["amount"] for i in items) // AMOUNT * T  # each unit billed once
    assert len({i["id"] for i in items}) == len(items)
    assert _marks() == []
