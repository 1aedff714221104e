"""LSL outlets with real pylsl inlets on the loopback: the cove stream carries the hub's released public view with
its metadata and timestamps on each scored second; wearer streams exist only with --lsl-wearers, only for physiology
consent, under per-session pseudonyms, and end at once on pause or revocation."""

import asyncio
import subprocess
import sys
from pathlib import Path

import numpy as np
import pylsl
import pytest
from helpers.stepped import T0, install_clock, telemetry
from lifepalette.crypto import seal
from lifepalette.hub import Hub
from lifepalette.outputs.lsl import COVE_CHANNELS, WEARER_CHANNELS, LslOut, cove_sample, load_pylsl
from lifepalette.scoring import CoveScorer
from lifepalette.sim.cohort import make_cohort
from lifepalette.sim.features import feature_records

from protocol import frame as wire
from protocol import records

LP = Path(sys.executable).with_name("lifepalette")
N = 8
NO_PHYSIO = {0, 4}  # wearers who share colour only


class Cove:
    """8 simulated badges into a live Hub on a stepped clock, one second at a time."""

    def __init__(self, db: Path, monkeypatch, cove: str = "north"):
        self.clock = install_clock(monkeypatch)
        self.hub = Hub(db, scorer=CoveScorer(learn_s=10))
        self.hub.clock = self.clock.time
        cohort = make_cohort(N, 300, "confrontation", seed=5)
        self.features = feature_records(cohort)
        self.devs = [int(d) for d in cohort.dev_ids]
        self.keys = {d: self.hub.enroll(d) for d in self.devs}
        self.ctr = dict.fromkeys(self.devs, 0)
        self.s = 0
        self.consent = {d: records.make_consent(physio=i not in NO_PHYSIO, colour=True, revision=1)
                        for i, d in enumerate(self.devs)}
        self.sent: dict[int, list[tuple[int, dict]]] = {d: [] for d in self.devs}

    def second(self) -> None:
        self.clock.now = T0 + self.s
        if self.s:
            self.hub.tick()
        for i, dev in enumerate(self.devs):
            self.clock.now = T0 + self.s + 0.1 + 0.01 * i
            self.ctr[dev] += 1
            rec = telemetry(self.features, i, self.s, self.consent[dev])
            assert self.hub.ingest(seal(self.keys[dev], wire.TELEMETRY, dev, self.ctr[dev], rec)).ok
            self.sent[dev].append((int(self.clock.now), records.unpack_telemetry(rec)))
        self.s += 1


def resolve(prop: str, value: str, wait: float = 2.0) -> list:
    return pylsl.resolve_byprop(prop, value, 0, wait)


def inlet_for(info) -> pylsl.StreamInlet:
    inlet = pylsl.StreamInlet(info, max_buflen=60)
    inlet.open_stream(5.0)
    return inlet


def pull_all(inlet: pylsl.StreamInlet, n: int) -> list[tuple[list[float], float]]:
    out = []
    while len(out) < n:
        sample, ts = inlet.pull_sample(timeout=5.0)
        assert sample is not None, f"only {len(out)} of {n} samples arrived"
        out.append((sample, ts))
    return out


def test_cove_stream_is_the_released_view_with_metadata_and_aligned_timestamps(tmp_path, monkeypatch):
    pl, why = load_pylsl()
    assert pl is not None, why  # `make setup` installs the [lsl] extra; its wheel ships liblsl
    cove = Cove(tmp_path / "hub.db", monkeypatch)
    out = asyncio.run(LslOut(cove.hub, pl, cove="north").start())
    found = resolve("type", "Affect")
    assert [s.name() for s in found if s.source_id() == out.source_id] == ["LifePalette-north"]
    info = next(s for s in found if s.source_id() == out.source_id)
    assert info.channel_count() == len(COVE_CHANNELS) and info.nominal_srate() == 1.0
    inlet = inlet_for(info)
    full = inlet.info(5.0)
    chan = full.desc().child("channels").child("channel")
    labels = []
    while not chan.empty():
        labels.append((chan.child_value("label"), chan.child_value("unit"), chan.child_value("protection")))
        chan = chan.next_sibling()
    assert [(lab, unit) for lab, unit, _ in labels] == [(lab, unit) for lab, unit, _ in COVE_CHANNELS]
    assert "k-anonymous" in labels[2][2] and full.desc().child_value("k_min") == "5"
    expected = []
    cove.hub.subscribe(lambda: expected.append((cove.hub.scores.get("t"), cove.hub.public_view().to_json())))
    for _ in range(45):
        cove.second()
    got = pull_all(inlet, len(expected))
    assert sum(view["ready"] for _t, view in expected) > 20
    assert sum(view["arousal"] is not None for _t, view in expected) > 10
    for (sample, ts), (t, view) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(np.float32(sample), np.float32(cove_sample(view)))
        second = t if t is not None else None
        if second is not None:
            assert ts - out.offset == pytest.approx(second, abs=1e-3)  # stamped with the scored second
    asyncio.run(out.stop())
    again = LslOut(cove.hub, pl, cove="north")  # stable per cove and database
    assert again.source_id == out.source_id and LslOut(cove.hub, pl, cove="south").source_id != out.source_id


