"""GET /v2/{workspace}/{name}/up/badge.svg[?label=&color=]: count one hit and show the new value
as an SVG badge (allowed as GET /v2/{workspace}/{name}/up is, and rate-limited like it)."""

from tally import access
from tally.dialects import v2
from tally.http import api_handler


@api_handler(auth=access.counter("write"), changes=True, cache=v2.NO_STORE, errors=v2.badge_error)
def handler(request, grant):
    _, name = v2.target(request)
    v2.badge_look(request, name)  # a bad ?label= or ?color= counts nothing
    v2.takes_no_value(request, "up/badge.svg", "adds 1")
    return v2.badge_answer(request, v2.change(grant, name, +1))
