"""`tally serve` and `tally invoke`: template.yaml run locally, without Docker.

tally serve                        every HttpApi route on http://127.0.0.1:3000, DynamoDB on :8000
tally serve --dynamodb dynamodb-local   the same on AWS's DynamoDB Local (Java 17) instead of moto
tally invoke <LogicalId> [-e F]    one function once, like `sam local invoke`
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from tally_local import dynamodb
from tally_local.bus import Bus
from tally_local.demo import DEMO_KEY, seed_demo
from tally_local.schedule import Scheduler
from tally_local.streams import Streams
from tally_local.template import REGION, Template

DEFAULT_ADMIN_TOKEN = "local-admin-token"
# What differs from a deployed stack: the webhook signing key from the environment (not Secrets
# Manager), webhooks to this machine allowed, and no dead-letter queue (a delivery that failed
# for good is a WARNING line of the log instead).
LOCAL_ENVIRONMENT = {
    "TALLY_WEBHOOK_SIGNING_KEY": "local-webhook-signing-key",
    "TALLY_WEBHOOK_URLS": "loopback-http",
    "TALLY_WEBHOOK_DEAD_LETTER_QUEUE": "",
}


def local_environment(template: Template) -> dict[str, str]:
    """Every function's environment as tally serve gives it (tests use the same)."""
    return {**template.environment(), **LOCAL_ENVIRONMENT}


def _environment(template: Template, endpoint: str, bus: Any = None) -> None:
    """What Lambda would give the functions, pointed at the chosen DynamoDB endpoint and bus."""
    keep = {k: os.environ[k] for k in LOCAL_ENVIRONMENT if k in os.environ}
    os.environ.update({**local_environment(template), **keep})
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    if bus is not None:
        os.environ["AWS_ENDPOINT_URL_EVENTBRIDGE"] = bus.endpoint
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("TALLY_ADMIN_TOKEN", DEFAULT_ADMIN_TOKEN)


def serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    from tally_local import gateway_log
    from tally_local.gateway import Gateway
    from tally_local.gateway import invoke as call

    started = time.perf_counter()
    # tally serve writes one bounded line per request itself: werkzeug's own request lines off
    # (not only as a side effect of starting the embedded endpoint, which also sets this).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    template = Template()
    endpoint, problem = _endpoint_choice(args)
    if problem:
        print(f"tally serve: {problem}", file=sys.stderr)
        return 2
    embedded: Any = None
    if args.dynamodb == "dynamodb-local":
        from tally_local.dynamodb_local import DynamoDBLocal

        try:
            embedded = DynamoDBLocal(host=args.host, port=args.dynamodb_port or 0)
            endpoint = embedded.start()
        except DynamoDBLocal.Unavailable as err:
            print(f"tally serve: DynamoDB Local cannot run here: {err}", file=sys.stderr)
            return 1
    elif not endpoint:
        embedded = dynamodb.EmbeddedDynamoDB(args.host, args.dynamodb_port or 8000).start()
        endpoint = embedded.endpoint
    bus = Bus([fn for fn in template.functions.values() if fn.rules], call).start(args.host)
    _environment(template, endpoint, bus)
    # One line per request: EMF metric lines only when asked (POWERTOOLS_METRICS_DISABLED=false),
    # and no sampled "invocation" lines (the line tally serve writes says the same).
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.pop("TALLY_LOG_SAMPLE_RATE", None)
    created = dynamodb.ensure_tables(dynamodb.client(endpoint), template)
    # A fresh endpoint (the embedded one, or another whose tables were just made) gets the demo.
    demo = bool(embedded or created) and seed_demo(dynamodb.client(endpoint))
    for fn in template.functions.values():
        fn.load()  # import every handler now: errors surface at start, not on first request
    gateway = Gateway(template)
    server = make_server(
        args.host, args.port, gateway, threaded=True, request_handler=gateway_log.BoundedHandler
    )
    scheduler = Scheduler(
        [fn for fn in template.functions.values() if fn.schedules], args.schedule_interval
    )
    scheduler.start()
    streams = Streams([fn for fn in template.functions.values() if fn.streams], endpoint)
    streams.start()
    routes = [r for r in template.routes() if r.path != "$default"]
    print(
        f"tally serve: http://{args.host}:{server.server_port} "
        f"({len(routes)} routes + $default, {len(template.functions)} functions)\n"
        f"  DynamoDB: {endpoint}"
        + (
            " (embedded moto, every call atomic)"
            if isinstance(embedded, dynamodb.EmbeddedDynamoDB)
            else " (DynamoDB Local, started by tally serve)"
            if embedded
            else " (AWS_ENDPOINT_URL_DYNAMODB)"
        )
        + "\n"
        + (
            f"  admin token: {DEFAULT_ADMIN_TOKEN} (set TALLY_ADMIN_TOKEN to change it)\n"
            if os.environ["TALLY_ADMIN_TOKEN"] == DEFAULT_ADMIN_TOKEN
            else "  admin token: from TALLY_ADMIN_TOKEN\n"
        )
        + (f"  demo workspace key: {DEMO_KEY}\n" if demo else "")
        + (f"  schedules: {scheduler.describe()}\n" if scheduler.plan else "")
        + (f"  streams: {streams.describe()}\n" if streams.pollers else "")
        + (f"  event bus: {bus.endpoint} (one 'event' line per event)\n" if bus.rules else "")
        + f"  ready in {time.perf_counter() - started:.2f}s",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.stop()
        streams.stop()  # before the endpoint it reads
        bus.stop()
        server.server_close()
        if embedded:
            embedded.stop()
    return 0


def _endpoint_choice(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(AWS_ENDPOINT_URL_DYNAMODB if set, the reason the flags and the environment disagree)."""
    named = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    if named and args.dynamodb_port is not None:
        return named, (
            f"--dynamodb-port {args.dynamodb_port} and AWS_ENDPOINT_URL_DYNAMODB={named} both name "
            "the DynamoDB to use: give one (unset the variable to run an embedded one)"
        )
    if named and args.dynamodb_given:
        return named, (
            f"--dynamodb {args.dynamodb} starts a DynamoDB, but AWS_ENDPOINT_URL_DYNAMODB={named} "
            "names one already running: give one"
        )
    return named, None


def invoke(args: argparse.Namespace) -> int:
    from tally_local.gateway import invoke as call

    template = Template()
    fn = template.functions.get(args.logical_id)
    if fn is None:
        names = ", ".join(sorted(template.functions))
        print(
            f"tally invoke: no function {args.logical_id!r} in template.yaml ({names})",
            file=sys.stderr,
        )
        return 2
    endpoint = (
        os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or f"http://127.0.0.1:{args.dynamodb_port}"
    )
    ddb = dynamodb.client(endpoint)
    try:
        dynamodb.ensure_tables(ddb, template)
    except Exception as err:
        print(
            f"tally invoke: no DynamoDB at {endpoint} ({type(err).__name__}). Start `tally serve` "
            "in another terminal, or set AWS_ENDPOINT_URL_DYNAMODB.",
            file=sys.stderr,
        )
        return 1
    event = _read_event(args.event)
    # Events the function publishes go to the template's rules, as under tally serve.
    bus = Bus([f for f in template.functions.values() if f.rules], call, log=sys.stderr).start()
    _environment(template, endpoint, bus)
    # As sam local invoke does: the function's logs and metrics to stderr, its result to stdout.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            result = call(fn, event)
        finally:
            bus.stop()  # after what the function published was delivered
    print(json.dumps(result, indent=2))
    return 0


def _read_event(path: str | None) -> Any:
    if path is None:
        return {}
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    return json.loads(text)


def _seconds(text: str) -> float:
    """A --schedule-interval: a positive number of seconds (0 or less would never, or always, fire)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tally", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="serve every route of template.yaml locally")
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=3000)
    p_serve.add_argument(
        "--dynamodb",
        choices=["moto", "dynamodb-local"],
        help="the DynamoDB tally serve starts: moto (default: pure Python, nothing to install) or "
        "dynamodb-local (AWS's DynamoDB Local: Java 17 and `make dynamodb-local`)",
    )
    p_serve.add_argument(
        "--dynamodb-port",
        type=int,
        help="its port (default 8000 for moto, a free one for DynamoDB Local)",
    )
    p_serve.add_argument(
        "--schedule-interval",
        type=_seconds,
        metavar="SECONDS",
        help="fire every Schedule event this often instead of the template's rate",
    )
    p_serve.set_defaults(run=serve)
    p_invoke = sub.add_parser("invoke", help="run one function once, like `sam local invoke`")
    p_invoke.add_argument("logical_id", help="the function's logical id in template.yaml")
    p_invoke.add_argument("-e", "--event", help="event JSON file ('-' for stdin)")
    p_invoke.add_argument(
        "--dynamodb-port",
        type=int,
        default=8000,
        help="the embedded endpoint of a running `tally serve`",
    )
    p_invoke.set_defaults(run=invoke)
    args = parser.parse_args(argv)
    if args.command == "serve":
        args.dynamodb_given = args.dynamodb is not None
        args.dynamodb = args.dynamodb or "moto"
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
