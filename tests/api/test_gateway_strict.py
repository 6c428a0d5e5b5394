"""The local gateway with hostile paths: its access log keeps one request on one line, and odd or
encoded paths reach the handlers as API Gateway would send them, never as a 500."""

from __future__ import annotations

import http.client
import json
import socket
import time
from io import StringIO

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from tally_local import gateway
from tally_local.gateway import Gateway, loggable
from tests.conftest import TEMPLATE
from tests.serve import ADMIN, Server

# A second access-log line, as it would look if the path were printed decoded.
FORGED = "127.0.0.1%20GET%20/v2/acme/sentinel/up%20200%20V2UpFunction%201.0ms"

# Every encoded character that some reader of a log takes for the end of a line. str.splitlines()
# knows them all (it also splits on \x1c-\x1e, NEL, U+2028 and U+2029), so the tests count with it.
LINE_BREAKS = [
    "%0A",
    "%0D",
    "%0D%0A",
    "%0B",
    "%0C",
    "%1C",
    "%1D",
    "%1E",
    "%C2%85",  # NEL
    "%E2%80%A8",  # LINE SEPARATOR
    "%E2%80%A9",  # PARAGRAPH SEPARATOR
]


class Logged:
    """Requests through a Gateway whose access log is kept, with the key of workspace `acme`."""

    def __init__(self, key: str) -> None:
        self.log = StringIO()
        self.gateway = Gateway(TEMPLATE, log=self.log)
        self.key = key

    def send(self, path: str, method: str = "GET", **environ: str):
        """`path` exactly as a client would put it on the request line (RAW_URI, as werkzeug's
        server sets it); `environ` overrides or, with value "", removes other keys."""
        builder = EnvironBuilder(path=path, method=method)
        builder.headers["Authorization"] = f"Bearer {self.key}"
        env = builder.get_environ()
        env["REMOTE_ADDR"] = "127.0.0.1"
        # WSGI strings carry bytes as latin-1 characters (PEP 3333), as werkzeug's server sets them
        env["RAW_URI"] = env["REQUEST_URI"] = path.encode().decode("latin-1")
        for name, value in environ.items():
            if value:
                env[name] = value
            else:
                env.pop(name, None)
        return Response.from_app(self.gateway, env)  # the environ as is (Client rebuilds it)

    def lines(self) -> list[str]:
        """The log so far, split as the most eager reader would split it; then forgotten."""
        text = self.log.getvalue()
        self.log.seek(0)
        self.log.truncate()
        return text.splitlines()

    def value(self, name: str) -> int | None:
        answer = self.send(f"/v2/acme/{name}")
        self.lines()
        return answer.get_json()["data"]["value"] if answer.status_code == 200 else None


@pytest.fixture
def logged(workspace) -> Logged:
    client = Logged(workspace[1])
    client.send("/v2/acme/sentinel/up")
    assert client.value("sentinel") == 1
    client.lines()
    return client


def assert_one_safe_line(lines: list[str]) -> str:
    assert len(lines) == 1, lines
    (line,) = lines
    assert line.isprintable(), line
    return line


# ------------------------------------------------------------------ the access log


@pytest.mark.parametrize("brk", LINE_BREAKS)
def test_a_line_break_in_the_path_cannot_forge_a_log_line(logged, brk):
    raw = f"/v2/acme/sentinel{brk}{FORGED}"

    answer = logged.send(raw)

    line = assert_one_safe_line(logged.lines())
    assert line.startswith(f"127.0.0.1 GET {raw} {answer.status_code} ")  # as it was sent
    assert answer.status_code == 404
    assert logged.value("sentinel") == 1


@pytest.mark.parametrize("brk", LINE_BREAKS)
def test_a_line_break_in_the_query_cannot_forge_a_log_line(logged, brk):
    raw = f"/v2/acme/sentinel?x={brk}{FORGED}"

    logged.send(raw)

    line = assert_one_safe_line(logged.lines())
    assert f" {raw} 200 V2GetCounterFunction " in line
    assert logged.value("sentinel") == 1


