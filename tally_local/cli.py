"""`tally serve` and `tally invoke`: template.yaml run locally, without Docker.

tally serve                        every HttpApi route on http://127.0.0.1:3000, DynamoDB on :8000
tally serve --dynamodb dynamodb-local   the same on AWS's DynamoDB Local (Java 17) instead of moto
tally serve --state DIR            keep the tables in DIR across restarts (else: in memory)
tally invoke <LogicalId> [-e F]    one function once, like `sam local invoke`, against the
                                   running tally serve (found by its file in .tally/)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from tally_local import dynamodb, ports, runfile
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


# Stack parameters a developer may set for tally serve in its environment (the template's
# default otherwise), as `sam deploy --parameter-overrides` sets them deployed.
OVERRIDABLE = ("TALLY_SHARDS_GROW",)


def _environment(template: Template, endpoint: str, bus: Any = None) -> None:
    """What Lambda would give the functions, pointed at the chosen DynamoDB endpoint and bus."""
    keep = {k: os.environ[k] for k in (*LOCAL_ENVIRONMENT, *OVERRIDABLE) if k in os.environ}
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
    from tally import aws
    from tally_local import gateway_log
    from tally_local.gateway import DynamoDBCalls, Gateway
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
    try:  # the API's port first: a port in use is said before anything slow starts
        listening = ports.listen(args.host, args.port)
    except ports.InUse as err:
        print(
            f"tally serve: {err}: choose another with --port N (make serve PORT=N)", file=sys.stderr
        )
        return 1
    try:
        embedded, endpoint, state = _start_dynamodb(args, endpoint)
    except _CannotStart as err:
        listening.close()
        print(f"tally serve: {err}", file=sys.stderr)
        return 1
    backend, throttle = endpoint, None
    if args.throttle_item_wcu:
        from tally_local.throttle import ThrottleProcess

        # Every call of tally serve (handlers, stream pollers, table setup) goes through it.
        throttle = ThrottleProcess(backend, args.throttle_item_wcu, args.host)
        endpoint = throttle.start()
    bus = Bus([fn for fn in template.functions.values() if fn.rules], call).start(args.host)
    _environment(template, endpoint, bus)
    # One line per request: EMF metric lines only when asked (POWERTOOLS_METRICS_DISABLED=false),
    # and no sampled "invocation" lines (the line tally serve writes says the same).
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.pop("TALLY_LOG_SAMPLE_RATE", None)
    created = dynamodb.ensure_tables(dynamodb.client(endpoint), template)
    # A DynamoDB tally serve started (fresh, or from --state), or another whose tables were just
    # made, has the demo workspace: made now unless it was there.
    demo = bool(embedded or created)
    if demo:
        seed_demo(dynamodb.client(endpoint))
    for fn in template.functions.values():
        fn.load()  # import every handler now: errors surface at start, not on first request
    # Each request's line says how many DynamoDB calls its function made (the functions' one
    # client: tally.aws.dynamodb, made here with the environment just set).
    gateway = Gateway(template, calls=DynamoDBCalls().watch(aws.dynamodb()))
    server = gateway_log.PooledWSGIServer(
        args.host, args.port, gateway, handler=gateway_log.BoundedHandler, fd=listening.fileno()
    )
    listening.close()  # the server holds its own copy
    scheduler = Scheduler(
        [fn for fn in template.functions.values() if fn.schedules], args.schedule_interval
    )
    scheduler.start()
    streams = Streams([fn for fn in template.functions.values() if fn.streams], endpoint)
    streams.start()
    routes = [r for r in template.routes() if r.path != "$default"]
    url = f"http://{args.host}:{server.port}"
    running = runfile.Serve(os.getpid(), url, server.port, endpoint)
    try:
        runfile.write(running)
    except OSError as err:  # tally invoke then needs --dynamodb-port; serving goes on
        print(f"tally serve: cannot write {running.path} ({err.strerror})", file=sys.stderr)
    print(
        f"tally serve: {url} "
        f"({len(routes)} routes + $default, {len(template.functions)} functions)\n"
        f"  DynamoDB: {backend}"
        + (
            " (embedded moto, every call atomic)"
            if isinstance(embedded, dynamodb.EmbeddedDynamoDB)
            else " (DynamoDB Local, started by tally serve)"
            if embedded
            else " (AWS_ENDPOINT_URL_DYNAMODB)"
        )
        + "\n"
        + (
            f"  throttled: the functions call {endpoint}, a proxy in front of it that lets each "
            f"item take {args.throttle_item_wcu:g} write units a second "
            "(ProvisionedThroughputExceededException past it)\n"
            if throttle
            else ""
        )
        + f"  state: {state}\n"
        + (
            f"  admin token: {DEFAULT_ADMIN_TOKEN} (set TALLY_ADMIN_TOKEN to change it)\n"
            if os.environ["TALLY_ADMIN_TOKEN"] == DEFAULT_ADMIN_TOKEN
            else "  admin token: from TALLY_ADMIN_TOKEN\n"
        )
        + (f"  demo workspace key: {DEMO_KEY}\n" if demo else "")
        + (f"  schedules: {scheduler.describe()}\n" if scheduler.plan else "")
        + (f"  streams: {streams.describe()}\n" if streams.pollers else "")
        + (f"  event bus: {bus.endpoint} (one 'event' line per event)\n" if bus.rules else "")
        + f"  dashboard: {url}/dashboard\n"
        + f"  docs: {url}/docs (Swagger UI), {url}/openapi.json\n"
        + f"  ready in {time.perf_counter() - started:.2f}s",
        file=sys.stderr,
        flush=True,
    )
    # SIGTERM (kill, a test's terminate) stops it as Ctrl-C does: cleanly, run file removed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        runfile.remove(running)
        scheduler.stop()
        streams.stop()  # before the endpoint it reads
        bus.stop()
        server.server_close()
        if throttle:
            throttle.stop()
        if embedded:
            embedded.stop()
    return 0


class _CannotStart(Exception):
    """The DynamoDB tally serve was asked for cannot start; the message says why, in one line."""


def _start_dynamodb(args: argparse.Namespace, endpoint: str | None) -> tuple[Any, str, str]:
    """(what tally serve started, or None; its endpoint; where its state lives, for the banner)."""
    in_memory = (
        "in memory: gone when tally serve stops, with the keys it made "
        "(--state DIR keeps it: make serve STATE=DIR)"
    )
    state_dir = Path(args.state).resolve() if args.state else None
    held: tuple[int, ...] = ()
    if state_dir:
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise _CannotStart(f"--state {args.state}: {err.strerror}") from err
        held = (_hold(state_dir),)
    if args.dynamodb_port is not None and not ports.available(args.host, args.dynamodb_port):
        raise _CannotStart(
            f"--dynamodb-port {args.dynamodb_port} is in use: choose another "
            "(make serve DYNAMODB_PORT=N), or leave it out for a free one"
        )
    if endpoint:
        return None, endpoint, "kept by the DynamoDB at AWS_ENDPOINT_URL_DYNAMODB"
    if args.dynamodb == "dynamodb-local":
        from tally_local.dynamodb_local import DynamoDBLocal

        try:
            local = DynamoDBLocal(
                host=args.host, port=args.dynamodb_port or 0, db_path=state_dir, keep_fds=held
            )
            endpoint = local.start()
        except DynamoDBLocal.Unavailable as err:
            raise _CannotStart(f"DynamoDB Local cannot run here: {err}") from err
        kept = f"{state_dir}/shared-local-instance.db (DynamoDB Local's -dbPath)"
        return local, endpoint, kept if state_dir else in_memory
    from tally_local.moto_state import FILE_NAME, SAVE_EVERY_S

    port = args.dynamodb_port
    if port is None:  # the usual 8000, or a free port when something else has it
        port = dynamodb.DEFAULT_PORT if ports.available(args.host, dynamodb.DEFAULT_PORT) else 0
    state_file = state_dir / FILE_NAME if state_dir else None
    try:
        embedded = dynamodb.EmbeddedDynamoDB(
            args.host, port, state=state_file, keep_fds=held
        ).start()
    except ports.InUse as err:
        raise _CannotStart(f"{err}: choose another --dynamodb-port") from err
    except ValueError as err:  # an unreadable state file
        raise _CannotStart(f"--state {args.state}: {err}") from err
    kept = f"{state_file} (saved within {SAVE_EVERY_S:g} s of a change, and at stop)"
    return embedded, embedded.endpoint, kept if state_file else in_memory


STATE_WAIT_S = 15  # for the DynamoDB of a tally serve that stopped to finish with --state DIR


def _hold(state_dir: Path) -> int:
    """An exclusive lock on DIR/.lock, held by tally serve and by the DynamoDB it starts (the
    descriptor is passed on), so it is free only once both are gone, the last save of a killed
    serve's endpoint included. A second tally serve on DIR waits for that, or is refused."""
    import fcntl

    fd = os.open(state_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + STATE_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise _CannotStart(
                    f"--state {state_dir} is in use by another tally serve: stop it, or choose "
                    "another directory"
                ) from None
            time.sleep(0.1)


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
    if named and args.state:
        return named, (
            f"--state keeps the state of a DynamoDB tally serve starts, but "
            f"AWS_ENDPOINT_URL_DYNAMODB={named} names one that keeps its own: give one"
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
    try:
        event = _read_event(args.event)
    except _BadEvent as err:
        print(f"tally invoke: {err}", file=sys.stderr)
        return 2
    endpoint, problem = _invoke_endpoint(args)
    if problem:
        print(f"tally invoke: {problem}", file=sys.stderr)
        return 1
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


def _invoke_endpoint(args: argparse.Namespace) -> tuple[str, str | None]:
    """The DynamoDB tally invoke uses: AWS_ENDPOINT_URL_DYNAMODB, --dynamodb-port, or the running
    tally serve's (--port names one of several); else why there is none."""
    named = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    flag = "--dynamodb-port" if args.dynamodb_port is not None else "--port" if args.port else None
    if named and flag:
        return "", f"{flag} and AWS_ENDPOINT_URL_DYNAMODB={named} both name the DynamoDB: give one"
    if named:
        return named, None
    if args.dynamodb_port is not None:
        return f"http://127.0.0.1:{args.dynamodb_port}", None
    running, stale = runfile.find()
    for serve in stale:
        print(
            f"tally invoke: the tally serve of {serve.url} (pid {serve.pid}) is gone: "
            f"its file {serve.path} is removed",
            file=sys.stderr,
        )
    chosen = [serve for serve in running if args.port in (None, serve.port)]
    if len(chosen) == 1:
        return chosen[0].dynamodb, None
    if chosen:
        urls = ", ".join(serve.url for serve in chosen)
        return "", f"{len(chosen)} tally serves are running ({urls}): name one with --port N"
    where = f" on port {args.port}" if args.port else ""
    return "", (
        f"no tally serve is running{where} (looked in {runfile.directory()}): start one in "
        "another terminal (make serve), or name a DynamoDB with --dynamodb-port N or "
        "AWS_ENDPOINT_URL_DYNAMODB"
    )


class _BadEvent(Exception):
    """The -e event cannot be used; the message says why, in one line."""


def _read_event(path: str | None) -> Any:
    if path is None:
        return {}
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as err:
        raise _BadEvent(f"cannot read the event {path}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise _BadEvent(f"the event {path} is not UTF-8 text") from err
    try:
        return json.loads(text)
    except ValueError as err:
        where = "stdin" if path == "-" else path
        raise _BadEvent(f"the event in {where} is not JSON: {err}") from err


def _rate(text: str) -> float:
    """A --throttle-item-wcu: a positive number of write units a second (0 would refuse every
    write)."""
    try:
        rate = float(text)
    except ValueError:
        rate = 0.0
    if not rate > 0 or rate == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of write units")
    return rate


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
        help="its port (default: 8000 for moto, or a free one if 8000 is taken; a free one for "
        "DynamoDB Local)",
    )
    p_serve.add_argument(
        "--state",
        metavar="DIR",
        help="keep the tables in DIR across restarts (moto: DIR/moto-state.json, saved within "
        "1 s of a change; DynamoDB Local: its -dbPath). Without it state is in memory and gone "
        "when tally serve stops",
    )
    p_serve.add_argument(
        "--schedule-interval",
        type=_seconds,
        metavar="SECONDS",
        help="fire every Schedule event this often instead of the template's rate",
    )
    p_serve.add_argument(
        "--throttle-item-wcu",
        type=_rate,
        metavar="UNITS",
        help="put a throttling proxy in front of the DynamoDB: each item takes at most UNITS "
        "write units a second (DynamoDB's partition limit is 1,000), and past it calls answer "
        "ProvisionedThroughputExceededException as DynamoDB does (tally_local/throttle.py)",
    )
    p_serve.set_defaults(run=serve)
    p_invoke = sub.add_parser("invoke", help="run one function once, like `sam local invoke`")
    p_invoke.add_argument("logical_id", help="the function's logical id in template.yaml")
    p_invoke.add_argument("-e", "--event", help="event JSON file ('-' for stdin)")
    p_invoke.add_argument(
        "--port",
        type=int,
        help="the HTTP port of the tally serve to use, when several run (default: the one "
        "running, found by the file each writes in .tally/, or $TALLY_RUN_DIR)",
    )
    p_invoke.add_argument(
        "--dynamodb-port",
        type=int,
        help="a DynamoDB on 127.0.0.1 at this port instead (AWS_ENDPOINT_URL_DYNAMODB names "
        "any other)",
    )
    p_invoke.set_defaults(run=invoke)
    args = parser.parse_args(argv)
    if args.command == "serve":
        args.dynamodb_given = args.dynamodb is not None
        args.dynamodb = args.dynamodb or "moto"
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