def test_wearer_streams_need_the_flag_and_consent_and_end_on_pause_and_revocation(tmp_path, monkeypatch):
    pl, _ = load_pylsl()
    cove = Cove(tmp_path / "hub.db", monkeypatch, cove="west")
    plain = asyncio.run(LslOut(cove.hub, pl, cove="west").start())
    cove.second()
    ours = [s for s in resolve("type", "AffectFeatures", 1.0) if s.source_id().startswith(plain.source_id)]
    assert ours == []  # no wearer stream without --lsl-wearers
    asyncio.run(plain.stop())
    out = asyncio.run(LslOut(cove.hub, pl, cove="west", wearers=True).start())
    cove.second()
    streams = {s.name(): s for s in resolve("type", "AffectFeatures") if s.source_id().startswith(out.source_id)}
    consenting = [d for i, d in enumerate(cove.devs) if i not in NO_PHYSIO]
    assert sorted(streams) == sorted(f"LifePalette-west-{out.pseudonym(d)}" for d in consenting)
    assert not {name.rsplit("-", 1)[1] for name in streams} & {str(d) for d in cove.devs}  # never the dev id
    first, paused, revoked = consenting[0], consenting[1], consenting[2]
    inlets = {d: inlet_for(streams[f"LifePalette-west-{out.pseudonym(d)}"]) for d in (first, paused, revoked)}
    sent_from = len(cove.sent[first])
    for _ in range(3):
        cove.second()
    got = pull_all(inlets[first], 3)
    chans = [c[2] for c in WEARER_CHANNELS]
    for (sample, ts), (second, fields) in zip(got, cove.sent[first][sent_from:], strict=True):
        assert ts - out.offset == pytest.approx(second, abs=1e-3)  # the frame's own second
        assert sample[chans.index("hr_bpm")] == fields["hr_bpm"] and sample[chans.index("scl")] == pytest.approx(
            fields["scl"] / 100, rel=1e-6)
    cove.consent[paused] = records.make_consent(physio=True, colour=True, paused=True, revision=1)
    cove.consent[revoked] = records.make_consent(physio=False, colour=True, revision=2)
    cove.second()
    # a pause heard only in a heartbeat ends the stream at the next tick
    hb = consenting[3]
    cove.ctr[hb] += 1
    beat = records.make_consent(physio=True, colour=True, paused=True, revision=1)
    assert cove.hub.ingest(seal(cove.keys[hb], wire.HEARTBEAT, hb, cove.ctr[hb], bytes([beat, 80, 7]) + bytes(10))).ok
    cove.consent[hb] = beat
    cove.hub.tick()
    gone = {s.name() for s in resolve("type", "AffectFeatures")}
    assert f"LifePalette-west-{out.pseudonym(first)}" in gone
    assert f"LifePalette-west-{out.pseudonym(paused)}" not in gone
    assert f"LifePalette-west-{out.pseudonym(revoked)}" not in gone
    assert f"LifePalette-west-{out.pseudonym(hb)}" not in gone
    # nothing after the pause or the revocation reached an inlet
    for dev in (paused, revoked):
        more = []
        while (pulled := inlets[dev].pull_sample(timeout=0.5))[0] is not None:
            more.append(pulled)
        assert len(more) <= 3
    old = out.pseudonym(first)
    cove.hub.start_session()  # a new session: new pseudonyms, nobody carried over
    cove.second()
    cove.second()
    assert out.pseudonym(first) != old
    names = {s.name() for s in resolve("type", "AffectFeatures")}
    assert f"LifePalette-west-{old}" not in names and f"LifePalette-west-{out.pseudonym(first)}" in names
    asyncio.run(out.stop())


def test_hub_cli_opens_the_cove_stream(tmp_path):
    proc = subprocess.Popen([str(LP), "hub", "--db", str(tmp_path / "h.db"), "--udp", "127.0.0.1:0", "--lsl",
                             "--cove", "east side"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("listening:")
        found = resolve("name", "LifePalette-east-side", 10.0)
        assert len(found) == 1 and found[0].type() == "Affect"
        sample, _ts = inlet_for(found[0]).pull_sample(timeout=10.0)
        assert sample[:2] == [0.0, 0.0] and all(np.isnan(sample[2:]))  # nobody there: withheld, not zero
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "Traceback" not in err


def test_hub_without_liblsl_says_so_in_one_line_and_runs(tmp_path):
    """A Pi without liblsl: pylsl cannot load its library. The hub prints one line and serves on."""
    env_py = ("import sys, pylsl.lib\n"
              "sys.modules['pylsl'] = None\n"  # import pylsl now fails as it does where the wheel/liblsl is missing
              "from lifepalette.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.Popen([sys.executable, "-c", env_py, "hub", "--db", str(tmp_path / "h.db"), "--udp",
                             "127.0.0.1:0", "--lsl"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening:"), proc.stderr.read()
        err = proc.stderr.readline()
        assert "LSL unavailable" in err and "running without LSL" in err
        assert proc.poll() is None  # still serving
    finally:
        proc.terminate()
        _out, rest = proc.communicate(timeout=20)
    assert "Traceback" not in rest
    assert proc.returncode == 0


def test_lsl_wearers_needs_lsl(tmp_path):
    res = subprocess.run([str(LP), "hub", "--db", str(tmp_path / "h.db"), "--udp", "127.0.0.1:0",
                          "--lsl-wearers"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "--lsl-wearers needs --lsl" in res.stderr
