"""Hub transports: each feeds raw frames to `Hub.ingest(data, link=..., route=...)` and can send frames back.

A route is `(transport, address)`; `transport.send(frame, address) -> bool` delivers a 24-byte frame to a badge
(UDP: the datagram's source address; serial: the port; BLE: the badge's dev_id, over its GATT link).
"""
