"""Lab Streaming Layer outlets (pylsl, the optional extra `[lsl]`): the cove for researchers' recorders, and with
the operator's explicit `--lsl-wearers`, per-wearer feature streams.

Cove stream: name `LifePalette-<cove>`, type `Affect`, one sample per scoring tick with the numbers of the public view
the hub released (the same view the wall, OSC and MQTT re-publish; withheld numbers are NaN while fewer than k
people contribute). Its `source_id` is stable per cove and hub database, so a recorder re-attaches after a restart.

Wearer streams (only with --lsl-wearers): one per badge whose consent includes physiology and is not paused, named by
a pseudonym that is new every session (never the device id), type `AffectFeatures`, the badge's physiology features
as the hub scores them. A pause, a withdrawal or a revocation ends the stream at once (the frame that says so never
reaches it); a new session ends every wearer stream and hands out new pseudonyms.

Timestamps: the hub's clock (Unix seconds) mapped onto LSL's clock once at start, then each sample stamped with the
second it belongs to (a frame's own second; for the cove, the last scored second), so streams from several hubs and
other LSL devices line up in a recording.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import sys
import time
from collections.abc import Callable
from typing import Any

from lifepalette.hub.consent import physio_allowed
from lifepalette.outputs.public import PublicSource, safe_name
from lifepalette.privacy import K_MIN
from protocol import records

STREAM_TYPE = "Affect"
WEARER_TYPE = "AffectFeatures"
PROTECTED = f"k-anonymous aggregate: released only while at least {K_MIN} consenting people contribute, else NaN"
# (label, unit, how the number is protected) in channel order
COVE_CHANNELS = (
    ("ready", "bool", f"1 while at least {K_MIN} consenting people contribute"),
    ("contributors", "count", "number of consenting badges heard (no identities)"),
    ("arousal", "0-1", PROTECTED),
    ("synchrony", "0-1", PROTECTED),
    ("brightness", "0-1", PROTECTED),
    ("convergence", "0-1", PROTECTED),
    ("red", "0-255", PROTECTED),
    ("green", "0-255", PROTECTED),
    ("blue", "0-255", PROTECTED),
)
WEARER_PROTECTION = "one wearer's own physiology, streamed only with their physiology consent; pseudonym per session"
# (label, unit, telemetry field, n/a code, scale to the unit)
WEARER_CHANNELS = (
    ("hr", "bpm", "hr_bpm", records.HR_NA, 1.0),
    ("rmssd", "ms", "rmssd_ms", records.RMSSD_NA, 1.0),
    ("scl", "uS", "scl", records.SCL_NA, 0.01),
    ("scr_rate", "per minute", "scr_per_min", records.SCR_NA, 1.0),
    ("motion", "0-255", "motion", records.MOTION_NA, 1.0),
    ("quality", "flags", "quality", None, 1.0),
)
NAN = float("nan")


def load_pylsl() -> tuple[Any, str | None]:
    """(pylsl module, None), or (None, why not) where pylsl or its liblsl is missing (a Pi without liblsl)."""
    try:
        import pylsl

        pylsl.local_clock()  # loads liblsl
    except (ImportError, RuntimeError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, reason[:160]
    return pylsl, None


def cove_sample(view: dict) -> list[float]:
    """The cove stream's channels for one released view (NaN where the view withholds a number)."""
    palette = view.get("palette") or {}
    rgb = palette.get("rgb") or (NAN, NAN, NAN)

    def num(value: Any) -> float:
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else NAN

    values = [1.0 if view["ready"] else 0.0, float(view["contributors"]), num(view.get("arousal")),
              num(view.get("synchrony")), num(palette.get("brightness")), num(palette.get("convergence")),
              *(num(c) for c in rgb)]
    if not view["ready"]:
        values[2:] = [NAN] * (len(values) - 2)
    return values


def wearer_sample(fields: dict) -> list[float]:
    out = []
    for _label, _unit, name, na, scale in WEARER_CHANNELS:
        value = fields.get(name)
        out.append(NAN if value is None or (na is not None and value == na) else float(value) * scale)
    return out


def _describe(info: Any, channels: tuple, protection: str) -> None:
    desc = info.desc()
    desc.append_child_value("manufacturer", "Life Palette")
    desc.append_child_value("k_min", str(K_MIN))
    desc.append_child_value("protection", protection)
    chans = desc.append_child("channels")
    for label, unit, how in channels:
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", unit)
        ch.append_child_value("protection", how)


