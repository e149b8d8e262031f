"""Web Push over HTTP (DESIGN.md §1.12): the VAPID key, subscriptions and notify.

- ``GET /v1/push/key`` → ``{"public_key"}``: the application server key, base64url. No token
  needed: it is public, and a page asks for it before it subscribes.
- ``POST /v1/push/subscriptions`` a browser ``PushSubscription`` JSON (``endpoint``,
  ``keys.p256dh``, ``keys.auth``; ``expirationTime`` is ignored) → 201; the subscription belongs
  to the token's principal. An endpoint the daemon must not call is 400 (``push_endpoints.py``).
- ``DELETE /v1/push/subscriptions?endpoint=…`` → 204, also when it was already gone (a browser
  unsubscribing after the push service expired it must not see an error).
- ``POST /v1/push/notify`` (services and admins) ``{"principals", "title", "body", "url",
  "doc"?}`` → 202 with what became of it (``syncd.push.NotifyCounts``). ``url`` is a path of
  this site (``/#/journal/alice/journal``): a notification opens the web app, never another
  site. With ``doc``, principals present in that document are skipped.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .access import Refusal, parse_doc_id
from .daemon import Daemon
from .docid import is_principal
from .http_api import HttpError, _handled, http_error, identify
from .push import MAX_PAYLOAD_BYTES
from .push_endpoints import EndpointRefused, check_keys
from .request_body import read_json

__all__ = ["routes"]

MAX_PRINCIPALS = 1000
MAX_TITLE = 200
MAX_BODY = 1000
MAX_URL = 2048


def _bad(message: str) -> HttpError:
    return HttpError(400, "bad_request", message)


async def get_key(request: Request) -> Response:
    daemon: Daemon = request.app.state.daemon
    return JSONResponse({"public_key": daemon.push.vapid.public_key})


@_handled
async def post_subscription(request: Request) -> Response:
    daemon, identity = identify(request)
    try:
        await daemon.access.refuse_erased(identity.tenant, identity.sub)
    except Refusal as refusal:
        raise http_error(refusal) from refusal
    body = await read_json(request, daemon.settings.max_json_body_bytes)
    if not isinstance(body, dict):
        raise _bad("body must be a PushSubscription JSON object {endpoint, keys}")
    endpoint, keys = body.get("endpoint"), body.get("keys")
    if not isinstance(keys, dict):
        raise _bad("keys must be an object {p256dh, auth}")
    try:
        check_keys(keys.get("p256dh"), keys.get("auth"))
        await daemon.push.policy.check(endpoint)  # type: ignore[arg-type]
    except EndpointRefused as exc:
        raise _bad(str(exc)) from exc
    assert isinstance(endpoint, str)
    stored = await daemon.push.subscriptions.add(
        identity.tenant, identity.sub, endpoint, keys["p256dh"], keys["auth"]
    )
    return JSONResponse({"endpoint": stored.endpoint, "principal": stored.principal}, 201)


@_handled
async def delete_subscription(request: Request) -> Response:
    daemon, identity = identify(request)
    endpoint = request.query_params.get("endpoint")
    if not endpoint:
        raise _bad("the endpoint query parameter is required")
    await daemon.push.subscriptions.remove(identity.tenant, identity.sub, endpoint)
    return Response(status_code=204)


def _text(body: dict[str, Any], name: str, limit: int, *, required: bool = True) -> str:
    value = body.get(name, None if required else "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise _bad(f"{name} must be a non-empty string")
    if len(value) > limit:
        raise _bad(f"{name} is longer than {limit} characters")
    return value


def _url(body: dict[str, Any]) -> str:
    url = _text(body, "url", MAX_URL)
    if not url.startswith("/") or url.startswith("//") or "\\" in url:
        raise _bad("url must be a path of this site, starting with / (e.g. /#/journal/a/b)")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise _bad("url must not hold control characters")
    return url


@_handled
async def notify(request: Request) -> Response:
    daemon, identity = identify(request)
    if not identity.privileged:
        raise HttpError(403, "forbidden", "only services and admins may send notifications")
    body = await read_json(request, daemon.settings.max_json_body_bytes)
    if not isinstance(body, dict):
        raise _bad("body must be an object {principals, title, body, url, doc?}")
    principals = body.get("principals")
    if not isinstance(principals, list) or not principals:
        raise _bad("principals must be a non-empty list of principals")
    if len(principals) > MAX_PRINCIPALS:
        raise _bad(f"at most {MAX_PRINCIPALS} principals per notification")
    for p in principals:
        if not isinstance(p, str) or not is_principal(p):
            raise _bad(f"invalid principal {str(p)[:80]!r}")
    title, text, url = _text(body, "title", MAX_TITLE), _text(body, "body", MAX_BODY), _url(body)
    doc = body.get("doc")
    if doc is not None:
        if not isinstance(doc, str):
            raise _bad("doc must be a document id OWNER/NAME")
        try:
            doc = str(parse_doc_id(doc))
        except Refusal as refusal:
            raise _bad(refusal.message) from refusal
    payload = {"type": "prompt", "title": title, "body": text, "url": url, "doc": doc}
    if len(json.dumps(payload, ensure_ascii=False).encode()) > MAX_PAYLOAD_BYTES:
        raise _bad(f"title, body and url together exceed a push's {MAX_PAYLOAD_BYTES} bytes")
    counts = await daemon.push.notify(identity.tenant, principals, title, text, url, doc)
    return JSONResponse(counts.json(), 202)


def routes() -> list[Route]:
    return [
        Route("/v1/push/key", get_key, methods=["GET"]),
        Route("/v1/push/subscriptions", post_subscription, methods=["POST"]),
        Route("/v1/push/subscriptions", delete_subscription, methods=["DELETE"]),
        Route("/v1/push/notify", notify, methods=["POST"]),
    ]
