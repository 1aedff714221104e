"""`lifepalette demo`: the whole system on one machine: hub, N virtual MicroPython badges, the cove wall."""

from __future__ import annotations

import argparse

DEFAULT_BADGES = 12
FIRST_DEV_ID = 258  # 0x102: clear of 0 and of the small ids people type by hand
DEMO_LEARN_S = 30  # baselines learnt over 30 s instead of the hub's 3 min, so the wall moves within a minute


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run a hub, virtual badges and the cove wall locally",
        description="Start the hub (UDP + web app on 127.0.0.1), enrol N badges into a temporary database, run N "
                    "virtual badges as real MicroPython processes fed by a simulator scenario, and print the wall's "
                    "URL and the operator token. Ctrl-C (or --seconds) stops every process the demo started.")
    parser.add_argument("--badges", type=int, default=DEFAULT_BADGES, metavar="N",
                        help=f"how many virtual badges (default {DEFAULT_BADGES}; the wall needs 5)")
    parser.add_argument("--port", type=int, default=8080, help="web port on 127.0.0.1 (default 8080; 0 = any free)")
    parser.add_argument("--scenario", default="healing",
                        help="simulator scenario feeding the badges: calm, dialogue, confrontation, healing (default)")
    parser.add_argument("--seconds", type=float, default=None, metavar="S",
                        help="stop after S seconds (default: run until Ctrl-C)")
    parser.add_argument("--token", default=None,
                        help="operator token for this local demo, at least 16 characters (default: a random one, "
                             "printed)")
    parser.add_argument("--cove", default="demo-cove", help="cove name shown on the wall and used by OSC/MQTT")
    parser.add_argument("--osc", metavar="HOST:PORT", help="also send OSC to HOST:PORT (see README: OSC addresses)")
    parser.add_argument("--osc-rate", type=float, default=2.0, metavar="HZ",
                        help="OSC messages per second (default 2)")
    parser.add_argument("--mqtt", metavar="URL", help="also publish public aggregates to an MQTT broker")
    parser.add_argument("--lsl", action="store_true",
                        help="also stream the public view over Lab Streaming Layer (needs the [lsl] extra)")
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    from lifepalette.errors import UsageError

    if not 1 <= args.badges <= 200:
        raise UsageError("--badges must be between 1 and 200")
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be 0-65535")
    if args.seconds is not None and args.seconds <= 0:
        raise UsageError("--seconds must be > 0")
    if not 0 < args.osc_rate <= 1000:
        raise UsageError("--osc-rate must be between 0 and 1000 Hz")
    try:
        from lifepalette.sim.scenarios import SCENARIO_NAMES
    except ImportError:  # the simulator names its scenarios; without the table, let the badge launcher judge
        return
    if args.scenario not in SCENARIO_NAMES:
        raise UsageError(f"unknown scenario {args.scenario!r}: choose from {', '.join(SCENARIO_NAMES)}")


def run(args: argparse.Namespace) -> int:
    import asyncio

    _check(args)
    if args.token is not None:
        from lifepalette.web.auth import check_token

        args.token = check_token(args.token, "--token")
    if args.osc:
        from lifepalette.outputs.osc import parse_target

        parse_target(args.osc)
    if args.mqtt:
        from lifepalette.outputs.mqtt import parse_broker_url

        parse_broker_url(args.mqtt)
    return asyncio.run(Demo(args).run())


def _demo_scorer():
    from lifepalette.scoring import CoveScorer

    return CoveScorer(learn_s=DEMO_LEARN_S)


def hue_clicks(index: int, start_s: float = 5.0) -> str:
    """Scripted clicks so badge `index` picks its own hue, as a wearer would (8 hue steps, one per click)."""
    return ",".join(f"click@{start_s + 1.0 * k:g}" for k in range(index % 8))


def badge_command(config: str, hub_port: int, scenario: str, seed: int, index: int = 0) -> list[str]:
    """One virtual badge: `lifepalette badge run` (real MicroPython firmware, unix HAL) consenting at start."""
    import sys

    cmd = [sys.executable, "-m", "lifepalette", "badge", "run", "--config", config,
           "--udp", f"127.0.0.1:{hub_port}", "--scenario", scenario, "--seed", str(seed), "--consent"]
    clicks = hue_clicks(index)
    return cmd + ["--press", clicks] if clicks else cmd