class _ScorerTee:
    """Passes every record the hub scores on to the scorer and to the wearer streams (what consent let the hub keep),
    and every `forget` (a revocation) too. Installed only with --lsl-wearers."""

    def __init__(self, inner: Any, on_record: Callable, on_forget: Callable) -> None:
        self.inner, self._on_record, self._on_forget = inner, on_record, on_forget

    def add(self, dev_id: int, t: int, fields: dict) -> None:
        if self.inner is not None:
            self.inner.add(dev_id, t, fields)
        self._on_record(dev_id, t, fields)

    def forget(self, dev_id: int) -> None:
        if self.inner is not None:
            self.inner.forget(dev_id)
        self._on_forget(dev_id)

    def compute(self, *args: Any, **kwargs: Any) -> dict:
        return self.inner.compute(*args, **kwargs) if self.inner is not None else {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class LslOut:
    """The cove outlet (and wearer outlets) of one hub; `await start()`, `await stop()`."""

    def __init__(self, hub: Any, pylsl: Any, *, cove: str = "cove", wearers: bool = False,
                 source: PublicSource | None = None, clock: Callable[[], float] = time.time) -> None:
        self.hub, self.lsl, self.wearers = hub, pylsl, wearers
        self.cove = safe_name(cove)
        self.source = source or PublicSource(hub, cove)
        self._own_source = source is None
        self.clock = clock
        self.offset = 0.0  # LSL clock minus hub clock
        self.outlet: Any = None
        self.wearer_outlets: dict[int, Any] = {}
        self.pseudonyms: dict[int, str] = {}
        self._salt = secrets.token_bytes(16)
        self._session = getattr(hub, "session_id", None)
        self._tee: _ScorerTee | None = None
        self.samples = 0

    @property
    def name(self) -> str:
        return f"LifePalette-{self.cove}"

    @property
    def source_id(self) -> str:
        key = getattr(self.hub, "site_key", b"") or b""
        return f"lifepalette-{self.cove}-{hmac.new(key, b'lsl:' + self.cove.encode(), hashlib.sha256).hexdigest()[:16]}"

    async def start(self) -> LslOut:
        lsl = self.lsl
        self.offset = lsl.local_clock() - self.clock()
        rate = 1.0 / float(getattr(self.hub, "cadence_s", 1.0) or 1.0)
        info = lsl.StreamInfo(self.name, STREAM_TYPE, len(COVE_CHANNELS), rate, lsl.cf_float32, self.source_id)
        _describe(info, COVE_CHANNELS, PROTECTED)
        self.outlet = lsl.StreamOutlet(info)
        self.source.on_tick(self._on_tick)
        if self.wearers:
            self._tee = _ScorerTee(self.hub.scorer, self._on_record, self._end_wearer)
            self.hub.scorer = self._tee
        return self

    def stamp(self, second: float) -> float:
        """A hub-clock second on LSL's clock."""
        return second + self.offset

    def _on_tick(self) -> None:
        session = getattr(self.hub, "session_id", None)
        if session != self._session:  # a new session: new pseudonyms, nobody carried over
            self._session = session
            self._salt = secrets.token_bytes(16)
            for dev in list(self.wearer_outlets):
                self._end_wearer(dev)
            self.pseudonyms.clear()
        badges = getattr(self.hub, "badges", {})
        for dev in list(self.wearer_outlets):  # a pause or withdrawal heard in a heartbeat ends the stream too
            badge = badges.get(dev)
            if badge is not None and not physio_allowed(badge.consent):
                self._end_wearer(dev)
        view = self.hub.public_view().to_json()
        t = (getattr(self.hub, "scores", None) or {}).get("t")
        second = float(t) if t is not None else float(int(self.clock()))
        self.outlet.push_sample(cove_sample(view), self.stamp(second))
        self.samples += 1

    # -- wearer streams ---------------------------------------------------------------------------------------------
    def pseudonym(self, dev_id: int) -> str:
        if dev_id not in self.pseudonyms:
            self.pseudonyms[dev_id] = hmac.new(self._salt, str(dev_id).encode(), hashlib.sha256).hexdigest()[:8]
        return self.pseudonyms[dev_id]

    def _on_record(self, dev_id: int, t: int, fields: dict) -> None:
        if not physio_allowed(int(fields.get("consent", 0))):
            self._end_wearer(dev_id)  # paused or withdrawn: this frame and everything after stay off LSL
            return
        outlet = self.wearer_outlets.get(dev_id)
        if outlet is None:
            outlet = self.wearer_outlets[dev_id] = self._open_wearer(dev_id)
        outlet.push_sample(wearer_sample(fields), self.stamp(float(t)))

    def _open_wearer(self, dev_id: int) -> Any:
        lsl, pseudo = self.lsl, self.pseudonym(dev_id)
        info = lsl.StreamInfo(f"{self.name}-{pseudo}", WEARER_TYPE, len(WEARER_CHANNELS), lsl.IRREGULAR_RATE,
                              lsl.cf_float32, f"{self.source_id}-{pseudo}")
        _describe(info, tuple((label, unit, WEARER_PROTECTION) for label, unit, *_ in WEARER_CHANNELS),
                  WEARER_PROTECTION)
        return lsl.StreamOutlet(info)

    def _end_wearer(self, dev_id: int) -> None:
        outlet = self.wearer_outlets.pop(dev_id, None)
        if outlet is not None:
            del outlet  # the last reference: liblsl closes the stream now, inlets see it end

    async def stop(self) -> None:
        if self._tee is not None and self.hub.scorer is self._tee:
            self.hub.scorer = self._tee.inner
        self._tee = None
        for dev in list(self.wearer_outlets):
            self._end_wearer(dev)
        self.outlet = None
        if self._own_source:
            self.source.close()


def start_lsl(hub: Any, *, cove: str, wearers: bool, source: PublicSource | None, prog: str) -> LslOut | None:
    """The outlets, or None after one line on stderr where pylsl/liblsl is missing (the hub runs on without)."""
    pylsl, why = load_pylsl()
    if pylsl is None:
        print(f"{prog}: LSL unavailable ({why}); running without LSL (install the [lsl] extra with liblsl)",
              file=sys.stderr, flush=True)
        return None
    return LslOut(hub, pylsl, cove=cove, wearers=wearers, source=source)
