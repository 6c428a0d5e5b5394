"""POST /admin/workspaces {"workspace": "acme"}: a workspace and its first admin key (shown once)."""

from tally import keys, names
from tally.http import Request, api_handler
from tally.validation import known_fields


@api_handler(changes=True)
def handler(request: Request):
    keys.check_admin_token(request.bearer)
    workspace = names.workspace(known_fields(request.json_body(), "workspace").get("workspace"))
    issued = keys.create_workspace(workspace)
    return 201, {
        "workspace": issued.workspace,
        "api_key": issued.secret,
        "key_id": issued.key_id,
        "scopes": list(issued.scopes),
    }
