"""Outputs of the hub beyond the web app: OSC for installations, MQTT for linking coves, LSL for researchers.

Every output publishes only the public cove view released by the hub (`lifepalette.hub.views.release_public_view`): aggregates over
k >= 5 consenting people, never a per-wearer number or a device id.
"""

from __future__ import annotations

from typing import Any


async def start_outputs(hub: Any, *, osc: str | None = None, mqtt: str | None = None, cove: str = "cove",
                        osc_rate_hz: float = 2.0, lsl: bool = False, lsl_wearers: bool = False,
                        prog: str = "lifepalette") -> list:
    """Start OSC (target "HOST:PORT") and/or MQTT (broker URL) outputs for `hub`; stop them with `stop_outputs`.

    For the `hub` and `demo` commands: `outputs = await start_outputs(hub, osc=args.osc, mqtt=args.mqtt, cove=...)`.
    """
    from lifepalette.outputs.public import PublicSource

    outputs: list = []
    if not (osc or mqtt or lsl):
        return outputs
    source = PublicSource(hub, cove)
    outputs.append(source)  # closed last by stop_outputs
    if osc:
        from lifepalette.outputs.osc import OscOut, parse_target

        host, port = parse_target(osc)
        outputs.append(await OscOut(hub, host, port, rate_hz=osc_rate_hz, source=source).start())
    if mqtt:
        from lifepalette.outputs.mqtt import MqttBridge

        outputs.append(await MqttBridge(hub, mqtt, source=source).start())
    if lsl:
        from lifepalette.outputs.lsl import start_lsl

        lsl_out = start_lsl(hub, cove=cove, wearers=lsl_wearers, source=source, prog=prog)
        if lsl_out is not None:
            outputs.append(await lsl_out.start())
    return outputs


async def stop_outputs(outputs: list) -> None:
    for output in reversed(outputs):
        if hasattr(output, "stop"):
            await output.stop()
        else:
            output.close()
