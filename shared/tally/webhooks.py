"""Webhooks: a workspace's endpoints for tally's events, signed as Standard Webhooks specify
(https://www.standardwebhooks.com): `webhook-id` (the event's id, the same on every attempt),
`webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.

Delivery (DeliverWebhooksFunction, subscribed to the bus): one delivery item per (webhook, event),
put only if new, so an event published twice is delivered once; a first attempt at once, then
retries at about 1 min, 5 min, 30 min, 2 h, 5 h, 10 h and 24 h after it (a sweep every minute
finds the waiting ones through a sparse index); after the last, the delivery is failed and its
description goes to the dead-letter queue.

URLs are checked when a webhook is made and again, after DNS resolution, before each attempt,
which connects to the address it checked (so a name that resolves elsewhere the second time
cannot steer a delivery to a private address): https to public addresses only, or, locally
(`loopback-http`), http and https to the loopback address as well.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import socket
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from tally import aws, clock
from tally.config import settings
from tally.errors import BadRequest, Conflict, NotFound, Unavailable
from tally.items import webhook as stored
from tally.items.webhook import Delivery, Webhook
from tally.pages import CURSOR_REFUSAL
from tally.telemetry import count, logger

MOST_PER_WORKSPACE = 10
MAX_URL = 2048
TIMEOUT_S = (2.0, 5.0)  # connect, read: a receiver should answer at once and work later
LEASE_MS = 60_000  # an attempt in flight is not taken again by the sweep for this long
SWEEP_LIMIT = 10  # deliveries retried per sweep: 10 x 7 s fits its 90 s timeout
_ERROR_CHARS = 200
_ID_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"


# ------------------------------------------------------------------ the API


def create(
    workspace: str,
    url: str,
    kinds: list[str],
    description: str,
    *,
    client: Any = None,
    webhook_id: str | None = None,
) -> dict[str, Any]:
    check_url(url)
    hook = Webhook(
        workspace=workspace,
        id=webhook_id or "wh_" + "".join(secrets.choice(_ID_CHARS) for _ in range(20)),
        url=url,
        events=tuple(dict.fromkeys(kinds)),
        description=description,
        created_ms=clock.now_ms(),
    )
    try:
        (client or aws.dynamodb()).transact_write_items(
            TransactItems=stored.create(settings().webhooks_table, hook, MOST_PER_WORKSPACE)
        )
    except ClientError as err:
        if aws.error_code(err) == "TransactionCanceledException":
            raise Conflict(
                f"a workspace has at most {MOST_PER_WORKSPACE} webhooks: delete one first",
                fields={"url": "too many webhooks"},
            ) from err
        raise
    return {**render(hook), "secret": secret_of(workspace, hook.id)}


def render(hook: Webhook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "url": hook.url,
        "events": list(hook.events),
        "description": hook.description,
        "created_at": clock.iso_of_ms(hook.created_ms),
    }


def of_workspace(workspace: str, *, client: Any = None) -> list[Webhook]:
    answer = (client or aws.dynamodb()).query(
        TableName=settings().webhooks_table, **stored.of_workspace(workspace)
    )
    return [stored.webhook(raw) for raw in answer["Items"]]


def delete(workspace: str, webhook_id: str, *, client: Any = None) -> dict[str, Any]:
    try:
        (client or aws.dynamodb()).transact_write_items(
            TransactItems=stored.delete(settings().webhooks_table, workspace, webhook_id)
        )
    except ClientError as err:
        if aws.error_code(err) == "TransactionCanceledException":
            raise NotFound(f"no webhook '{webhook_id}' in this workspace") from err
        raise
    return {"id": webhook_id, "deleted": True}


def get(workspace: str, webhook_id: str, *, client: Any = None) -> Webhook | None:
    raw = (
        (client or aws.dynamodb())
        .get_item(
            TableName=settings().webhooks_table,
            Key=stored.key(workspace, webhook_id),
            ConsistentRead=True,
        )
        .get("Item")
    )
    return stored.webhook(raw) if raw else None


def deliveries(
    workspace: str, webhook_id: str, *, limit: int, cursor: str | None, client: Any = None
) -> dict[str, Any]:
    """A webhook's deliveries, newest first; the cursor is the last one's key within it."""
    client = client or aws.dynamodb()
    if get(workspace, webhook_id, client=client) is None:
        raise NotFound(f"no webhook '{webhook_id}' in this workspace")
    if cursor is not None and not _CURSOR.fullmatch(cursor):
        raise BadRequest(CURSOR_REFUSAL, fields={"cursor": "invalid"})
    answer = client.query(
        TableName=settings().webhooks_table,
        **stored.newest_first(workspace, webhook_id, limit, cursor),
    )
    last = answer.get("LastEvaluatedKey")
    return {
        "list": [render_delivery(stored.delivery(raw)) for raw in answer["Items"]],
        "next_cursor": last["sk"]["S"] if last else None,
    }


_CURSOR = re.compile(r"[0-9]{13}/evt_[0-9a-f]{26}")  # a delivery's sort key: <ms>/<event id>


def render_delivery(d: Delivery) -> dict[str, Any]:
    return {
        "event_id": d.event_id,
        "type": d.type,
        "status": d.status,
        "attempts": d.attempts,
        "first_attempt_at": clock.iso_of_ms(d.first_ms),
        "last_attempt_at": clock.iso_of_ms(d.last_ms) if d.last_ms else None,
        "last_status_code": d.code,
        "last_error": d.error,
        "next_attempt_at": (
            clock.iso_of_ms(d.next_ms) if d.status == "pending" and d.next_ms else None
        ),
    }


# ------------------------------------------------------------------ URLs (SSRF)


def check_url(url: str) -> None:
    """A webhook URL tally may call, or a 400 naming `url` and why."""
    if len(url) > MAX_URL:
        raise BadRequest(f"url is longer than {MAX_URL} characters", fields={"url": "too long"})
    if any(c.isspace() or not c.isprintable() for c in url):
        why = "must not hold spaces or control characters (percent-encode them)"
        raise BadRequest(f"url {why}", fields={"url": why})
    target(url)


def target(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, the address to connect to), each checked: only an address the
    policy allows, after resolution. Raises BadRequest naming `url`."""

    def refuse(why: str) -> BadRequest:
        return BadRequest(f"url {why}", fields={"url": why})

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise refuse("is not a URL") from err
    loopback_ok = settings().webhook_urls == "loopback-http"
    if parts.scheme not in (("https", "http") if loopback_ok else ("https",)):
        raise refuse("must be https" + (" (or http to 127.0.0.1 here)" if loopback_ok else ""))
    if parts.username is not None or parts.password is not None:
        raise refuse("must not carry credentials")
    host = parts.hostname
    if not host or parts.fragment:
        raise refuse("must name a host, and no #fragment")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError) as err:
        raise refuse(f"has a host that does not resolve ({host})") from err
    addresses = [ipaddress.ip_address(a.split("%")[0]) for a in sorted(found)]
    for address in addresses:
        local = address.is_loopback and loopback_ok
        if not (_may_call(address) or local) or (parts.scheme == "http" and not local):
            carried = _embedded_ipv4(address)
            raise refuse(
                "resolves to an address tally does not call (private, loopback, link-local, "
                f"multicast or reserved: {address}"
                + (f", which carries {carried})" if carried else ")")
                if not local
                else "must be https"
            )
    return parts.scheme, host, port, str(addresses[0])


