"""GET /account/webhooks/{webhook_id}/deliveries[?limit=&cursor=]: what was sent to a webhook,
newest first: status, attempts, last status code and error, next attempt (admin scope)."""

from tally import access, webhooks
from tally.dialects import backstack
from tally.errors import NotFound
from tally.http import api_handler


@api_handler(auth=access.account("admin"), cache="no-cache")
def handler(request, grant):
    webhook_id = request.path_params.get("webhook_id", "")
    if not webhooks.valid_id(webhook_id):
        raise NotFound(f"no webhook '{webhook_id}' in this workspace")
    limit, cursor = backstack.page_params(request)
    return 200, webhooks.deliveries(grant.workspace, webhook_id, limit=limit, cursor=cursor)
