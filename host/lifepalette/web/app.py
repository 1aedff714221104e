"""The hub's web app (aiohttp, on the hub's own event loop): the public cove wall and the operator console.

Routes (the README's "JSON API" section is the user-facing reference):
  GET  /                              the cove wall (public)
  GET  /api/cove                      public cove view: aggregates only when k >= 5 (lifepalette.outputs.public)
  GET  /api/cove/events               the same view as server-sent events, one per scoring tick
  GET  /api/cove/journey              the session's released views so far (the wall's ribbon)
  GET  /operator/report?session=N     the facilitator's session report (auth; default the latest session)
  GET  /operator                      the console (a login form with 401 until the token is given)
  POST /operator/login                form or JSON {"token": ...}: sets an HttpOnly, SameSite=Strict cookie
  POST /operator/logout
  GET  /api/operator/state            operator state (auth: "Authorization: Bearer TOKEN" or the cookie)
  GET  /api/operator/events           operator state as server-sent events
  POST /api/operator/session/start | /api/operator/session/end | /api/operator/group-key/rotate
The wearer's own page (/me, /api/me...) and the operator's wearer cards: lifepalette.web.me.
Cookie-authenticated POSTs must carry the header "X-LP-Operator: 1" (a browser cannot add it cross-site: CSRF guard).
The cookie is a random session id held by the server (lifepalette.web.auth); wrong tokens back off per client (429).
Connections, event streams and slow clients are bounded by lifepalette.web.guard.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from lifepalette.hub.contracts import HubSurface
from lifepalette.web.auth import Backoff, Sessions, TokenSource
from lifepalette.web.feed import HubFeeds, to_json
from lifepalette.web.guard import (
    GUARD,
    ConnectionGuard,
    GuardedSite,
    Limits,
    RateLimitedLog,
    client_of,
    guard_requests,
    quiet_server_logs,
    streaming,
)

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "lp_operator"
CSRF_HEADER = "X-LP-Operator"
FEEDS = web.AppKey("feeds", HubFeeds)
TOKENS = web.AppKey("tokens", TokenSource)
SESSIONS = web.AppKey("sessions", Sessions)
BACKOFF = web.AppKey("backoff", Backoff)
MAX_LOGIN_BODY = 4096
KEEPALIVE_S = 15.0

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _now() -> float:
    return time.monotonic()


def _bearer(request: web.Request) -> str | None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else None


class _TooManyAttempts(Exception):
    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s


def _check_backoff(request: web.Request) -> None:
    wait = request.app[BACKOFF].retry_after(client_of(request), _now())
    if wait > 0:
        raise _TooManyAttempts(wait)


def _failed(request: web.Request) -> None:
    request.app[BACKOFF].failed(client_of(request), _now())


def authenticated(request: web.Request, *, mutating: bool = False) -> bool:
    """True for a valid bearer token or session cookie. Wrong credentials count against the client's backoff;
    while it is backing off, raises _TooManyAttempts without checking anything."""
    bearer = _bearer(request)
    sid = request.cookies.get(COOKIE, "")
    if bearer is None and not sid:
        return False
    _check_backoff(request)
    now = _now()
    if bearer is not None:
        if request.app[TOKENS].matches(bearer, now):
            request.app[BACKOFF].succeeded(client_of(request))
            return True
        _failed(request)
        return False
    if not request.app[SESSIONS].valid(sid, now):
        return False  # an expired or revoked session (ids are 256-bit random: not worth guessing, so no backoff)
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


_BUG_LOG = RateLimitedLog(logging.getLogger("lifepalette.web"))


def _too_many(wait_s: float) -> web.Response:
    return web.Response(text=json.dumps({"error": "too many failed attempts: wait before trying again"}), status=429,
                        content_type="application/json",
                        headers={"Retry-After": str(max(1, round(wait_s))), "Cache-Control": "no-store"})


@web.middleware
async def security_headers(request: web.Request, handler):
    """Every response carries the security headers, errors (404, 403, 500) included; no traceback reaches a client."""
    try:
        response = await handler(request)
    except _TooManyAttempts as exc:
        response = _too_many(exc.wait_s)
    except web.HTTPException as exc:  # 404, 405, 403, 413 ...: answered as a plain response with the headers
        if exc.empty_body:
            response = web.Response(status=exc.status, headers=exc.headers)
        else:
            response = web.Response(status=exc.status, text=exc.text, headers=exc.headers)
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:  # a bug: log one line, answer 500 with the headers, keep serving
        _BUG_LOG.warn("500:" + type(exc).__name__,
                      f"web: {request.method} {request.path} failed: {type(exc).__name__}: {exc}")
        response = web.Response(status=500, text="internal error")
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


async def _given_token(request: web.Request) -> tuple[str, bool]:
    """The token a login request carries, and whether it asked for JSON. Malformed bodies give an empty token."""
    if request.content_length is not None and request.content_length > MAX_LOGIN_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_LOGIN_BODY, actual_size=request.content_length)
    if request.content_type == "application/json":
        raw = await request.content.read(MAX_LOGIN_BODY + 1)
        if len(raw) > MAX_LOGIN_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_LOGIN_BODY, actual_size=len(raw))
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the parser's depth
            body = {}
        token = body.get("token", "") if isinstance(body, dict) else ""
        return (token if isinstance(token, str) else ""), True
    form = await request.post()
    token = form.get("token", "")
    return (token if isinstance(token, str) else ""), False


async def login(request: web.Request) -> web.Response:
    _check_backoff(request)
    given, wants_json = await _given_token(request)
    if not request.app[TOKENS].matches(given, _now()):
        _failed(request)
        if wants_json:
            return _unauthorized()
        return _page("login.html", status=401)
    request.app[BACKOFF].succeeded(client_of(request))
    response = _json({"ok": True}) if wants_json else _see_other("/operator")
    sid = request.app[SESSIONS].create(_now())
    response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", path="/",
                        max_age=int(request.app[SESSIONS].ttl_s))
    return response


async def logout(request: web.Request) -> web.Response:
    request.app[SESSIONS].revoke(request.cookies.get(COOKIE, ""))
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


@streaming
async def cove_events(request: web.Request) -> web.StreamResponse:
    return await event_stream(request, request.app[FEEDS].public)


@streaming
async def operator_events(request: web.Request) -> web.StreamResponse:
    if not authenticated(request):
        return _unauthorized()
    return await event_stream(request, request.app[FEEDS].operator)


# -- the session as a picture (issue 17): the wall's journey and the facilitator's report -----------------------
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'"


async def cove_journey(request: web.Request) -> web.Response:
    """The session's released views so far (public; ?since=T for the points after T): the wall's ribbon."""
    try:
        since = float(request.query["since"]) if "since" in request.query else None
    except ValueError:
        raise web.HTTPBadRequest(text="since must be a time in seconds") from None
    return _json(request.app[FEEDS].journey_json(since if since is None or math.isfinite(since) else None))


async def session_report(request: web.Request) -> web.Response:
    """The facilitator's report of a session (?session=N, default the latest), as `lifepalette report` writes it."""
    if not authenticated(request):
        return _unauthorized()
    store = getattr(request.app[FEEDS].hub, "store", None)
    if store is None or not hasattr(store, "path"):
        raise web.HTTPNotFound(text="this hub keeps no database to report from")
    wanted = request.query.get("session")
    if wanted is not None and not wanted.isdigit():
        raise web.HTTPBadRequest(text="session must be a number")
    from lifepalette.errors import UsageError
    from lifepalette.report.load import load_report
    from lifepalette.report.render import render

    try:
        report = await asyncio.to_thread(load_report, store.path, int(wanted) if wanted else None,
                                         cove=request.app[FEEDS].cove)
    except UsageError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    return web.Response(text=render(report), content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store", "Content-Security-Policy": REPORT_CSP})


PICTURE_ROUTES = [web.get("/api/cove/journey", cove_journey), web.get("/operator/report", session_report)]


def build_app(hub: HubSurface, token: str | TokenSource, *, cove: str = "cove", refresh_s: float = 2.0,
              watch_s: float | None = 0.25, limits: Limits | None = None) -> web.Application:
    """The web app; `token` is the operator's (checked: at least 16 characters, no placeholder) or a TokenSource."""
    tokens = token if isinstance(token, TokenSource) else TokenSource(token)
    app = web.Application(middlewares=[security_headers, guard_requests], client_max_size=64 * 1024)
    app[TOKENS] = tokens
    app[SESSIONS] = Sessions(tokens)
    app[BACKOFF] = Backoff()
    app[GUARD] = ConnectionGuard(limits or Limits())

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
        *PICTURE_ROUTES,
        web.static("/static", STATIC, append_version=False),
    ])
    from lifepalette.web import me  # the wearer's own page and API, and the operator's wearer cards

    me.register(app, hub)
    return app


