"""POST /account/api-keys {"scopes": [...]}: a new key for the caller's workspace (admin scope)."""

from tally import access, keys
from tally.errors import BadRequest
from tally.http import api_handler
from tally.validation import known_fields


@api_handler(auth=access.account("admin"), changes=True)
def handler(request, grant):
    scopes = known_fields(request.json_body(), "scopes").get("scopes")
    if (
        not isinstance(scopes, list)
        or not scopes
        or not all(isinstance(s, str) and s in keys.SCOPES for s in scopes)
    ):
        raise BadRequest(
            "scopes must be a non-empty list of read, write, admin",
            fields={"scopes": "a non-empty subset of read, write, admin"},
        )
    return 201, keys.create_key(grant.workspace, tuple(dict.fromkeys(scopes))).answer()