@pytest.mark.parametrize(
    "char",
    ["\n", "\r", "\x00", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\u202e", "\ufeff"],
)
def test_control_characters_a_server_passed_through_raw_are_escaped(logged, char):
    """A raw target (RAW_URI) can hold what a percent-encoding would hide: escaped, visibly."""
    logged.send(f"/v2/acme/sentinel{char}x?y={char}{FORGED}")

    line = assert_one_safe_line(logged.lines())
    escaped = char.encode("unicode_escape").decode()
    assert f"/v2/acme/sentinel{escaped}x?y={escaped}127.0.0.1%20GET" in line
    assert logged.value("sentinel") == 1


def test_without_a_raw_target_the_decoded_path_is_logged_encoded_again(logged):
    """A WSGI server that sets neither RAW_URI nor REQUEST_URI: only the decoded path is left."""
    decoded = "/v2/acme/sentinel\n127.0.0.1 GET /v2/acme/sentinel/up 200 V2UpFunction 1.0ms"

    logged.send("/", PATH_INFO=decoded, QUERY_STRING="a=%0Ab", RAW_URI="", REQUEST_URI="")

    line = assert_one_safe_line(logged.lines())
    assert " /v2/acme/sentinel%0A127.0.0.1%20GET%20/v2/acme/sentinel/up%20200" in line
    assert line.split(" ")[2].endswith("?a=%0Ab")
    assert logged.value("sentinel") == 1


def test_a_method_with_line_breaks_stays_on_its_line(logged):
    logged.send("/v2/acme/sentinel", method="GET\n1.2.3.4 GET\u2028X")

    line = assert_one_safe_line(logged.lines())
    assert line.startswith("127.0.0.1 GET\\n1.2.3.4 GET\\u2028X /v2/acme/sentinel 405 ")
    assert logged.value("sentinel") == 1


@pytest.mark.parametrize(
    "raw",
    [
        "/v2/acme/" + "a" * 20_000,
        "/v2/acme/" + "%0A" * 5_000,
        "/v2/acme/" + "\x1b" * 5_000,
        "/v2/acme/" + "\U0010ffff" * 5_000,  # the longest escape there is
        "/v2/acme/sentinel?q=" + "b" * 20_000,
    ],
    ids=["long", "encoded-breaks", "raw-escapes", "astral", "long-query"],
)
def test_a_log_line_stays_short_whatever_the_path(logged, raw):
    logged.send(raw, method="X" * 1_000)

    line = assert_one_safe_line(logged.lines())
    assert len(line) < 600
    assert line.count("...[+") == 2  # the method and the target, each cut with its marker


def test_a_handler_crash_is_logged_on_one_bounded_line(logged, monkeypatch):
    def crash(fn, event):
        raise ValueError(event["rawPath"] * 100)

    monkeypatch.setattr(gateway, "invoke", crash)

    answer = logged.send("/v2/acme/sentinel%0A127.0.0.1%20GET%20%E2%80%A8")

    lines = logged.lines()
    assert answer.status_code == 500
    assert len(lines) == 2 and all(line.isprintable() for line in lines), lines
    assert lines[0].startswith("tally serve: V2GetCounterFunction raised ValueError(")
    assert len(lines[0]) < 600


def test_loggable_escapes_every_unprintable_character_and_the_backslash():
    assert loggable("plain /a-b_c.d~e %0A é 世界", 100) == "plain /a-b_c.d~e %0A é 世界"
    assert loggable("a\nb\rc\td\x00e\x1bf\x7fg\x85h\x9bi", 100) == (
        "a\\nb\\rc\\td\\x00e\\x1bf\\x7fg\\x85h\\x9bi"
    )
    assert loggable("\u2028\u2029\u202e\u200b\ufeff\U000e0001", 100) == (
        "\\u2028\\u2029\\u202e\\u200b\\ufeff\\U000e0001"
    )
    assert loggable("a\\nb", 100) == "a\\\\nb"  # a literal backslash-n is not a newline
    assert all(loggable(chr(code), 20).isprintable() for code in range(0x110000))


def test_loggable_cuts_between_escapes_and_says_how_much_is_left():
    assert loggable("abcdef", 6) == "abcdef"
    assert loggable("abcdef", 4) == "abcd...[+2]"
    assert loggable("ab\ncd", 3) == "ab...[+3]"  # not "ab\\"


# ------------------------------------------------------------------ paths, as API Gateway sends them


@pytest.fixture
def events(monkeypatch) -> list[tuple[str, dict]]:
    """(function, event) for every invocation from now on."""
    seen: list[tuple[str, dict]] = []
    invoke = gateway.invoke

    def record(fn, event):
        seen.append((fn.logical_id, event))
        return invoke(fn, event)

    monkeypatch.setattr(gateway, "invoke", record)
    return seen


def test_the_event_carries_the_decoded_path_and_the_raw_query(logged, events):
    """API Gateway HTTP APIs decode the path before routing and send it decoded, in rawPath too
    (live captures: hotsock/voker vokerhttp/testdata/ingress-paths.json, e.g. /capture/space%20value
    arrives as rawPath "/capture/space value"); the query string stays as sent in rawQueryString."""
    logged.send("/v2/acme/caf%C3%A9%20bar?q=a%20b&q=%26")

    ((function, event),) = events
    assert function == "V2GetCounterFunction"
    assert event["routeKey"] == "GET /v2/{workspace}/{name}"
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == "/v2/acme/café bar"
    assert event["pathParameters"] == {"workspace": "acme", "name": "café bar"}
    assert event["rawQueryString"] == "q=a%20b&q=%26"
    assert event["queryStringParameters"] == {"q": "a b,&"}


@pytest.mark.parametrize("slash", ["%2F", "%2f"])
def test_an_encoded_slash_stays_inside_its_segment(logged, events, slash):
    """tally serve routes on the path as sent: an encoded slash is part of the counter's name,
    never a separator, so /v2/acme/sentinel%2Fup is a read of the counter "sentinel/up" (a bad
    name: 400), not an up of "sentinel". (Live captures show AWS HTTP APIs decode rawPath before
    Lambda sees it; locally the stricter reading is kept, as the hostile-callers review asked.)"""
    response = logged.send(f"/v2/acme/sentinel{slash}up")

    ((function, event),) = events
    assert function == "V2GetCounterFunction"
    assert event["routeKey"] == "GET /v2/{workspace}/{name}"
    assert event["pathParameters"] == {"workspace": "acme", "name": "sentinel/up"}
    assert response.status_code == 400
    assert logged.value("sentinel") == 1


@pytest.mark.parametrize(
    ("path", "function", "params"),
    [
        ("/v2/acme/sentinel/%75p", "V2UpFunction", {"workspace": "acme", "name": "sentinel"}),
        ("/v2/%61cme/sentinel", "V2GetCounterFunction", {"workspace": "acme", "name": "sentinel"}),
        ("/v2/acme/a%2Fb%2Fup/up", "V2UpFunction", {"workspace": "acme", "name": "a/b/up"}),
        ("/account/counters/x%2F1/2", "AccountAddCounterFunction", {"name": "x/1", "value": "2"}),
    ],
)
def test_routes_match_segment_by_segment_on_the_decoded_segments(
    logged, events, path, function, params
):
    logged.send(path, method="POST" if path.startswith("/account") else "GET")

    ((seen, event),) = events
    assert (seen, event["pathParameters"]) == (function, params)


ODD_SEGMENTS = {
    "dot-dot-encoded": "%2e%2e",
    "dot-dot-encoded-upper": "%2E%2E",
    "dot-dot": "..",
    "dot": ".",
    "nul": "sentinel%00",
    "nul-alone": "%00",
    "question-mark": "sentinel%3Fa=1",
    "hash": "sentinel%23up",
    "non-utf8": "%FF",
    "non-utf8-pair": "sentinel%FF%FE",
    "truncated-utf8": "sentinel%C3",
    "overlong-utf8-slash": "%C0%AF",
    "bad-escape": "sentinel%zz",
    "lone-percent": "sentinel%",
    "encoded-percent": "sentinel%25",
    "double-encoded-slash": "sentinel%252Fup",
    "backslash": "sentinel%5Cup",
    "space": "sentinel%20up",
    "overlong": "s" * 5_000,
    "overlong-encoded": "%41" * 3_000,
}

# A few of them in the other places a parameter can be (all of them would double the run time).
ELSEWHERE = ["dot-dot-encoded", "nul", "question-mark", "non-utf8", "double-encoded-slash"]

ODD_PATHS = {
    **{f"v2-{label}": f"/v2/acme/{segment}" for label, segment in ODD_SEGMENTS.items()},
    **{f"v2-up-{label}": f"/v2/acme/{ODD_SEGMENTS[label]}/up" for label in ELSEWHERE},
    **{f"v2-ws-{label}": f"/v2/{ODD_SEGMENTS[label]}/sentinel/up" for label in ELSEWHERE},
    **{
        f"backstack-{label}": f"/account/counters/{segment}/settings"
        for label, segment in ODD_SEGMENTS.items()
    },
    "v2-double-slash": "/v2//acme/sentinel/up",
    "v2-double-slash-inner": "/v2/acme//sentinel/up",
    "v2-double-slash-end": "/v2/acme/sentinel//up",
    "v2-trailing-slash": "/v2/acme/sentinel/up/",
    "v2-dot-dot-back": "/v2/acme/x/../sentinel/up",
    "v2-encoded-dot-dot-back": "/v2/acme/x/%2e%2e/sentinel/up",
    "backstack-encoded-slash": "/account/counters/sentinel%2Fx/settings",
    "backstack-double-slash": "/account//counters/sentinel/settings",
}


@pytest.mark.parametrize("raw", ODD_PATHS.values(), ids=ODD_PATHS.keys())
def test_an_odd_path_gets_a_4xx_in_its_dialect_never_a_500(logged, raw):
    answer = logged.send(raw)

    body = answer.get_json()
    assert answer.status_code in (400, 404, 405), body
    if raw.startswith("/v2/"):
        assert body["code"] == str(answer.status_code) and body["message"]
    else:
        assert body["error"]["code"] == answer.status_code and body["error"]["message"]
    assert_one_safe_line(logged.lines())
    assert logged.value("sentinel") == 1


@pytest.mark.parametrize(
    "path", ["/v2/acme/sentinel/up%2Fbadge.svg", "/account/counters/b%2Fsettings"]
)
def test_an_encoded_separator_no_route_took_is_404_not_a_405_allowing_its_method(logged, path):
    response = logged.send(path)
    assert response.status_code == 404
    assert "Allow" not in response.headers


# ------------------------------------------------------------------ over a real socket


@pytest.fixture(scope="module")
def server(served):
    return served


@pytest.fixture(scope="module")
def acme(server) -> str:
    status, body = server.call(
        "/admin/workspaces", method="POST", key=ADMIN, body={"workspace": "acme"}
    )
    assert status == 201, body
    assert server.call("/v2/acme/sentinel/up", key=body["api_key"])[0] == 200
    return body["api_key"]


def send_raw(server: Server, key: str, target: bytes) -> tuple[int, list[str]]:
    """`target` byte for byte on the request line; the status and the log lines it caused."""
    before = len(server.log())
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + key.encode() + b"\r\nConnection: close\r\n\r\n"
        )
        response = http.client.HTTPResponse(sock)
        response.begin()
        response.read()
    return response.status, server.log()[before:].splitlines()


