"""API keys: issued, looked up (cached while warm), revoked. Secrets are shown once and stored
only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from tally import aws, clock, pages
from tally.config import settings
from tally.errors import Conflict, Forbidden, NotFound, Unauthorized, Unavailable
from tally.items import api_key as stored
from tally.items.api_key import StoredKey
from tally.warm_cache import WarmCache

SCOPES = ("read", "write", "admin")
# Each scope includes the ones before it: admin ⊃ write ⊃ read.
_GRANTS = {"read": {"read"}, "write": {"read", "write"}, "admin": {"read", "write", "admin"}}
_PREFIX = "tly"


def in_order(scopes: frozenset[str]) -> list[str]:
    """Scopes as answers list them: read, write, admin."""
    return [scope for scope in SCOPES if scope in scopes]


@dataclass(frozen=True)
class Caller:
    """Who a valid key says the caller is."""

    workspace: str
    key_id: str
    scopes: frozenset[str]

    def can(self, scope: str) -> bool:
        return any(scope in _GRANTS[s] for s in self.scopes)

    def describe(self) -> dict[str, Any]:
        """The key as its own holder may see it: its id and scopes, never its secret."""
        return {"key_id": self.key_id, "scopes": in_order(self.scopes)}

    def require(self, scope: str) -> None:
        if not self.can(scope):
            raise Forbidden(
                f"this API key lacks the '{scope}' scope: use a key with "
                + " or ".join(s for s in SCOPES if scope in _GRANTS[s])
            )


@dataclass(frozen=True)
class IssuedKey:
    workspace: str
    key_id: str
    secret: str
    scopes: tuple[str, ...]
    created_at: str

    def answer(self) -> dict[str, Any]:
        """A new key as its creator sees it: the secret this once, never again."""
        return {
            "workspace": self.workspace,
            "api_key": self.secret,
            "key_id": self.key_id,
            "scopes": list(self.scopes),
            "created_at": self.created_at,
        }


def hash_secret(secret: str) -> str:
    # Secrets are 256 bits from `secrets`, not passwords: a fast hash resists every guessing
    # attack, and a slow KDF would only add latency to every request.
    return hashlib.sha256(secret.encode()).hexdigest()


_KEY_ID = re.compile(r"[a-z0-9]{1,32}")


def valid_key_id(key_id: str) -> bool:
    """The one rule for a key id (a secret names it; revocation takes it from the path)."""
    return bool(_KEY_ID.fullmatch(key_id))


def _key_id_of(secret: str) -> str | None:
    """The key id a secret names, if it is well-formed: nothing else is ever looked up."""
    parts = secret.split("_", 2)
    if len(parts) == 3 and parts[0] == _PREFIX and valid_key_id(parts[1]):
        return parts[1]
    return None


def new_key(
    workspace: str, scopes: tuple[str, ...], key_id: str | None, secret: str | None
) -> tuple[IssuedKey, StoredKey]:
    key_id = key_id or secrets.token_hex(8)
    secret = secret or f"{_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    created_at = clock.iso()
    issued = IssuedKey(workspace, key_id, secret, scopes, created_at)
    return issued, StoredKey(key_id, workspace, hash_secret(secret), frozenset(scopes), created_at)


def create_key(
    workspace: str,
    scopes: tuple[str, ...],
    *,
    client: Any = None,
    key_id: str | None = None,
    secret: str | None = None,
) -> IssuedKey:
    client = client or aws.dynamodb()
    issued, key = new_key(workspace, scopes, key_id, secret)
    try:
        client.put_item(**stored.put_new(settings().api_keys_table, key, or_same_secret=True))
    except ClientError as err:
        if aws.condition_failed(err):
            raise Conflict(f"API key id '{issued.key_id}' is taken") from err
        raise
    return issued


def revoke_key(workspace: str, key_id: str, *, by: str, client: Any = None) -> dict[str, Any]:
    """Revoke a key of `workspace` (a key of another workspace is 404) with the key `by`, in one
    transaction that also requires `by` unrevoked. Two admin keys revoking each other at once
    (even from containers whose key cache is stale) cannot both win, so a workspace always keeps
    an admin key. Repeating is harmless."""
    if key_id == by:
        raise Conflict(
            "an API key cannot revoke itself: revoke it with another admin key of the workspace",
            fields={"key_id": "the caller's own key"},
        )
    client = client or aws.dynamodb()
    table, now = settings().api_keys_table, clock.iso()
    try:
        client.transact_write_items(
            TransactItems=[
                {"Update": stored.revoke(table, key_id, workspace, now)},
                {"ConditionCheck": stored.unrevoked(table, by)},
            ]
        )
    except ClientError as err:
        reasons = err.response.get("CancellationReasons") or []
        codes = [r.get("Code") for r in reasons]
        if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
            _cache.pop(by)
            raise Unauthorized() from err
        if codes and codes[0] == "ConditionalCheckFailed":
            old = stored.of(reasons[0]["Item"]) if reasons[0].get("Item") else None
            if old is None or old.workspace != workspace:
                raise NotFound(f"no API key '{key_id}' in this workspace") from err
            now = old.revoked_at or now  # revoked before: a repeat answers that time
        elif "TransactionConflict" in codes:  # another write to one of the keys: retry later
            raise Unavailable() from err
        else:
            raise
    _cache.pop(key_id)
    return {"key_id": key_id, "revoked": True, "revoked_at": now}


# Newest first, from the keys table's index; a cursor holds the last key's id and creation time.
_LIST = pages.Listing(
    table=lambda: settings().api_keys_table,
    query=stored.newest_first,
    count=stored.count_query,
    position=stored.cursor_of,
    cursor={"k": _KEY_ID, "c": re.compile(r"[0-9T:.+Z-]{1,40}")},
)


def page(
    workspace: str, *, limit: int = 50, cursor: str | None = None, client: Any = None
) -> dict[str, Any]:
    """One page of a workspace's keys, newest first, with their count and the next cursor: ids,
    scopes and times, never a secret or its hash (the index holds neither). The index is
    eventually consistent: a key made or revoked a moment ago may show a moment later."""
    return _LIST.read(client or aws.dynamodb(), workspace, limit, cursor, _listing)


def _listing(raw: dict[str, Any]) -> dict[str, Any]:
    key = stored.listed(raw)
    return {
        "key_id": key.key_id,
        "scopes": in_order(key.scopes),
        "created_at": key.created_at,
        "revoked": key.revoked_at is not None,
        "revoked_at": key.revoked_at,
    }


# Warm containers skip the lookup; a revocation reaches every container within
# TALLY_KEY_CACHE_SECONDS. Unknown ids are cached too, so a flood of made-up keys costs one read
# per id, not one per request.
_cache = WarmCache()


def _lookup(key_id: str, client: Any) -> StoredKey | None:
    def load() -> StoredKey | None:
        raw = (
            (client or aws.dynamodb())
            .get_item(
                TableName=settings().api_keys_table, Key=stored.key(key_id), ConsistentRead=True
            )
            .get("Item")
        )
        return stored.of(raw) if raw else None

    return _cache.get_or_load(key_id, load, settings().key_cache_seconds)


def authenticate(secret: str, *, client: Any = None) -> Caller:
    """The caller a Bearer secret stands for, or Unauthorized."""
    key_id = _key_id_of(secret)
    found = _lookup(key_id, client) if key_id else None
    if (
        found is None
        or found.revoked_at is not None
        or not hmac.compare_digest(found.secret_sha256, hash_secret(secret))
    ):
        raise Unauthorized("invalid or revoked API key")
    return Caller(found.workspace, found.key_id, found.scopes)
