"""GET /account/counters/{name}/settings: visibility, description, bounds, billing (admin)."""

from tally import access, counter_settings, counters, names
from tally.http import Request, api_handler


@api_handler
def handler(request: Request):
    caller = access.account(request, "admin")
    name = names.counter(request.path_params.get("name"))
    return 200, {"id": name, **counter_settings.read(counters.get(caller.workspace, name))}
