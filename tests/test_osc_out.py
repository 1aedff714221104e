"""OSC out, received by a real python-osc server on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest
from helpers.osc import Receiver
from helpers.public import public_view
from helpers.waits import wait_for
from lifepalette.boundary import GroupAggregate
from lifepalette.errors import UsageError
from lifepalette.outputs.osc import OscOut, osc_messages, parse_target


class StubHub:
    def __init__(self, contributors):
        self.contributors = contributors

    def subscribe(self, callback):
        return lambda: None

    def public_view(self):
        return public_view(self.contributors, (213, 94, 0), 0.8, 0.25,
                           groups=(GroupAggregate("A", 5, 0.5, 0.75, (0, 114, 178)),),
                           swatches=[(0, 255)] * self.contributors)


def _stream(hub, port, rate_hz, seconds, cove="north-cove"):
    async def main():
        out = await OscOut(hub, "127.0.0.1", port, cove=cove, rate_hz=rate_hz).start()
        await asyncio.sleep(seconds)
        await out.stop()
        return out.sent

    return asyncio.run(main())


def test_a_ready_cove_sends_palette_measures_and_groups_to_a_real_osc_server():
    with Receiver() as rx:
        sent = _stream(StubHub(6), rx.port, rate_hz=20, seconds=0.5)
        base = "/lifepalette/north-cove"
        # every message of the last send has arrived when its last group's contributors count has
        wait_for(lambda: sum(a == f"{base}/group/A/contributors" for a, _ in rx.messages) == sent,
                 what="the server thread to drain the socket")
    by_address = {}
    for address, args in rx.messages:
        by_address.setdefault(address, []).append(args)
    base = "/lifepalette/north-cove"
    assert by_address[f"{base}/ready"][0] == (1,)
    assert by_address[f"{base}/contributors"][0] == (6,)
    assert by_address[f"{base}/palette"][0] == (213, 94, 0)
    assert abs(by_address[f"{base}/brightness"][0][0] - 0.8) < 1e-6  # OSC floats are 32-bit
    assert abs(by_address[f"{base}/synchrony"][0][0] - 0.25) < 1e-6
    assert by_address[f"{base}/group/A/palette"][0] == (0, 114, 178)
    assert abs(by_address[f"{base}/group/A/synchrony"][0][0] - 0.75) < 1e-6
    assert by_address[f"{base}/swatches"][0] == (255, 0, 0) * 6
    # the configured rate is honoured: ~10 sends in 0.5 s at 20 Hz (loose bounds, shared CI machine)
    assert 3 <= sent <= 12 and len(by_address[f"{base}/ready"]) == sent
    assert not any("dev" in a or "wearer" in a for a in rx.addresses())


def test_a_cove_below_five_people_sends_only_ready_zero_and_the_count():
    with Receiver() as rx:
        sent = _stream(StubHub(4), rx.port, rate_hz=10, seconds=0.3, cove="Small Cove!")
        wait_for(lambda: len(rx.messages) == 2 * sent, what="both messages of every send")
    assert rx.addresses() == {"/lifepalette/Small-Cove/ready", "/lifepalette/Small-Cove/contributors"}
    assert all(args == (0,) for a, args in rx.messages if a.endswith("/ready"))


def test_osc_messages_are_pure_and_targets_parse():
    view = StubHub(5).public_view().stamped("c", 0).to_json()
    assert osc_messages(view)[:3] == [("/lifepalette/c/ready", 1), ("/lifepalette/c/contributors", 5),
                                      ("/lifepalette/c/palette", [213, 94, 0])]
    assert parse_target("10.0.0.5:7000") == ("10.0.0.5", 7000)
    assert parse_target("localhost") == ("localhost", 9000)
    for bad in ("host:notaport", ":9000", "h:70000"):
        with pytest.raises(UsageError):
            parse_target(bad)


def test_no_receiver_listening_does_not_break_the_sender():
    with Receiver() as rx:
        port = rx.port
    assert _stream(StubHub(6), port, rate_hz=20, seconds=0.2) >= 1


def test_start_and_stop_outputs_leave_no_subscription_on_the_hub():
    from lifepalette.outputs import start_outputs, stop_outputs

    class SubscribingHub(StubHub):
        def __init__(self):
            super().__init__(6)
            self.callbacks = []

        def subscribe(self, callback):
            self.callbacks.append(callback)
            return lambda: self.callbacks.remove(callback)

    hub = SubscribingHub()
    with Receiver() as rx:
        async def main():
            outputs = await start_outputs(hub, osc=f"127.0.0.1:{rx.port}", cove="c", osc_rate_hz=20)
            subscribed = len(hub.callbacks)
            await asyncio.sleep(0.2)
            await stop_outputs(outputs)
            return subscribed

        assert asyncio.run(main()) == 1  # one shared public source for every output
        wait_for(lambda: ("/lifepalette/c/ready", (1,)) in rx.messages, what="the first OSC send")
    assert hub.callbacks == []
    assert ("/lifepalette/c/ready", (1,)) in rx.messages
