"""The hub's web app (aiohttp, on the hub's own event loop): the public cove wall and the operator console.

Routes (the README's "JSON API" section is the user-facing reference):
  GET  /                              the cove wall (public)
  GET  /api/cove                      public cove view: aggregates only when k >= 5 (lifepalette.outputs.public)
  GET  /api/cove/events               the same view as server-sent events, one per scoring tick
  GET  /operator                      the console (a login form with 401 until the token is given)
  POST /operator/login                form or JSON {"token": ...}: sets an HttpOnly, SameSite=Strict cookie
  POST /operator/logout
  GET  /api/operator/state            operator state (auth: "Authorization: Bearer TOKEN" or the cookie)
  GET  /api/operator/events           operator state as server-sent events
  POST /api/operator/session/start | /api/operator/session/end | /api/operator/group-key/rotate
Cookie-authenticated POSTs must carry the header "X-LP-Operator: 1" (a browser cannot add it cross-site: CSRF guard).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from lifepalette.hub.contracts import HubSurface
from lifepalette.web.feed import HubFeeds, to_json

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "lp_operator"
CSRF_HEADER = "X-LP-Operator"
FEEDS = web.AppKey("feeds", HubFeeds)
TOKEN = web.AppKey("token", str)
KEEPALIVE_S = 15.0

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _cookie_value(token: str) -> str:
    """The cookie is derived from the token, so the token itself never sits in the browser's cookie jar."""
    return hmac.new(token.encode(), b"lifepalette operator cookie v1", hashlib.sha256).hexdigest()


def _bearer_ok(request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), request.app[TOKEN].encode())


def _cookie_ok(request: web.Request) -> bool:
    given = request.cookies.get(COOKIE, "")
    return hmac.compare_digest(given.encode(), _cookie_value(request.app[TOKEN]).encode())


def authenticated(request: web.Request, *, mutating: bool = False) -> bool:
    if _bearer_ok(request):
        return True
    if not _cookie_ok(request):
        return False
    return not mutating or request.headers.get(CSRF_HEADER) == "1"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=data if isinstance(data, str) else to_json(data), status=status,
                        content_type="application/json", headers={"Cache-Control": "no-store"})


def _unauthorized() -> web.Response:
    return web.Response(text=json.dumps({"error": "operator token required"}), status=401,
                        content_type="application/json",
                        headers={"WWW-Authenticate": 'Bearer realm="lifepalette operator"', "Cache-Control": "no-store"})


def _page(name: str, status: int = 200) -> web.Response:
    return web.Response(body=(STATIC / name).read_bytes(), status=status, content_type="text/html",
                        charset="utf-8", headers={"Cache-Control": "no-store"})


@web.middleware
async def security_headers(request: web.Request, handler):
    response = await handler(request)
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    return response


async def wall(request: web.Request) -> web.Response:
    return _page("wall.html")


async def api_cove(request: web.Request) -> web.Response:
    return _json(await request.app[FEEDS].public_view())


async def operator_page(request: web.Request) -> web.Response:
    if authenticated(request):
        return _page("operator.html")
    return _page("login.html", status=401)


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


async def login(request: web.Request) -> web.Response:
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = {}
        given = str(body.get("token", "")) if isinstance(body, dict) else ""
        wants_json = True
    else:
        given = str((await request.post()).get("token", ""))
        wants_json = False
    if not hmac.compare_digest(given.strip().encode(), request.app[TOKEN].encode()):
        await asyncio.sleep(0.25)  # slows guessing a little; the token has 128 bits anyway
        if wants_json:
            return _unauthorized()
        return _page("login.html", status=401)
    response = _json({"ok": True}) if wants_json else _see_other("/operator")
    response.set_cookie(COOKIE, _cookie_value(request.app[TOKEN]), httponly=True, samesite="Strict", path="/")
    return response


async def logout(request: web.Request) -> web.Response:
    response = _see_other("/operator")
    response.del_cookie(COOKIE, path="/")
    return response


async def operator_state(request: web.Request) -> web.Response:
    if not authenticated(request):
        return _unauthorized()
    return _json(await request.app[FEEDS].operator_view())


ACTIONS: dict[str, Callable[[HubSurface], Any]] = {
    "start_session": lambda hub: hub.start_session(), "end_session": lambda hub: hub.end_session(),
    "rotate_group_key": lambda hub: hub.rotate_group_key()}


