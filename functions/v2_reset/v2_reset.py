"""GET /v2/{workspace}/{name}/reset: set to 0 (always needs a write key of the workspace)."""

from tally import access, counters
from tally.dialects import v2
from tally.http import api_handler


@api_handler(auth=access.counter("write", public=False), changes=True)
def handler(request, grant):
    _, name = v2.target(request)
    v2.takes_no_value(request, "reset", "sets 0")
    counter = counters.set_value(
        grant.workspace, name, 0, default_visibility=grant.default_visibility
    )
    return v2.counter_answer(counter)
