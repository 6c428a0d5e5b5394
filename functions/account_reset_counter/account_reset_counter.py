"""DELETE /account/counters/{name}: reset a counter to zero."""

from tally import access, counters, names
from tally.dialects import backstack
from tally.http import api_handler


@api_handler(auth=access.account("write"), changes=True)
def handler(request, grant):
    name = names.counter(request.path_params.get("name"))
    return backstack.counter_answer(name, counters.set_value(grant.workspace, name, 0).value)
