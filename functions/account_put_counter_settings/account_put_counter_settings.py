"""PUT /account/counters/{name}/settings: set up a counter (admin). Fields given are set, null
clears a bound or billing; a bound the current value already breaks is 409."""

from tally import access, counter_settings, names, requests
from tally.http import Request, api_handler
from tally.validation import parse


@api_handler(changes=True)
def handler(request: Request):
    caller = access.account(request, "admin")
    name = names.counter(request.path_params.get("name"))
    change = parse(requests.SETTINGS_CHANGE, request.json_body())
    return 200, {"id": name, **counter_settings.put(caller.workspace, name, change)}
