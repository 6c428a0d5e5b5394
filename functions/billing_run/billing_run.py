"""The scheduled billing run: invoice every counter that reached its billing threshold."""

from tally import billing
from tally.telemetry import count, invocation, logger


@invocation
def handler(event, context):
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
