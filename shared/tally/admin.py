"""The operator's credential: the admin token that creates workspaces and sets their rate limits.
Locally it comes from the environment (TALLY_ADMIN_TOKEN); deployed, from an SSM SecureString,
cached for CACHE_SECONDS (a rotated token is taken within that)."""

from __future__ import annotations

import hmac

from tally.config import settings
from tally.errors import Unauthorized, Unavailable
from tally.telemetry import logger

CACHE_SECONDS = 300  # a warm container reads the SSM parameter again after this


def _token() -> str:
    cfg = settings()
    if cfg.admin_token is not None:
        return cfg.admin_token
    if cfg.admin_token_parameter:
        # Imported here: only the admin functions pay for Powertools Parameters at cold start.
        from aws_lambda_powertools.utilities.parameters import get_parameter
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            return str(
                get_parameter(cfg.admin_token_parameter, decrypt=True, max_age=CACHE_SECONDS)
            )
        except GetParameterError as err:  # not stored yet, most often: the deploy guide's order
            logger.warning(
                "the admin token parameter cannot be read",
                extra={"parameter": cfg.admin_token_parameter, "error": repr(err)[:300]},
            )
            raise Unavailable(
                "the admin token is not set up: the operator must store it as the SSM "
                "SecureString that the stack's AdminTokenParameterName names",
                retry_after=60,
            ) from None
    raise Unavailable(
        "the admin token is not set up: set TALLY_ADMIN_TOKEN, or TALLY_ADMIN_TOKEN_PARAMETER "
        "to the SSM parameter that holds it",
        retry_after=60,
    )


def is_admin_token(token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(token.encode(), _token().encode())


def check_admin_token(token: str | None, key_workspace: str | None = None) -> None:
    """/admin routes: the bearer must be the operator's admin token. `key_workspace`: the
    workspace of the API key the bearer is, when it is one."""
    if is_admin_token(token):
        return
    if key_workspace is not None:
        raise Unauthorized(
            f"this is an API key of workspace '{key_workspace}'; /admin routes take the "
            "operator's admin token, not a workspace key"
        )
    if token is None:
        raise Unauthorized(
            "the operator's admin token is required: send it as Authorization: Bearer <token>"
        )
    raise Unauthorized("this is not the operator's admin token")
