"""GET /account/webhooks: the caller's workspace's webhooks (admin scope), never a secret."""

from tally import access, webhooks
from tally.http import api_handler


@api_handler(auth=access.account("admin"), cache="no-cache")
def handler(request, grant):
    hooks = webhooks.of_workspace(grant.workspace)
    return 200, {"list": [webhooks.render(hook) for hook in hooks]}
