"""GET /app/session: the session object, whose account.counters aggregates every counter."""

from tally import access, counters
from tally.http import api_handler


@api_handler(auth=access.account("read"), cache="no-cache")
def handler(request, grant):
    account = {"id": grant.workspace, "counters": counters.values(grant.workspace)}
    return 200, {"account": account}
