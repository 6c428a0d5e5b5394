"""$default: every request no route took. 405 (with Allow) on a known path, else 404."""

from tally import access, routes
from tally.http import api_handler


@api_handler(auth=access.anyone)
def handler(request, _grant):
    raise routes.no_route(request.method, request.path)
