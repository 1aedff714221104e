"""Outputs of the hub beyond the web app: OSC for installations, MQTT for linking coves.

Every output publishes only the public cove view (`lifepalette.outputs.public.cove_view`): aggregates over
k >= 5 consenting people, never a per-wearer number or a device id.
"""
