"""GET /v2/{workspace}/{name}/stats: the counter with its UTC stats buckets."""

from tally import access
from tally.dialects import v2
from tally.http import Request, api_handler


@api_handler
def handler(request: Request):
    workspace, name = v2.target(request)
    return v2.stats_answer(access.readable(request, workspace, name))
