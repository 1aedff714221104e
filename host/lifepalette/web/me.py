"""The wearer's own page and API, and the operator's wearer cards (registered by `lifepalette.web.app.build_app`).

Routes:
  GET  /me                                      the wearer's page (the token stays in the URL fragment)
  GET  /api/me                                  this badge's journey, consent and what is stored about it
  GET  /api/me/export?format=csv|json           what the hub stores about this badge (`lifepalette export --dev N`)
  POST /api/me/erase                            erase this badge's physiology (header "X-LP-Wearer: 1"); the receipt
  GET  /api/operator/badges/{dev}/card          the badge's printable card (SVG: QR code and one line); ?base=URL
  POST /api/operator/badges/{dev}/card/rotate   a new link for the badge: every older card stops working at once

Wearer routes authenticate with "Authorization: Wearer <token>" (hub/wearer_link.py). Anything short of a valid
token gets the same 401 whether or not the badge exists; wrong tokens back off per client (429), on a backoff of
their own so a wearer's typos never lock the operator out. Nothing here reaches the public view, OSC, MQTT or LSL:
those read `Hub.public_view`, which knows nothing of this module.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any

from aiohttp import web

from lifepalette.hub import wearer_link
from lifepalette.web.auth import Backoff
from lifepalette.web.guard import client_of

WEARER_HEADER = "X-LP-Wearer"
WEARER_BACKOFF = web.AppKey("wearer_backoff", Backoff)
JOURNEYS = web.AppKey("journeys", dict)  # {"replay": Journeys}, made on first use
JOURNEY_LOCK = web.AppKey("journey_lock", asyncio.Lock)
HUB = web.AppKey("wearer_hub", Any)
EXPORT_FORMATS = ("csv", "json")


class _Denied(Exception):
    pass


def _store(request: web.Request):
    """The hub's store and site key, or None for a hub without them (a replay, a test double): no wearer there."""
    hub = request.app[HUB]
    store, site_key = getattr(hub, "store", None), getattr(hub, "site_key", None)
    return (hub, store, site_key) if store is not None and site_key is not None else None


def _wearer_token(request: web.Request) -> str | None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "wearer" else None


def wearer_of(request: web.Request) -> int:
    """The badge the request's token opens; _Denied otherwise (one answer for every reason)."""
    from lifepalette.web.app import _now, _TooManyAttempts

    token = _wearer_token(request)
    if not token:
        raise _Denied
    backoff = request.app[WEARER_BACKOFF]
    client = client_of(request)
    wait = backoff.retry_after(client, _now())
    if wait > 0:
        raise _TooManyAttempts(wait)
    found = _store(request)
    dev = None
    if found is not None:
        _hub, store, site_key = found
        dev = wearer_link.verify(site_key, token, store.wearer_generation)
        if dev is not None and not store.knows_device(dev):
            dev = None
    if dev is None:
        backoff.failed(client, _now())
        raise _Denied
    backoff.succeeded(client)
    return dev


def _denied() -> web.Response:
    return web.Response(text=json.dumps({"error": "this page needs a valid wearer link"}), status=401,
                        content_type="application/json",
                        headers={"WWW-Authenticate": 'Wearer realm="lifepalette wearer"', "Cache-Control": "no-store"})


def _wearer_route(handler):
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            dev = wearer_of(request)
        except _Denied:
            return _denied()
        return await handler(request, dev)

    return guarded


async def me_page(request: web.Request) -> web.Response:
    from lifepalette.web.app import _page

    return _page("me.html")


def _consent(store, hub, dev: int) -> dict:
    """The badge's consent as the hub last recorded it (its latest consent epoch), with the paused bit if live."""
    epochs = store.wearer_epochs(dev)
    latest = epochs[-1] if epochs else None
    badge = getattr(hub, "badges", {}).get(dev)
    paused = None
    if badge is not None and badge.consent is not None:
        from protocol.records import CONSENT_PAUSED

        paused = bool(badge.consent & CONSENT_PAUSED)
    return {"physiology": bool(latest and latest["physiology_shared"]),
            "colour": bool(latest and latest["colour_shared"]), "paused": paused,
            "revision": latest["revision"] if latest else None, "since": latest["opened_at"] if latest else None,
            "epoch": latest["epoch"] if latest else None}


async def _trajectory(request: web.Request, hub, store, dev: int) -> list[dict]:
    from lifepalette.hub.journey import SETTLE_S, Journeys

    holder = request.app[JOURNEYS]
    journeys = holder.get("replay")
    if journeys is None:
        groups = getattr(getattr(hub, "scorer", None), "groups", None)

        def scorer():
            from lifepalette.scoring import CoveScorer

            return CoveScorer(groups=groups)

        journeys = holder["replay"] = Journeys(store.path, scorer)
    async with request.app[JOURNEY_LOCK]:
        erasures = store.count_erasures()
        await asyncio.to_thread(journeys.update, time.time() - SETTLE_S, erasures)
        return journeys.of(dev)


def _in_session(points: list[dict], sessions: list[dict]) -> list[dict]:
    for point in points:
        point["session"] = next((s["id"] for s in sessions if s["started_at"] <= point["t"]
                                 and (s["ended_at"] is None or point["t"] <= s["ended_at"])), None)
    return points


