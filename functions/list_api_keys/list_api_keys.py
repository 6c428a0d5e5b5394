"""GET /account/api-keys[?limit=&cursor=]: the workspace's keys, newest first (admin scope): ids,
scopes and times, never a secret."""

from tally import access, keys
from tally.dialects import backstack
from tally.http import api_handler


@api_handler(auth=access.account("admin"), cache="no-cache")
def handler(request, grant):
    limit, cursor = backstack.page_params(request)
    return 200, keys.page(grant.workspace, limit=limit, cursor=cursor)
