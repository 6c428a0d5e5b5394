"""What the benchmarks share: the Lambda environment of template.yaml and an in-process API
(the local gateway over moto, or over another endpoint such as DynamoDB Local), as the tests
build them."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # scripts run from anywhere

ADMIN = "bench-admin-token"


def lambda_environment() -> None:
    from tally_local.template import Template

    os.environ.update(Template().environment())
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        TALLY_ADMIN_TOKEN=ADMIN,
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="ERROR",
    )
    os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)


@contextlib.contextmanager
def in_process_api(endpoint: str | None = None):
    """An HTTP client over the local gateway and moto (or the DynamoDB at `endpoint`, its tables
    emptied first): (call, dynamodb client)."""
    import boto3
    from moto import mock_aws
    from werkzeug.test import Client

    from tally import aws, config
    from tally_local import dynamodb
    from tally_local.gateway import Gateway
    from tally_local.template import Template

    lambda_environment()
    if endpoint:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    config.settings.cache_clear()
    aws.dynamodb.cache_clear()
    with contextlib.nullcontext() if endpoint else mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint)
        if endpoint:
            dynamodb.reset_tables(client, Template())
        else:
            dynamodb.ensure_tables(client, Template())
        http = Client(Gateway(Template(), log=open(os.devnull, "w")))  # noqa: SIM115

        def call(
            method: str, path: str, key: str | None = None, body: Any = None, headers=None
        ) -> Any:
            """(status, the JSON answer, or the text of any other, or None when empty)."""
            sent = {**({"Authorization": f"Bearer {key}"} if key else {}), **(headers or {})}
            data = json.dumps(body) if body is not None else None
            answer = http.open(path, method=method, headers=sent, data=data)
            call.headers = dict(answer.headers)  # the last answer's, for who needs them
            text = answer.get_data(as_text=True)
            if text and answer.mimetype == "application/json":
                return answer.status_code, json.loads(text)
            return answer.status_code, text or None

        yield call, client
