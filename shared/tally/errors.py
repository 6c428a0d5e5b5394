"""Domain errors, defined once. Each dialect turns them into its own shape (tally.dialects)."""

from __future__ import annotations


class TallyError(Exception):
    """An answer other than success, raised anywhere and shaped once at the edge."""

    status = 500
    kind = "system"  # Backstack's error.type: "user" (the caller can fix it) or "system"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.headers: dict[str, str] = {}


class BadRequest(TallyError):
    status, kind = 400, "user"


class Unauthorized(TallyError):
    status, kind = 401, "user"

    def __init__(
        self,
        message: str = "a valid API key is required: send it as Authorization: Bearer <key>",
        **kw,
    ) -> None:
        super().__init__(message, **kw)
        self.headers["WWW-Authenticate"] = 'Bearer realm="tally"'


class Forbidden(TallyError):
    status, kind = 403, "user"


class NotFound(TallyError):
    status, kind = 404, "user"


class MethodNotAllowed(TallyError):
    status, kind = 405, "user"

    def __init__(self, message: str, *, allow: list[str]) -> None:
        super().__init__(message)
        self.headers["Allow"] = ", ".join(allow)


class Conflict(TallyError):
    status, kind = 409, "user"


class Unprocessable(TallyError):
    status, kind = 422, "user"


class RateLimited(TallyError):
    status, kind = 429, "user"

    def __init__(self, limit: str, retry_after: int) -> None:
        super().__init__(f"rate limit exceeded: {limit}; retry in {retry_after} s")


class Unavailable(TallyError):
    """DynamoDB throttled or failed past the SDK's retries: the caller may retry."""

    status, kind = 503, "system"

    def __init__(
        self, message: str = "temporarily unavailable, retry later", *, retry_after: int = 1
    ):
        super().__init__(message)
        self.headers["Retry-After"] = str(retry_after)


class OutcomeUnknown(Unavailable):
    """A change was sent and its answer lost, and tally could not confirm whether it was applied.
    It is never sent again; under an Idempotency-Key this answer is final (replayed, not retried),
    so the change cannot be applied twice."""

    def __init__(
        self,
        message: str = "DynamoDB's answer to this change was lost and it could not be confirmed; "
        "it was not retried and may or may not have been applied: read the counter before "
        "sending it again",
    ) -> None:
        super().__init__(message)


class AppliedUnread(OutcomeUnknown):
    """A change to a sharded counter was applied, once, but the counter's value after it (the
    sum of its shards, another read) could not be read. Final like OutcomeUnknown: sent again,
    it would count twice."""

    def __init__(self) -> None:
        super().__init__(
            "the change was applied, once, but the counter's value after it could not be read: do "
            "not send it again; read the counter"
        )


class Internal(TallyError):
    status, kind = 500, "system"
