"""Live feeds for the web app: after each scoring tick, one snapshot is built and handed to every open stream.

The hub calls `subscribe(callback)` callbacks with no arguments after each tick. The callback only sets an event
(thread-safe); one task per feed builds the snapshot once and offers it to each client's one-slot queue, so a slow
browser skips stale snapshots instead of holding memory or slowing the hub.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from lifepalette.hub.contracts import HubSurface
from lifepalette.hub.journey import Journey
from lifepalette.outputs.public import published
from lifepalette.privacy import K_MIN
from lifepalette.web.dashboard import OperatorHistory, badge_flags

SAMPLE_S = 2.0  # the operator dashboard's history: one sample of the hub's state this often


def to_json(value: Any) -> str:
    return json.dumps(value, default=_jsonable, separators=(",", ":"), allow_nan=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    for attr in ("as_dict", "_asdict", "to_dict"):
        if callable(getattr(value, attr, None)):
            return getattr(value, attr)()
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _sanitize_floats(value: Any) -> Any:
    """NaN/inf are not JSON: the operator's state may carry them from scoring; show them as null."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {str(k): _sanitize_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitize_floats(v) for v in value]
    return value


class Feed:
    """Snapshots of one kind (public or operator), pushed to streams on every hub tick and every `refresh_s`.

    With `watch_s`, the snapshot is also rebuilt that often between ticks and pushed when its content (`content`
    of the text, e.g. without counters and timestamps) changed: a badge joining or picking a colour reaches the wall
    within `watch_s`, not at the next scoring tick.
    """

    def __init__(self, build: Callable[[], Awaitable[str]], refresh_s: float = 2.0, *, watch_s: float | None = None,
                 content: Callable[[str], Any] | None = None):
        self._build = build
        self._refresh_s = refresh_s
        self._watch_s = watch_s
        self._content = content
        self._pushed_content: Any = None
        self._queues: set[asyncio.Queue] = set()
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task | None = None
        self.latest: str | None = None
        self.closed = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def poke(self) -> None:
        """Hub tick callback: may be called from any thread, returns at once."""
        if not self.closed:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def snapshot(self) -> str:
        self.latest = await self._build()
        return self.latest

    def open_stream(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=1)
        self._queues.add(queue)
        return queue

    def close_stream(self, queue: asyncio.Queue) -> None:
        self._queues.discard(queue)

    async def close(self) -> None:
        self.closed = True
        for queue in list(self._queues):
            _offer(queue, None)
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_push = loop.time()
        while not self.closed:
            wait = self._refresh_s if self._watch_s is None else min(self._watch_s, self._refresh_s)
            ticked = False
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
                ticked = True
            except TimeoutError:
                pass
            self._wake.clear()
            if not self._queues:
                continue
            try:
                text = await self.snapshot()
            except Exception as exc:  # a hub bug must not end the live feed; the next tick retries
                text = to_json({"error": f"state unavailable: {type(exc).__name__}"})
            content = self._content(text) if self._content else text
            due = ticked or loop.time() - last_push >= self._refresh_s
            if not due and content == self._pushed_content:
                continue
            self._pushed_content = content
            last_push = loop.time()
            for queue in list(self._queues):
                _offer(queue, text)


def public_content(text: str) -> Any:
    """A public view's content without its tick counter and timestamp."""
    try:
        view = json.loads(text)
    except ValueError:
        return text
    if isinstance(view, dict):
        view.pop("seq", None)
        view.pop("updated", None)
    return view


def _offer(queue: asyncio.Queue, item: str | None) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


class HubFeeds:
    """The public and operator feeds of one hub, built once per tick however many browsers watch."""

    def __init__(self, hub: HubSurface, cove: str, refresh_s: float = 2.0, watch_s: float | None = 0.25):
        self.hub = hub
        self.cove = cove
        self._seq = 0
        self.public = Feed(self._public_json, refresh_s, watch_s=watch_s, content=public_content)
        self.operator = Feed(self._operator_json, refresh_s)
        self._unsubscribe: Callable[[], Any] | None = None
        self.journey = Journey()  # the released views this app published: the wall's ribbon, the operator's charts
        self.history = OperatorHistory()
        self._sampler: asyncio.Task | None = None

    def start(self) -> None:
        self.public.start()
        self.operator.start()
        self._unsubscribe = self.hub.subscribe(self._on_tick)
        self._sampler = asyncio.create_task(self._sample_loop())

    async def _sample_loop(self) -> None:
        """The dashboard's history runs whether or not a console is open: the operator sees the last 30 minutes."""
        while True:
            try:
                self.history.sample(self.hub.operator_state(), time.time())
            except Exception:  # a hub bug must not end the sampling; the console shows the gap
                pass
            await asyncio.sleep(SAMPLE_S)

    def _on_tick(self, *_: Any) -> None:
        self._seq += 1
        self.public.poke()
        self.operator.poke()

    async def public_view(self) -> dict:
        view = self.hub.public_view()
        self.journey.note(view)
        return published(view, self.cove, self._seq)

    def journey_json(self, since: float | None = None) -> dict:
        """The session's journey as released (public): what the wall's ribbon draws. With `since`, only the points
        after it; `started` (the first point's time) tells a client that the journey began again."""
        first = self.journey.points[0].updated if self.journey.points else None
        points = self.journey.to_json() if since is None else [p for p in self.journey.to_json() if p["t"] > since]
        return {"cove": self.cove, "k_min": K_MIN, "started": first, "points": points}

    async def _public_json(self) -> str:
        return to_json(await self.public_view())

    async def operator_view(self) -> dict:
        state = _sanitize_floats(json.loads(to_json_loose(self.hub.operator_state())))
        dashboard = self.history.to_json(list(self.journey.points), time.time())
        dashboard["flags"] = {str(b["dev_id"]): badge_flags(b) for b in state.get("badges") or []
                              if isinstance(b, dict) and "dev_id" in b}
        return {"cove": self.cove, "seq": self._seq, "state": state, "dashboard": _sanitize_floats(dashboard)}

    async def _operator_json(self) -> str:
        return to_json(await self.operator_view())

    async def close(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        if self._unsubscribe is not None:
            self._unsubscribe()
        await self.public.close()
        await self.operator.close()


def to_json_loose(value: Any) -> str:
    """Like to_json but tolerant of NaN (sanitised afterwards)."""
    return json.dumps(value, default=_jsonable, separators=(",", ":"))
