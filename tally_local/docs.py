"""The API description, served by `tally serve` beside the routes: the OpenAPI document at
/openapi.json and Swagger UI at /docs, its assets from the swagger-ui-bundle package (no CDN).

Local tooling, like the rest of tally_local: template.yaml does not know these paths and they are
never deployed."""

from __future__ import annotations

import json
import mimetypes
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from werkzeug.security import safe_join
from werkzeug.wrappers import Request, Response

from tally_local.template import ROOT

OPENAPI = ROOT / "openapi.yaml"
ASSETS = "/docs/"

# validatorUrl: null keeps Swagger UI from sending the document to its online validator.
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>tally API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
    });
  </script>
</body>
</html>
"""


def document(path: Path = OPENAPI) -> dict[str, Any]:
    """openapi.yaml as a dict; read on every call, so an edit shows without a restart."""
    return yaml.safe_load(path.read_text())


@lru_cache(maxsize=1)
def _assets() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


def served(request: Request) -> dict[str, Any]:
    """The document as this tally serve gives it: its first server is the address the request
    came to (so Swagger UI's "Try it out" calls this serve, whatever its --port), then the
    document's servers that are not local (a deployed stack's)."""
    doc = document()
    here = {"url": request.host_url.rstrip("/"), "description": "this tally serve"}
    deployed = [s for s in doc.get("servers", []) if s.get("url", "").startswith("https://")]
    doc["servers"] = [here, *deployed]
    return doc


def answer(request: Request) -> Response | None:
    """The answer for /openapi.json, /docs and its assets; None for every other request."""
    if request.method not in ("GET", "HEAD"):
        return None
    path = request.path
    if path == "/openapi.json":
        return Response(json.dumps(served(request)), 200, content_type="application/json")
    if path in ("/docs", "/docs/"):
        return Response(PAGE, 200, content_type="text/html; charset=utf-8")
    if path.startswith(ASSETS):
        found = safe_join(str(_assets()), path[len(ASSETS) :])  # None for ../ and the like
        if found is None or not Path(found).is_file():
            return None
        kind = mimetypes.guess_type(found)[0] or "application/octet-stream"
        return Response(Path(found).read_bytes(), 200, content_type=kind)
    return None
