"""The wearer's own page and API, and the operator's wearer cards (registered by `lifepalette.web.app.build_app`).

Routes:
  GET  /me                                      the wearer's page (the token stays in the URL fragment)
  GET  /api/me                                  this badge's journey, consent and what is stored about it
  GET  /api/me/export?format=csv|json           what the hub stores about this badge (`lifepalette export --dev N`)
  POST /api/me/erase                            erase this badge's physiology (header "X-LP-Wearer: 1"); the receipt
  GET  /api/operator/badges/{dev}/card          the badge's printable card (SVG: QR code and one line); ?base=URL
  POST /api/operator/badges/{dev}/card/rotate   a new link for the badge: every older card stops working at once

The app sees the hub here only through `lifepalette.hub.wearer_access.WearerAccess` (None for a hub without a
store, e.g. a replay: then every wearer route answers 401). Wearer routes authenticate with "Authorization: Wearer <token>" (hub/wearer_link.py). Anything short of a valid
token gets the same 401 whether or not the badge exists; wrong tokens back off per client (429), on a backoff of
their own so a wearer's typos never lock the operator out. Nothing here reaches the public view, OSC, MQTT or LSL:
those read `Hub.public_view`, which knows nothing of this module.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3

from aiohttp import web

from lifepalette.errors import UsageError
from lifepalette.hub import wearer_link
from lifepalette.hub.wearer_access import WearerAccess
from lifepalette.web.auth import Backoff
from lifepalette.web.guard import client_of

WEARER_HEADER = "X-LP-Wearer"
WEARER_BACKOFF = web.AppKey("wearer_backoff", Backoff)
ACCESS = web.AppKey("wearer_access", dict)  # {"access": WearerAccess | None}
JOURNEY_LOCK = web.AppKey("journey_lock", asyncio.Lock)
WARMING = web.AppKey("journey_warming", dict)  # {"task": the start-up replay's task, or None}
log = logging.getLogger(__name__)
EXPORT_FORMATS = ("csv", "json")


class _Denied(Exception):
    pass


def _access(request: web.Request) -> WearerAccess | None:
    return request.app[ACCESS]["access"]


def _wearer_token(request: web.Request) -> str | None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "wearer" else None


def wearer_of(request: web.Request) -> tuple[WearerAccess, int]:
    """The hub's wearer access and the badge the request's token opens; _Denied otherwise (one answer for all)."""
    from lifepalette.web.app import _now, _TooManyAttempts

    token = _wearer_token(request)
    if not token:
        raise _Denied
    backoff = request.app[WEARER_BACKOFF]
    client = client_of(request)
    wait = backoff.retry_after(client, _now())
    if wait > 0:
        raise _TooManyAttempts(wait)
    access = _access(request)
    dev = access.badge_for(token) if access is not None else None
    if access is None or dev is None:
        backoff.failed(client, _now())
        raise _Denied
    backoff.succeeded(client)
    return access, dev


def _denied() -> web.Response:
    return web.Response(text=json.dumps({"error": "this page needs a valid wearer link"}), status=401,
                        content_type="application/json",
                        headers={"WWW-Authenticate": 'Wearer realm="lifepalette wearer"', "Cache-Control": "no-store"})


def _wearer_route(handler):
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            access, dev = wearer_of(request)
        except _Denied:
            return _denied()
        return await handler(request, access, dev)

    return guarded


async def me_page(request: web.Request) -> web.Response:
    from lifepalette.web.app import _page

    return _page("me.html")


@_wearer_route
async def api_me(request: web.Request, access: WearerAccess, dev: int) -> web.Response:
    from lifepalette.web.app import _json

    async with request.app[JOURNEY_LOCK]:
        await _update_journeys(access)
        trajectory = access.journeys.of(dev)
    return _json(access.about(dev, trajectory))


async def _update_journeys(access: WearerAccess) -> None:
    """Read what the store gained since the last update (call under JOURNEY_LOCK: one replay at a time), in a worker
    thread off the hub's loop."""
    until, erasures = access.journey_inputs()
    await asyncio.to_thread(access.journeys.update, until, erasures)