@pytest.mark.e2e
@pytest.mark.parametrize("brk", ["%0A", "%0D%0A", "%C2%85", "%E2%80%A8"])
def test_tally_serve_logs_a_forged_line_attempt_as_one_line(server, acme, brk):
    target = f"/v2/acme/sentinel{brk}{FORGED}"

    status, lines = send_raw(server, acme, target.encode())

    assert status == 404
    assert assert_one_safe_line(lines).startswith(f"127.0.0.1 GET {target} 404 ")
    assert server.call("/v2/acme/sentinel", key=acme)[1]["data"]["value"] == 1


@pytest.mark.e2e
def test_tally_serve_escapes_raw_control_bytes_on_the_request_line(server, acme):
    status, lines = send_raw(server, acme, b"/v2/acme/sentinel\x1b[2J\x7f\x9b?a=\x00\x1b")

    assert status == 400
    line = assert_one_safe_line(lines)
    assert " /v2/acme/sentinel\\x1b[2J\\x7f\\x9b?a=\\x00\\x1b 400 V2GetCounterFunction " in line


@pytest.mark.e2e
@pytest.mark.parametrize(
    "target",
    [b"/v2/acme/%FF/up", b"/v2/acme/sentinel%00", b"/v2/acme/" + b"%41" * 3000],
    ids=["non-utf8", "nul", "overlong"],
)
def test_tally_serve_answers_odd_encodings_with_a_400(server, acme, target):
    status, lines = send_raw(server, acme, target)

    assert status == 400
    assert len(assert_one_safe_line(lines)) < 600
    assert server.call("/v2/acme/sentinel", key=acme)[1]["data"]["value"] == 1


