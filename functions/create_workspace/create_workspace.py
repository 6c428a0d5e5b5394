"""POST /admin/workspaces {"workspace": "acme", "default_visibility": "private"}: a workspace and
its first admin key (shown once). Counters are private unless the workspace asks for public."""

from tally import access, names, workspaces
from tally.http import api_handler
from tally.validation import known_fields


@api_handler(auth=access.operator, changes=True)
def handler(request, _grant):
    body = known_fields(request.json_body(), "workspace", "default_visibility")
    workspace = names.workspace(body.get("workspace"))
    default = workspaces.visibility(body.get("default_visibility", "private"))
    issued = workspaces.create(workspace, default_visibility=default)
    return 201, {**issued.answer(), "default_visibility": default}
