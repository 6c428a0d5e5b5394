"""GET /account/invoice-items[?limit=&cursor=]: invoice items, newest first."""

from tally import access, invoices
from tally.dialects import backstack
from tally.http import api_handler


@api_handler(auth=access.account("read"), cache="no-cache")
def handler(request, grant):
    limit, cursor = backstack.page_params(request)
    return 200, invoices.page(grant.workspace, limit=limit, cursor=cursor)
