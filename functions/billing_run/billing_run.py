"""The scheduled billing run: invoice every counter that reached its billing threshold."""

from aws_lambda_powertools.metrics import MetricUnit

from tally import billing
from tally.telemetry import logger, metrics, traced


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@traced
def handler(event, context):
    report = billing.run(log=logger)
    for item in report.items:
        logger.info("invoice item created", extra={"invoice_item": item})
    metrics.add_metric("BillingItemsCreated", MetricUnit.Count, report.items_created)
    metrics.add_metric("BillingUnits", MetricUnit.Count, report.units_billed)
    metrics.add_metric("BillingCents", MetricUnit.Count, report.cents_billed)
    metrics.add_metric("BillingSkippedForConflict", MetricUnit.Count, report.skipped_for_conflict)
    metrics.add_metric("BillingFailed", MetricUnit.Count, report.failed)
    logger.info("billing run done", extra=report.summary())
    return report.summary()