def _exchange(server: Server, raw: bytes) -> tuple[bytes, list[str]]:
    """`raw` bytes as the whole request; the status line and the log lines it caused."""
    before = len(server.log())
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    time.sleep(0.1)  # the access line is written after the answer
    return answer.split(b"\r\n", 1)[0], server.log()[before:].splitlines()


@pytest.mark.e2e
def test_tally_serve_answers_a_broken_chunked_body_with_a_400_not_a_500(server, acme):
    status, lines = _exchange(
        server,
        b"GET /v2/acme/sentinel HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\nzz\r\n",
    )
    assert status.startswith(b"HTTP/1.1 400")
    assert not any("raised" in line for line in lines)


@pytest.mark.e2e
def test_a_request_line_of_60_kb_makes_a_short_log_line_and_status_line(server):
    status, lines = _exchange(
        server, b"GET /v2/x" + b"Y" * 60_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert len(status) < 300
    assert lines and max(map(len, lines)) < 600


@pytest.mark.e2e
@pytest.mark.parametrize(
    "line",
    [b"Authorization : Bearer {key}", b"From evil", b":no-name", b"X-\x01: y"],
    ids=["space before colon", "envelope line", "no name", "control in name"],
)
def test_a_header_line_python_cannot_parse_is_a_400_not_a_request_without_it(server, acme, line):
    status, _ = _exchange(
        server,
        b"GET /v2/acme/sentinel/up HTTP/1.1\r\nHost: x\r\n"
        + line.replace(b"{key}", acme.encode())
        + b"\r\nConnection: close\r\n\r\n",
    )
    assert status.startswith(b"HTTP/1.1 400")
    assert server.call("/v2/acme/sentinel", key=acme)[1]["data"]["value"] == 1


@pytest.mark.e2e
@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data; boundary=----x", "multipart/form-data", "multipart/mixed; boundary=b"],
)
def test_a_multipart_body_is_answered_by_the_function_in_its_dialect(server, acme, content_type):
    # A browser's FormData: Python's header parser reports defects of the multipart body it never
    # read; only a header line it could not parse is the server's own 400.
    form = b'------x\r\nContent-Disposition: form-data; name="amount"\r\n\r\n5\r\n------x--\r\n'
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request(
        "POST",
        "/account/invoice-items",
        body=form,
        headers={
            "Authorization": f"Bearer {acme}",
            "Content-Type": content_type,
            "Origin": "https://app.example",
        },
    )
    answer = connection.getresponse()
    body = json.loads(answer.read())
    connection.close()

    assert answer.status == 400
    assert body["error"]["fields"] == {"body": "invalid JSON"}
    assert answer.getheader("Access-Control-Allow-Origin")  # readable by the page
    assert server.call("/account/invoice-items", key=acme)[1]["total"] == 0


@pytest.mark.e2e
def test_an_absolute_form_target_is_routed_by_its_path(server, acme):
    status, _ = send_raw(server, acme, f"http://127.0.0.1:{server.port}/v2/acme/sentinel".encode())
    assert status == 200
