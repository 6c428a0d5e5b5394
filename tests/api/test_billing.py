"""Threshold billing: exactly once, nothing lost, reading only what is due."""

from __future__ import annotations

import contextlib

import pytest

from tally import billing, counter_settings, counters, invoices
from tally.bodies import SETTINGS_CHANGE
from tests.conftest import record_calls

T, AMOUNT = 1000, 500


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


def test_a_counter_past_its_threshold_is_invoiced_and_lowered(ddb):
    _billed()
    counters.change("acme", "api_calls", 1000)

    report = billing.run()

    assert (report.items_created, report.units_billed, report.cents_billed) == (1, 1000, 500)
    (item,) = _billing_items()
    assert {k: item[k] for k in ("account_id", "amount", "description", "source")} == {
        "account_id": "acme",
        "amount": 500,
        "description": "API calls over 1000",
        "source": "billing",
    }
    assert _state(ddb) == (0, 1000)


def test_units_above_the_threshold_are_kept_for_the_next_invoice(ddb):
    _billed()
    counters.change("acme", "api_calls", 2500)

    billing.run()

    assert [i["amount"] for i in _billing_items()] == [2 * AMOUNT]
    assert _state(ddb) == (500, 2000)
    counters.change("acme", "api_calls", 500)
    billing.run()
    assert [i["amount"] for i in _billing_items()] == [AMOUNT, 2 * AMOUNT]
    assert _state(ddb) == (0, 3000)


def test_a_counter_below_its_threshold_is_not_even_read(ddb):
    _billed()
    counters.change("acme", "api_calls", 999)
    counters.change("acme", "unbilled", 5000)
    calls = record_calls(ddb)

    report = billing.run(client=ddb)

    assert calls == ["Query"]
    assert (report.examined, report.items_created) == (0, 0)


def test_marking_due_costs_one_write_at_the_crossing_and_none_after(ddb):
    _billed()
    counters.change("acme", "api_calls", 998, client=ddb)
    calls = record_calls(ddb)

    counters.change("acme", "api_calls", 1, client=ddb)  # 999: not due
    assert calls.pop() == ["UpdateItem"]
    counters.change("acme", "api_calls", 1, client=ddb)  # 1000: crosses
    assert calls.pop() == ["UpdateItem", "UpdateItem"]
    counters.change("acme", "api_calls", 1, client=ddb)  # already marked
    assert calls.pop() == ["UpdateItem"]


def test_a_lower_threshold_set_later_marks_the_counter_at_once(ddb):
    counters.change("acme", "api_calls", 1500)
    _billed()

    assert billing.run().items_created == 1
    assert _state(ddb) == (500, 1000)


def test_removing_billing_or_raising_the_threshold_bills_nothing(ddb):
    _billed("a")
    _billed("b")
    counters.change("acme", "a", 1000)
    counters.change("acme", "b", 1000)
    counter_settings.put("acme", "a", SETTINGS_CHANGE.validate_python({"billing": None}))
    _billed("b", threshold=5000)

    report = billing.run()

    assert report.items_created == 0
    assert billing.due_counters() == []  # the stale mark was dropped


def test_billing_lowers_the_counter_within_its_bounds_bookkeeping(ddb):
    _billed(upper_bound=1200)
    counters.change("acme", "api_calls", 1200)

    billing.run()

    assert _state(ddb) == (200, 1000)
    assert counters.change("acme", "api_calls", 1000).value == 1200  # room to 1200 is back


def test_a_counter_that_keeps_failing_does_not_stop_the_others(ddb, monkeypatch):
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
    report = billing.run()

    assert (report.items_created, report.failed) == (1, 1)
    assert _state(ddb, "fine") == (0, 1000)
    assert _state(ddb, "broken") == (2000, 0)


def test_a_bill_too_large_for_one_item_is_billed_in_parts_run_by_run(ddb):
    _billed("huge", threshold=1, amount=10**12)  # one item holds at most 10**12 cents
    counters.change("acme", "huge", 3)

    reports = [billing.run() for _ in range(4)]

    assert [r.items_created for r in reports] == [1, 1, 1, 0]
    assert all(r.failed == 0 for r in reports)
    assert _state(ddb, "huge") == (0, 3)


# ------------------------------------------------------------------ exactly once


def test_a_repeated_run_bills_nothing_more(ddb):
    _billed()
    counters.change("acme", "api_calls", 1000)

    billing.run()
    second = billing.run()

    assert second.items_created == 0
    assert len(_billing_items()) == 1


def test_a_change_landing_during_a_run_is_kept(ddb):
    _billed()
    counters.change("acme", "api_calls", 1000)

    def change_meanwhile(**_):
        counters.change("acme", "api_calls", 7)  # between the run's read and its transaction

    ddb.meta.events.register_first("before-call.dynamodb.TransactWriteItems", change_meanwhile)
    billing.run(client=ddb)

    assert _state(ddb) == (7, 1000)


def test_two_overlapping_runs_bill_the_same_units_once(ddb, demo):
    _billed()
    counters.change("acme", "api_calls", 1000)
    ran_inside = []

    def other_run_first(**_):
        if not ran_inside:
            ran_inside.append(billing.run())  # a whole run between this one's read and write

    ddb.meta.events.register_first("before-call.dynamodb.TransactWriteItems", other_run_first)
    outer = billing.run(client=ddb)

    assert ran_inside[0].items_created == 1
    assert (outer.items_created, outer.skipped_for_conflict) == (0, 1)
    assert len(_billing_items()) == 1
    assert _state(ddb) == (0, 1000)


@pytest.mark.parametrize("after", [False, True], ids=["before-send", "after-apply"])
@pytest.mark.parametrize("step", [1, 2, 3, 4], ids=["query", "read", "transaction", "unmark"])
def test_a_run_that_crashes_at_any_step_and_is_rerun_bills_exactly_once(ddb, step, after):
    _billed()
    counters.change("acme", "api_calls", 2345)
    faults = Faults(ddb, at=step, after=after)

    with contextlib.suppress(ConnectionError):  # the crash
        billing.run(client=ddb)
    assert faults.calls >= step  # it did crash there
    billing.run()  # the retry, with a healthy client
    billing.run()

    value, billed = _state(ddb)
    assert (value, billed) == (345, 2000)
    assert value + billed == 2345
    assert [i["amount"] for i in _billing_items()] == [2 * AMOUNT]


def test_invoice_item_ids_are_made_of_what_they_bill():
    first = billing.item_id("acme", "api_calls", 0)
    assert first == billing.item_id("acme", "api_calls", 0)
    assert first != billing.item_id("acme", "api_calls", 1000)
    assert first != billing.item_id("acme", "other", 0)
    assert first.startswith("ivi_")
