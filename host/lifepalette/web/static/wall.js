// The cove wall: one picture of the room, driven by /api/cove/events (server-sent events, one per scoring tick).
// Colour is never the only carrier: arousal is also the pulse rate (and a word), synchrony is also how close the
// swatches sit and how much their pulses line up (and a word). No names, ids or per-person numbers exist here.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const CENTRE = 500;
const FAR = 380, NEAR = 150;          // ring radius when apart / when fully in step
const SLOW_S = 8, FAST_S = 1.6;       // pulse period when calm / when stirred

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

function svg(tag, attrs, cls) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (cls) el.setAttribute("class", cls);
  return el;
}

// A stable pseudo-random phase per position, so pulses start scattered and line up as synchrony grows.
function phase(i) { const x = Math.sin(i * 12.9898 + 78.233) * 43758.5453; return x - Math.floor(x); }

function setPulse(seconds) {
  const current = parseFloat(getComputedStyle(document.documentElement).getPropertyValue("--pulse")) || 0;
  if (Math.abs(current - seconds) > 0.15) document.documentElement.style.setProperty("--pulse", seconds.toFixed(2) + "s");
}

function renderWaiting(view) {
  const g = $("swatches");
  g.replaceChildren();
  const n = Math.min(view.contributors, view.k_min);
  for (let i = 0; i < view.k_min; i++) {  // filled dots for people here, dashed outlines for places still open
    const angle = (2 * Math.PI * i) / view.k_min - Math.PI / 2;
    g.append(svg("circle", { cx: CENTRE + FAR * Math.cos(angle), cy: CENTRE + FAR * Math.sin(angle), r: 34 },
      i < n ? "waiting-dot" : "waiting-dot open"));
  }
  $("waiting").hidden = false;
  $("mood-words").hidden = true;
  $("waiting-count").textContent = view.contributors === 0 ? "nobody is sharing yet"
    : view.contributors === 1 ? "1 person is here so far" : `${view.contributors} people are here so far`;
  $("aura-core").setAttribute("stop-color", "#56b4e9");
  $("aura-edge").setAttribute("stop-color", "#56b4e9");
  $("aura-core").setAttribute("stop-opacity", "0.5");
  $("aura").setAttribute("r", "300");
  $("together-ring").setAttribute("r", FAR);
  $("groups").replaceChildren();
  setPulse(SLOW_S);
}

function renderLive(view) {
  const pal = view.palette || { rgb: [86, 180, 233], brightness: view.arousal };
  const arousal = view.arousal ?? pal.brightness ?? 0;
  const sync = view.synchrony ?? pal.convergence ?? 0;
  const group = lit(pal.rgb);
  const bright = pal.brightness ?? arousal;
  $("aura-core").setAttribute("stop-color", css(group));
  $("aura-core").setAttribute("stop-opacity", (0.35 + 0.6 * bright).toFixed(2));
  $("aura-edge").setAttribute("stop-color", css(group));
  $("aura").setAttribute("r", (260 + 200 * bright).toFixed(0));  // a stirred room glows wider
  const radius = FAR - (FAR - NEAR) * sync;
  $("together-ring").setAttribute("r", radius.toFixed(1));
  setPulse(pulseSeconds(arousal));

  const g = $("swatches");
  const n = view.swatches.length;
  g.querySelectorAll(".waiting-dot").forEach((el) => el.remove());
  while (g.children.length > n * 2) g.lastChild.remove();
  const period = pulseSeconds(arousal);
  view.swatches.forEach((hex, i) => {
    let halo = g.children[2 * i], dot = g.children[2 * i + 1];
    if (!dot) {
      halo = svg("circle", { r: 60 }, "halo");
      dot = svg("circle", { r: 46 }, "swatch");
      g.append(halo, dot);
    }
    const angle = (2 * Math.PI * i) / n - Math.PI / 2;
    const x = (CENTRE + radius * Math.cos(angle)).toFixed(1), y = (CENTRE + radius * Math.sin(angle)).toFixed(1);
    const fill = css(mix(rgbOf(hex), group, 0.6 * sync));   // hues converge toward the group colour
    for (const el of [halo, dot]) { el.setAttribute("cx", x); el.setAttribute("cy", y); }
    halo.setAttribute("r", (50 + 70 * sync).toFixed(1));  // halos grow until they overlap when in step
    halo.setAttribute("stroke", css(group));
    dot.setAttribute("fill", fill);
    dot.dataset.hex = hex;  // the wearer's own colour, before convergence (for tests and tools)
    dot.style.setProperty("animation-delay", (-(phase(i) * period * (1 - sync))).toFixed(2) + "s");
  });
  $("waiting").hidden = true;
  $("mood-words").hidden = false;
  $("arousal-word").textContent = `The room is ${arousalWord(arousal)}`;
  $("sync-word").textContent = syncWord(sync);
  const items = view.groups.map((grp) => {
    const li = document.createElement("li");
    const dot = document.createElement("span");
    dot.className = "dot";
    if (grp.rgb) dot.style.setProperty("background", css(grp.rgb));
    li.append(dot, `Group ${grp.label}: ${arousalWord(grp.arousal)}, ${syncWord(grp.synchrony)}`);
    return li;
  });
  $("groups").replaceChildren(...(items.length > 1 ? items : []));
}

function render(view) {
  if (!view || typeof view !== "object" || !("ready" in view)) return;
  const wall = $("wall");
  $("cove-name").textContent = view.cove ? `· ${view.cove}` : "";
  if (view.ready) renderLive(view); else renderWaiting(view);
  wall.dataset.state = view.ready ? "live" : "waiting";
  wall.dataset.seq = String(view.seq);
  wall.dataset.updated = String(view.updated);
  wall.dataset.swatches = String(view.ready ? view.swatches.length : 0);
  wall.dataset.renders = String(Number(wall.dataset.renders || 0) + 1);
  window.lpLastRender = { seq: view.seq, updated: view.updated, at: Date.now() / 1000 };
}

function connect() {
  const source = new EventSource("/api/cove/events");
  source.onmessage = (ev) => { $("link-status").textContent = ""; try { render(JSON.parse(ev.data)); } catch (e) { console.error(e); } };
  source.onerror = () => { $("link-status").textContent = "reconnecting to the hub…"; };
}

fetch("/api/cove").then((r) => r.json()).then(render).catch(() => {}).finally(connect);