def _action(method_name: str):
    async def handler(request: web.Request) -> web.Response:
        if not authenticated(request, mutating=True):
            return _unauthorized()
        hub = request.app[FEEDS].hub
        try:
            result = ACTIONS[method_name](hub)
        except Exception as exc:  # report the hub's refusal (e.g. "no session running") to the operator
            return _json({"ok": False, "action": method_name, "error": str(exc) or type(exc).__name__}, status=409)
        if isinstance(result, bytes | bytearray | memoryview):
            result = None  # e.g. rotate_group_key returns the new key: key material never goes to a browser
        request.app[FEEDS].operator.poke()
        request.app[FEEDS].public.poke()
        return _json({"ok": True, "action": method_name, "result": result})

    return handler


async def event_stream(request: web.Request, feed) -> web.StreamResponse:
    """Server-sent events from `feed` (one snapshot per change) until the client goes away."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    queue = feed.open_stream()
    try:
        await response.write(f"retry: 2000\ndata: {await feed.snapshot()}\n\n".encode())
        while True:
            try:
                text = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if text is None:  # app shutting down
                break
            await response.write(f"data: {text}\n\n".encode())
    except ConnectionResetError:  # the browser went away
        pass
    finally:
        feed.close_stream(queue)
    return response


async def cove_events(request: web.Request) -> web.StreamResponse:
    return await event_stream(request, request.app[FEEDS].public)


async def operator_events(request: web.Request) -> web.StreamResponse:
    if not authenticated(request):
        return _unauthorized()
    return await event_stream(request, request.app[FEEDS].operator)


def build_app(hub: HubSurface, token: str, *, cove: str = "cove", refresh_s: float = 2.0,
              watch_s: float | None = 0.25) -> web.Application:
    if not token:
        raise ValueError("the operator console needs a non-empty token")
    app = web.Application(middlewares=[security_headers])
    app[TOKEN] = token

    async def on_startup(app: web.Application) -> None:
        app[FEEDS] = HubFeeds(hub, cove, refresh_s, watch_s)
        app[FEEDS].start()

    async def on_shutdown(app: web.Application) -> None:
        await app[FEEDS].close()  # ends open event streams so shutdown does not wait for browsers

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.add_routes([
        web.get("/", wall),
        web.get("/api/cove", api_cove),
        web.get("/api/cove/events", cove_events),
        web.get("/operator", operator_page),
        web.post("/operator/login", login),
        web.post("/operator/logout", logout),
        web.get("/api/operator/state", operator_state),
        web.get("/api/operator/events", operator_events),
        web.post("/api/operator/session/start", _action("start_session")),
        web.post("/api/operator/session/end", _action("end_session")),
        web.post("/api/operator/group-key/rotate", _action("rotate_group_key")),
        web.static("/static", STATIC, append_version=False),
    ])
    return app


class WebRunner(web.AppRunner):
    """The runner `serve_web` returns: `.url` (the wall) and `.token` (the operator's) are set once it listens."""

    url: str = ""
    token: str = ""


async def serve_web(hub: HubSurface, host: str = "127.0.0.1", port: int = 8080, token: str | None = None, *,
                    cove: str = "cove", refresh_s: float = 2.0, watch_s: float | None = 0.25,
                    announce: bool = True) -> WebRunner:
    """Serve the wall and the console for `hub` on the running loop; `await runner.cleanup()` stops it.

    Without a token, a random one is made and printed, so the console is never open to everyone. The wall gets a
    new view after every scoring tick, and within `watch_s` of any change to the public view between ticks.
    """
    if not token:
        token = secrets.token_urlsafe(16)
        if announce:
            print(f"operator token: {token}", file=sys.stderr, flush=True)
    runner = WebRunner(build_app(hub, token, cove=cove, refresh_s=refresh_s, watch_s=watch_s), shutdown_timeout=2.0,
                       access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        from lifepalette.errors import LifePaletteError

        raise LifePaletteError(f"cannot serve the web app on {host}:{port}: {exc.strerror or exc}") from None
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    runner.url = f"http://{shown}:{bound_port}/"
    runner.token = token
    if announce:
        print(f"cove wall: {runner.url}   operator console: {runner.url}operator", file=sys.stderr, flush=True)
    return runner
