"""Who may do what: each route names one of these as its `auth` (tally.http.api_handler), which
runs before anything else the request could read or write (an Idempotency-Key record included)
and grants the route's function what it may touch.

On a workspace's counters a key of the workspace is checked for its scope. Anyone else (no key,
or a key of another workspace) may only read, up and down *public* counters; what they are
refused says nothing about whether a private counter exists: 401 without a key, 404 with another
workspace's key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tally import admin, counters, idempotency, keys, names, workspaces
from tally.errors import NotFound, TallyError, Unauthorized
from tally.http import Request


@dataclass(frozen=True)
class Grant:
    """What a request passed: who it is and whether it holds a key of the workspace it acts on."""

    caller: keys.Caller | None  # None: anonymous, or the operator
    own: bool  # a key of this workspace, with the scope asked for
    idempotency_scope: str  # whose Idempotency-Keys: "key:<id>", "operator", "anonymous:<ip>"
    workspace: str | None = None
    default_visibility: str = "private"  # the workspace's, for counters with none of their own

    def denied(self) -> TallyError:
        if self.caller is None:
            return Unauthorized()
        return NotFound("no such counter")

    @property
    def refusal(self) -> TallyError | None:
        """What a change must answer if the counter turns out not to be public."""
        return None if self.own else self.denied()

    def require_own(self) -> None:
        if not self.own:
            raise self.denied()


def anyone(request: Request) -> Grant:
    """No credential needed (the $default route's 404/405)."""
    return Grant(None, False, f"anonymous:{request.source_ip}")


def operator(request: Request) -> Grant:
    """/admin routes: the bearer must be the operator's admin token."""
    identity = request.identity
    if identity.token is None and identity.refusal:  # a malformed Authorization
        raise identity.refusal
    admin.check_admin_token(
        identity.token, identity.caller.workspace if identity.caller is not None else None
    )
    return Grant(None, False, "operator")


def account(scope: str) -> Callable[[Request], Grant]:
    """Backstack /account routes: the workspace is the key's own; a key is always required."""

    def authorize(request: Request) -> Grant:
        caller = request.identity.require_key()
        caller.require(scope)
        return Grant(caller, True, f"key:{caller.key_id}", caller.workspace)

    return authorize


def counter(scope: str, *, public: bool = True) -> Callable[[Request], Grant]:
    """/v2/{workspace}/{name} routes: a key of the workspace with `scope`, or, with `public`,
    anyone where the counter is public (the function decides that, on the counter itself)."""

    def authorize(request: Request) -> Grant:
        workspace = names.workspace(request.path_params.get("workspace"))
        default = workspaces.default_visibility(workspace)  # cached: the rate limiter read it
        identity = request.identity
        if identity.token is None and identity.refusal is None:  # no Authorization at all
            grant = Grant(None, False, f"anonymous:{request.source_ip}", workspace, default)
        else:
            caller = identity.require_key()
            own = caller.workspace == workspace
            if own:
                caller.require(scope)
            grant = Grant(caller, own, f"key:{caller.key_id}", workspace, default)
        if not (public or grant.own):
            raise grant.denied()
        if not grant.own and scope == "write" and idempotency.key_of(request.headers) is not None:
            # A keyed change is claimed before it runs: only a caller the counter admits may
            # claim one, so check now what the change's own condition would (one read).
            _require_open(grant, request.path_params.get("name"))
        return grant

    return authorize


def _require_open(grant: Grant, name: str | None) -> None:
    """What the change's own condition checks (counters.change, `refuse_private`), read first."""
    name = names.counter(name)
    found = counters.get(grant.workspace, name, default_visibility=grant.default_visibility)
    if found is None:
        found = counters.Counter.unborn(grant.workspace, name, grant.default_visibility)
    if not found.open_to_anyone:
        raise grant.denied()


def readable(grant: Grant, name: str) -> counters.Counter:
    """The counter if this grant may read it; otherwise the refusal that leaks nothing."""
    found = counters.get(grant.workspace, name, default_visibility=grant.default_visibility)
    if found is None or not (grant.own or found.visibility == "public"):
        raise NotFound(f"no counter '{name}'") if grant.own else grant.denied()
    return found