# IPv6 prefixes that only carry an IPv4 address in their last 32 bits, for a gateway or stack to
# reach it: NAT64 (64:ff9b::a00:1 is 10.0.0.1) and IPv4-translated (::ffff:0:a00:1, RFC 2765).
# Such an address is judged by the IPv4 it carries, as a public one is a receiver's too.
_TRANSLATED = [ipaddress.ip_network(n) for n in ("64:ff9b::/96", "::ffff:0:0:0/96")]
# Never an address of a public receiver, though Python's is_global says yes to some: RFC 8215's
# local-use NAT64 prefix (on Python 3.11), and the deprecated IPv4-compatible ::a.b.c.d.
_NEVER = [ipaddress.ip_network(n) for n in ("64:ff9b:1::/48", "::/96")]


def _may_call(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether tally calls this address: a public unicast one, judged by the IPv4 it carries
    where it only carries one. Python's is_global also says yes to multicast (224.0.0.1,
    ff02::1) and to some reserved ranges."""
    carried = _embedded_ipv4(address)
    if address.version == 6 and any(address in net for net in _TRANSLATED):
        return _may_call(carried)
    return (
        address.is_global
        and not (address.is_multicast or address.is_reserved or address.is_unspecified)
        and not any(address in net for net in _NEVER if net.version == address.version)
        and (carried is None or _may_call(carried))
    )


def _embedded_ipv4(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Any:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64, translated), or None."""
    if address.version == 4:
        return None
    if any(address in network for network in _TRANSLATED):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.ipv4_mapped or address.sixtofour


# ------------------------------------------------------------------ signing


def _signing_key() -> bytes:
    cfg = settings()
    if cfg.webhook_signing_key is not None:
        return cfg.webhook_signing_key.encode()
    if cfg.webhook_signing_key_secret:
        # Imported here: only the webhook functions pay for Powertools Parameters at cold start.
        from aws_lambda_powertools.utilities.parameters import get_secret

        return str(get_secret(cfg.webhook_signing_key_secret, max_age=300)).encode()
    raise Unavailable("the webhook signing key is not configured", retry_after=60)


