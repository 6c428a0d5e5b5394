"""GET /v2/{workspace}/{name}/shield.json[?label=&color=]: the counter in the shields.io endpoint
schema (https://img.shields.io/endpoint?url=...), read as GET /v2/{workspace}/{name} is."""

from tally import access
from tally.dialects import v2
from tally.http import api_handler


@api_handler(auth=access.counter("read"), cache=v2.NO_STORE)
def handler(request, grant):
    _, name = v2.target(request)
    v2.badge_look(request, name)  # a bad ?label= or ?color= is a 400 before anything is read
    return v2.shield_answer(request, access.readable(grant, name))
