"""Threshold billing: for every counter whose value has reached its billing threshold T, one
invoice item of k * amount (k = value // T) and the counter lowered by k * T, in one transaction.

Finding them: a change that takes a billed counter to T or above marks it due (`mark_if_due`),
one conditional write at the crossing only; a sparse index over the mark lists exactly the
marked counters, so a run reads what is due and nothing else.

Exactly once, nothing lost:
  - the counter keeps its billed units, over its life; the transaction requires them to be what
    the run read, so two runs (or a retried one) cannot both bill the same units;
  - the invoice item's id is derived from (workspace, counter, billed units): the same units
    always make the same id, and the item is put only if that id does not exist;
  - the value is lowered with ADD, never SET, so changes landing during the run are kept.
  Invariant at every moment: billed units + value = the sum of all changes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tally import aws, invoices
from tally.config import settings
from tally.items import counter as stored
from tally.items import invoice_item
from tally.items.counter import CounterItem
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

    def summary(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "items"}


def item_id(workspace: str, counter: str, billed_units: int) -> str:
    """The same units of the same counter always make the same invoice item id."""
    digest = hashlib.sha256(f"{workspace}\n{counter}\n{billed_units}".encode()).hexdigest()
    return f"ivi_b{digest[:23]}"


def mark_if_due(workspace: str, name: str, item: CounterItem, *, client: Any = None) -> None:
    """Given a counter as a write left it: mark it due if it reached its billing threshold and
    is not marked yet. The only extra write on the change path, once per crossing. The change
    has happened whatever this does: if marking fails, the counter's next change marks it."""
    setting = item.billing
    if setting is None or item.marked_due or item.value < setting[0]:
        return
    try:
        (client or aws.dynamodb()).update_item(
            TableName=settings().counters_table,
            Key=stored.key(workspace, name),
            **stored.mark_due().params(),
        )
    except ClientError as err:
        if not aws.condition_failed(err):
            _log_unmarked(workspace, name, err)
        # the condition failing means marked already, or billed meanwhile: fine
    except BotoCoreError as err:
        _log_unmarked(workspace, name, err)


def _log_unmarked(workspace: str, name: str, err: Exception) -> None:
    logger.warning(
        "could not mark a counter due for billing; its next change will",
        extra={"workspace": workspace, "counter": name, "error": repr(err)},
    )


def due_counters(*, client: Any = None) -> list[tuple[str, str]]:
    pages = (
        (client or aws.dynamodb())
        .get_paginator("query")
        .paginate(TableName=settings().counters_table, **stored.due_query())
    )
    return [stored.names(raw) for page in pages for raw in page["Items"]]


def run(*, client: Any = None, log: Any = None) -> Report:
    """One billing run over every counter marked due. A counter that fails is counted and the
    run goes on; only a failure to list the due counters fails the run."""
    client = client or aws.dynamodb()
    report = Report()
    for workspace, counter in due_counters(client=client):
        report.examined += 1
        try:
            bill(workspace, counter, report, client=client)
        except ClientError as err:
            if aws.error_code(err) != "TransactionCanceledException":
                _failed(report, log, workspace, counter)
            else:
                report.skipped_for_conflict += 1  # another run, or a change, got there first
        except Exception:  # one counter's failure must not stop the others: count it, go on
            _failed(report, log, workspace, counter)
    return report


def _failed(report: Report, log: Any, workspace: str, counter: str) -> None:
    report.failed += 1
    if log:
        log.exception("billing failed", extra={"workspace": workspace, "counter": counter})


def bill(workspace: str, counter: str, report: Report, *, client: Any) -> None:
    cfg = settings()
    key = stored.key(workspace, counter)
    item = stored.item(
        client.get_item(TableName=cfg.counters_table, Key=key, ConsistentRead=True).get("Item")
    )
    if item.billing is None:
        return _unmark(client, key, always=True)
    threshold, amount, description = item.billing
    billed = item.billed_units
    # Whole thresholds passed; one item holds at most invoices.MAX_AMOUNT cents, and what does
    # not fit is billed next run.
    k = min(max(0, item.value // threshold), invoices.MAX_AMOUNT // abs(amount))
    if k == 0:
        return _unmark(client, key)
    units = k * threshold
    record = invoices.record_of(
        workspace, k * amount, description, "billing", item_id(workspace, counter, billed)
    )
    client.transact_write_items(
        TransactItems=[
            {"Put": invoice_item.put_once(cfg.invoice_items_table, record)},
            {
                "Update": {
                    "TableName": cfg.counters_table,
                    "Key": key,
                    **stored.bill(units, billed, threshold, amount).params(),
                }
            },
        ]
    )
    report.items.append(invoices.render(record))
    report.items_created += 1
    report.units_billed += units
    report.cents_billed += k * amount
    _unmark(client, key)


def _unmark(client: Any, key: dict[str, Any], *, always: bool = False) -> None:
    """Drop the mark unless the counter is due again (changes may have landed meanwhile); a mark
    left behind is harmless: the next run finds nothing to bill and drops it then."""
    try:
        client.update_item(
            TableName=settings().counters_table, Key=key, **stored.unmark(always=always).params()
        )
    except ClientError as err:
        if not aws.condition_failed(err):
            raise
