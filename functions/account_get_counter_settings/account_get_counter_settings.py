"""GET /account/counters/{name}/settings: visibility, description, bounds, billing (admin)."""

from tally import access, counter_settings, counters, names, workspaces
from tally.http import api_handler


@api_handler(auth=access.account("admin"), cache="no-cache")
def handler(request, grant):
    name = names.counter(request.path_params.get("name"))
    found = counters.get(grant.workspace, name)
    default = workspaces.default_visibility(grant.workspace)
    return 200, {"id": name, **counter_settings.read(found, default)}
