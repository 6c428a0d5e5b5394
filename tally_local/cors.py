"""The HTTP API's CORS configuration (template.yaml, TallyApi.CorsConfiguration), applied as API
Gateway applies it: a preflight (OPTIONS with Origin and Access-Control-Request-Method) is
answered by the gateway without calling any function, and every other answer to a request with
an allowed Origin gets the configured headers, whatever the function returned (CORS headers from
a function are dropped, as API Gateway ignores them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response


@dataclass(frozen=True)
class Cors:
    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Cors:
        def names(key: str) -> tuple[str, ...]:
            value = config.get(key) or ()
            if isinstance(value, str):  # a CommaDelimitedList parameter, resolved to its text
                value = value.split(",")
            return tuple(str(v).strip() for v in value if str(v).strip())

        max_age = config.get("MaxAge")
        return cls(
            allow_origins=names("AllowOrigins"),
            allow_methods=names("AllowMethods"),
            allow_headers=names("AllowHeaders"),
            expose_headers=names("ExposeHeaders"),
            max_age=int(max_age) if max_age is not None else None,
            allow_credentials=str(config.get("AllowCredentials", False)).lower() == "true",
        )

    def allows(self, origin: str) -> bool:
        """`*`, an exact origin, or a scheme wildcard (`https://*`), as API Gateway reads them."""
        for allowed in self.allow_origins:
            if allowed == "*" or allowed == origin:
                return True
            if allowed.endswith("://*") and origin.startswith(allowed[:-1]):
                return True
        return False

    @staticmethod
    def is_preflight(request: Request) -> bool:
        return (
            request.method == "OPTIONS"
            and "Origin" in request.headers
            and "Access-Control-Request-Method" in request.headers
        )

    def preflight(self, request: Request) -> Response:
        """The gateway's own answer to a preflight: 204, with the headers when the origin is
        allowed and none otherwise (the browser then refuses the real request)."""
        response = Response(status=204)
        del response.headers["Content-Type"]
        origin = request.headers["Origin"]
        if self.allows(origin):
            headers = self._origin_headers(origin)
            if self.allow_methods:
                headers["Access-Control-Allow-Methods"] = ",".join(self.allow_methods)
            if self.allow_headers:
                headers["Access-Control-Allow-Headers"] = ",".join(self.allow_headers)
            if self.max_age is not None:
                headers["Access-Control-Max-Age"] = str(self.max_age)
            response.headers.update(headers)
        return response

    def apply(self, request: Request, response: Response) -> Response:
        """Every answer: the function's CORS headers dropped, the configured ones added."""
        for name in {n for n, _ in response.headers.items() if n.lower().startswith("access-")}:
            del response.headers[name]
        origin = request.headers.get("Origin")
        if origin and self.allows(origin):
            response.headers.update(self._origin_headers(origin))
            if self.expose_headers:
                response.headers["Access-Control-Expose-Headers"] = ",".join(self.expose_headers)
        return response

    def _origin_headers(self, origin: str) -> dict[str, str]:
        if "*" in self.allow_origins and not self.allow_credentials:
            return {"Access-Control-Allow-Origin": "*"}
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if self.allow_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers
