"""GET /app/session: the session object, whose account.counters aggregates every counter."""

from tally import access, counters
from tally.http import Request, api_handler


@api_handler
def handler(request: Request):
    caller = access.account(request, "read")
    account = {"id": caller.workspace, "counters": counters.values(caller.workspace)}
    return 200, {"account": account}
