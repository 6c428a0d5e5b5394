"""The counters table's stream into history (tally.history): each record's change derived from
its two images, a batch's changes added to their buckets one write per bucket, and the records
whose bucket could not be written reported so the batch is retried from the first of them."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from tally import history
from tally.telemetry import count, invocation

processor = BatchProcessor(
    event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
)


def derive(record):
    return history.derive(record.raw_event)


@invocation
def handler(event, context):
    # Powertools takes each record (one it cannot read is a failure it reports); the writes are
    # then made once per bucket for the whole batch, and a failed write fails its records too.
    with processor(records=event["Records"], handler=derive):
        processed = processor.process()
        changes = [
            (change, record["dynamodb"]["SequenceNumber"], record)
            for status, change, record in processed
            if status == "success" and change is not None
        ]
        for record, err in history.absorb(changes):
            failed = DynamoDBRecord(record)  # as Powertools reports its own failures
            processor.failure_handler(failed, (type(err), err, err.__traceback__))
    count("HistoryChanges", len(changes))
    return processor.response()
