"""GET /v2/{workspace}/{name}/down: subtract 1 (anyone may down a public counter)."""

from tally import access, counters
from tally.dialects import v2
from tally.http import api_handler


@api_handler(auth=access.counter("write"), changes=True)
def handler(request, grant):
    _, name = v2.target(request)
    counter = counters.change(
        grant.workspace,
        name,
        -1,
        refuse_private=grant.refusal,
        default_visibility=grant.default_visibility,
    )
    return v2.counter_answer(counter)
