"""POST /account/counters/{name}/{value}: add a signed integer to a counter of the key's account."""

from tally import access, counters, names
from tally.dialects import backstack
from tally.http import api_handler


@api_handler(auth=access.account("write"), changes=True)
def handler(request, grant):
    name = names.counter(request.path_params.get("name"))
    delta = names.int64(request.path_params.get("value"), "value")
    return backstack.counter_answer(name, counters.change(grant.workspace, name, delta).value)
