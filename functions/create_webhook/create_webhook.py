"""POST /account/webhooks {"url", "events": [...], "description"?}: a webhook for the caller's
workspace (admin scope); its signing secret is in this answer only."""

from tally import access, bodies, webhooks
from tally.http import api_handler
from tally.validation import parse


@api_handler(auth=access.account("admin"), changes=True)
def handler(request, grant):
    body = parse(bodies.NEW_WEBHOOK, request.json_body())
    return 201, webhooks.create(
        grant.workspace, body["url"], body["events"], body.get("description") or ""
    )
