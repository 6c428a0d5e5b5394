"""GET /account/counters[?details=true]: every counter of the key's account and its value; with
`details`, also what a dashboard's table shows of each (totals, today, visibility, and for an
admin key its bounds and billing)."""

from tally import access, clock, counters, workspaces
from tally.dialects import backstack
from tally.http import api_handler


@api_handler(auth=access.account("read"), cache="no-cache")
def handler(request, grant):
    if not backstack.flag(request, "details"):
        return 200, {"counters": counters.values(grant.workspace)}
    every = counters.every(
        grant.workspace, default_visibility=workspaces.default_visibility(grant.workspace)
    )
    now, admin = clock.now(), grant.caller.can("admin")
    return 200, {
        "counters": {c.name: c.value for c in every},
        "details": {c.name: backstack.counter_details(c, now, settings=admin) for c in every},
    }
