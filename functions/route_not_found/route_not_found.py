"""$default: every request no route took. 405 (with Allow) on a known path, else 404."""

from tally import routes
from tally.http import Request, api_handler


@api_handler
def handler(request: Request):
    raise routes.no_route(request.method, request.path)
