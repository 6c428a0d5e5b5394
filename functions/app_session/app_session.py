"""GET /app/session: the session object, whose account.counters aggregates every counter, and the
key it was asked with (its id and scopes: what the caller may do)."""

from tally import access, counters
from tally.http import api_handler


@api_handler(auth=access.account("read"), cache="no-cache")
def handler(request, grant):
    account = {"id": grant.workspace, "counters": counters.values(grant.workspace)}
    return 200, {"account": account, "key": grant.caller.describe()}
