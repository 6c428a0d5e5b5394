"""GET /v2/{workspace}/{name}/stats: the counter with its UTC stats buckets."""

from tally import access
from tally.dialects import v2
from tally.http import api_handler


@api_handler(auth=access.counter("read"), cache="no-cache")
def handler(request, grant):
    _, name = v2.target(request)
    return v2.stats_answer(access.readable(grant, name))
