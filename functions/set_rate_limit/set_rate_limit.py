"""PUT /admin/workspaces/{workspace}/rate-limit {"quota": 1200, "window": 60}: an operator (admin
token) sets a workspace's limit per caller and path. The default is 600 requests per 60 s."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from tally import keys, names, rate_limit
from tally.http import Request, api_handler
from tally.validation import parse


class RateLimitChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quota: Annotated[StrictInt, Field(ge=1, le=1_000_000)]
    window: Annotated[StrictInt, Field(ge=1, le=86_400)]


@api_handler(changes=True)
def handler(request: Request):
    keys.check_admin_token(request.bearer)
    workspace = names.workspace(request.path_params.get("workspace"))
    change = parse(RateLimitChange, request.json_body())
    policy = rate_limit.set_policy(workspace, change.quota, change.window)
    return 200, {"workspace": workspace, "quota": policy.quota, "window": policy.window}