class Demo:
    """Owns everything the demo starts, and stops all of it (finally-blocks and signal handlers, no orphans).

    Each badge runs in its own process group, so stopping a badge also stops whatever it started (its MicroPython
    child); the demo signals the whole group, waits, then kills what is left.
    """

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.procs: list = []
        self.logs: dict[int, str] = {}
        self.outputs: list = []
        self.runner = None
        self.hub = None

    async def run(self) -> int:
        import asyncio
        import signal
        import tempfile

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        with tempfile.TemporaryDirectory(prefix="lifepalette-demo-") as tmp:
            try:
                await self._start(tmp)
                await self._wait(stop)
            finally:
                await self._stop()
        return 0

    async def _start(self, tmp: str) -> None:
        import os

        from lifepalette.hub import Hub
        from lifepalette.hub.sitekey import badge_config, write_private_json
        from lifepalette.web import serve_web

        args = self.args
        self.hub = Hub(os.path.join(tmp, "hub.db"), udp=("127.0.0.1", 0), cadence_s=1.0, scorer=_demo_scorer())
        configs = []
        for i in range(args.badges):
            dev_id = FIRST_DEV_ID + i
            key = self.hub.enroll(dev_id)
            path = os.path.join(tmp, f"badge-{dev_id}.json")
            write_private_json(path, badge_config(dev_id, key, self.hub.group_id, self.hub.group_key))
            configs.append(path)
        await self.hub.start()
        hub_port = self.hub.transports[0].port
        self.runner = await serve_web(self.hub, "127.0.0.1", args.port, args.token, cove=args.cove, announce=False)
        await self._start_outputs()
        for i, config in enumerate(configs):
            self._spawn(badge_command(config, hub_port, args.scenario, seed=i, index=i),
                        os.path.join(tmp, f"badge-{i}.log"))
        url, token = self.runner.url, self.runner.token
        ends = f"Stops after {args.seconds:g} s" if args.seconds else "Ctrl-C stops the demo"
        print(f"Life Palette demo: {args.badges} virtual badges (MicroPython), scenario {args.scenario!r}\n"
              f"  cove wall:        {url}\n"
              f"  operator console: {url}operator#token={token}\n"
              f"  operator token:   {token}\n"
              f"  hub UDP:          127.0.0.1:{hub_port}\n"
              f"{ends} (and every process it started).", flush=True)

    async def _start_outputs(self) -> None:
        from lifepalette.outputs import start_outputs

        self.outputs = await start_outputs(self.hub, osc=self.args.osc, mqtt=self.args.mqtt, cove=self.args.cove,
                                           osc_rate_hz=self.args.osc_rate, lsl=self.args.lsl, prog="lifepalette demo")

    def _spawn(self, cmd: list[str], log_path: str) -> None:
        import subprocess

        with open(log_path, "wb") as log:
            self.procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                               process_group=0))
        self.logs[self.procs[-1].pid] = log_path

    async def _wait(self, stop) -> None:
        import asyncio
        import sys

        deadline = None if self.args.seconds is None else asyncio.get_running_loop().time() + self.args.seconds
        reported: set[int] = set()
        while not stop.is_set():
            timeout = 1.0 if deadline is None else min(1.0, deadline - asyncio.get_running_loop().time())
            if timeout <= 0:
                break
            try:
                await asyncio.wait_for(stop.wait(), timeout)
            except TimeoutError:
                pass
            for proc in self.procs:
                if proc.poll() is not None and proc.pid not in reported:
                    reported.add(proc.pid)
                    print(f"demo: a virtual badge exited with code {proc.returncode}; its log: "
                          f"{_tail(self.logs[proc.pid])}", file=sys.stderr, flush=True)
            if len(reported) == len(self.procs) and self.procs:
                print("demo: every virtual badge has exited; stopping", file=sys.stderr, flush=True)
                break

    async def _stop(self) -> None:
        import asyncio

        from lifepalette.outputs import stop_outputs

        await asyncio.to_thread(stop_process_groups, self.procs)
        await stop_outputs(self.outputs)
        if self.runner is not None:
            await self.runner.cleanup()
        if self.hub is not None:
            await self.hub.stop()
            print(f"demo stopped: {len(self.procs)} badges stopped, {self.hub.store.frames_committed} frames stored, "
                  f"{sum(self.hub.rejections.values())} rejected", flush=True)


def _tail(path: str, lines: int = 3) -> str:
    try:
        with open(path, "rb") as fh:
            return " | ".join(fh.read().decode(errors="replace").strip().splitlines()[-lines:]) or "(empty)"
    except OSError:
        return "(no log)"


def stop_process_groups(procs: list, grace_s: float = 3.0) -> None:
    """SIGTERM each child's process group, wait up to `grace_s` in all, then SIGKILL the groups still there."""
    import os
    import signal
    import time

    def signal_group(proc, sig) -> None:
        try:
            os.killpg(proc.pid, sig)  # process_group=0 made the child its group's leader: pgid == pid
        except (ProcessLookupError, PermissionError):
            pass

    for proc in procs:
        signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except Exception:  # subprocess.TimeoutExpired: killed below
            pass
    for proc in procs:
        signal_group(proc, signal.SIGKILL)  # also reaps grandchildren that outlived their parent in the group
        try:
            proc.wait(2.0)
        except Exception:
            pass
