"""GET /v2/{workspace}/{name}/set?value=N: set to N (always needs a write key of the workspace)."""

from tally import access, counters, names
from tally.dialects import v2
from tally.http import Request, api_handler


@api_handler(changes=True)
def handler(request: Request):
    workspace, name = v2.target(request)
    value = names.int64(request.query.get("value"), "value")
    access.resolve(request, workspace, "write").require_own()
    return v2.counter_answer(counters.set_value(workspace, name, value, op=request.operation))
