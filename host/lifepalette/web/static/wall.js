// The cove wall: one picture of the room, driven by /api/cove/events (server-sent events, one per scoring tick).
// Colour is never the only carrier: arousal is also the pulse rate (and a word), synchrony is also how close the
// swatches sit and how much their pulses line up (and a word). No names, ids or per-person numbers exist here.
//
// Cheap enough for a Pi driving its own screen with software rendering: everything moves by transform (the
// compositor animates it without layout or paint), every write goes through `put`, which skips values the page
// already shows, and values are quantised so that small drifts between ticks change nothing. The pulse is a beat,
// not a never-ending animation: a running animation makes the compositor draw every frame, so each swatch beats
// once per period (a short Web Animation on transform) and the page is still between beats. Arousal sets the
// period; synchrony gathers the beats: scattered across a second when people are apart, together when in step.
"use strict";

const FAR = 380, NEAR = 150;          // ring radius (palette units) when apart / when fully in step
const SLOW_S = 8, FAST_S = 1.6;       // pulse period when calm / when stirred
const RING_SCALE_1 = 380;             // the ring element's own radius (76 % of the 1000-unit palette / 2)
const AURA_SCALE_1 = 430;             // the aura element's own radius
const BEAT_MS = 360, SCATTER_MS = 420; // one beat's length; the most the beats of a period are spread apart
const BEAT = [{ transform: "scale(1)" }, { transform: "scale(1.25)", easing: "ease-in-out" }, { transform: "scale(1)" }];

const $ = (id) => document.getElementById(id);

function mix(a, b, t) { return a.map((v, i) => Math.round(v + (b[i] - v) * t)); }
function rgbOf(hex) { return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)); }
function css(rgb) { return `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`; }
// The group colour's hue at full value: brightness is shown by the glow's size and opacity instead, so a calm
// (dim) room still reads as a colour from across the room.
function lit(rgb) { const m = Math.max(...rgb); return m > 0 ? rgb.map((v) => Math.round((v * 255) / m)) : [154, 163, 173]; }

function arousalWord(a) { return a == null ? "" : a < 0.34 ? "calm" : a < 0.67 ? "stirred" : "intense"; }
function syncWord(s) { return s == null ? "" : s < 0.34 ? "each in their own rhythm" : s < 0.67 ? "finding a shared rhythm" : "in step together"; }
function pulseSeconds(a) { return a == null ? SLOW_S : SLOW_S - (SLOW_S - FAST_S) * a; }

// Write only what differs from what this page last wrote (a same-value write still invalidates style or layout).
const shown = new WeakMap();
function put(el, key, value, write) {
  let mine = shown.get(el);
  if (!mine) { mine = {}; shown.set(el, mine); }
  if (mine[key] === value) return;
  mine[key] = value;
  write(value);
}
const text = (el, v) => put(el, "text", v, (x) => { el.textContent = x; });
const style = (el, prop, v) => put(el, prop, v, (x) => el.style.setProperty(prop, x));
const flag = (el, name, v) => put(el, name, v, (x) => { el[name] = x; });

function div(cls) { const el = document.createElement("div"); el.className = cls; return el; }

// A stable pseudo-random phase per position, so pulses start scattered and line up as synchrony grows.
function phase(i) { const x = Math.sin(i * 12.9898 + 78.233) * 43758.5453; return x - Math.floor(x); }

function place(el, radius, i, n) {
  const angle = (2 * Math.PI * i) / n - Math.PI / 2;
  const x = Math.round(radius * Math.cos(angle) / 5) * 5, y = Math.round(radius * Math.sin(angle) / 5) * 5;
  style(el, "transform", `translate(calc(${x} * var(--u)), calc(${y} * var(--u)))`);
}

function setPulse(seconds) {  // declared on each dot (a custom property change would cost a layout)
  const period = (Math.round(seconds * 5) / 5).toFixed(1) + "s";
  document.querySelectorAll(".swatch, .waiting-dot").forEach((el) => style(el, "animation-duration", period));
}

// The beat clock: every period, each pulsing element beats once, at its own offset within the period's window.
const beat = { periodS: 6, sync: 0 };
function beatOnce() {
  setTimeout(beatOnce, beat.periodS * 1000);
  // reduced motion: no beat; the words and the swatches' closeness still carry arousal and synchrony
  if (window.matchMedia("(prefers-reduced-motion: reduce)").matches) return;
  const scatter = SCATTER_MS * (1 - beat.sync);
  const dots = [...document.querySelectorAll(".swatch, .waiting-dot:not(.open)")];
  // All start together and each holds still until its own moment inside the window: one start for the
  // compositor to take over (a `delay` or a timer per dot keeps the main thread busy for the whole window).
  const window_ms = scatter + BEAT_MS;
  dots.forEach((el, i) => {
    const at = (phase(i) * scatter) / window_ms, len = BEAT_MS / window_ms;
    el.animate([{ transform: "scale(1)", offset: 0 }, { transform: "scale(1)", offset: at, easing: "ease-in-out" },
      { transform: "scale(1.25)", offset: at + len / 2, easing: "ease-in-out" },
      { transform: "scale(1)", offset: at + len }, { transform: "scale(1)", offset: 1 }], { duration: window_ms });
  });
  document.querySelectorAll(".pulse-glyph").forEach((el) => el.animate(BEAT, { duration: BEAT_MS }));
}

