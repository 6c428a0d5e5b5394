"""GET /account/settings: the workspace's settings (admin): its counters' default visibility and
its rate limit."""

from tally import access, workspaces
from tally.errors import NotFound
from tally.http import api_handler


@api_handler(auth=access.account("admin"), cache="no-cache")
def handler(request, grant):
    found = workspaces.get(grant.workspace, fresh=True)  # as it is now, not as cached
    if found is None:
        raise NotFound(f"no workspace '{grant.workspace}'")
    return 200, found.settings()
