"""GET /account/counters: every counter of the key's account and its value."""

from tally import access, counters
from tally.http import Request, api_handler


@api_handler
def handler(request: Request):
    caller = access.account(request, "read")
    return 200, {"counters": counters.values(caller.workspace)}
