"""MQTT bridge (paho-mqtt) for linking coves: each hub publishes its public aggregates, the sphere subscribes to all.

Topics (all retained, JSON payloads, QoS 1; <cove> as in OSC):
  lifepalette/<cove>/status        "online" / "offline" (the broker sends "offline" as the hub's last will)
  lifepalette/<cove>/state         the public cove view, exactly what GET /api/cove returns
  lifepalette/<cove>/palette       {"rgb": [r, g, b], "hex": "#rrggbb", "brightness": .., "convergence": ..} or null
  lifepalette/<cove>/arousal       number 0-1, or null while fewer than 5 people contribute
  lifepalette/<cove>/synchrony     number 0-1, or null
  lifepalette/<cove>/contributors  integer
Never per-wearer data: every payload is built from `cove_view`, and the sphere rebuilds what it receives through the
same whitelist, so a misbehaving publisher cannot smuggle fields through it either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote, urlsplit

from lifepalette.boundary import BoundaryError, PublicView
from lifepalette.errors import UsageError
from lifepalette.hub.contracts import HubSurface
from lifepalette.outputs.public import PublicSource, safe_name

TOPIC_ROOT = "lifepalette"


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None


def parse_broker_url(url: str) -> BrokerUrl:
    """mqtt://[user:pass@]host[:port] (default 1883) or mqtts://... (default 8883, TLS)."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise UsageError(f"bad MQTT URL {url!r}: use mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise UsageError(f"bad MQTT URL {url!r}: the port is not a number") from None
    if not parts.hostname:
        raise UsageError(f"bad MQTT URL {url!r}: no host")
    return BrokerUrl(parts.hostname, port, tls, unquote(parts.username) if parts.username else None,
                     unquote(parts.password) if parts.password else None)


def _client(broker: BrokerUrl, client_id: str):
    import paho.mqtt.client as mqtt

    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    if broker.username:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set()
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


def cove_topics(view: dict) -> list[tuple[str, str]]:
    """(topic, JSON payload) for one public view; pure, for tests and tools."""
    base = f"{TOPIC_ROOT}/{view['cove']}"
    return [
        (f"{base}/state", json.dumps(view, separators=(",", ":"))),
        (f"{base}/palette", json.dumps(view["palette"])),
        (f"{base}/arousal", json.dumps(view["arousal"])),
        (f"{base}/synchrony", json.dumps(view["synchrony"])),
        (f"{base}/contributors", json.dumps(view["contributors"])),
    ]


class MqttBridge:
    """Publishes the hub's public view after each scoring tick (at most every `min_interval_s`, and at least every
    `max_interval_s`). The paho network loop runs in its own thread and reconnects by itself."""

    def __init__(self, hub: HubSurface, url: str, *, cove: str = "cove", min_interval_s: float = 1.0,
                 max_interval_s: float = 10.0, source: PublicSource | None = None):
        self.broker = parse_broker_url(url)
        self._own_source = source is None
        self.source = source or PublicSource(hub, cove)
        self.base = f"{TOPIC_ROOT}/{self.source.cove}"
        self.min_interval_s = min_interval_s
        self.max_interval_s = max_interval_s
        self.published = 0
        self.connected = threading.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.client = _client(self.broker, f"lifepalette-hub-{self.source.cove}-{int(time.time()) % 100000}")
        self.client.will_set(f"{self.base}/status", "offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.source.on_tick(self._poke)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.publish(f"{self.base}/status", "online", qos=1, retain=True)
            self.connected.set()
            self._poke()

    def _poke(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> MqttBridge:
        self._loop = asyncio.get_running_loop()
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        self._task = asyncio.create_task(self._run())
        return self

    async def publish_once(self) -> None:
        for topic, payload in cove_topics(await self.source.view()):
            self.client.publish(topic, payload, qos=1, retain=True)
        self.published += 1

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.max_interval_s)
            self._wake.clear()
            if self.connected.is_set():
                await self.publish_once()
            await asyncio.sleep(self.min_interval_s)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.connected.is_set():
            info = self.client.publish(f"{self.base}/status", "offline", qos=1, retain=True)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(info.wait_for_publish, 2.0)
        self.client.disconnect()
        self.client.loop_stop()
        if self._own_source:
            self.source.close()


class CoveDirectory:
    """The sphere's picture of every cove on a broker, built only from whitelisted public views."""

    def __init__(self, url: str, on_change: Callable[[], None] | None = None):
        self.broker = parse_broker_url(url)
        self.coves: dict[str, dict] = {}
        self.status: dict[str, str] = {}
        self.rejected = 0
        self._lock = threading.Lock()
        self.on_change = on_change  # called after every change (the sphere's feed sets it)
        self.connected = threading.Event()
        self.client = _client(self.broker, f"lifepalette-sphere-{int(time.time() * 1000) % 10**8}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe([(f"{TOPIC_ROOT}/+/state", 1), (f"{TOPIC_ROOT}/+/status", 1)])
            self.connected.set()

    def _on_message(self, client, userdata, message) -> None:
        parts = message.topic.split("/")
        if len(parts) != 3 or parts[0] != TOPIC_ROOT:
            return
        cove, kind = safe_name(parts[1]), parts[2]
        with self._lock:
            if kind == "status":
                self.status[cove] = "online" if message.payload == b"online" else "offline"
            elif kind == "state":
                try:
                    received = PublicView.from_json(json.loads(message.payload))
                except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, BoundaryError):
                    self.rejected += 1
                    return
                # the topic names the cove; the city view shows coves, not people
                view = replace(received, cove=cove, swatches=()).to_json()
                self.coves[cove] = view
        if self.on_change:
            self.on_change()

    def start(self) -> CoveDirectory:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def snapshot(self) -> dict:
        with self._lock:
            coves = [dict(view, online=self.status.get(name, "unknown") == "online")
                     for name, view in sorted(self.coves.items())]
        return {"coves": coves, "city": city_summary(coves), "broker_connected": self.connected.is_set()}


def city_summary(coves: list[dict]) -> dict:
    """City-level aggregate over coves that are online and ready (k >= 5): people-weighted colour and measures."""
    ready = [c for c in coves if c["ready"] and c.get("online", True) and c.get("palette")]
    people = sum(c["contributors"] for c in ready)
    summary: dict[str, Any] = {"coves": len(coves), "coves_ready": len(ready), "contributors": people,
                               "rgb": None, "arousal": None, "synchrony": None}
    if not ready or people == 0:
        return summary
    summary["rgb"] = [round(sum(c["palette"]["rgb"][i] * c["contributors"] for c in ready) / people) for i in range(3)]
    for name in ("arousal", "synchrony"):
        known = [(c[name], c["contributors"]) for c in ready if c.get(name) is not None]
        weight = sum(w for _, w in known)
        summary[name] = round(sum(v * w for v, w in known) / weight, 3) if weight else None
    return summary

