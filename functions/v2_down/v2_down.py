"""GET /v2/{workspace}/{name}/down: subtract 1 (anyone may down a public counter)."""

from tally import access
from tally.dialects import v2
from tally.http import api_handler


@api_handler(auth=access.counter("write"), changes=True)
def handler(request, grant):
    _, name = v2.target(request)
    v2.takes_no_value(request, "down", "subtracts 1")
    return v2.counter_answer(v2.change(grant, name, -1))
