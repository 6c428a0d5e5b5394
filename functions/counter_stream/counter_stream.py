"""The counters table's stream, off the change path: each record's change derived from its two
images and added to history (tally.history, one write per bucket per batch), and the billing
marks brought up to date (tally.billing.keep_marks, at most one write per counter per batch).
Records whose writes failed are reported, so the batch is retried from the first of them."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from tally import billing, history
from tally.telemetry import count, invocation

processor = BatchProcessor(
    event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
)


def derive(record):
    return history.derive(record.raw_event)


@invocation
def handler(event, context):
    # Powertools takes each record (one it cannot read is a failure it reports); the writes are
    # then made for the whole batch, and a failed write fails its records too (once each).
    with processor(records=event["Records"], handler=derive):
        processed = processor.process()
        read = [record for status, _, record in processed if status == "success"]
        changes = [
            (change, record["dynamodb"]["SequenceNumber"], record)
            for status, change, record in processed
            if status == "success" and change is not None
        ]
        failed = {}
        for record, err in history.absorb(changes) + billing.keep_marks(read):
            failed.setdefault(record["dynamodb"]["SequenceNumber"], (record, err))
        for record, err in failed.values():
            failure = DynamoDBRecord(record)  # as Powertools reports its own failures
            processor.failure_handler(failure, (type(err), err, err.__traceback__))
    count("HistoryChanges", len(changes))
    return processor.response()
