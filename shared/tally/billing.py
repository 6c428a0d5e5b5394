"""Threshold billing: for every counter whose value has reached its billing threshold T, one
invoice item of k * amount (k = value // T) and the counter lowered by k * T, in one transaction.

Finding them, off the change path: CounterStreamFunction reads every change of the counters
table from its stream and keeps one mark per counter that is due (`keep_marks`), in the
billing-due table, holding what the bill needs (tally.items.due). A run reads the marks and
writes one transaction per counter: one item read and 6 write units per invoiced counter, and
nothing at all on the request path.

Exactly once, nothing lost:
  - the counter keeps its billed units, over its life; the transaction requires them (and the
    billing setting) to be what the mark says, so two runs (or a retried one) cannot both bill
    the same units, and a mark that lags its counter cannot bill what it no longer is;
  - the invoice item's id is derived from (workspace, counter, billed units): the same units
    always make the same id, and the item is put only if that id does not exist;
  - the value is lowered with ADD, never SET, so changes landing during the run are kept; what
    the mark did not show yet (changes since its stream batch) stays on the counter, and the
    billing's own stream record marks it again if it is still due.
  Invariant at every moment: billed units + value = the sum of all changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tally import aws, invoices, shards
from tally.config import settings
from tally.items import counter as stored
from tally.items import due, invoice_item
from tally.items.due import Mark
from tally.telemetry import logger


@dataclass
class Report:
    items_created: int = 0
    units_billed: int = 0
    cents_billed: int = 0
    skipped_for_conflict: int = 0
    failed: int = 0
    examined: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)

    def billed(self, item: Any, units: int) -> None:
        """An invoice item made for `units` (by either kind of bill)."""
        self.items.append(invoices.render(item))
        self.items_created += 1
        self.units_billed += units
        self.cents_billed += item.amount

    def summary(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "items"}


def item_id(workspace: str, counter: str, billed_units: int) -> str:
    """The same units of the same counter always make the same invoice item id."""
    digest = hashlib.sha256(f"{workspace}\n{counter}\n{billed_units}".encode()).hexdigest()
    return f"ivi_b{digest[:23]}"


# ------------------------------------------------------------------ the marks, from the stream


def keep_marks(records: Iterable[dict[str, Any]], *, client: Any = None) -> list[tuple]:
    """Bring the marks up to date with a batch of the counters table's stream records (in stream
    order): per counter, at most one write for the whole batch. Returns (record, error) for
    every record of a counter whose mark could not be written, so that the batch is retried from
    the first of them (writing a mark again is harmless).

    A mark is written when a counter becomes due, or when what its bill would be changes: its
    units billed, its billing setting, or the number of thresholds its value holds; a change
    that moves none of them leaves the mark as it is (a busy counter's mark is written once per
    threshold passed, not once per change). It is removed when the counter is due no more."""
    by_counter: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        workspace, name, shard = stored.identity(record["dynamodb"]["Keys"])
        if shard == 0:  # a sharded counter's other items hold no billing (nor can it be billed)
            by_counter.setdefault((workspace, name), []).append(record)
    client = client or aws.dynamodb()
    failed = []
    for (workspace, name), batch in by_counter.items():
        steps = [_marks_of(workspace, name, record) for record in batch]
        steps = [step for step in steps if step is not None]
        if not steps:
            continue
        marks = [steps[0][0]] + [after for _, after in steps]
        before, after = marks[0], marks[-1]
        try:
            if after is None and any(marks):
                client.delete_item(
                    TableName=settings().billing_due_table, Key=due.key(workspace, name)
                )
            elif after is not None and _bill_of(after) != _bill_of(before):
                client.put_item(TableName=settings().billing_due_table, Item=after.raw())
        except (ClientError, BotoCoreError) as err:  # unreachable, throttled: sent again
            failed += [(record, err) for record in batch]
    return failed


def _marks_of(workspace: str, name: str, record: dict[str, Any]) -> tuple | None:
    """The marks a counter needed before and after one record of its shard 0; None if the record
    says nothing of its total: a change on a sharded counter's shard 0, which stays in its band,
    and so on the same side of its billing threshold (a level: tally.shards)."""
    old = stored.item(record["dynamodb"].get("OldImage"))
    new = stored.item(record["dynamodb"].get("NewImage"))
    if not (old.sharded or new.sharded):
        return due.of_counter(workspace, name, old), due.of_counter(workspace, name, new)
    if new.global_op is None or new.global_op == old.global_op:
        return None
    before, after = new.summary()[:2]  # a global operation's record carries the total
    return due.of_counter(workspace, name, old, before), due.of_counter(workspace, name, new, after)


def _bill_of(mark: Mark | None) -> tuple | None:
    """What a run would bill from this mark: equal for two marks, the same bill."""
    if mark is None:
        return None
    bill = mark.value // mark.threshold, mark.billed, mark.threshold, mark.amount, mark.description
    return (*bill, mark.shards)  # and how it is billed: one item, or a sharded one's total


# ------------------------------------------------------------------ a run


def marks(*, client: Any = None) -> list[Mark]:
    pages = (
        (client or aws.dynamodb())
        .get_paginator("scan")
        .paginate(TableName=settings().billing_due_table, **due.scan())
    )
    return [due.of(raw) for page in pages for raw in page["Items"]]


def run(*, client: Any = None, log: Any = None) -> Report:
    """One billing run over every counter marked due. A counter that fails is counted and the
    run goes on; only a failure to list the marks fails the run."""
    client = client or aws.dynamodb()
    report = Report()
    for mark in marks(client=client):
        report.examined += 1
        try:
            if not _bill(mark, report, client):
                _bill_afresh(mark, report, client)
        except Exception:  # one counter's failure must not stop the others: count it, go on
            report.failed += 1
            if log:
                log.exception(
                    "billing failed", extra={"workspace": mark.workspace, "counter": mark.counter}
                )
    return report


def _bill(mark: Mark, report: Report, client: Any) -> bool:
    """Bill what the mark shows: True if billed, False if the counter is no longer as the mark
    says (the transaction's conditions failed: a run or a change got there first)."""
    if mark.shards > 1:
        return _bill_sharded(mark.workspace, mark.counter, report, client)
    # Whole thresholds passed; one item holds at most invoices.MAX_AMOUNT cents, and what does
    # not fit stays due, for the next run.
    k = min(mark.value // mark.threshold, invoices.MAX_AMOUNT // abs(mark.amount))
    if k <= 0:
        return True  # nothing to bill (a mark is only written at or above the threshold)
    units = k * mark.threshold
    cfg = settings()
    record = invoices.record_of(
        mark.workspace,
        k * mark.amount,
        mark.description,
        "billing",
        item_id(mark.workspace, mark.counter, mark.billed),
    )
    bill = stored.bill(units, mark.billed, mark.threshold, mark.amount, mark.description)
    try:
        client.transact_write_items(
            TransactItems=[
                {"Put": invoice_item.put_once(cfg.invoice_items_table, record)},
                {
                    "Update": {
                        "TableName": cfg.counters_table,
                        "Key": stored.key(mark.workspace, mark.counter),
                        **bill.params(),
                    }
                },
            ]
        )
    except ClientError as err:
        if aws.error_code(err) == "TransactionCanceledException":
            return False
        raise
    report.billed(record, units)
    return True


def _bill_afresh(mark: Mark, report: Report, client: Any) -> None:
    """The mark lagged its counter: bill from the counter itself, read strongly (one more read,
    on this rare path only). A mark that no longer fits the counter is dropped unless the stream
    wrote a newer one meanwhile; the stream also corrects it after any billing."""
    cfg = settings()
    item = stored.item(
        client.get_item(
            TableName=cfg.counters_table,
            Key=stored.key(mark.workspace, mark.counter),
            ConsistentRead=True,
        ).get("Item")
    )
    if item.sharded:
        if not _bill_sharded(mark.workspace, mark.counter, report, client):
            report.skipped_for_conflict += 1  # unsharded meanwhile: the next run sees it
        return
    fresh = due.of_counter(mark.workspace, mark.counter, item)
    if fresh is None:
        try:
            client.delete_item(
                TableName=cfg.billing_due_table,
                Key=due.key(mark.workspace, mark.counter),
                **due.unchanged(mark).params(),
            )
        except ClientError as err:
            if not aws.condition_failed(err):
                raise
        return
    if not _bill(fresh, report, client):
        report.skipped_for_conflict += 1  # changed again meanwhile: the next run sees it
        logger.info(
            "billing skipped a counter that kept changing",
            extra={"workspace": mark.workspace, "counter": mark.counter},
        )


def _bill_sharded(workspace: str, name: str, report: Report, client: Any) -> bool:
    """Bill a sharded counter on its exact total, as a global operation (tally.shards.Bill):
    every shard frozen and read, one transaction. False if it is not sharded (any more)."""
    made: list[invoices.InvoiceItem] = []

    def invoice(first: Any, k: int) -> dict[str, Any] | None:
        threshold, amount, description = first.billing
        k = min(k, invoices.MAX_AMOUNT // abs(amount))
        if k <= 0:
            return None
        the_id = item_id(workspace, name, first.billed_units)
        made[:] = [invoices.record_of(workspace, k * amount, description, "billing", the_id)]
        put = invoice_item.put_once(settings().invoice_items_table, made[0])
        return {**put, "k": k, "units": k * threshold}

    bill = shards.Bill(invoice)
    if shards.run(client, workspace, name, bill) is None:
        return False
    if bill.billed is not None:
        report.billed(made[0], bill.billed[1])
    return True


def rebuild_marks(*, client: Any = None) -> int:
    """Write the mark of every counter that is due now, read from the counters table itself: for
    a table whose marks were lost or never made (a stack upgraded from unmarked counters).
    Returns the marks written. A mark it writes that a newer change has made stale is corrected
    by the next run (`_bill_afresh`)."""
    client = client or aws.dynamodb()
    cfg = settings()
    pages = client.get_paginator("scan").paginate(TableName=cfg.counters_table, ConsistentRead=True)
    written = 0
    for page in pages:
        for raw in page["Items"]:
            workspace, name, shard = stored.identity(raw)
            item = stored.item(raw)
            if shard:
                continue
            total = (
                shards.total(client, workspace, name, item.shards).value if item.sharded else None
            )
            mark = due.of_counter(workspace, name, item, total)
            if mark is not None:
                client.put_item(TableName=cfg.billing_due_table, Item=mark.raw())
                written += 1
    return written