@_wearer_route
async def api_me_export(request: web.Request, access: WearerAccess, dev: int) -> web.Response:
    from lifepalette.web.app import _json

    fmt = request.query.get("format", "csv")
    if fmt not in EXPORT_FORMATS:
        return _json({"error": f"format must be one of {', '.join(EXPORT_FORMATS)}"}, status=400)
    access.flush()
    disposition = {"Content-Disposition": f'attachment; filename="lifepalette-my-data.{fmt}"',
                   "Cache-Control": "no-store"}
    if fmt == "csv":
        text = await asyncio.to_thread(access.export_csv, dev)
        return web.Response(text=text, content_type="text/csv", charset="utf-8", headers=disposition)
    rows = await asyncio.to_thread(access.export_rows, dev)
    response = _json(access.export_json(dev, rows))
    response.headers.update(disposition)
    return response


@_wearer_route
async def api_me_erase(request: web.Request, access: WearerAccess, dev: int) -> web.Response:
    from lifepalette.web.app import FEEDS, _json

    if request.headers.get(WEARER_HEADER) != "1":  # a browser cannot add it cross-site: the page's CSRF guard
        return _json({"error": f"missing header {WEARER_HEADER}: 1"}, status=403)
    receipt = access.erase(dev)
    feeds = request.app.get(FEEDS)
    if feeds is not None:
        feeds.operator.poke()  # the receipt reaches the console now
    return _json({**receipt, "receipt": receipt})  # the receipt's fields, and under "receipt" as `erase` prints it


def _operator_only(mutating: bool):
    def wrap(handler):
        async def guarded(request: web.Request) -> web.StreamResponse:
            from lifepalette.web.app import _json, _unauthorized, authenticated

            if not authenticated(request, mutating=mutating):
                return _unauthorized()
            access = _access(request)
            if access is None:
                return _json({"error": "this hub keeps no badges (a replay?)"}, status=409)
            given = request.match_info["dev"]
            if not given.isdigit() or not access.knows(int(given)):
                return _json({"error": f"no badge {given} in this hub"}, status=404)
            return await handler(request, access, int(given))

        return guarded

    return wrap


@_operator_only(mutating=False)
async def operator_card(request: web.Request, access: WearerAccess, dev: int) -> web.Response:
    from lifepalette.web.app import _json

    try:
        base = wearer_link.check_base(request.query.get("base") or f"{request.scheme}://{request.host}")
    except UsageError as exc:
        return _json({"error": str(exc)}, status=400)
    return web.Response(text=access.card(dev, base), content_type="image/svg+xml", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


@_operator_only(mutating=True)
async def operator_rotate(request: web.Request, access: WearerAccess, dev: int) -> web.Response:
    from lifepalette.web.app import _json

    return _json({"ok": True, "dev_id": dev, "generation": access.rotate(dev)})


async def _replay_journeys(app: web.Application) -> None:
    """The wearers' journeys replayed from the store as the hub starts, so the first wearer to open their page does
    not wait for the whole store to be read (requests wait on the same lock until it is done)."""
    access = app[ACCESS]["access"]
    if access is None:
        return
    async with app[JOURNEY_LOCK]:
        try:
            await _update_journeys(access)
        except sqlite3.DatabaseError as exc:  # the first request reads it again and answers with the error
            log.warning("wearer journeys: start-up replay failed: %s", exc)


async def _start_replay(app: web.Application) -> None:
    app[WARMING]["task"] = asyncio.create_task(_replay_journeys(app))


async def _stop_replay(app: web.Application) -> None:
    access = app[ACCESS]["access"]
    if access is not None:
        access.journeys.stop()  # a replay still reading ends at its next frame instead of holding up the shutdown
    task = app[WARMING]["task"]
    if task is not None:
        await asyncio.gather(task, return_exceptions=True)


def register(app: web.Application, hub) -> None:
    app[ACCESS] = {"access": WearerAccess.of(hub)}
    app[WEARER_BACKOFF] = Backoff()
    app[JOURNEY_LOCK] = asyncio.Lock()
    app[WARMING] = {"task": None}
    app.on_startup.append(_start_replay)
    app.on_shutdown.append(_stop_replay)
    app.add_routes([
        web.get("/me", me_page),
        web.get("/api/me", api_me),
        web.get("/api/me/export", api_me_export),
        web.post("/api/me/erase", api_me_erase),
        web.get("/api/operator/badges/{dev}/card", operator_card),
        web.post("/api/operator/badges/{dev}/card/rotate", operator_rotate),
    ])
