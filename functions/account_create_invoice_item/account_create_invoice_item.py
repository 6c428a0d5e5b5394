"""POST /account/invoice-items {"amount": cents, "description": "..."}: add an invoice item."""

from tally import access, invoices
from tally.http import Request, api_handler
from tally.validation import parse


@api_handler
def handler(request: Request):
    caller = access.account(request, "write")
    item = parse(invoices.NewItem, request.json_body())
    return 201, invoices.create(caller.workspace, item)
