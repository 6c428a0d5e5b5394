"""PUT /account/settings {"default_visibility": "private" | "public"}: what a counter without a
visibility of its own is, at every request from now on (admin). A counter with a billing setting
never takes an anonymous change, whatever its visibility."""

from tally import access, bodies, workspaces
from tally.http import api_handler
from tally.validation import parse


@api_handler(auth=access.account("admin"), changes=True)
def handler(request, grant):
    change = parse(bodies.WORKSPACE_SETTINGS, request.json_body())
    found = workspaces.update(grant.workspace, default_visibility=change["default_visibility"])
    return 200, found.settings()
