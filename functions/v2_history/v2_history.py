"""GET /v2/{workspace}/{name}/history?group_by=hour|day|week|month&from=&to=&tz=: what the
counter did in each bucket (tally.history), JSON or, with Accept: text/csv, CSV."""

from tally import access, clock, history
from tally.dialects import v2
from tally.documents import Document
from tally.http import api_handler


@api_handler(auth=access.counter("read"), cache="no-cache")
def handler(request, grant):
    workspace, name = v2.target(request)
    if not grant.own:  # anyone else reads a public counter's history only
        access.readable(grant, name)
    kind, data = history.answer(request, workspace, name, clock.now())
    if kind == "csv":
        return 200, Document("text/csv; charset=utf-8", data)
    return 200, {"code": "200", "data": {"id": f"{workspace}/{name}", **data}}
