"""PUT /account/counters/{name}/settings: set up a counter (admin). Fields given are set, null
clears a bound or billing; a bound the current value already breaks is 409."""

from tally import access, bodies, counter_settings, names, workspaces
from tally.http import api_handler
from tally.validation import parse


@api_handler(auth=access.account("admin"), changes=True)
def handler(request, grant):
    name = names.counter(request.path_params.get("name"))
    change = parse(bodies.SETTINGS_CHANGE, request.json_body())
    default = workspaces.default_visibility(grant.workspace)
    settings = counter_settings.put(grant.workspace, name, change, default_visibility=default)
    return 200, {"id": name, **settings}
