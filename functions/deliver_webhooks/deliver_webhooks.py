"""Webhook delivery (tally.webhooks): an event from the bus is recorded and sent to each webhook
of its workspace that takes it; the every-minute schedule retries those still waiting."""

from tally import webhooks
from tally.telemetry import count, invocation


@invocation
def handler(event, context):
    if event.get("source") == "aws.events":  # the schedule
        attempts = webhooks.sweep()
        if attempts:  # an idle sweep, 43,200 a month, emits no metric: each costs $0.30 a month
            count("WebhookRetries", attempts)
        return {"retried": attempts}
    made = webhooks.on_event(event["detail"])
    count("WebhookDeliveriesMade", made)  # 0: the event was delivered before, or no webhook
    return {"deliveries": made}
