"""MQTT bridge and the sphere against a REAL Mosquitto broker started on 127.0.0.1 on a free port."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import paho.mqtt.client as mqtt
import pytest
from helpers.public import public_view
from helpers.waits import until as _until
from lifepalette.outputs.mqtt import CoveDirectory, MqttBridge, city_summary, parse_broker_url
from lifepalette.web.sphere import serve_sphere

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    if not os.path.exists(MOSQUITTO):
        pytest.fail("mosquitto is not installed: run `make system-deps` (Debian package mosquitto)")
    port = _free_port()
    conf = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"mosquitto did not start: {proc.stderr.read().decode()[-500:]}")
            time.sleep(0.05)
    yield f"mqtt://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(5)


class StubHub:
    def __init__(self, contributors, rgb=(230, 159, 0), arousal=0.6):
        self.contributors, self.rgb, self.arousal = contributors, list(rgb), arousal
        self.callbacks = []

    def subscribe(self, callback):
        self.callbacks.append(callback)

    def public_view(self):
        return public_view(self.contributors, self.rgb, self.arousal, 0.5, swatches=[(10, 200)] * self.contributors)


class Recorder:
    """A plain paho subscriber: what any other program on the broker would see."""

    def __init__(self, url, topic="lifepalette/#"):
        b = parse_broker_url(url)
        self.messages: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *a: (c.subscribe(topic, qos=1), self.ready.set())
        self.client.on_message = self._on_message
        self.client.connect(b.host, b.port)
        self.client.loop_start()
        assert self.ready.wait(5)

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages[message.topic] = message.payload

    def wait_for(self, topic, predicate=lambda p: True, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                payload = self.messages.get(topic)
            if payload is not None and predicate(payload):
                return payload
            time.sleep(0.05)
        raise AssertionError(f"no matching message on {topic}; have {sorted(self.messages)}")

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_hub_publishes_public_aggregates_only_and_marks_itself_offline(broker):
    recorder = Recorder(broker)
    hub = StubHub(7)

    async def main():
        bridge = await MqttBridge(hub, broker, cove="harbour", min_interval_s=0.1).start()
        await _until(lambda: bridge.published >= 1)
        hub.contributors = 8
        for cb in hub.callbacks:
            cb()
        await _until(lambda: bridge.published >= 2)
        recorder.wait_for("lifepalette/harbour/status", lambda p: p == b"online")
        recorder.wait_for("lifepalette/harbour/contributors", lambda p: p == b"8")
        await bridge.stop()

    try:
        asyncio.run(asyncio.wait_for(main(), 30))
        recorder.wait_for("lifepalette/harbour/status", lambda p: p == b"offline")
        topics = set(recorder.messages)
        state = json.loads(recorder.messages["lifepalette/harbour/state"])
    finally:
        recorder.close()
    assert topics == {f"lifepalette/harbour/{t}" for t in
                      ("status", "state", "palette", "arousal", "synchrony", "contributors")}
    assert state["ready"] and state["contributors"] == 8 and state["palette"]["rgb"] == [230, 159, 0]
    assert json.loads(recorder.messages["lifepalette/harbour/arousal"]) == 0.6
    everything = b" ".join(recorder.messages.values()).decode()
    assert "dev_id" not in everything and "hr_bpm" not in everything and "300" not in everything


def test_broker_kills_the_hub_link_and_the_will_says_offline(broker):
    """A hub that dies without goodbye: the broker publishes its last will."""
    recorder = Recorder(broker)
    code = (
        "import asyncio, os\n"
        "from lifepalette.outputs.mqtt import MqttBridge\n"
        "from lifepalette.boundary import PublicView\n"
        "class H:\n"
        "    def subscribe(self, callback): return lambda: None\n"
        "    def public_view(self): return PublicView.withheld(2)\n"
        "async def main():\n"
        f"    b = await MqttBridge(H(), {broker!r}, cove='crash', min_interval_s=0.1).start()\n"
        "    while b.published < 1: await asyncio.sleep(0.05)\n"
        "    print('up', flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"up\n"
        recorder.wait_for("lifepalette/crash/status", lambda p: p == b"online")
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        # keepalive 30 s: the will fires when the TCP connection drops, which SIGKILL does at once
        recorder.wait_for("lifepalette/crash/status", lambda p: p == b"offline", timeout=15)
    finally:
        proc.kill()
        recorder.close()


def test_sphere_shows_every_cove_and_refuses_states_off_the_contract(broker):
    b = parse_broker_url(broker)
    # a misbehaving publisher sends per-wearer fields in a cove state: the sphere refuses the whole state
    rogue = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    rogue.connect(b.host, b.port)
    rogue.loop_start()
    rogue.publish("lifepalette/rogue/state", json.dumps({
        "contributors": 9, "ready": True, "palette": {"rgb": [0, 0, 255], "brightness": 0.2},
        "wearers": {"258": {"hr_bpm": 90}}, "dev_ids": [258], "swatches": ["#ff0000"] * 9,
        "groups": [{"contributors": 9, "members": [258], "arousal": 0.2}]}), qos=1, retain=True).wait_for_publish(5)
    rogue.publish("lifepalette/rogue/state2", b"not json", qos=1).wait_for_publish(5)

    async def main():
        hubs = {"north": StubHub(6, (86, 180, 233), 0.2), "south": StubHub(12, (213, 94, 0), 0.8),
                "tiny": StubHub(3)}
        bridges = [await MqttBridge(h, broker, cove=name, min_interval_s=0.1).start() for name, h in hubs.items()]
        directory = CoveDirectory(broker)
        runner = await serve_sphere(directory, "127.0.0.1", 0)
        directory.start()
        try:
            await _until(lambda: {"north", "south", "tiny"} <= set(directory.coves) and directory.rejected >= 1
                         and directory.status.get("south") == "online", timeout=15)
            raw = await asyncio.to_thread(lambda: urllib.request.urlopen(runner.url + "api/sphere", timeout=5).read())
            page = await asyncio.to_thread(lambda: urllib.request.urlopen(runner.url, timeout=5).read())
        finally:
            for bridge in bridges:
                await bridge.stop()
            directory.stop()
            await runner.cleanup()
        return json.loads(raw), page

    try:
        sphere, page = asyncio.run(asyncio.wait_for(main(), 40))
    finally:
        rogue.publish("lifepalette/rogue/state", b"", retain=True).wait_for_publish(5)  # clear the retained message
        rogue.disconnect()
        rogue.loop_stop()
    coves = {c["cove"]: c for c in sphere["coves"]}
    assert coves["tiny"]["ready"] is False and coves["tiny"]["palette"] is None
    assert coves["north"]["ready"] and coves["south"]["palette"]["rgb"] == [213, 94, 0]
    assert "rogue" not in coves  # unknown keys: PublicView.from_json refused it
    assert coves["north"]["swatches"] == []  # the city view shows coves, not people
    text = json.dumps(sphere)
    for leak in ("wearers", "dev_ids", "members", "hr_bpm", "258", "#ff0000"):
        assert leak not in text
    assert b"the sphere" in page
    assert sphere["broker_connected"] is True


def test_city_summary_weights_ready_online_coves_by_people():
    coves = [{"ready": True, "online": True, "contributors": 5, "palette": {"rgb": [0, 0, 0]}, "arousal": 0.0,
              "synchrony": 1.0},
             {"ready": True, "online": True, "contributors": 15, "palette": {"rgb": [200, 100, 40]}, "arousal": 1.0,
              "synchrony": None},
             {"ready": True, "online": False, "contributors": 50, "palette": {"rgb": [9, 9, 9]}, "arousal": 0.5},
             {"ready": False, "online": True, "contributors": 3, "palette": None}]
    assert city_summary(coves) == {"coves": 4, "coves_ready": 2, "contributors": 20, "rgb": [150, 75, 30],
                                   "arousal": 0.75, "synchrony": 1.0}


def test_sphere_command_rejects_bad_input_without_traceback():
    for args, needle in ((["--mqtt", "ftp://x"], "bad MQTT URL"), (["--mqtt", "mqtt://h", "--http", "nope"], "--http"),
                         (["--mqtt", "mqtt://h:99999"], "port")):
        proc = subprocess.run([sys.executable, "-m", "lifepalette", "sphere", *args], capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode == 2, proc.stderr
        assert needle in proc.stderr and "Traceback" not in proc.stderr


def test_sphere_command_serves_the_coves_it_hears(broker):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lifepalette", "sphere", "--mqtt", broker, "--http",
                             f"127.0.0.1:{port}", "--seconds", "20"], stderr=subprocess.PIPE, text=True)

    async def main():
        bridge = await MqttBridge(StubHub(5, (0, 158, 115)), broker, cove="bay", min_interval_s=0.1).start()
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    raw = await asyncio.to_thread(
                        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/api/sphere", timeout=2).read())
                    coves = {c["cove"]: c for c in json.loads(raw)["coves"]}
                    if "bay" in coves and coves["bay"]["ready"]:
                        return coves["bay"]
                except OSError:
                    pass
                assert time.monotonic() < deadline, "the sphere never showed the cove"
                await asyncio.sleep(0.1)
        finally:
            await bridge.stop()

    try:
        bay = asyncio.run(main())
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert bay["palette"]["rgb"] == [0, 158, 115] and bay["contributors"] == 5
    assert "sphere: http://127.0.0.1:" in proc.stderr.read()


def test_sphere_page_in_chromium_shows_each_cove(broker, artifacts_dir):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: run `make system-deps`"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    hubs = {"harbour": StubHub(9, (0, 114, 178), 0.2), "market": StubHub(14, (230, 159, 0), 0.9),
            "library": StubHub(2)}

    async def start():
        bridges = [await MqttBridge(h, broker, cove=n, min_interval_s=0.1).start() for n, h in hubs.items()]
        directory = CoveDirectory(broker)
        runner = await serve_sphere(directory, "127.0.0.1", 0)
        directory.start()
        return bridges, directory, runner

    bridges, directory, runner = asyncio.run_coroutine_threadsafe(start(), loop).result(20)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(runner.url)
            for name in hubs:
                page.locator(f"#coves li[data-cove={name}].online").wait_for(timeout=15000)
            words = {name: page.inner_text(f"#coves li[data-cove={name}] .words") for name in hubs}
            city = page.inner_text("#city-words")
            page.screenshot(path=str(artifacts_dir / "sphere.png"))
            browser.close()
    finally:
        async def stop():
            for bridge in bridges:
                await bridge.stop()
            directory.stop()
            await runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    assert words == {"harbour": "calm, in step", "market": "intense, in step", "library": "waiting for 5 people"}
    assert city.startswith("23 people in 2 coves")
