"""The operator's credential: the admin token that creates workspaces and sets their rate limits.
Locally it comes from the environment (TALLY_ADMIN_TOKEN); deployed, from an SSM SecureString,
cached for five minutes (a rotated token is taken within that)."""

from __future__ import annotations

import hmac

from tally.config import settings
from tally.errors import Unauthorized, Unavailable


def _token() -> str:
    cfg = settings()
    if cfg.admin_token is not None:
        return cfg.admin_token
    if cfg.admin_token_parameter:
        # Imported here: only the admin functions pay for Powertools Parameters at cold start.
        from aws_lambda_powertools.utilities.parameters import get_parameter

        return str(get_parameter(cfg.admin_token_parameter, decrypt=True, max_age=300))
    raise Unavailable("the admin token is not configured", retry_after=60)


def is_admin_token(token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(token.encode(), _token().encode())


def check_admin_token(token: str | None) -> None:
    """/admin routes: the bearer must be the operator's admin token."""
    if not is_admin_token(token):
        raise Unauthorized("the admin token is required")
