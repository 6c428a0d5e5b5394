"""DELETE /account/api-keys/{key_id}: revoke a key of the caller's workspace (admin scope).

A key cannot revoke itself. Only admin keys revoke, so the workspace always keeps one: without
that, revoking the last admin key would lock the workspace out for good."""

from tally import access, keys
from tally.errors import NotFound
from tally.http import api_handler


@api_handler(auth=access.account("admin"), changes=True)
def handler(request, grant):
    key_id = request.path_params.get("key_id", "")
    if not keys.valid_key_id(key_id):
        raise NotFound(f"no API key '{key_id}' in this workspace")
    return 200, keys.revoke_key(grant.workspace, key_id, by=grant.caller.key_id)
