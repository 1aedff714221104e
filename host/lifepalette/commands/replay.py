"""`lifepalette replay --db cove.db [--session N] [--as-fast | --speed X] [--timeline] [--http HOST:PORT]`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lifepalette.errors import UsageError


def register(subparsers: Any) -> None:
    from lifepalette.commands.hub import host_port

    p = subparsers.add_parser(
        "replay",
        help="re-run a stored session's frames through the hub's scorer (same public timeline again)",
        description="Replay a session stored in a hub database: its frames, in the order the hub received them, "
        "through the same scorer, releasing the public view of each second again (the same colours the wall "
        "showed). Erased physiology stays erased: those seconds replay without it and are listed as gaps. "
        "Prints a JSON summary; --timeline prints one JSON line per released second, "
        '{"t": T, "public": {...}}, and the summary goes to stderr.',
    )
    p.add_argument("--db", required=True, help="the hub's database (opened read-only)")
    p.add_argument("--session", type=int, metavar="N", help="session id (default: the latest; all frames if none)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--as-fast", action="store_true", help="as fast as the scorer runs (default: real time)")
    pace.add_argument("--speed", type=float, metavar="X", help="X session seconds per wall second (default 1)")
    p.add_argument("--timeline", action="store_true", help="print one JSON line per released second")
    p.add_argument("--http", type=host_port, metavar="HOST:PORT",
                   help="serve the replay to a cove wall (and keep serving the last view until Ctrl-C)")
    p.add_argument("--groups", metavar="GROUPS.json", help="dialogue groups, as the hub had them (default one)")
    p.add_argument("--learn-s", type=int, default=None, metavar="S",
                   help="baseline learning time the recording hub used (default the hub's 180 s; the demo: 30)")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="seed of the release mechanism (public-view noise, swatch order); the same seed, the same "
                   "timeline")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lifepalette.hub import replay as rp

    if args.speed is not None and not 0 < args.speed <= 1e6:
        raise UsageError("--speed must be a positive number")
    if args.learn_s is not None and args.learn_s < 1:
        raise UsageError("--learn-s must be at least 1")
    groups = None
    if args.groups:
        from lifepalette.scoring.offline import load_groups

        groups = load_groups(args.groups)
    con = rp.open_readonly(args.db)
    try:
        session = rp.find_session(con, args.session)
    except BaseException:
        con.close()
        raise
    if args.http:
        import asyncio

        return asyncio.run(_serve(args, con, session, groups))
    try:
        summary = _replay(args, con, session, groups, wall=None)
    except BrokenPipeError:
        return 0
    finally:
        con.close()
    _print_summary(summary, args.timeline)
    return 0


def _replay(args: argparse.Namespace, con: Any, session: Any, groups: Any, wall: Any) -> dict:
    import hashlib

    from lifepalette.hub import replay as rp
    from lifepalette.hub.views import public_release
    from lifepalette.scoring import CoveScorer

    scorer = CoveScorer(groups, **({} if args.learn_s is None else {"learn_s": args.learn_s}))
    released = {"session": session.id, "released_seconds": 0, "t": None}

    def emit(t: int, view: Any) -> None:
        if args.timeline:
            sys.stdout.write(json.dumps({"t": t, "public": view.to_json()}, allow_nan=False) + "\n")
            sys.stdout.flush()
        if wall is not None:
            released.update(released_seconds=released["released_seconds"] + 1, t=t)
            wall.show(view, dict(released))

    speed = None if args.as_fast else (args.speed or 1.0)
    salt = hashlib.sha256(f"replay:{args.seed}".encode()).digest()
    summary = rp.replay(rp.stored_frames(con, session.end), scorer, session, emit, speed=speed,
                        rng=public_release(args.seed), salt=salt)
    return summary.as_dict()


def _print_summary(summary: dict, timeline: bool) -> None:
    out = sys.stderr if timeline else sys.stdout
    json.dump(summary, out)
    out.write("\n")
    out.flush()


async def _serve(args: argparse.Namespace, con: Any, session: Any, groups: Any) -> int:
    import asyncio
    import signal

    from lifepalette.hub.replay import ReplaySurface
    from lifepalette.web import serve_web

    wall = ReplaySurface({"session": session.id, "released_seconds": 0, "t": None})
    runner = await serve_web(wall, args.http[0], args.http[1], None, cove="replay")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        # the replay runs in a thread (it paces with sleeps); the wall's feeds are poked from there
        summary = await asyncio.to_thread(_replay, args, con, session, groups, wall)
        _print_summary(summary, args.timeline)
        wall.progress = {**wall.progress, "finished": True}
        await stop.wait()
    finally:
        con.close()
        await runner.cleanup()
    return 0
