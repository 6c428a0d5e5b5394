"""Idempotency-Key on every changing call, through Powertools' idempotency utility and its
DynamoDB persistence layer.

A record is keyed by (scope, key), the scope being who the caller proved to be: its API key's id,
the operator, or (no key) its address, under one prefix for every route: the same key sent with
another method, path or body is a mismatch (422), wherever it was first used. Only a caller
that passed the route's authorization reaches a record (tally.http.api_handler), so no caller
can read, replay or block another's. A first request costs two calls (claim
the key, then store the answer); a repeat costs one (the failed claim returns the record).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from tally import aws, operation
from tally.config import settings
from tally.documents import Document
from tally.errors import (
    BadRequest,
    Conflict,
    OutcomeUnknown,
    TallyError,
    Unavailable,
    Unprocessable,
)
from tally.telemetry import count, logger
from tally.warm_cache import once

HEADER = "idempotency-key"
_VALID = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces
TTL_SECONDS = operation.REPEAT_WINDOW_MS // 1000


def key_of(headers: dict[str, str]) -> str | None:
    """The request's Idempotency-Key, validated; None if it sent none."""
    if HEADER not in headers:
        return None
    key = headers[HEADER]
    if not _VALID.fullmatch(key):
        raise BadRequest(
            "Idempotency-Key must be 1-255 printable characters",
            fields={"Idempotency-Key": "1-255 printable ASCII characters"},
        )
    return key


def operation_id(scope: str, key: str, fingerprint: dict[str, Any]) -> str:
    """The id of the operation a keyed request performs (tally.operation): the same for every
    attempt of one request, different for another request under the same key."""
    request = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{scope}\n{key}\n{request}".encode()).hexdigest()[:20]


class _Attempt:
    """One request's run of a changing call: the call, and its outcome once it ran here (the true
    answer to give if storing it fails)."""

    def __init__(self, run: Callable[[], tuple[int, dict[str, Any]]]) -> None:
        self.run = run
        self.outcome: dict[str, Any] | None = None

    def __call__(self) -> dict[str, Any]:
        try:
            status, body = self.run()
        except TallyError as err:
            if err.status >= 500 and not isinstance(err, OutcomeUnknown):
                raise  # nothing was applied: not stored, so the caller may retry
            self.outcome = {
                "error": True,
                "status": err.status,
                "message": err.message,
                "kind": err.kind,
                "fields": err.fields,
                "headers": err.headers,
            }
        else:
            self.outcome = {"status": status, "body": _storable(body)}
        return self.outcome


def _replayed(answer: dict[str, Any], _record: Any) -> dict[str, Any]:
    """Powertools' response hook, called on a replay only: the answer is marked as one."""
    count("IdempotentReplays")
    return {**answer, "replayed": True}


@once
def _machinery() -> tuple[Any, Any]:
    """The Powertools idempotency machinery, built once: the decorated apply and its config."""
    # Imported here: only changing calls that carry a key pay for it.
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.serialization.base import (
        BaseIdempotencySerializer,
    )

    class WithoutSecrets(BaseIdempotencySerializer):
        """The stored answer never holds a secret (an API key's, a webhook's): a replay of a
        creating call answers the same id with "api_key" (or "secret") null.

        It is stored as one JSON text beside the answer's own fields: Powertools writes the dict
        it is given with sorted keys, and a replay must answer the very body the first answer
        had, its fields in their order; the fields stay, so a version of tally from before the
        text (a rollback) still replays what this one stored."""

        def to_dict(self, data: Any) -> dict:
            body = data.get("body")
            if isinstance(body, dict):
                hidden = {name: None for name in ("api_key", "secret") if name in body}
                data = {**data, "body": {**body, **hidden}} if hidden else data
            return {**data, "answer": json.dumps(data, separators=(",", ":"))}

        def from_dict(self, data: dict) -> Any:
            # (a record stored before answers were kept as text: its fields, sorted)
            return json.loads(data["answer"]) if "answer" in data else data

    store = DynamoDBPersistenceLayer(
        table_name=settings().idempotency_table, boto3_client=aws.dynamodb()
    )
    config = IdempotencyConfig(
        event_key_jmespath="[scope, key]",
        payload_validation_jmespath="request",
        expires_after_seconds=TTL_SECONDS,
        raise_on_no_idempotency_key=True,
        response_hook=_replayed,
    )

    @idempotent_function(
        data_keyword_argument="data",
        persistence_store=store,
        config=config,
        key_prefix="tally",
        output_serializer=WithoutSecrets(),
    )
    def apply(data: dict[str, Any], attempt: _Attempt) -> dict[str, Any]:
        return attempt()  # `data` (scope, key, request) is what Powertools keys and checks

    return apply, config


def once(
    scope: str,
    key: str,
    fingerprint: dict[str, Any],
    run: Callable[[], tuple[int, dict[str, Any]]],
    context: Any = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Run a changing call at most once per (scope, key) within 24 h: (status, body, headers),
    headers saying whether the answer is a replay; a refusal is raised, with the same headers.

    The first answer is stored and replayed, refusals (4xx) included, and so is an outcome that
    could not be confirmed (it must never be applied twice). A failure that applied nothing (other
    5xx) is not stored, so the caller may retry with the same key."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    apply, config = _machinery()
    if context is not None:
        config.register_lambda_context(context)
    attempt = _Attempt(run)
    try:
        answer = apply(data={"scope": scope, "key": key, "request": fingerprint}, attempt=attempt)
    except IdempotencyValidationError as err:
        raise Unprocessable(
            "this Idempotency-Key was used with a different request: send a new key with a new "
            "request",
            fields={"Idempotency-Key": "reused with another method, path or body"},
        ) from err
    except IdempotencyAlreadyInProgressError as err:
        refusal = Conflict(
            "a request with this Idempotency-Key is still in progress: send it again after "
            "Retry-After seconds to get its answer"
        )
        refusal.headers["Retry-After"] = "1"
        raise refusal from err
    except IdempotencyPersistenceLayerError as err:
        if attempt.outcome is None:
            raise Unavailable() from err  # before the call ran: nothing happened
        # The call ran but its answer could not be stored: give the caller the true answer.
        logger.warning("could not store an idempotent answer", extra={"error": repr(err)})
        answer = attempt.outcome
    headers = {"Idempotent-Replayed": "true"} if answer.get("replayed") else {}
    if answer.get("error"):
        stored = TallyError(answer["message"], fields=answer["fields"])
        stored.status, stored.kind = answer["status"], answer["kind"]
        stored.headers = {**answer["headers"], **headers}
        raise stored
    return answer["status"], _answer_body(answer["body"]), headers


def _storable(body: Any) -> Any:
    """A JSON answer as it is; an SVG (a Document) as a tagged dict, rebuilt on replay."""
    if isinstance(body, Document):
        return {"document": {"content_type": body.content_type, "text": body.text}}
    return body


def _answer_body(stored: Any) -> Any:
    if isinstance(stored, dict) and set(stored) == {"document"}:
        return Document(**stored["document"])
    return stored
