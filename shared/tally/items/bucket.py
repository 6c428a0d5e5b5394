"""The rate limits table's item: one token bucket, stored as one number (GCRA, tally.rate_limit).

bucket   its id (the key)     tat  the bucket's theoretical arrival time, epoch microseconds
expires  epoch seconds after which the bucket is full anyway: DynamoDB's TTL deletes it

A take of n tokens (one, or a container's lease of several) moves `tat` n intervals later: the
stretch of the bucket's timeline it covers, (tat before, tat after], is the taker's alone.
"""

from __future__ import annotations

from typing import Any

from tally.items.expression import Attr, Update, decode

TAT, EXPIRES = Attr("tat"), Attr("expires")


def key(bucket: str) -> dict[str, Any]:
    return {"bucket": {"S": bucket}}


def start(now: int, span: int, expires: int) -> Update:
    """A full (or new) bucket gives the tokens of `span` microseconds: tat = now + span."""
    update = Update().set("#tat = :first, #expires = :expires", first=now + span, expires=expires)
    return update.require(TAT.missing() | (TAT < now))


def take(now: int, span: int, latest: int, expires: int) -> Update:
    """A bucket not full gives the tokens of `span` while that many are left (tat <= latest, the
    last tat from which they all are): tat moves `span` later."""
    update = Update().add(TAT, span).set("#expires = :expires", expires=expires)
    return update.require((TAT >= now) & (TAT <= latest))


def tat(raw: dict[str, Any] | None) -> int | None:
    return decode((raw or {}).get(TAT.name))
