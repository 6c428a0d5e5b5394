"""GET /account/counters/{name}/history?group_by=&from=&to=&tz=: the account's counter in each
bucket (tally.history), JSON or, with Accept: text/csv, CSV."""

from tally import access, clock, history, names
from tally.documents import Document
from tally.http import api_handler


@api_handler(auth=access.account("read"), cache="no-cache")
def handler(request, grant):
    name = names.counter(request.path_params.get("name"))
    kind, data = history.answer(request, grant.workspace, name, clock.now())
    if kind == "csv":
        return 200, Document("text/csv; charset=utf-8", data)
    return 200, {"id": name, **data}
