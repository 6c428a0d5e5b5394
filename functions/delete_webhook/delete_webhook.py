"""DELETE /account/webhooks/{webhook_id}: stop delivering to a webhook (admin scope)."""

from tally import access, webhooks
from tally.errors import NotFound
from tally.http import api_handler


@api_handler(auth=access.account("admin"), changes=True)
def handler(request, grant):
    webhook_id = request.path_params.get("webhook_id", "")
    if not webhooks.valid_id(webhook_id):
        raise NotFound(f"no webhook '{webhook_id}' in this workspace")
    return 200, webhooks.delete(grant.workspace, webhook_id)
