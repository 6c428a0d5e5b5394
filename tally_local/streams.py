"""The template's DynamoDB stream events, run by `tally serve` as Lambda's event source mapping
runs them: one poller thread per (function, stream) reads the table's stream through the
DynamoDB Streams API of the same endpoint and invokes the handler with batches of records.

What is emulated, per shard (a parent shard is read to its end before its children):
  - StartingPosition: TRIM_HORIZON, or LATEST (the open shards' ends when the poller starts);
  - BatchSize records at most, gathered for MaximumBatchingWindowInSeconds from the first one,
    the window capped at WINDOW_CAP_S locally so that a change reaches its function promptly;
  - the event as Lambda delivers it: {"Records": [...]}, each record as GetRecords gives it
    plus eventSourceARN (the stream's ARN), ApproximateCreationDateTime in epoch seconds and
    binary attributes in base64;
  - errors: an exception (or, with ReportBatchItemFailures, an unreadable answer) fails the whole
    batch, which is retried; a batchItemFailures answer is retried from its lowest sequence number
    (the records before it are done). With BisectBatchOnFunctionError a failed batch is split in
    two halves instead of retried, and a partial failure's remaining records are retried as a
    batch of their own: splitting is no retry (as in Lambda). After MaximumRetryAttempts retries
    the batch is discarded: the on-failure destination (an SQS queue or SNS topic in AWS) is one
    log line here, carrying what Lambda would send it (DDBStreamBatchInfo), and the shard goes on.
    A retry waits RETRY_DELAY_S, doubling up to RETRY_DELAY_MAX_S.
Not emulated: MaximumRecordAgeInSeconds, ParallelizationFactor, TumblingWindowInSeconds, filters.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.httpsession import URLLib3Session

from tally_local import dynamodb, logline
from tally_local.template import REGION, Function, StreamSource

POLL_S = 0.25  # Lambda polls a shard 4 times a second
WINDOW_CAP_S = 1.0  # MaximumBatchingWindowInSeconds is at most this locally
RETRY_DELAY_S, RETRY_DELAY_MAX_S = 0.1, 2.0
REFRESH_S = 5.0  # the table's stream and its shards are listed again this often
READ_LIMIT = 1000  # the most records one GetRecords returns
_ERROR_CHARS = 200  # of an error's repr in a log line


_READ_TIMEOUT_S = 10


def stream_client(endpoint: str) -> Any:
    return dynamodb.client(endpoint, "dynamodbstreams", read_timeout=_READ_TIMEOUT_S)


class WireRecords:
    """GetRecords of a local endpoint, its answer kept as the JSON it came in: that is the shape
    Lambda delivers records in (binary attributes in base64, times in epoch seconds), so the
    records go to the function as they are (`wire_record`). boto3 would parse every attribute of
    both images of every record into Python types, and `lambda_record` would turn them back: four
    times the CPU (two pollers read each change of a counter, each with the whole item twice),
    most of what the pollers cost tally serve under load (bench/throughput.py)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        credentials = Credentials(*dynamodb.LOCAL_CREDENTIALS)
        self.signer = SigV4Auth(credentials, "dynamodb", REGION)
        self.http = URLLib3Session(timeout=(1, _READ_TIMEOUT_S), max_pool_connections=1)

    def get_records(self, **params: Any) -> dict[str, Any]:
        """The answer, or botocore's ClientError naming DynamoDB's error code, as boto3 raises."""
        request = AWSRequest(
            method="POST",
            url=self.endpoint,
            data=json.dumps(params),
            headers={
                "X-Amz-Target": "DynamoDBStreams_20120810.GetRecords",
                "Content-Type": "application/x-amz-json-1.0",
            },
        )
        self.signer.add_auth(request)
        answer = self.http.send(request.prepare())
        try:
            body = json.loads(answer.content or b"{}")
        except ValueError:
            body = {}
        if answer.status_code != 200:
            error = {
                "Code": str(body.get("__type", "")).rpartition("#")[2] or str(answer.status_code),
                "Message": str(body.get("message") or body.get("Message") or ""),
            }
            meta = {"HTTPStatusCode": answer.status_code}
            raise ClientError({"Error": error, "ResponseMetadata": meta}, "GetRecords")
        return body


