"""DynamoDB expressions, built once for every table: an UpdateItem's SET / ADD / REMOVE clauses,
and conditions as data.

A condition (`Cond`) is written once and yields both its `ConditionExpression` text and, on an
item as DynamoDB answered it (ALL_OLD), whether it held: so why a write was refused is worked out
from the very condition DynamoDB checked, and the two cannot drift. boto3's
`boto3.dynamodb.conditions` renders conditions but cannot evaluate them, hence this small one.
Like DynamoDB, a comparison with an attribute the item lacks is false.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Value = int | str


def encode(value: Value) -> dict[str, str]:
    return {"S": value} if isinstance(value, str) else {"N": str(value)}


def decode(cell: dict[str, Any] | None) -> Any:
    """A stored number as an int, a string as itself, a string set as a frozenset; None if absent."""
    if not cell:
        return None
    if "N" in cell:
        return int(cell["N"])
    if "SS" in cell:
        return frozenset(cell["SS"])
    return cell.get("S")


# ------------------------------------------------------------------ conditions


class Cond:
    """A condition: `render` gives DynamoDB's text, `holds` judges a decoded item (a dict of
    attribute name -> int | str) by the same rule."""

    def __init__(self, render: Callable[[Update], str], holds: Callable[[dict], bool]) -> None:
        self.render, self.holds = render, holds

    def __and__(self, other: Cond) -> Cond:
        return Cond(
            lambda u: f"({self.render(u)} AND {other.render(u)})",
            lambda i: self.holds(i) and other.holds(i),
        )

    def __or__(self, other: Cond) -> Cond:
        return Cond(
            lambda u: f"({self.render(u)} OR {other.render(u)})",
            lambda i: self.holds(i) or other.holds(i),
        )


_COMPARE = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class Attr:
    """A top-level attribute of an item, by its stored name."""

    name: str

    @property
    def ref(self) -> str:
        return f"#{self.name}"

    def exists(self) -> Cond:
        return Cond(lambda _: f"attribute_exists({self.ref})", lambda i: self.name in i)

    def missing(self) -> Cond:
        return Cond(lambda _: f"attribute_not_exists({self.ref})", lambda i: self.name not in i)

    def _compare(self, op: str, other: Attr | Value) -> Cond:
        def render(update: Update) -> str:
            right = other.ref if isinstance(other, Attr) else update.value(other)
            return f"{self.ref} {op} {right}"

        def holds(item: dict) -> bool:
            left = item.get(self.name)
            right = item.get(other.name) if isinstance(other, Attr) else other
            return left is not None and right is not None and _COMPARE[op](left, right)

        return Cond(render, holds)

    def eq(self, other: Attr | Value) -> Cond:
        return self._compare("=", other)

    def ne(self, other: Attr | Value) -> Cond:
        return self._compare("<>", other)

    def __lt__(self, other: Attr | Value) -> Cond:  # type: ignore[override]
        return self._compare("<", other)

    def __le__(self, other: Attr | Value) -> Cond:  # type: ignore[override]
        return self._compare("<=", other)

    def __gt__(self, other: Attr | Value) -> Cond:  # type: ignore[override]
        return self._compare(">", other)

    def __ge__(self, other: Attr | Value) -> Cond:  # type: ignore[override]
        return self._compare(">=", other)


# ------------------------------------------------------------------ a workspace's lists


def newest_first(
    workspace: str,
    limit: int,
    after: tuple[str, str] | None,
    *,
    index: str,
    key: tuple[str, str],
    consistent: bool,
) -> dict[str, Any]:
    """A Query of one page of a workspace's items from `index`, newest first. `after` is where the
    last page ended: the values of `key`, the item's own key and the index's sort key (with the
    workspace, DynamoDB's exclusive start key). A global index cannot be read strongly
    consistent; a local one can."""
    query: dict[str, Any] = {
        "IndexName": index,
        "KeyConditionExpression": "workspace = :ws",
        "ExpressionAttributeValues": {":ws": {"S": workspace}},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if consistent:
        query["ConsistentRead"] = True
    if after:
        start = {name: {"S": value} for name, value in zip(key, after, strict=True)}
        query["ExclusiveStartKey"] = {"workspace": {"S": workspace}, **start}
    return query


def position(last_key: dict[str, Any], key: tuple[str, str]) -> tuple[str, str]:
    """Where a page ended (its LastEvaluatedKey), as `newest_first` takes it back."""
    return last_key[key[0]]["S"], last_key[key[1]]["S"]


def count_of(workspace: str, *, index: str | None, consistent: bool) -> dict[str, Any]:
    """A Query counting a workspace's items (of the table, or of `index`)."""
    query: dict[str, Any] = {
        "KeyConditionExpression": "workspace = :ws",
        "ExpressionAttributeValues": {":ws": {"S": workspace}},
        "Select": "COUNT",
    }
    if index:
        query["IndexName"] = index
    if consistent:
        query["ConsistentRead"] = True
    return query


def decoded(item: dict[str, Any] | None) -> dict[str, Any]:
    """An item as conditions judge it: each attribute's value."""
    return {name: decode(cell) for name, cell in (item or {}).items()}


# ------------------------------------------------------------------ updates


class Update:
    """An UpdateItem (or a transaction's Update) built from pieces: `#x` names and `:x` values
    are collected as they are used (DynamoDB rejects unused ones). Conditions are `Cond`s, each
    with the reason a caller gets when it alone fails (`refusal`)."""

    def __init__(self) -> None:
        self.sets: list[str] = []
        self.adds: list[str] = []
        self.removes: list[str] = []
        self.checks: list[tuple[Cond, Any]] = []
        self.values: dict[str, Value] = {}

    def value(self, value: Value) -> str:
        """A placeholder for `value` (one per distinct value)."""
        for name, known in self.values.items():
            if known == value and type(known) is type(value):
                return f":{name}"
        name = f"c{len(self.values)}"
        self.values[name] = value
        return f":{name}"

    def set(self, clause: str, **values: Value) -> Update:
        self.sets.append(clause)
        self.values.update(values)
        return self

    def add(self, attr: Attr, value: int) -> Update:
        self.adds.append(f"{attr.ref} {self.value(value)}")
        return self

    def remove(self, *attrs: Attr) -> Update:
        self.removes.extend(a.ref for a in attrs)
        return self

    def require(self, condition: Cond, refusal: Any = None, *, first: bool = False) -> Update:
        """Add a condition; `first` puts it before the others (its refusal is told first)."""
        self.checks.insert(0 if first else len(self.checks), (condition, refusal))
        return self

    def refusal(self, old: dict[str, Any] | None) -> Any:
        """Judged on the item as it was when DynamoDB refused the write (ALL_OLD): the refusal of
        the first check that fails on it, or None if every check holds."""
        item = decoded(old)
        for condition, refusal in self.checks:
            if not condition.holds(item):
                return refusal
        return None

    def params(self) -> dict[str, Any]:
        expression = " ".join(
            part
            for part in (
                "SET " + ", ".join(self.sets) if self.sets else "",
                "ADD " + ", ".join(self.adds) if self.adds else "",
                "REMOVE " + ", ".join(self.removes) if self.removes else "",
            )
            if part
        )
        condition = " AND ".join(c.render(self) for c, _ in self.checks)
        text = expression + " " + condition
        params: dict[str, Any] = {
            "ExpressionAttributeNames": {f"#{n}": n for n in sorted(set(_NAME.findall(text)))},
        }
        if expression:
            params["UpdateExpression"] = expression
        if self.values:
            params["ExpressionAttributeValues"] = {
                f":{k}": encode(v) for k, v in self.values.items()
            }
        if condition:
            params["ConditionExpression"] = condition
        return params


_NAME = re.compile(r"#(\w+)")
