"""POST /account/invoice-items {"amount": cents, "description": "..."}: add an invoice item."""

from tally import access, bodies, invoices
from tally.http import api_handler
from tally.validation import parse


@api_handler(auth=access.account("write"), changes=True)
def handler(request, grant):
    item = parse(bodies.NEW_INVOICE_ITEM, request.json_body())
    return 201, invoices.create(grant.workspace, item["amount"], item["description"])
