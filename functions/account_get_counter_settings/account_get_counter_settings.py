"""GET /account/counters/{name}/settings: visibility, description, bounds, billing (admin)."""

from tally import access, counter_settings, counters, names
from tally.http import api_handler


@api_handler(auth=access.account("admin"))
def handler(request, grant):
    name = names.counter(request.path_params.get("name"))
    return 200, {"id": name, **counter_settings.read(counters.get(grant.workspace, name))}
