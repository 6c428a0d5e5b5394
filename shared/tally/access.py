"""Who may do what to a workspace's counters (SPEC: Access).

A key of the workspace is checked for its scope. Anyone else (no key, or a key of another
workspace) may only read, up and down *public* counters; what they are refused says nothing
about whether a private counter exists: 401 without a key, 404 with another workspace's key.
"""

from __future__ import annotations

from dataclasses import dataclass

from tally import counters, keys
from tally.errors import NotFound, TallyError, Unauthorized
from tally.http import Request


@dataclass(frozen=True)
class Access:
    caller: keys.Caller | None
    own: bool  # the caller holds a key of this workspace, with the scope asked for

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


def resolve(request: Request, workspace: str, scope: str) -> Access:
    token = request.bearer
    if token is None:
        return Access(None, own=False)
    caller = keys.authenticate(token)
    if caller.workspace != workspace:
        return Access(caller, own=False)
    caller.require(scope)
    return Access(caller, own=True)


def account(request: Request, scope: str) -> keys.Caller:
    """Backstack /account routes: the workspace is the key's own; a key is always required."""
    token = request.bearer
    if token is None:
        raise Unauthorized()
    caller = keys.authenticate(token)
    caller.require(scope)
    return caller


def readable(request: Request, workspace: str, name: str) -> counters.Counter:
    """The counter if this caller may read it; otherwise the refusal that leaks nothing."""
    grant = resolve(request, workspace, "read")
    counter = counters.get(workspace, name)
    if counter is None or not (grant.own or counter.visibility == "public"):
        raise NotFound(f"no counter '{name}'") if grant.own else grant.denied()
    return counter
