"""GET /dashboard and GET /dashboard/{file}: the dashboard's page and its files, to anyone (the
page asks for a key; every call it makes then carries that key)."""

from pathlib import Path

from tally import access, dashboard
from tally.http import api_handler

_HERE = Path(__file__).resolve().parent
# sam build puts the files in a folder beside this module (dashboard/Makefile); in the
# repository they are the folder dashboard/ at its root, built there by `make`.
SITE = dashboard.Site(
    next(p for p in (_HERE / "dashboard", _HERE.parents[1] / "dashboard") if p.is_dir())
)


@dashboard.secured
@api_handler(auth=access.anyone, cache="no-cache")
def handler(request, grant):
    name = request.path_params.get("file", dashboard.PAGE)
    return 200, SITE.file(name, request.headers.get("accept-encoding", ""))