# ------------------------------------------------------------------ the records Lambda delivers


def lambda_record(raw: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record (as boto3 parses it) in the shape Lambda delivers it."""
    images = dict(raw["dynamodb"])
    when = images.get("ApproximateCreationDateTime")
    if isinstance(when, datetime):  # epoch seconds on the wire, as Lambda passes them on
        images["ApproximateCreationDateTime"] = int(when.timestamp())
    for name in ("Keys", "NewImage", "OldImage"):
        if name in images:
            images[name] = {k: _wire(v) for k, v in images[name].items()}
    record = {**raw, "dynamodb": images, "eventSourceARN": stream_arn}
    record.setdefault("eventSource", "aws:dynamodb")
    return record


def wire_record(raw: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as the wire carries it (WireRecords) in the shape Lambda delivers it:
    the same as lambda_record makes of boto3's."""
    images = raw["dynamodb"]
    when = images.get("ApproximateCreationDateTime")
    if when is not None and not isinstance(when, int):  # the wire's may have a fraction
        images = {**images, "ApproximateCreationDateTime": int(when)}
    record = {**raw, "dynamodb": images, "eventSourceARN": stream_arn}
    record.setdefault("eventSource", "aws:dynamodb")
    return record


def read_all(ddb: Any, streams: Any, table: str) -> list[dict[str, Any]]:
    """Every record of a table's latest stream, shard after shard, in the shape Lambda delivers
    them: for tests and benchmarks that hand a stream to its function themselves."""
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    out = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator)
            if not page["Records"]:
                break
            out += [lambda_record(raw, arn) for raw in page["Records"]]
            iterator = page.get("NextShardIterator")
    return out


