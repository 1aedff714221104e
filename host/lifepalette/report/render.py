"""The session report as one self-contained, printable HTML page: inline SVG and CSS, no script, no request.

Colour is never the only carrier: the ribbon's height is the room's arousal, lines are labelled where they end and
drawn solid (arousal) or dashed (synchrony), the waiting stretches are hatched and named.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from lifepalette.boundary import hex_colour
from lifepalette.report.data import DataQuality, Report, contributors_over_time, ribbon, trajectories

W, PAD_L, PAD_R = 880, 54, 40  # chart width and margins (SVG user units)
INK, DIM, WAIT = "#1b1d21", "#5d6470", "#c9ccd2"

CSS = """
body { font: 14px/1.45 "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: #1b1d21; background: #fff;
  max-width: 940px; margin: 0 auto; padding: 20px 24px 40px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 26px 0 6px; border-bottom: 1px solid #d9dbe0; }
.meta, .note { color: #5d6470; margin: 2px 0; } .note { font-size: 12.5px; }
table { border-collapse: collapse; margin: 6px 0; } th, td { text-align: left; padding: 3px 14px 3px 0; }
th { font-weight: 600; color: #5d6470; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
svg { display: block; max-width: 100%; height: auto; } svg text { font: 12px "DejaVu Sans", Arial, sans-serif; }
section { break-inside: avoid; page-break-inside: avoid; }
@media print { body { padding: 0; max-width: none; } h2 { break-after: avoid; } }
"""


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%H:%M")


def _day(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%A %d %B %Y")


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.0f} %"


class Axis:
    """Time (seconds) to x across the chart's width."""

    def __init__(self, t0: float, t1: float):
        self.t0, self.span = t0, max(t1 - t0, 1.0)

    def x(self, t: float) -> float:
        return round(PAD_L + (W - PAD_L - PAD_R) * (t - self.t0) / self.span, 1)

    def ticks(self, y: float) -> str:
        """The start and end clock times, and whole minutes between them about a sixth of the span apart."""
        end = self.t0 + self.span
        marks = [f'<text x="{self.x(self.t0)}" y="{y}" text-anchor="start" fill="{DIM}">{_clock(self.t0)}</text>',
                 f'<text x="{self.x(end)}" y="{y}" text-anchor="end" fill="{DIM}">{_clock(end)}</text>']
        step = max(60.0, round(self.span / 6 / 60) * 60)
        t = self.t0 - self.t0 % step + step
        while t <= end - step / 2:
            if t - self.t0 >= step / 2:
                marks.append(f'<text x="{self.x(t)}" y="{y}" text-anchor="middle" fill="{DIM}">{_clock(t)}</text>')
            t += step
        return "".join(marks)


def lit(hex_rgb: str) -> str:
    """The released colour's hue at full value (as the wall shows it): the height carries brightness instead, so a
    calm room still reads as a colour on paper."""
    rgb = [int(hex_rgb[i:i + 2], 16) for i in (1, 3, 5)]
    top = max(rgb)
    return "#9aa3ad" if top == 0 else hex_colour([round(c * 255 / top) for c in rgb])


def _svg(height: int, label: str, body: str) -> str:
    return (f'<svg viewBox="0 0 {W} {height}" width="{W}" height="{height}" role="img" aria-label="{escape(label)}"'
            f' xmlns="http://www.w3.org/2000/svg">{body}</svg>')


def _unit_scale(top: float, height: float):
    return lambda v: round(top + height * (1 - v), 1)


def _polylines(axis: Axis, series: list[tuple[float, float | None]], y) -> list[str]:
    """Point lists of a series, broken where it has no value."""
    runs: list[list[str]] = []
    run: list[str] = []
    for t, v in series:
        if v is None:
            if run:
                runs.append(run)
            run = []
        else:
            run.append(f"{axis.x(t)},{y(v)}")
    if run:
        runs.append(run)
    return [" ".join(r) for r in runs]


def ribbon_svg(report: Report, axis: Axis) -> str:
    """The palette ribbon: the released colour over time, as tall as the room's arousal; hatched while waiting."""
    top, h = 12, 80
    mid = top + h / 2
    parts = ['<defs><pattern id="wait" width="8" height="8" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><rect width="8" height="8" fill="#eef0f3"/>'
             f'<line x1="0" y1="0" x2="0" y2="8" stroke="{WAIT}" stroke-width="3"/></pattern></defs>']
    for seg in ribbon(report.points, report.end):
        x0, x1 = axis.x(seg.t0), axis.x(seg.t1)
        width = max(round(x1 - x0, 1), 0.6)
        if seg.hex is None:
            parts.append(f'<rect x="{x0}" y="{mid - 6}" width="{width}" height="12" fill="url(#wait)"/>')
            continue
        half = round(8 + (h / 2 - 8) * (seg.arousal or 0), 1)
        parts.append(f'<rect x="{x0}" y="{round(mid - half, 1)}" width="{width}" height="{round(2 * half, 1)}" '
                     f'fill="{lit(seg.hex)}"/>')
    parts.append(axis.ticks(top + h + 20))
    return _svg(top + h + 28, "palette ribbon: the cove colour over the session, taller when the room was more "
                "stirred, hatched while fewer than the minimum people shared", "".join(parts))


def trajectories_svg(report: Report, axis: Axis, measure: str) -> str:
    """Arousal (index 1) or synchrony (index 2) of the cove and of each released group over time."""
    index = 1 if measure == "arousal" else 2
    top, h = 14, 150
    y = _unit_scale(top, h)
    parts = [_grid(y, axis)]
    for name, series in trajectories(report.points).items():
        cove = name == "cove"
        values = [(t, row[index - 1]) for t, *row in series]
        dash = "" if cove else ' stroke-dasharray="6 4"'
        for line in _polylines(axis, values, y):
            parts.append(f'<polyline points="{line}" fill="none" stroke="{INK if cove else DIM}" '
                         f'stroke-width="{3 if cove else 2}"{dash}/>')
        last = next(((t, v) for t, v in reversed(values) if v is not None), None)
        if last is not None:
            label = "room" if cove else f"group {name}"
            parts.append(f'<text x="{axis.x(last[0]) + 4}" y="{y(last[1]) + 4}" fill="{INK}">{escape(label)}</text>')
    if not any(row[index] is not None for series in trajectories(report.points).values() for row in series):
        parts.append(f'<text x="{W / 2}" y="{y(0.5) - 6}" text-anchor="middle" fill="{DIM}">no {measure} was '
                     f'released in this session (baselines still being learnt, or fewer than {report.k_min} people)'
                     "</text>")
    parts.append(axis.ticks(top + h + 20))
    return _svg(top + h + 28, f"group trajectories of {measure} over the session, 0 to 1", "".join(parts))


def _grid(y, axis: Axis) -> str:
    rows = []
    for v, word in ((0.0, "0"), (0.5, "0.5"), (1.0, "1")):
        rows.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y(v)}" y2="{y(v)}" stroke="#e3e5e9"/>'
                    f'<text x="{PAD_L - 8}" y="{y(v) + 4}" text-anchor="end" fill="{DIM}">{word}</text>')
    return "".join(rows)


def contributors_svg(report: Report, axis: Axis) -> str:
    """People contributing over time (a step line) against the minimum k for any public number."""
    top, h = 14, 110
    series = contributors_over_time(report.points)
    most = max([report.k_min + 1, *(n for _t, n in series)])
    y = lambda n: round(top + h * (1 - n / most), 1)  # noqa: E731
    steps = []
    for i, (t, n) in enumerate(series):
        t_next = series[i + 1][0] if i + 1 < len(series) else report.end
        steps += [f"{axis.x(t)},{y(n)}", f"{axis.x(max(t_next, t))},{y(n)}"]
    parts = [f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y(report.k_min)}" y2="{y(report.k_min)}" stroke="{DIM}" '
             f'stroke-dasharray="4 4"/><text x="{W - PAD_R + 4}" y="{y(report.k_min) + 4}" fill="{DIM}">'
             f'k = {report.k_min}</text>',
             f'<text x="{PAD_L - 8}" y="{y(0) + 4}" text-anchor="end" fill="{DIM}">0</text>'
             f'<text x="{PAD_L - 8}" y="{y(most) + 4}" text-anchor="end" fill="{DIM}">{most}</text>']
    if steps:
        parts.append(f'<polyline points="{" ".join(steps)}" fill="none" stroke="{INK}" stroke-width="2.5"/>')
    parts.append(axis.ticks(top + h + 20))
    return _svg(top + h + 28, "people contributing over the session, with the minimum of "
                f"{report.k_min} for any public number", "".join(parts))