class WebRunner(web.AppRunner):
    """The runner `serve_web` returns: `.url` (the wall) and `.token` (the operator's) are set once it listens."""

    url: str = ""
    token: str = ""


async def serve_web(hub: HubSurface, host: str = "127.0.0.1", port: int = 8080, token: str | TokenSource | None = None, *,
                    cove: str = "cove", refresh_s: float = 2.0, watch_s: float | None = 0.25,
                    announce: bool = True, limits: Limits | None = None) -> WebRunner:
    """Serve the wall and the console for `hub` on the running loop; `await runner.cleanup()` stops it.

    Without a token, a random one is made and printed, so the console is never open to everyone. The wall gets a
    new view after every scoring tick, and within `watch_s` of any change to the public view between ticks.
    """
    made_token = not token
    if made_token:
        token = secrets.token_urlsafe(16)
    quiet_server_logs()
    app = build_app(hub, token, cove=cove, refresh_s=refresh_s, watch_s=watch_s, limits=limits)
    runner = WebRunner(app, shutdown_timeout=2.0, access_log=None, keepalive_timeout=app[GUARD].limits.idle_timeout_s)
    await runner.setup()
    site = GuardedSite(runner, host, port, app[GUARD])
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        from lifepalette.errors import UsageError

        raise UsageError(f"cannot serve the web app on {host}:{port}: {exc.strerror or exc}") from None
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    runner.url = f"http://{shown}:{bound_port}/"
    runner.token = token.current(time.monotonic()) if isinstance(token, TokenSource) else token
    if announce:
        if made_token:  # printed once the server listens, so a failure to bind stays a one-line error
            print(f"operator token: {runner.token}", file=sys.stderr, flush=True)
        print(f"cove wall: {runner.url}   operator console: {runner.url}operator", file=sys.stderr, flush=True)
    return runner