def _wire(value: dict[str, Any]) -> dict[str, Any]:
    """An AttributeValue as JSON carries it: boto3 decodes binary (B, BS) to bytes."""
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": base64.b64encode(inner).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(b).decode() for b in inner]}
    if kind == "M":
        return {"M": {k: _wire(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_wire(v) for v in inner]}
    return value


def _sequence(record: dict[str, Any]) -> str:
    return record["dynamodb"]["SequenceNumber"]


class _Unreadable(Exception):
    """A ReportBatchItemFailures answer Lambda cannot use: the whole batch has failed."""


def first_failure(records: list[dict[str, Any]], answer: Any) -> int | None:
    """The index of the lowest failed record a batchItemFailures answer names; None if it names
    none (an empty or null list, an empty or null answer: success). An item without a sequence
    number of this batch makes the answer unreadable (_Unreadable), as Lambda takes it."""
    if not answer:
        return None
    if not isinstance(answer, dict):
        raise _Unreadable(f"the answer is a {type(answer).__name__}, not an object")
    failures = answer.get("batchItemFailures")
    if not failures:
        return None
    index = {_sequence(r): i for i, r in enumerate(records)}
    found = []
    for item in failures if isinstance(failures, list) else [failures]:
        named = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(named, str) or named not in index:
            raise _Unreadable(f"batchItemFailures names {named!r}, not a record of the batch")
        found.append(index[named])
    return min(found)


# ------------------------------------------------------------------ one shard


@dataclass
class _Shard:
    id: str
    parent: str | None
    start: str  # the ShardIteratorType of its first iterator
    iterator: str | None = None
    last_read: str | None = None  # the sequence number of the last record read
    ended: bool = False  # closed and read to its end: GetRecords gave no next iterator
    pending: list[dict[str, Any]] = field(default_factory=list)  # read, not yet done
    # The next batch when it is a retry or a half: (its size, the retries it has had).
    planned: list[tuple[int, int]] = field(default_factory=list)
    window_ends: float = 0.0
    not_before: float = 0.0  # a retry waits until then

    @property
    def finished(self) -> bool:
        return self.ended and not self.pending


# ------------------------------------------------------------------ the poller


class StreamPoller:
    """The event source mapping of one function's one stream event: `handler(event)` is called
    with each batch (tally serve passes the function's invoke) and its answer honoured."""

    def __init__(
        self,
        name: str,
        source: StreamSource,
        endpoint: str,
        handler: Callable[[dict[str, Any]], Any],
        *,
        log: Any = sys.stderr,
        window_cap_s: float = WINDOW_CAP_S,
        poll_s: float = POLL_S,
        retry_delay_s: float = RETRY_DELAY_S,
    ) -> None:
        self.name, self.source, self.handler, self.log = name, source, handler, log
        self.starting_position = source.starting_position
        self.endpoint = endpoint
        self.window_s = min(source.window_s, window_cap_s)
        self.poll_s, self.retry_delay_s = poll_s, retry_delay_s
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.ddb: Any = None  # the clients, made by run() unless given (a test's fakes)
        self.streams: Any = None
        self.wire: WireRecords | None = None  # GetRecords, when run() made the clients
        self.arn: str | None = None
        self.shards: dict[str, _Shard] = {}
        self.done: set[str] = set()
        self._refreshed = 0.0
        self._listed = False
        self._trouble: str | None = None  # the read error last logged, until reads work again

    @property
    def table(self) -> str:
        return self.source.table

    def describe(self) -> str:
        s = self.source
        window = f"{s.window_s:g}s" + (
            f" (capped to {self.window_s:g}s locally)" if self.window_s < s.window_s else ""
        )
        return (
            f"{self.name} <- {s.table} ({self.starting_position}, batch {s.batch_size}, {window})"
        )

    def start(self) -> StreamPoller:
        self.thread = threading.Thread(target=self.run, name=f"stream {self.name}", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading; a batch being delivered is delivered first (as long as `timeout`)."""
        self.stopping.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    # -------------------------------------------------------------- the loop

    def run(self) -> None:
        self.ddb = self.ddb or dynamodb.client(self.endpoint)
        if self.streams is None:
            self.streams, self.wire = stream_client(self.endpoint), WireRecords(self.endpoint)
        while not self.stopping.is_set():
            try:
                busy = self.cycle()
            except Exception as err:  # the endpoint, or the poller: told, and tried again
                if self.stopping.is_set():
                    return
                if self._complain(err):
                    self.stopping.wait(1.0)
                continue
            if self._trouble:
                self._say(f"reading {self.table}'s stream again")
                self._trouble = None
            if not busy:
                self.stopping.wait(self._idle_wait())

    def cycle(self) -> bool:
        """Read and deliver what each readable shard has; whether anything happened."""
        now = time.monotonic()
        if self.arn is None or now - self._refreshed >= REFRESH_S:
            self._refresh()
        busy = False
        for shard in self._readable():
            if self.stopping.is_set():
                break
            busy |= self._read(shard)
            if self._due(shard):
                self._deliver(shard)
                busy = True
            if shard.finished:
                self.done.add(shard.id)
                del self.shards[shard.id]
                self._refreshed = 0.0  # its children may be listed by now
        return busy

    def _idle_wait(self) -> float:
        now, wait = time.monotonic(), self.poll_s
        for shard in self.shards.values():
            if shard.pending and not shard.planned:
                wait = min(wait, shard.window_ends - now)
            elif shard.planned:
                wait = min(wait, shard.not_before - now)
        return max(wait, 0.01)

    # -------------------------------------------------------------- shards

    def _refresh(self) -> None:
        """The table's latest stream (a table made again has a new one: read from its start)
        and its shards; shards met for the first time are read from the starting position if
        they were there when the poller started, from their start (TRIM_HORIZON) if later."""
        self._refreshed = time.monotonic()
        table = self.ddb.describe_table(TableName=self.table)["Table"]
        arn = table.get("LatestStreamArn")
        if not arn:
            raise _NoStream(
                f"{self.table} has no stream: it was made without the template's "
                "StreamSpecification (delete it, and tally serve makes it again)"
            )
        first = not self._listed  # the shards there when the poller started
        if arn != self.arn:
            if self.arn is not None:
                self._say(f"{self.table} has a new stream {arn}: reading it from its start")
            self.arn, self.shards, self.done = arn, {}, set()
        listed = self._list_shards(arn)
        ids = {s["ShardId"] for s in listed}
        for shard in listed:
            sid = shard["ShardId"]
            if sid in self.shards or sid in self.done:
                continue
            closed = "EndingSequenceNumber" in shard["SequenceNumberRange"]
            start = "TRIM_HORIZON"
            if first and self.starting_position == "LATEST":
                if closed:  # all of it came before the poller
                    self.done.add(sid)
                    continue
                start = "LATEST"
            parent = shard.get("ParentShardId")
            self.shards[sid] = _Shard(sid, parent if parent in ids else None, start)
        self._listed = True

    def _list_shards(self, arn: str) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        params: dict[str, Any] = {"StreamArn": arn}
        while True:
            described = self.streams.describe_stream(**params)["StreamDescription"]
            shards += described.get("Shards", [])
            last = described.get("LastEvaluatedShardId")
            if not last:
                return shards
            params["ExclusiveStartShardId"] = last

    def _readable(self) -> list[_Shard]:
        """The shards whose parent is read to its end (or gone), oldest first."""
        return [
            shard
            for shard in sorted(self.shards.values(), key=lambda s: s.id)
            if shard.parent is None or shard.parent in self.done
        ]

    def _read(self, shard: _Shard) -> bool:
        """Top the shard's pending records up towards a batch; whether to read again at once."""
        room = self.source.batch_size - len(shard.pending)
        if shard.ended or room <= 0:
            return False
        if shard.iterator is None:
            shard.iterator = self._iterator(shard)
        read = self.wire.get_records if self.wire else self.streams.get_records
        try:
            got = read(ShardIterator=shard.iterator, Limit=min(room, READ_LIMIT))
        except ClientError as err:
            if err.response["Error"]["Code"] == "TrimmedDataAccessException":
                self._say(f"{shard.id}: records trimmed before they were read; from the oldest")
                shard.start, shard.last_read = "TRIM_HORIZON", None
            shard.iterator = None  # expired, or invalid: a new one next time
            raise
        shard.iterator = got.get("NextShardIterator")
        shard.ended = shard.iterator is None
        shape = wire_record if self.wire else lambda_record
        records = [shape(r, self.arn or "") for r in got.get("Records", [])]
        if not records:
            return False
        if not shard.pending:
            shard.window_ends = time.monotonic() + self.window_s
        shard.pending += records
        shard.last_read = _sequence(records[-1])
        return len(records) == min(room, READ_LIMIT)  # a full read: more may be waiting

    def _iterator(self, shard: _Shard) -> str:
        if shard.last_read is not None:  # a new iterator for an expired one
            kind: dict[str, Any] = {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "SequenceNumber": shard.last_read,
            }
        else:
            kind = {"ShardIteratorType": shard.start}
        return self.streams.get_shard_iterator(StreamArn=self.arn, ShardId=shard.id, **kind)[
            "ShardIterator"
        ]

    # -------------------------------------------------------------- delivery

    def _due(self, shard: _Shard) -> bool:
        if not shard.pending:
            return False
        now = time.monotonic()
        if shard.planned:  # a retry, or the half of a split batch
            return now >= shard.not_before
        return (
            len(shard.pending) >= self.source.batch_size or now >= shard.window_ends or shard.ended
        )

    def _deliver(self, shard: _Shard) -> None:
        size, retries = (
            shard.planned[0]
            if shard.planned
            else (min(len(shard.pending), self.source.batch_size), 0)
        )
        batch = shard.pending[:size]
        started = time.perf_counter()
        error: Exception | None = None
        failed_at: int | None = None
        try:
            answer = self.handler({"Records": batch})
            if self.source.report_item_failures:
                failed_at = first_failure(batch, answer)
        except Exception as err:  # the function failed: the whole batch has
            error, failed_at = err, 0
        elapsed = f"{(time.perf_counter() - started) * 1000:.1f}ms"
        span = f"{len(batch)} records {_sequence(batch[0])}..{_sequence(batch[-1])}"
        if failed_at is None:
            self._checkpoint(shard, size)
            shard.planned[:1] = []
            self._say(f"{span} ok {elapsed}")
            return
        why = (
            f"failed: {_bounded(error)}"
            if error
            else f"batchItemFailures from {_sequence(batch[failed_at])}"
        )
        if failed_at:  # the records before the lowest failure are done
            self._checkpoint(shard, failed_at)
            size -= failed_at
            if self.source.bisect:  # split there: the rest is a batch of its own, no retry
                shard.planned[:1] = [(size, retries)]
                self._say(f"{span} {why}: the {size} from it next {elapsed}")
                return
        elif self.source.bisect and size > 1:  # split in two halves, no retry
            half = (size + 1) // 2
            shard.planned[:1] = [(half, retries), (size - half, retries)]
            self._say(f"{span} {why}: split into {half} + {size - half} {elapsed}")
            return
        retries += 1
        limit = self.source.retries
        if 0 <= limit < retries:
            self._say(f"{span} {why}: retries exhausted ({limit}) {elapsed}")
            self._discard(shard, size, retries)
            return
        shard.planned[:1] = [(size, retries)]
        delay = min(self.retry_delay_s * 2 ** (retries - 1), RETRY_DELAY_MAX_S)
        shard.not_before = time.monotonic() + delay
        of = f"/{limit}" if limit >= 0 else ""
        self._say(f"{span} {why}: retry {retries}{of} of {size} {elapsed}")

    def _checkpoint(self, shard: _Shard, count: int) -> None:
        """The first `count` pending records are done (or discarded): the shard's checkpoint
        moves past them. As in Lambda, the next window begins when an invocation ends."""
        del shard.pending[:count]
        shard.window_ends = time.monotonic() + self.window_s

    def _discard(self, shard: _Shard, size: int, retries: int) -> None:
        """Past MaximumRetryAttempts: what Lambda sends the on-failure destination, logged."""
        batch = shard.pending[:size]
        created = [r["dynamodb"].get("ApproximateCreationDateTime") for r in (batch[0], batch[-1])]
        info = {
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": retries,
            "DDBStreamBatchInfo": {
                "shardId": shard.id,
                "startSequenceNumber": _sequence(batch[0]),
                "endSequenceNumber": _sequence(batch[-1]),
                "approximateArrivalOfFirstRecord": _iso(created[0]),
                "approximateArrivalOfLastRecord": _iso(created[1]),
                "batchSize": len(batch),
                "streamArn": self.arn,
            },
        }
        destination = self.source.on_failure or "no on-failure destination"
        self._say(f"discarded to {destination} (this line, locally): {json.dumps(info)}")
        self._checkpoint(shard, size)
        shard.planned[:1] = []

    # -------------------------------------------------------------- log

    def _say(self, text: str) -> None:
        logline.write(self.log, f"stream {self.name} {text}")

    def _complain(self, err: BaseException) -> bool:
        """Tell of a failed read (once while the same error lasts); whether to wait a second."""
        if isinstance(err, ClientError) and err.response["Error"]["Code"] in (
            "ExpiredIteratorException",
            "TrimmedDataAccessException",
        ):
            return False  # a new iterator at once: nothing to tell
        trouble = _bounded(err)
        if trouble != self._trouble:
            self._say(f"cannot read {self.table}'s stream: {trouble}; trying again every 1s")
            self._trouble = trouble
        self._refreshed = 0.0  # the table may have been made again: look again
        return True


class _NoStream(Exception):
    """The table has no stream (yet): the poller looks again."""


def _bounded(err: BaseException | None) -> str:
    text = repr(err)
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 3] + "..."


def _iso(epoch: Any) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(float(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# ------------------------------------------------------------------ tally serve's pollers


class Streams:
    """A poller per (function, DynamoDB stream event) of the template.

    In AWS an event source mapping starts at its StartingPosition once, when it is made, and
    then goes on from its checkpoint. Locally the checkpoint lives as long as tally serve, so a
    tally serve started again on a table that was there before (an endpoint named by
    AWS_ENDPOINT_URL_DYNAMODB) reads it from the template's StartingPosition again: with
    TRIM_HORIZON its function gets records it had, which CounterStreamFunction takes at least
    once by design (a history bucket never takes a record twice), and the changes made while no
    tally serve ran."""

    def __init__(
        self,
        functions: list[Function],
        endpoint: str,
        *,
        log: Any = sys.stderr,
    ) -> None:
        from tally_local.gateway import invoke

        self.pollers = [
            StreamPoller(
                fn.logical_id,
                source,
                endpoint,
                lambda event, fn=fn: invoke(fn, event),
                log=log,
            )
            for fn in functions
            for source in fn.streams
        ]

    def start(self) -> None:
        for poller in self.pollers:
            poller.start()

    def describe(self) -> str:
        return ", ".join(poller.describe() for poller in self.pollers)

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stopping.set()
        for poller in self.pollers:
            poller.stop()