def quality_html(q: DataQuality, report: Report, axis: Axis) -> str:
    if q.withheld:
        return (f'<p>Withheld: fewer than {report.k_min} wearers sent data in this session, and a share over '
                'so few people would be their own number.</p>')
    rows = [("Telemetry frames with skin contact", q.skin_contact), ("Telemetry frames with motion", q.motion),
            ("Telemetry frames from a badge missing a sensor", q.sensor_missing),
            ("Heartbeats from a badge in safe mode", q.safe_mode),
            ("Excluded: no consent to physiology", q.no_physio_consent), ("Excluded: paused", q.paused),
            ("Physiology kept (consented, not erased)", q.physio_kept)]
    table = "".join(f"<tr><th>{escape(name)}</th><td class=n>{_pct(v)}</td></tr>" for name, v in rows)
    bars = []
    top, h = 10, 70
    for t, share in q.per_minute:
        x0, x1 = axis.x(t), axis.x(min(t + 60, report.end))
        bars.append(f'<rect x="{x0}" y="{round(top + h * (1 - share), 1)}" width="{max(round(x1 - x0 - 1, 1), 0.6)}" '
                    f'height="{round(h * share, 1)}" fill="#0072b2"/>')
    chart = _svg(top + h + 28, "share of telemetry with skin contact, minute by minute",
                 f'<text x="{PAD_L - 8}" y="{top + 4}" text-anchor="end" fill="{DIM}">100 %</text>'
                 f'<text x="{PAD_L - 8}" y="{top + h + 4}" text-anchor="end" fill="{DIM}">0</text>'
                 + "".join(bars) + axis.ticks(top + h + 20))
    return (f"<table>{table}</table><p class=note>Shares of all frames received during the session "
            f"(every wearer together).</p><h3>Skin contact, minute by minute</h3>{chart}")


