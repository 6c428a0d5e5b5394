"""GET /v2/{workspace}/{name}/set?value=N: set to N (always needs a write key of the workspace)."""

from tally import access, counters, names
from tally.dialects import v2
from tally.errors import BadRequest
from tally.http import api_handler


@api_handler(auth=access.counter("write", public=False), changes=True)
def handler(request, grant):
    _, name = v2.target(request)
    if "value" not in request.query:
        raise BadRequest(
            "value is missing: send set?value=N, N a signed decimal integer such as 42",
            fields={"value": "missing"},
        )
    value = names.int64(request.query["value"], "value")
    counter = counters.set_value(
        grant.workspace, name, value, default_visibility=grant.default_visibility
    )
    return v2.counter_answer(counter)
