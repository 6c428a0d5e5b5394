"""POST /account/invoice-items {"amount": cents, "description": "..."}: add an invoice item."""

from tally import access, invoices, requests
from tally.http import Request, api_handler
from tally.validation import parse


@api_handler(changes=True)
def handler(request: Request):
    caller = access.account(request, "write")
    item = parse(requests.NEW_INVOICE_ITEM, request.json_body())
    # With an Idempotency-Key the item's id is the operation's, so it can only be created once.
    item_id = f"ivi_{request.operation}" if request.operation else None
    return 201, invoices.create(
        caller.workspace, item["amount"], item["description"], item_id=item_id
    )
