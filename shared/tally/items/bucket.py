"""The rate limits table's item: one token bucket, stored as one number (GCRA, tally.rate_limit).

bucket   its id (the key)     tat  the bucket's theoretical arrival time, epoch microseconds
expires  epoch seconds after which the bucket is full anyway: DynamoDB's TTL deletes it
"""

from __future__ import annotations

from typing import Any

from tally.items.expression import Attr, Update, decode

TAT, EXPIRES = Attr("tat"), Attr("expires")


def key(bucket: str) -> dict[str, Any]:
    return {"bucket": {"S": bucket}}


def start(now: int, interval: int, expires: int) -> Update:
    """A full (or new) bucket gives a token: tat = now + interval."""
    update = Update().set(
        "#tat = :first, #expires = :expires", first=now + interval, expires=expires
    )
    return update.require(TAT.missing() | (TAT < now))


def take(now: int, interval: int, latest: int, expires: int) -> Update:
    """A bucket not full gives a token while one is left: tat moves one interval later."""
    update = Update().add(TAT, interval).set("#expires = :expires", expires=expires)
    return update.require((TAT >= now) & (TAT <= latest))


def tat(raw: dict[str, Any] | None) -> int | None:
    return decode((raw or {}).get(TAT.name))