@_wearer_route
async def api_me(request: web.Request, dev: int) -> web.Response:
    from lifepalette.web.app import _json

    hub, store, _key = _store(request)  # type: ignore[misc]
    sessions = store.wearer_sessions(dev)
    trajectory = _in_session(await _trajectory(request, hub, store, dev), sessions)
    return _json({"dev_id": dev, "consent": _consent(store, hub, dev), "epochs": store.wearer_epochs(dev),
                  "trajectory": trajectory, "stored": store.wearer_stored(dev), "sessions": sessions,
                  "erasures": store.wearer_receipts(dev), "now": time.time()})


@_wearer_route
async def api_me_export(request: web.Request, dev: int) -> web.Response:
    from lifepalette.hub import export
    from lifepalette.web.app import _json

    fmt = request.query.get("format", "csv")
    if fmt not in EXPORT_FORMATS:
        return _json({"error": f"format must be one of {', '.join(EXPORT_FORMATS)}"}, status=400)
    hub, store, _key = _store(request)  # type: ignore[misc]
    getattr(hub, "flush", lambda: None)()  # what is stored now, including the frames still in the batch
    disposition = {"Content-Disposition": f'attachment; filename="lifepalette-my-data.{fmt}"',
                   "Cache-Control": "no-store"}
    if fmt == "csv":
        buffer = io.StringIO(newline="")
        await asyncio.to_thread(export.write_csv, buffer, store.path, [dev])
        return web.Response(text=buffer.getvalue(), content_type="text/csv", charset="utf-8", headers=disposition)
    rows = await asyncio.to_thread(lambda: [dict(zip(export.COLUMNS, row, strict=True))
                                            for row in export.rows(store.path, [dev])])
    body = {"dev_id": dev, "columns": list(export.COLUMNS), "rows": rows, "consent_epochs": store.wearer_epochs(dev),
            "erasures": store.wearer_receipts(dev)}
    response = _json(body)
    response.headers.update(disposition)
    return response


@_wearer_route
async def api_me_erase(request: web.Request, dev: int) -> web.Response:
    from lifepalette.web.app import FEEDS, _json

    if request.headers.get(WEARER_HEADER) != "1":  # a browser cannot add it cross-site: the page's own CSRF guard
        return _json({"error": f"missing header {WEARER_HEADER}: 1"}, status=403)
    hub, _store_, _key = _store(request)  # type: ignore[misc]
    receipt = hub.erase(dev, None, reason="wearer")  # the hub's one durable erasure path (journal, receipt, scrub)
    scorer = getattr(hub, "scorer", None)
    if scorer is not None:
        scorer.forget(dev)  # as after a revocation: the live scorer keeps nothing of the erased physiology
    feeds = request.app.get(FEEDS)
    if feeds is not None:
        feeds.operator.poke()  # the receipt reaches the console now
    return _json(receipt)


def _operator_only(mutating: bool):
    def wrap(handler):
        async def guarded(request: web.Request) -> web.StreamResponse:
            from lifepalette.web.app import _json, _unauthorized, authenticated

            if not authenticated(request, mutating=mutating):
                return _unauthorized()
            found = _store(request)
            try:
                dev = int(request.match_info["dev"])
            except ValueError:
                dev = -1
            if found is None:
                return _json({"error": "this hub keeps no badges (a replay?)"}, status=409)
            if not 0 < dev <= 0xFFFF or not found[1].knows_device(dev):
                return _json({"error": f"no badge {request.match_info['dev']} in this hub"}, status=404)
            return await handler(request, found, dev)

        return guarded

    return wrap


def _base_of(request: web.Request) -> str:
    base = request.query.get("base")
    if base:
        return wearer_link.check_base(base)
    return f"{request.scheme}://{request.host}"


@_operator_only(mutating=False)
async def operator_card(request: web.Request, found, dev: int) -> web.Response:
    from lifepalette.errors import UsageError
    from lifepalette.web.app import _json

    _hub, store, site_key = found
    try:
        base = _base_of(request)
    except UsageError as exc:
        return _json({"error": str(exc)}, status=400)
    generation = store.issue_wearer_link(dev)  # printing the first card issues the badge's first link
    url = wearer_link.link(base, wearer_link.make_token(site_key, dev, generation))
    return web.Response(text=wearer_link.card_svg(url, dev), content_type="image/svg+xml", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


@_operator_only(mutating=True)
async def operator_rotate(request: web.Request, found, dev: int) -> web.Response:
    from lifepalette.web.app import _json

    generation = found[1].issue_wearer_link(dev, rotate=True)
    return _json({"ok": True, "dev_id": dev, "generation": generation})


def register(app: web.Application, hub: Any) -> None:
    app[HUB] = hub
    app[WEARER_BACKOFF] = Backoff()
    app[JOURNEY_LOCK] = asyncio.Lock()
    app[JOURNEYS] = {}
    app.add_routes([
        web.get("/me", me_page),
        web.get("/api/me", api_me),
        web.get("/api/me/export", api_me_export),
        web.post("/api/me/erase", api_me_erase),
        web.get("/api/operator/badges/{dev}/card", operator_card),
        web.post("/api/operator/badges/{dev}/card/rotate", operator_rotate),
    ])