def secret_of(workspace: str, webhook_id: str) -> str:
    """A webhook's secret, derived (never stored): the stack's key, HMAC'd with the webhook."""
    raw = hmac.new(_signing_key(), f"{workspace}\n{webhook_id}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(raw).decode()


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    # Standard Webhooks' scheme, a few lines of hmac: the standardwebhooks package would add
    # its dependencies to every function of the layer for this (tests verify with it).
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


# ------------------------------------------------------------------ delivery


def on_event(detail: dict[str, Any], *, client: Any = None) -> int:
    """An event from the bus: a delivery to each of its workspace's webhooks that take its type,
    recorded once, attempted at once. Returns the number of deliveries made new."""
    client = client or aws.dynamodb()
    body = json.dumps(detail, separators=(",", ":"))
    made = 0
    for hook in of_workspace(detail["workspace"], client=client):
        if detail["type"] not in hook.events:
            continue
        put = stored.new_delivery(hook.workspace, hook.id, detail, body, clock.now_ms(), LEASE_MS)
        try:
            client.put_item(TableName=settings().webhooks_table, **put)
        except ClientError as err:
            if aws.condition_failed(err):
                continue  # this event reached this webhook before (a republished event)
            raise
        made += 1
        attempt(hook, stored.delivery(put["Item"]), client=client)
    return made


def sweep(*, client: Any = None) -> int:
    """Every delivery due another attempt by now: lease it, attempt it. Returns attempts made."""
    client = client or aws.dynamodb()
    table = settings().webhooks_table
    answer = client.query(TableName=table, **stored.waiting(clock.now_ms(), SWEEP_LIMIT))
    made = 0
    for raw in answer["Items"]:
        d = stored.delivery(raw)
        lease = stored.lease(d.attempts, d.next_ms or 0, clock.now_ms() + LEASE_MS)
        try:
            client.update_item(
                TableName=table,
                Key=stored.delivery_key(d.workspace, d.webhook_id, d.first_ms, d.event_id),
                **lease.params(),
            )
        except ClientError as err:
            if aws.condition_failed(err):
                continue  # another sweep, or the first attempt, has it
            raise
        hook = get(d.workspace, d.webhook_id, client=client)
        if hook is None:
            _record(d, None, "the webhook was deleted", final=True, client=client)
            continue
        attempt(hook, d, client=client)
        made += 1
    return made


def attempt(hook: Webhook, d: Delivery, *, client: Any) -> None:
    now = int(clock.now().timestamp())
    headers = {
        "content-type": "application/json",
        "user-agent": "tally-webhooks/1",
        "webhook-id": d.event_id,
        "webhook-timestamp": str(now),
        "webhook-signature": signature(secret_of(hook.workspace, hook.id), d.event_id, now, d.body),
    }
    code, error = _post(hook.url, headers, d.body)
    delivered = error is None and code is not None and 200 <= code < 300
    if not delivered and error is None:
        error = f"the receiver answered {code}"
    final = not delivered and d.attempts + 1 > len(settings().webhook_retry_schedule)
    _record(d, code, None if delivered else error, final=final, client=client)
    count("WebhookDelivered" if delivered else "WebhookAttemptFailed")


def _record(d: Delivery, code: int | None, error: str | None, *, final: bool, client: Any) -> None:
    later = settings().webhook_retry_schedule
    next_ms = None if final or error is None else d.first_ms + later[d.attempts] * 1000
    update = stored.attempted(d.attempts, clock.now_ms(), code, error, next_ms)
    client.update_item(
        TableName=settings().webhooks_table,
        Key=stored.delivery_key(d.workspace, d.webhook_id, d.first_ms, d.event_id),
        **update.params(),
    )
    if final:
        _dead_letter(d, error)


def _dead_letter(d: Delivery, error: str | None) -> None:
    count("WebhookFailed")
    described = {
        "workspace": d.workspace,
        "webhook_id": d.webhook_id,
        "event_id": d.event_id,
        "type": d.type,
        "attempts": d.attempts + 1,
        "last_error": error,
    }
    logger.warning("a webhook delivery failed for good", extra=described)
    queue = settings().webhook_dead_letter_queue
    if queue:
        try:
            aws.sqs().send_message(QueueUrl=queue, MessageBody=json.dumps(described))
        except (ClientError, BotoCoreError) as err:  # logged above; the delivery log has it too
            logger.warning("the webhook dead-letter queue refused", extra={"error": repr(err)})


def _post(url: str, headers: dict[str, str], body: str) -> tuple[int | None, str | None]:
    """POST to the URL's checked address (no redirects, no retries here): (status, error)."""
    import urllib3  # botocore's own HTTP library: in every Lambda runtime with boto3

    try:
        scheme, host, port, address = target(url)
    except BadRequest as err:
        return None, err.message
    path = urlsplit(url)._replace(scheme="", netloc="").geturl() or "/"
    timeout = urllib3.Timeout(connect=TIMEOUT_S[0], read=TIMEOUT_S[1])
    if scheme == "https":
        from botocore.httpsession import get_cert_path

        pool: Any = urllib3.HTTPSConnectionPool(
            address,
            port,
            timeout=timeout,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=get_cert_path(True),
            retries=False,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    try:
        answer = pool.urlopen(
            "POST",
            path,
            body=body.encode(),
            headers={**headers, "host": host if port in (80, 443) else f"{host}:{port}"},
            redirect=False,
            preload_content=False,
        )
        answer.release_conn()
        return answer.status, None
    except urllib3.exceptions.HTTPError as err:
        return None, repr(err)[:_ERROR_CHARS]
    finally:
        pool.close()


def valid_id(webhook_id: str) -> bool:
    return (
        len(webhook_id) == 23
        and webhook_id.startswith("wh_")
        and all(c in _ID_CHARS for c in webhook_id[3:])
    )
