"""GET /v2/{workspace}/{name}/badge.svg[?label=&color=]: the counter as an SVG badge, for READMEs
and pages, where no header can be sent (read as GET /v2/{workspace}/{name}: public counters by
anyone). Refusals are images too."""

from tally import access
from tally.dialects import v2
from tally.http import api_handler


@api_handler(auth=access.counter("read"), cache=v2.NO_STORE, errors=v2.badge_error)
def handler(request, grant):
    _, name = v2.target(request)
    v2.badge_look(request, name)  # a bad ?label= or ?color= is a 400 before anything is read
    return v2.badge_answer(request, access.readable(grant, name))
