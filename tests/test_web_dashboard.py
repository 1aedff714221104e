"""The operator dashboard's history and flags (lifepalette.web.dashboard), sans-I/O."""

from __future__ import annotations

from lifepalette.boundary import Palette, PublicView
from lifepalette.web.dashboard import OperatorHistory, badge_flags, signal_quality

from protocol.records import Q_EDA, Q_HR, Q_SAFE_MODE, Q_SENSOR_MISSING, Q_SKIN

CONSENTED = {"physio": True, "colour": True, "paused": False}


def badge(dev=7, *, battery=80, charging=False, quality=Q_SKIN | Q_HR | Q_EDA, age_s=0.5, online=True,
          consent=CONSENTED, frames=0, rssi=None):
    return {"dev_id": dev, "battery": battery, "charging": charging, "quality": quality, "age_s": age_s,
            "online": online, "consent": dict(consent), "frames": frames, "rssi": rssi,
            "safe_mode": bool(quality & Q_SAFE_MODE), "sensor_missing": bool(quality & Q_SENSOR_MISSING)}


def test_flags_name_what_needs_a_hand():
    assert badge_flags(badge()) == []
    assert badge_flags(badge(battery=12)) == ["low battery"]
    assert badge_flags(badge(battery=12, charging=True)) == []
    assert badge_flags(badge(quality=Q_HR)) == ["no skin contact"]
    # no contact matters only while it captures: a paused or non-consenting badge is not told to fix it
    assert badge_flags(badge(quality=0, consent={**CONSENTED, "paused": True})) == []
    assert badge_flags(badge(quality=0, consent={**CONSENTED, "physio": False})) == []
    assert badge_flags(badge(quality=Q_SAFE_MODE)) == ["safe mode (a crash or fault: read its serial log)"]
    assert badge_flags(badge(quality=Q_SKIN | Q_SENSOR_MISSING)) == ["sensor missing"]
    assert badge_flags(badge(age_s=42.4, online=False)) == ["stale link (last heard 42 s ago)"]
    assert signal_quality(Q_SKIN | Q_EDA) == 2


def state(t, accepted, rejected, badges):
    return {"badges": badges, "accepted": accepted, "rejections": {"mic": rejected, "replay": 0}}


def test_history_charts_rates_and_forgets_past_its_window():
    h = OperatorHistory(window_s=100)
    h.sample(state(0, 0, 0, [badge(1, frames=0), badge(2, frames=0, consent={**CONSENTED, "paused": True})]), 0.0)
    h.sample(state(2, 20, 4, [badge(1, frames=10, battery=79), badge(2, frames=10, online=False)]), 2.0)
    h.sample(state(4, 30, 4, [badge(1, frames=12, battery=78)]), 4.0)
    charts = h.charts([], now=4.0)
    assert charts["contributors"] == [[0.0, 1], [2.0, 1], [4.0, 1]]  # paused or offline: not a contributor
    assert charts["frames_per_s"] == [[2.0, 10.0], [4.0, 5.0]]
    assert charts["rejections_per_s"] == [[2.0, 2.0], [4.0, 0.0]]
    lines = h.sparklines()
    assert lines["1"]["link"] == [[2.0, 5.0], [4.0, 1.0]] and lines["1"]["battery"][-1] == [4.0, 78]
    h.sample(state(200, 5, 0, [badge(1, frames=20)]), 200.0)  # a restarted hub: counters went back
    assert h.charts([], now=200.0)["frames_per_s"] == []  # older samples are past the window
    assert set(h.sparklines()) == {"1"}  # a badge not heard within the window is dropped


def test_history_charts_arousal_and_synchrony_only_as_released():
    released = [PublicView(3, updated=10.0),
                PublicView(6, palette=Palette((1, 2, 3), 0.4, 0.2), arousal=0.4, synchrony=0.2, updated=20.0)]
    charts = OperatorHistory(window_s=100).charts(released, now=50.0)
    assert charts["arousal"] == [[10.0, None], [20.0, 0.4]]
    assert charts["synchrony"] == [[10.0, None], [20.0, 0.2]]
    assert OperatorHistory(window_s=100).charts(released, now=500.0)["arousal"] == []
