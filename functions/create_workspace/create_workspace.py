"""POST /admin/workspaces {"workspace": "acme"}: a workspace and its first admin key (shown once)."""

from tally import access, keys, names
from tally.http import api_handler
from tally.validation import known_fields


@api_handler(auth=access.operator, changes=True)
def handler(request, _grant):
    workspace = names.workspace(known_fields(request.json_body(), "workspace").get("workspace"))
    issued = keys.create_workspace(workspace)
    return 201, {
        "workspace": issued.workspace,
        "api_key": issued.secret,
        "key_id": issued.key_id,
        "scopes": list(issued.scopes),
    }
