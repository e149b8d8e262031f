"""HTTP hardening (issue 8): bounded bodies, strict JSON, no 500 on bad input, one token rule.

Against a real daemon on loopback. Bodies that must not be read are sent over a raw socket, so
the test controls exactly how much of them ever leaves the client.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace

import httpx
import msgpack
import pycrdt
import pytest
import websockets
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from crdt.protocol import AuthMessage, SyncMessage, decode_message
from tests.support.servers import RunningDaemon, start_daemon

pytestmark = pytest.mark.anyio

JSON_LIMIT = 128 * 1024  # above 100,000 bytes, so the deep-nesting body is parsed, not refused
UPDATE_LIMIT = 1024 * 1024
HUGE = 300 * 1024 * 1024  # announced, never sent
NEVER_500 = {400, 401, 403, 404, 413}


@pytest.fixture
async def daemon(settings):  # type: ignore[no-untyped-def]
    running = await start_daemon(
        replace(
            settings,
            dev_login=True,
            max_json_body_bytes=JSON_LIMIT,
            max_message_bytes=UPDATE_LIMIT,
        )
    )
    try:
        yield running
    finally:
        await running.stop()


def json_routes(d: RunningDaemon) -> dict[str, tuple[str, str, dict[str, str]]]:
    """Every route with a JSON body: (method, path, headers that get the request to parsing)."""
    owner = {"authorization": f"Bearer {d.token('alice')}"}
    return {
        "access": ("PUT", "/v1/docs/alice/limits/access", owner),
        "dev_login": ("POST", "/v1/dev/login", {}),
    }


def body_routes(d: RunningDaemon) -> dict[str, tuple[str, str, dict[str, str], int]]:
    """Every route that reads a body, with its limit."""
    routes = {k: (*v, JSON_LIMIT) for k, v in json_routes(d).items()}
    owner = {"authorization": f"Bearer {d.token('alice')}"}
    routes["updates"] = ("POST", "/v1/docs/alice/limits/updates", owner, UPDATE_LIMIT)
    return routes


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after answering


async def raw_request(
    d: RunningDaemon, head: str, parts: list[bytes], *, expect_close: bool
) -> RawAnswer:
    """Send ``head`` (request line and headers, without the blank line) and ``parts`` of the
    body, then read the answer without sending anything more."""
    reader, writer = await asyncio.open_connection("127.0.0.1", d.port)
    try:
        writer.write(head.encode() + b"\r\n\r\n")
        for part in parts:
            writer.write(part)
        await writer.drain()
        async with asyncio.timeout(10):
            status_line = await reader.readline()
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            closed = False
            if expect_close:
                closed = await reader.read(1) == b""  # EOF: nobody waits for the rest
        return RawAnswer(int(status_line.split()[1]), headers, body, closed)
    finally:
        writer.close()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


# -- body limits -----------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["access", "dev_login", "updates"])
async def test_huge_content_length_refused_before_reading(daemon, route):
    method, path, headers, limit = body_routes(daemon)[route]
    head = "\r\n".join(
        [f"{method} {path} HTTP/1.1", "host: x", f"content-length: {HUGE}"]
        + [f"{k}: {v}" for k, v in headers.items()]
    )
    # Only the first 16 KiB of 300 MiB are ever sent: an answer proves nobody waited for more.
    answer = await raw_request(daemon, head, [b"{" + b" " * 16383], expect_close=True)
    assert answer.status == 413
    assert json.loads(answer.body) == {
        "error": "too_large",
        "message": f"request body over {limit} bytes",
    }
    assert answer.headers.get("connection") == "close" and answer.closed


@pytest.mark.parametrize("route", ["access", "dev_login", "updates"])
async def test_chunked_body_refused_once_past_the_limit(daemon, route):
    method, path, headers, limit = body_routes(daemon)[route]
    head = "\r\n".join(
        [f"{method} {path} HTTP/1.1", "host: x", "transfer-encoding: chunked"]
        + [f"{k}: {v}" for k, v in headers.items()]
    )
    piece = b" " * 16384
    parts = [chunk(piece) for _ in range(limit // len(piece) + 2)]  # never the last chunk
    answer = await raw_request(daemon, head, parts, expect_close=True)
    assert answer.status == 413 and json.loads(answer.body)["error"] == "too_large"
    assert answer.headers.get("connection") == "close" and answer.closed


async def test_unread_huge_body_closes_the_connection(daemon):
    """Answers that never look at the body (401, a GET) do not let the server drain 300 MiB."""
    for head, first in (
        (f"PUT /v1/docs/alice/limits/access HTTP/1.1\r\nhost: x\r\ncontent-length: {HUGE}",
         b"x" * 1024),
        (f"GET /v1/docs/alice/limits HTTP/1.1\r\nhost: x\r\ncontent-length: {HUGE}",
         b"x" * 1024),
        ("GET /healthz HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked",
         chunk(b"x" * 1024)),
    ):
        answer = await raw_request(daemon, head, [first], expect_close=True)
        assert answer.status in (200, 401), head
        # Said in the answer, not left to the keep-alive timeout.
        assert answer.headers.get("connection") == "close" and answer.closed, head


async def test_body_just_over_the_limit_is_answered_to_a_client_that_sends_it_all(daemon):
    """Most clients send their whole body before reading: a modest excess is drained so that
    they read the 413 instead of a reset connection, and the connection stays usable."""
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        for method, path, headers in json_routes(daemon).values():
            body = b"{" + b" " * JSON_LIMIT + b"}"
            r = await http.request(method, path, content=body, headers=headers)
            assert r.status_code == 413 and r.json()["error"] == "too_large"
            assert r.headers.get("connection") != "close"
            ok = await http.post("/v1/dev/login", json={"name": "alice"})
            assert ok.status_code == 200


# -- JSON ------------------------------------------------------------------------------------

BAD_JSON = {
    "100,000 deep": b"[" * 100_000,  # the parser gives up (RecursionError) before the end
    "deep, closed": b"[" * 65_000 + b"]" * 65_000,
    "deep objects": b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    "NaN": b'{"mode": NaN, "name": NaN}',
    "Infinity": b'{"mode": "private", "name": "alice", "x": Infinity}',
    "-Infinity": b'{"mode": "private", "name": "alice", "x": -Infinity}',
    "empty": b"",
    "garbage": b"\x00\x01not json",
    "truncated": b'{"mode": "priv',
    "latin-1": b'{"name": "\xe9"}',
    "BOM": b'\xef\xbb\xbf{"mode": "private", "name": "alice"}',
    "huge integer": b'{"mode": "private", "name": "alice", "x": ' + b"9" * 5000 + b"}",
    "array": b"[]",
    "string": b'"alice"',
    "number": b"1",
    "null": b"null",
    "wrong types": b'{"mode": ["shared"], "grants": [], "name": {"a": 1}}',
}


@pytest.mark.parametrize("kind", list(BAD_JSON))
async def test_bad_json_answers_400(daemon, kind):
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        for method, path, headers in json_routes(daemon).values():
            r = await http.request(method, path, content=BAD_JSON[kind], headers=headers)
            assert r.status_code == 400, (path, r.text)
            assert r.json()["error"] == "bad_request"
            assert set(r.json()) == {"error", "message"}


@pytest.fixture
async def http(daemon):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=daemon.http) as client:
        yield client


async def _never_500(daemon: RunningDaemon, http: httpx.AsyncClient, body: bytes) -> None:
    for method, path, headers in json_routes(daemon).values():
        r = await http.request(method, path, content=body, headers=headers)
        assert r.status_code in NEVER_500, (path, body[:80], r.status_code, r.text)
        assert set(r.json()) == {"error", "message"}


fuzz = hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@fuzz
@given(body=st.binary(max_size=512))
async def test_random_bytes_never_answer_500(daemon, http, body):
    await _never_500(daemon, http, body)


# JSON-looking text made of the characters that matter (brackets, quotes, escapes, constants).
json_ish = st.lists(
    st.sampled_from(
        ["{", "}", "[", "]", '"', ":", ",", "\\", "\\u", "d800", "NaN", "-", "1e999", "0",
         "true", "null", '"mode"', '"shared"', '"grants"', '"name"', " ", "\x00"]
    ),
    max_size=60,
).map(lambda parts: "".join(parts).encode())


@fuzz
@given(body=json_ish)
async def test_json_like_text_never_answers_500(daemon, http, body):
    for method, path, headers in json_routes(daemon).values():
        r = await http.request(method, path, content=body, headers=headers)
        assert r.status_code in NEVER_500 | {200}, (path, body, r.status_code, r.text)


# -- other routes: bad input is a 400, never a 500 or a 503 -----------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"after": "c" + "f" * 30},  # past a 64-bit position
        {"after": "c8000000000000000"},
        {"after": "c" + "0" * 5000},
        {"prefix": "alice/\x00"},  # Postgres text cannot hold NUL
        {"limit": "9" * 5000},
        {"wait": "nan"},
        {"wait": "inf"},
    ],
)
async def test_feed_bad_queries_answer_400(any_daemon, params):
    svc = {"authorization": f"Bearer {any_daemon.token('svc', role='service')}"}
    async with httpx.AsyncClient(base_url=any_daemon.http) as client:
        r = await client.get("/v1/feed", params=params, headers=svc)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "bad_request"


# -- one token rule on every endpoint ---------------------------------------------------------

# (Authorization header, ?token=, allowed): "good" may read, "bad" may not (another principal).
TOKEN_CASES = {
    "header beats query": ("Bearer {good}", "{bad}", True),
    "header beats query (bad header)": ("Bearer {bad}", "{good}", False),
    "query alone": (None, "{good}", True),
    "header alone": ("Bearer {good}", None, True),
    "scheme is case-insensitive": ("bEaReR {good}", None, True),
    "empty Bearer header is not replaced by the query": ("Bearer", "{good}", False),
    "malformed Bearer header is not replaced by the query": ("Bearer {good} x", "{good}", False),
    "another scheme is not ours": ("Basic dXNlcjpwYXNz", "{good}", True),
    "nothing": (None, None, False),
}


def _credentials(case: str, good: str, bad: str) -> tuple[dict[str, str], dict[str, str]]:
    header, query, _ = TOKEN_CASES[case]
    headers = {"authorization": header.format(good=good, bad=bad)} if header else {}
    params = {"token": query.format(good=good, bad=bad)} if query else {}
    return headers, params


@pytest.mark.parametrize("case", list(TOKEN_CASES))
async def test_token_rule_http_api(daemon, http, case):
    alice = daemon.token("alice")
    r = await http.put(
        "/v1/docs/alice/tokens/access", json={"mode": "private"}, params={"token": alice}
    )
    assert r.status_code == 200
    headers, params = _credentials(case, good=alice, bad=daemon.token("bob"))
    r = await http.get("/v1/docs/alice/tokens", headers=headers, params=params)
    assert (r.status_code == 200) is TOKEN_CASES[case][2], r.text


@pytest.mark.parametrize("case", list(TOKEN_CASES))
async def test_token_rule_feed_http(daemon, http, case):
    headers, params = _credentials(
        case, good=daemon.token("svc", role="service"), bad=daemon.token("alice")
    )
    r = await http.get("/v1/feed", headers=headers, params=params)
    assert (r.status_code == 200) is TOKEN_CASES[case][2], r.text


def _ws_url(base: str, params: dict[str, str]) -> str:
    return f"{base}?token={params['token']}" if params else base


@pytest.mark.parametrize("case", list(TOKEN_CASES))
async def test_token_rule_doc_socket(daemon, case):
    headers, params = _credentials(case, good=daemon.token("alice"), bad=daemon.token("bob"))
    url = _ws_url(f"ws://127.0.0.1:{daemon.port}/v1/docs/alice/tokens", params)
    async with websockets.connect(url, additional_headers=headers) as ws:
        first = decode_message(await asyncio.wait_for(ws.recv(), 10))
        if TOKEN_CASES[case][2]:
            assert isinstance(first, SyncMessage)  # the server's sync step 1
        else:
            assert isinstance(first, AuthMessage)  # permission denied, then 4401/4403
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code in (4401, 4403)


@pytest.mark.parametrize("case", list(TOKEN_CASES))
async def test_token_rule_feed_socket(daemon, http, case):
    update = pycrdt.Doc()
    update.get("m", type=pycrdt.Map)["k"] = 1
    owner = {"authorization": f"Bearer {daemon.token('alice')}"}
    r = await http.post("/v1/docs/alice/feed-tokens/updates", content=update.get_update(),
                        headers=owner)
    assert r.status_code == 200
    headers, params = _credentials(
        case, good=daemon.token("svc", role="service"), bad=daemon.token("alice")
    )
    url = _ws_url(f"ws://127.0.0.1:{daemon.port}/v1/feed", params)
    async with websockets.connect(url, additional_headers=headers) as ws:
        first = await asyncio.wait_for(ws.recv(), 10)
        if TOKEN_CASES[case][2]:
            assert msgpack.unpackb(first)["events"][0]["doc"] == "alice/feed-tokens"
        else:
            assert json.loads(first)["error"] in (4401, 4403)
