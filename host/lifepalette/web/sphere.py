"""The sphere: a city-level view of every cove publishing to an MQTT broker (public aggregates only).

  GET /                  the city view page
  GET /api/sphere        {"coves": [public cove views + "online"], "city": {...}, "broker_connected": bool}
  GET /api/sphere/events the same as server-sent events, on every change (and every few seconds)
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from lifepalette.outputs.mqtt import CoveDirectory
from lifepalette.web.app import STATIC, WebRunner, event_stream, security_headers
from lifepalette.web.feed import Feed, to_json

DIRECTORY = web.AppKey("directory", object)
FEED = web.AppKey("feed", Feed)


async def _page(request: web.Request) -> web.Response:
    return web.Response(body=(STATIC / "sphere.html").read_bytes(), content_type="text/html", charset="utf-8")


async def _api(request: web.Request) -> web.Response:
    return web.Response(text=to_json(request.app[DIRECTORY].snapshot()), content_type="application/json",
                        headers={"Cache-Control": "no-store"})


async def _events(request: web.Request) -> web.StreamResponse:
    return await event_stream(request, request.app[FEED])


def build_sphere_app(directory: CoveDirectory, refresh_s: float = 2.0) -> web.Application:
    app = web.Application(middlewares=[security_headers])
    app[DIRECTORY] = directory

    async def build() -> str:
        return to_json(directory.snapshot())

    async def on_startup(app: web.Application) -> None:
        app[FEED] = Feed(build, refresh_s)
        app[FEED].start()
        directory.on_change = app[FEED].poke

    async def on_shutdown(app: web.Application) -> None:
        directory.on_change = None
        with contextlib.suppress(asyncio.CancelledError):
            await app[FEED].close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.add_routes([web.get("/", _page), web.get("/api/sphere", _api), web.get("/api/sphere/events", _events),
                    web.static("/static", STATIC)])
    return app


async def serve_sphere(directory: CoveDirectory, host: str = "127.0.0.1", port: int = 8090) -> WebRunner:
    runner = WebRunner(build_sphere_app(directory), shutdown_timeout=2.0, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        from lifepalette.errors import LifePaletteError

        raise LifePaletteError(f"cannot serve the sphere on {host}:{port}: {exc.strerror or exc}") from None
    bound_host, bound_port = runner.addresses[0][:2]
    runner.url = f"http://{bound_host}:{bound_port}/"
    return runner