function setGlow(rgb, opacity, radius) {
  const colour = css(rgb.map((v) => Math.round(v / 8) * 8));
  for (const id of ["aura-core", "aura-edge"]) {
    style($(id), "background-image", `radial-gradient(closest-side, ${colour}, transparent)`);
  }
  document.querySelectorAll(".halo").forEach((el) => style(el, "border-color", colour));
  style($("aura-core"), "opacity", (Math.round(opacity * 20) / 20).toFixed(2));
  style($("aura"), "transform", `scale(${(Math.round(radius / AURA_SCALE_1 * 40) / 40).toFixed(3)})`);
}

function renderWaiting(view) {
  const g = $("swatches");
  const n = Math.min(view.contributors, view.k_min);
  const key = `waiting ${n}/${view.k_min}`;
  put(g, "layout", key, () => {  // filled dots for people here, dashed outlines for places still open
    g.replaceChildren();
    for (let i = 0; i < view.k_min; i++) {
      const slot = div("slot");
      place(slot, FAR, i, view.k_min);
      slot.append(div(i < n ? "waiting-dot" : "waiting-dot open"));
      g.append(slot);
    }
  });
  flag($("waiting"), "hidden", false);
  flag($("mood-words"), "hidden", true);
  text($("waiting-count"), view.contributors === 0 ? "nobody is sharing yet"
    : view.contributors === 1 ? "1 person is here so far" : `${view.contributors} people are here so far`);
  setGlow([86, 180, 233], 0.5, 300);
  style($("together-ring"), "transform", "scale(1)");
  put($("groups"), "items", "", () => $("groups").replaceChildren());
  setPulse(SLOW_S);
  beat.periodS = SLOW_S;
  beat.sync = 0;
}

function renderLive(view) {
  const pal = view.palette || { rgb: [86, 180, 233], brightness: view.arousal };
  const arousal = view.arousal ?? pal.brightness ?? 0;
  const sync = Math.round((view.synchrony ?? pal.convergence ?? 0) * 20) / 20;  // 5 % steps: drift moves nothing
  const group = lit(pal.rgb);
  const bright = pal.brightness ?? arousal;
  setGlow(group, 0.35 + 0.6 * bright, 260 + 200 * bright);  // a stirred room glows wider
  const radius = FAR - (FAR - NEAR) * sync;
  style($("together-ring"), "transform", `scale(${(radius / RING_SCALE_1).toFixed(3)})`);
  setPulse(pulseSeconds(arousal));
  beat.periodS = pulseSeconds(arousal);
  beat.sync = sync;

  const g = $("swatches");
  const n = view.swatches.length;
  put(g, "layout", `live ${n}`, () => {
    g.replaceChildren();
    for (let i = 0; i < n; i++) {
      const slot = div("slot");
      slot.append(div("halo"), div("swatch"));
      g.append(slot);
    }
  });
  view.swatches.forEach((hex, i) => {
    const slot = g.children[i], halo = slot.children[0], dot = slot.children[1];
    place(slot, radius, i, n);
    style(halo, "transform", `scale(${((50 + 70 * sync) / 60).toFixed(2)})`);  // halos grow until they overlap
    style(dot, "background-color", css(mix(rgbOf(hex), group, 0.6 * sync)));   // hues converge toward the group
    put(dot, "hex", hex, (x) => { dot.dataset.hex = x; });  // the wearer's own colour (for tests and tools)
  });
  flag($("waiting"), "hidden", true);
  flag($("mood-words"), "hidden", false);
  text($("arousal-word"), `The room is ${arousalWord(arousal)}`);
  text($("sync-word"), syncWord(sync));
  const groups = view.groups.length > 1 ? view.groups : [];
  const labels = groups.map((grp) => [grp.rgb ? css(grp.rgb) : "",
    `Group ${grp.label}: ${arousalWord(grp.arousal)}, ${syncWord(grp.synchrony)}`]);
  put($("groups"), "items", JSON.stringify(labels), () => {
    $("groups").replaceChildren(...labels.map(([colour, words]) => {
      const li = document.createElement("li");
      const dot = document.createElement("span");
      dot.className = "dot";
      if (colour) dot.style.setProperty("background", colour);
      li.append(dot, words);
      return li;
    }));
  });
}

