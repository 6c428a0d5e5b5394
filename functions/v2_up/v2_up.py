"""GET /v2/{workspace}/{name}/up: add 1 (anyone may up a public counter)."""

from tally import access, counters
from tally.dialects import v2
from tally.http import Request, api_handler


@api_handler(changes=True)
def handler(request: Request):
    workspace, name = v2.target(request)
    grant = access.resolve(request, workspace, "write")
    counter = counters.change(
        workspace, name, +1, refuse_private=grant.refusal, op=request.operation
    )
    return v2.counter_answer(counter)
