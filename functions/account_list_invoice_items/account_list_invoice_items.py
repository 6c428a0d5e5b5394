"""GET /account/invoice-items[?limit=&cursor=]: invoice items, newest first."""

from tally import access, invoices
from tally.dialects import backstack
from tally.http import Request, api_handler


@api_handler
def handler(request: Request):
    caller = access.account(request, "read")
    limit, cursor = backstack.page_params(request)
    return 200, invoices.page(caller.workspace, limit=limit, cursor=cursor)