def _num(v: Any) -> str:
    return f"{v:.1f}" if isinstance(v, float) else escape(str(v))


def _counts(rows: list[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{escape(k)}</th><td class=n>{escape(str(v))}</td></tr>"
                               for k, v in rows) + "</table>"


def budget_html(budget: dict | None) -> str:
    if not budget:
        return "<p>The hub recorded no privacy budget for this session.</p>"
    line = (f"{_pct(budget.get('fraction'))} of the per-person budget: rho {_num(budget['spent'])} of "
            f"{_num(budget['limit'])} (zCDP)")
    extra = f", epsilon {budget['epsilon']} at delta {budget['delta']}" if "epsilon" in budget else ""
    held = " The budget ran out: the public numbers were held from then on." if budget.get("exhausted") else ""
    return f"<p>{escape(line + extra)}.{held}</p>"


def render(report: Report) -> str:
    s = report.session
    axis = Axis(s.started_at, report.end)
    name = f"Session {s.id}" if s.id is not None else "Everything recorded (no session was started)"
    ended = _clock(s.ended_at) if s.ended_at is not None else "still running"
    minutes = round((report.end - s.started_at) / 60)
    clock_note = {False: " The hub's clock was not synchronised when the session started: times may be off.",
                  True: "", None: ""}[s.clock_synced]
    source = ("as the hub released them live" if report.journey_source == "live" else
              "released for this report through the hub's release mechanism (the hub kept no journey)")
    waiting = ("" if any(p.ready for p in report.points) else
               f"<p>The room never reached {report.k_min} contributing people: no public number was released.</p>")
    body = f"""
<header><h1>Life Palette · {escape(name)}</h1>
<p class=meta>{escape(report.cove)} · {escape(_day(s.started_at))} · {_clock(s.started_at)} to {escape(ended)}
 ({minutes} min).{escape(clock_note)}</p>
<p class=note>Every number about the room below is a released public number ({escape(source)}): aggregates over at
 least {report.k_min} people, with the noise that protects each of them. No device id and no number about any one
 person appears in this report.</p></header>
<section><h2>The palette ribbon</h2>{waiting}{ribbon_svg(report, axis)}
<p class=note>The room's colour over time; taller where the room was more stirred; hatched while fewer than
 {report.k_min} people shared.</p></section>
<section><h2>Group trajectories: arousal</h2>{trajectories_svg(report, axis, "arousal")}
<p class=note>Solid: the whole room. Dashed: each dialogue group with at least {report.k_min} people.</p></section>
<section><h2>Group trajectories: synchrony</h2>{trajectories_svg(report, axis, "synchrony")}</section>
<section><h2>Contributors over time</h2>{contributors_svg(report, axis)}</section>
<section><h2>Data quality and exclusions</h2>{quality_html(report.quality, report, axis)}</section>
<section><h2>Consent and erasure</h2>{_counts([
        ("Consent given or changed (consent epochs begun)", report.consent.opened),
        ("Consent revoked", report.consent.revoked),
        ("Consent epochs of this session erased since", report.consent.erased),
        ("Erasure receipts written during the session", report.erasures.total),
        *((f"  by reason: {reason}", n) for reason, n in report.erasures.by_reason)])}</section>
<section><h2>Privacy budget spent</h2>{budget_html(report.budget)}</section>
<p class=note>Written {escape(datetime.fromtimestamp(report.now).strftime("%Y-%m-%d %H:%M"))} by lifepalette report.</p>
"""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Life Palette · {escape(name)}'
            f'</title><meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style>'
            f"</head><body>{body}</body></html>\n")
