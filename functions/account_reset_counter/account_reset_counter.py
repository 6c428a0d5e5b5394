"""DELETE /account/counters/{name}: reset a counter to zero."""

from tally import access, counters, names
from tally.dialects import backstack
from tally.http import Request, api_handler


@api_handler(changes=True)
def handler(request: Request):
    caller = access.account(request, "write")
    name = names.counter(request.path_params.get("name"))
    counter = counters.set_value(caller.workspace, name, 0, op=request.operation)
    return backstack.counter_answer(name, counter.value)
