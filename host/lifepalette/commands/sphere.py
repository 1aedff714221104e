"""`lifepalette sphere --mqtt URL [--http HOST:PORT]`: the city-level view of every cove on an MQTT broker."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sphere", help="city-level view of every cove publishing to an MQTT broker",
        description="Subscribe to lifepalette/+/state on an MQTT broker (public aggregates only, k >= 5) and serve "
                    "a city-level view of every cove over HTTP. Stops with Ctrl-C.")
    parser.add_argument("--mqtt", required=True, metavar="URL",
                        help="broker URL, mqtt://[user:pass@]host[:port] or mqtts://... for TLS")
    parser.add_argument("--http", default="127.0.0.1:8090", metavar="HOST:PORT",
                        help="where to serve the view (default 127.0.0.1:8090)")
    parser.add_argument("--seconds", type=float, default=None, metavar="S",
                        help="stop after S seconds (default: run until Ctrl-C)")
    parser.set_defaults(func=run)


def parse_http(text: str) -> tuple[str, int]:
    from lifepalette.addresses import split_host_port
    from lifepalette.errors import UsageError

    try:
        return split_host_port(text, default_host="127.0.0.1", allow_port_zero=True)
    except ValueError:
        raise UsageError(f"bad --http {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8090") from None


def run(args: argparse.Namespace) -> int:
    import asyncio

    from lifepalette.errors import UsageError
    from lifepalette.outputs.mqtt import CoveDirectory, parse_broker_url

    if args.seconds is not None and args.seconds <= 0:
        raise UsageError("--seconds must be > 0")
    parse_broker_url(args.mqtt)
    host, port = parse_http(args.http)
    asyncio.run(_serve(CoveDirectory(args.mqtt), host, port, args.seconds))
    return 0


async def _serve(directory, host: str, port: int, seconds: float | None) -> None:
    import asyncio
    import sys

    from lifepalette.web.sphere import serve_sphere

    runner = await serve_sphere(directory, host, port)
    directory.start()
    print(f"sphere: {runner.url}  (subscribed to {directory.broker.host}:{directory.broker.port})",
          file=sys.stderr, flush=True)
    try:
        if seconds is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(seconds)
    finally:
        directory.stop()
        await runner.cleanup()
