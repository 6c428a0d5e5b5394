"""The scheduled billing run: invoice every counter that reached its billing threshold.

Invoked with {"rebuild_marks": true}, it first writes the billing mark of every counter due now
(tally.billing.rebuild_marks): once, for counters that reached their threshold before their
marks were kept (an upgraded stack), or after the marks table was lost."""

from tally import billing
from tally.telemetry import count, invocation, logger


@invocation
def handler(event, context):
    if isinstance(event, dict) and event.get("rebuild_marks") is True:
        logger.info("billing marks rebuilt", extra={"marks": billing.rebuild_marks()})
    report = billing.run(log=logger)
    for item in report.items:
        logger.info("invoice item created", extra={"invoice_item": item})
    count("BillingItemsCreated", report.items_created)
    count("BillingUnits", report.units_billed)
    count("BillingCents", report.cents_billed)
    count("BillingSkippedForConflict", report.skipped_for_conflict)
    count("BillingFailed", report.failed)
    logger.info("billing run done", extra=report.summary())
    return report.summary()
