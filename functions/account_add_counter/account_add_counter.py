"""POST /account/counters/{name}/{value}: add a signed integer to a counter of the key's account."""

from tally import access, counters, names
from tally.dialects import backstack
from tally.http import Request, api_handler


@api_handler(changes=True)
def handler(request: Request):
    caller = access.account(request, "write")
    name = names.counter(request.path_params.get("name"))
    delta = names.int64(request.path_params.get("value"), "value")
    counter = counters.change(caller.workspace, name, delta, op=request.operation)
    return backstack.counter_answer(name, counter.value)
