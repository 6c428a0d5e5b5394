"""The counters' and invoice items' streams into events on the bus (tally.events): each record's
events derived from its images, put ten to a call; a record whose events were not all accepted
is reported, so the batch is retried from it (its events keep their ids)."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from tally import events
from tally.telemetry import count, invocation

processor = BatchProcessor(
    event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
)


def derive(record):
    return events.derive(record.raw_event)


@invocation
def handler(event, context):
    with processor(records=event["Records"], handler=derive):
        processed = processor.process()
        found = [
            (one, record)
            for status, derived, record in processed
            if status == "success"
            for one in derived
        ]
        refused = events.publish([one for one, _ in found])
        # A record is retried if any of its events was refused (once, however many were).
        failed = list(
            {found[i][1]["dynamodb"]["SequenceNumber"]: found[i][1] for i in refused}.values()
        )
        for record in failed:
            error = RuntimeError("EventBridge did not take every event of this record")
            processor.failure_handler(DynamoDBRecord(record), (type(error), error, None))
    count("EventsPublished", len(found) - len(refused))
    return processor.response()
