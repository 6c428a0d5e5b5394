"""GET /v2/{workspace}/{name}/reset: set to 0 (always needs a write key of the workspace)."""

from tally import access, counters
from tally.dialects import v2
from tally.http import Request, api_handler


@api_handler(changes=True)
def handler(request: Request):
    workspace, name = v2.target(request)
    access.resolve(request, workspace, "write").require_own()
    return v2.counter_answer(counters.set_value(workspace, name, 0, op=request.operation))
