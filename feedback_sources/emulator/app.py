"""The ASGI app: routes each request to its vendor and runs it through outage, fault, auth and rate-limit checks."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from email.utils import formatdate
from collections.abc import Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .core import Emulator, RequestRecord
from .faults import Fault, hostile_body
from .vendor import RegistrationApi
from .wire import Call, Reply, VendorApi

MALFORMED_BODY = b'{"data": [{"id": "1", "broken": tru'
class ConnectionDropped(httpx.ReadError):
    """The "reset" fault in-process (httpx.ASGITransport), where there is no socket to drop.

    It reaches the client as the same exception type a reset socket gives, so retry logic sees no difference.
    """

    def __init__(self) -> None:
        super().__init__("Connection reset by peer (emulated)")


def _apis(emulator: Emulator) -> dict[str, VendorApi]:
    def expired(name: str) -> Callable[[], bool]:
        return lambda: emulator.token_expired(name)

    return {
        name: vendor.api(emulator.config, emulator.vendor(name), emulator.now_ts, expired(name))
        for name, vendor in emulator.vendors.items()
    }


def _registrations(emulator: Emulator, apis: dict[str, VendorApi]) -> dict[str, RegistrationApi]:
    """The webhook registration endpoints of the vendors that have an API for them."""
    found = {}
    for name, vendor in emulator.vendors.items():
        if vendor.webhooks is not None and vendor.webhooks.registration is not None:
            found[name] = vendor.webhooks.registration(emulator, apis[name])
    return found


def _split_path(emulator: Emulator, path: str) -> tuple[str, str, str, bool] | None:
    """(vendor, vendor prefix, endpoint below it, misaddressed), or None for a path no vendor serves.

    A path under "/<vendor>/" that misses the vendor's base path (another account's address) is misaddressed when
    the vendor has its own answer for that; otherwise it is served by no one.
    """
    parts = path.split("/", 3)  # "", vendor, next segment, rest
    if len(parts) < 3:
        return None
    name = parts[1]
    vendor = emulator.vendors.get(name)
    if vendor is None:
        return None
    base = vendor.base_path(emulator.config)
    if path == base or path.startswith(base + "/"):
        return name, base, path[len(base):], False
    if vendor.misaddressed is not None:
        prefix = f"/{name}/{parts[2]}"
        return name, prefix, path[len(prefix):], True
    return None


def create_app(emulator: Emulator | None = None) -> Starlette:
    emulator = emulator or Emulator()
    apis = _apis(emulator)
    webhooks = _registrations(emulator, apis)

    async def dispatch(request: Request) -> Response:
        return await _serve(emulator, apis, webhooks, request)

    app = Starlette(routes=[Route("/{path:path}", dispatch,
                                  methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])])
    app.state.emulator = emulator
    return app


async def _serve(emulator: Emulator, apis: dict[str, VendorApi], webhooks: dict[str, RegistrationApi],
                 request: Request) -> Response:
    arrived = time.time()
    path = request.url.path
    split = _split_path(emulator, path)
    if split is None:
        return Response("Not Found", status_code=404, media_type="text/plain")
    vendor, prefix, endpoint, misaddressed = split
    query = dict(request.query_params)

    def log(status: int | None, fault: Fault | None = None, body: Any = None) -> None:
        emulator.log(RequestRecord(vendor, request.method, path, endpoint, query, status, arrived,
                                   str(fault.kind) if fault else None, body))

    if misaddressed:
        answer = emulator.vendors[vendor].misaddressed
        assert answer is not None
        reply = answer()
        log(reply.status)
        return _response(reply)

    raw_body = await request.body()
    body: Any = None
    if raw_body:
        try:
            body = json.loads(raw_body)
        except ValueError:
            body = None
    api = apis[vendor]
    call = Call(vendor=vendor, method=request.method, endpoint=endpoint or "/", query=query, body=body,
                base_url=f"{request.url.scheme}://{request.url.netloc}{prefix}", headers=request.headers)

    if emulator.is_down(vendor):
        reply = api.error(503)
        log(reply.status, body=body)
        return _response(reply)

    fault = emulator.faults.take(vendor, request.method, call.endpoint, path)
    if fault is not None and fault.kind == "reset":
        log(None, fault, body)
        await _drop_connection(request, str(fault.opts.get("mode", "rst")))
        return Response(status_code=204)  # never reaches the client: the connection is gone
    if fault is not None and fault.kind == "timeout":
        if not await _wait_unless_disconnected(request, float(fault.opts.get("seconds", 30))):
            log(None, fault, body)
            return Response(status_code=204)  # the client gave up; nobody reads this
    elif fault is not None:
        early = _apply_fault(emulator, api, call, fault)
        if early is not None:
            log(early.status_code, fault, body)
            return early

    denied = api.authenticate(call)
    if denied is not None:
        log(denied.status, fault, body)
        return _response(denied)

    rate_headers: dict[str, str] = {}
    limiters = emulator.rate_limiters
    fixed = emulator.fixed_window_limiters.get(vendor)
    # An unauthenticated request (a vendor may answer "who am I" anonymously) counts against no account.
    if fixed is not None and "authorization" in request.headers:
        decision = fixed.check(api.is_export(call), emulator.rate_clock())
        if not decision.allowed:
            reply = api.rate_limited(decision.headers, decision.reason)
            log(reply.status, fault, body)
            return _response(reply)
        rate_headers = decision.headers
    elif limiters is not None and vendor in limiters and "authorization" in request.headers:
        decision = limiters[vendor].check(api.is_export(call), emulator.rate_clock())
        if not decision.allowed:
            reply = api.rate_limited(decision.headers, decision.reason)
            log(reply.status, fault, body)
            return _response(reply)
        rate_headers = decision.headers

    repeated = emulator.last_body(vendor, call.endpoint) if fault and fault.kind == "repeat_page" else None
    if repeated is not None:
        content, media_type = repeated
        reply = Reply(200, content, media_type=media_type)
    elif vendor in webhooks and webhooks[vendor].serves(call):
        reply = await webhooks[vendor].handle(call)
    else:
        reply = api.handle_safely(call)
    reply.headers.update(rate_headers)
    if fault is not None and fault.kind == "hostile_text" and reply.status == 200 and reply.body is not None \
            and not isinstance(reply.body, (bytes, str)):
        content = hostile_body(reply.body, fault.opts)
    else:
        content = reply.encode()
    if reply.status == 200 and request.method in ("GET", "POST"):
        emulator.remember_body(vendor, call.endpoint, content, reply.media_type)
    if fault is not None and fault.kind == "truncated":
        content = content[: len(content) // 2]
    log(reply.status, fault, body)
    return Response(content, status_code=reply.status, headers=reply.headers, media_type=reply.media_type)


def _response(reply: Reply) -> Response:
    return Response(reply.encode(), status_code=reply.status, headers=reply.headers, media_type=reply.media_type)


def _apply_fault(emulator: Emulator, api: VendorApi, call: Call, fault: Fault) -> Response | None:
    """The fault's own response, or None to carry on with the request (possibly altered)."""
    kind = fault.kind
    if isinstance(kind, int):
        reply = api.error(kind)
        profile = emulator.vendors[call.vendor].rate_limits
        if kind == 429 and profile is not None and profile.injected_429_headers is not None:
            reply.headers.update(profile.injected_429_headers(time.time() + float(fault.opts.get("reset_in", 0))))
        return _response(reply)
    seconds = float(fault.opts.get("seconds", 1))
    if kind == "retry_after_seconds":
        reply = api.error(429)
        reply.headers["Retry-After"] = str(int(seconds)) if seconds == int(seconds) else f"{seconds:g}"
        return _response(reply)
    if kind == "retry_after_date":
        reply = api.error(429)
        reply.headers["Retry-After"] = formatdate(time.time() + seconds, usegmt=True)
        return _response(reply)
    if kind == "malformed":
        return Response(MALFORMED_BODY, status_code=200, media_type="application/json; charset=utf-8")
    if kind == "expire_token":
        emulator.expire_token(call.vendor)
        return None
    if kind == "empty_page_with_next":
        call.empty_page = True
    return None  # truncated and repeat_page act on the normal answer


async def _wait_unless_disconnected(request: Request, seconds: float) -> bool:
    """Sleep `seconds`, but stop early (returning False) once the client has gone away."""
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return True
        await asyncio.sleep(min(0.05, remaining))
        if await request.is_disconnected():
            return False


async def _drop_connection(request: Request, mode: str) -> None:
    # uvicorn's h11 protocol hands the app a bound method of its request cycle, which holds the socket transport.
    transport = getattr(getattr(request.receive, "__self__", None), "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        raise ConnectionDropped()
    if mode == "rst":
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A zero linger time makes close() send a TCP RST instead of a FIN: the client sees a reset.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    # Let uvicorn notice the closed connection so it does not try to answer on it.
    for _ in range(3):
        await asyncio.sleep(0)