function render(view) {
  if (!view || typeof view !== "object" || !("ready" in view)) return;
  const wall = $("wall");
  text($("cove-name"), view.cove ? `· ${view.cove}` : "");
  if (view.ready) renderLive(view); else renderWaiting(view);
  // data-state is styled; the other data-* attributes are read by tests and tools only (no selector uses them)
  put(wall, "state", view.ready ? "live" : "waiting", (x) => { wall.dataset.state = x; });
  wall.dataset.seq = String(view.seq);
  wall.dataset.updated = String(view.updated);
  wall.dataset.swatches = String(view.ready ? view.swatches.length : 0);
  wall.dataset.renders = String(Number(wall.dataset.renders || 0) + 1);
  window.lpLastRender = { seq: view.seq, updated: view.updated, at: Date.now() / 1000 };
  refreshJourney(view);
}

function connect() {
  const source = new EventSource("/api/cove/events");
  source.onmessage = (ev) => { text($("link-status"), ""); try { render(JSON.parse(ev.data)); } catch (e) { console.error(e); } };
  source.onerror = () => { text($("link-status"), "reconnecting to the hub…"); };
}

fetch("/api/cove").then((r) => r.json()).then(render).catch(() => {}).finally(connect);
setTimeout(beatOnce, 1000);

// The journey: the session so far as a ribbon, from the released views the hub kept (/api/cove/journey). Colour is
// the released cove colour; the band's height is the room's arousal; the strands over it lie apart when people are
// each in their own rhythm and draw together as they fall in step; a dashed line marks the stretches while fewer
// than five people shared. Redrawn only when the journey has a new point (a few times a minute at most).
const SVG_NS = "http://www.w3.org/2000/svg";
const STRANDS = [-1, -0.5, 0, 0.5, 1];
const JOURNEY_POLL_MS = 3000;
let journeyKey = "", journeyFetching = false, journeyFetched = 0, journeyPoints = [], journeyStarted = null;

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}
function clock(t) { return new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }); }

function drawRibbon(points, now) {
  const svg = $("ribbon");
  if (!points.length) { svg.replaceChildren(); $("wall").dataset.ribbon = "0"; return; }
  const t0 = points[0].t, span = Math.max(now - t0, 1);
  const x = (t) => ((t - t0) / span * 1000).toFixed(1);
  const parts = [], strands = STRANDS.map(() => []);
  points.forEach((p, i) => {
    const t1 = i + 1 < points.length ? points[i + 1].t : Math.max(now, p.t);
    if (p.rgb == null) {  // waiting for five people: no number was released
      parts.push(svgEl("line", { class: "waiting", x1: x(p.t), x2: x(t1), y1: 50, y2: 50, "vector-effect": "non-scaling-stroke" }));
      STRANDS.forEach((_, k) => strands[k].push(null));
      return;
    }
    const half = 10 + 38 * (p.a ?? p.b ?? 0);
    parts.push(svgEl("rect", { class: "seg", x: x(p.t), y: (50 - half).toFixed(1),
      width: Math.max(0.8, x(t1) - x(p.t)).toFixed(1), height: (2 * half).toFixed(1), fill: css(lit(p.rgb)) }));
    const spread = (half - 4) * (1 - (p.s ?? p.c ?? 0));
    STRANDS.forEach((o, k) => strands[k].push([x((p.t + t1) / 2), (50 + o * spread).toFixed(1)]));
  });
  strands.forEach((pts) => {  // one polyline per unbroken run of released points
    let run = [];
    const flush = () => { if (run.length > 1) parts.push(svgEl("polyline", { class: "strand", points: run.join(" "), "vector-effect": "non-scaling-stroke" })); run = []; };
    pts.forEach((pt) => { if (pt) run.push(pt.join(",")); else flush(); });
    flush();
  });
  svg.replaceChildren(...parts);
  $("wall").dataset.ribbon = String(points.length);
  text($("journey-start"), `since ${clock(t0)}`);
  const last = points[points.length - 1];
  text($("journey-summary"), last.rgb == null ? "waiting for 5 people"
    : `the room has been ${arousalWord(last.a ?? last.b ?? 0)}, ${syncWord(last.s ?? last.c ?? 0)}`);  // as the wall's words
}

function refreshJourney(view) {
  const now = Date.now();
  if (journeyFetching || now - journeyFetched < JOURNEY_POLL_MS) return;
  journeyFetching = true;
  journeyFetched = now;
  // only the points since the last one this page has; the whole journey again when it began anew (a new session)
  const last = journeyPoints.length ? journeyPoints[journeyPoints.length - 1].t : null;
  fetch(last == null ? "/api/cove/journey" : `/api/cove/journey?since=${last}`).then((r) => r.json()).then((j) => {
    const fresh = Array.isArray(j.points) ? j.points : [];
    if (last != null && j.started !== journeyStarted) { journeyPoints = []; journeyStarted = null; journeyFetched = 0; return; }
    journeyStarted = j.started;
    journeyPoints = journeyPoints.concat(fresh);
    const points = journeyPoints;
    const key = `${points.length} ${points.length ? points[points.length - 1].t : 0} ${Math.round(view.updated / 10)}`;
    if (key !== journeyKey) { journeyKey = key; drawRibbon(points, Math.max(view.updated, points.length ? points[points.length - 1].t : 0)); }
  }).catch(() => {}).finally(() => { journeyFetching = false; });
}
