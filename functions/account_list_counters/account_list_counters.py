"""GET /account/counters: every counter of the key's account and its value."""

from tally import access, counters
from tally.http import api_handler


@api_handler(auth=access.account("read"), cache="no-cache")
def handler(request, grant):
    return 200, {"counters": counters.values(grant.workspace)}
