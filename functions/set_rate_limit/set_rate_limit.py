"""PUT /admin/workspaces/{workspace}/rate-limit {"quota": 1200, "window": 60}: an operator (admin
token) sets a workspace's limit per caller and path. The default is 600 requests per 60 s."""

from tally import access, bodies, names, rate_limit
from tally.http import api_handler
from tally.validation import parse


@api_handler(auth=access.operator, changes=True)
def handler(request, _grant):
    workspace = names.workspace(request.path_params.get("workspace"))
    change = parse(bodies.RATE_LIMIT_CHANGE, request.json_body())
    policy = rate_limit.set_policy(workspace, change["quota"], change["window"])
    return 200, {"workspace": workspace, "quota": policy.quota, "window": policy.window}
