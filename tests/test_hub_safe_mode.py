"""The hub shows a badge's safe mode and a missing sensor (quality bits 5 and 4, PROTOCOL.md §3.1) in the operator
console's badge table, from the sealed heartbeat the badge sends in safe mode."""

from __future__ import annotations

import logging

from lifepalette.crypto import seal
from lifepalette.hub import Hub

from protocol import frame as wire
from protocol import records


def test_safe_mode_heartbeat_and_missing_sensor_reach_the_operator_state(tmp_path, caplog):
    hub = Hub(str(tmp_path / "hub.db"), scorer=None)
    hub.enroll(7)
    hub.enroll(8)
    key7, key8 = hub.keys[7], hub.keys[8]
    with caplog.at_level(logging.WARNING):
        assert hub.ingest(seal(key7, wire.HEARTBEAT, 7, 1, records.pack_heartbeat(0, 80, records.Q_SAFE_MODE))).ok
        assert hub.ingest(seal(key8, wire.HEARTBEAT, 8, 1,
                               records.pack_heartbeat(0, 80, records.Q_SKIN | records.Q_SENSOR_MISSING))).ok
    badges = {b["dev_id"]: b for b in hub.operator_state()["badges"]}
    assert badges[7]["safe_mode"] and not badges[7]["sensor_missing"]
    assert badges[8]["sensor_missing"] and not badges[8]["safe_mode"]
    assert "badge 7 is in SAFE MODE" in caplog.text and "badge 8" not in caplog.text
    hub.store.con.close()
