// The wearer's own page. The token is the URL fragment (never sent to a server, never in its logs); every request
// carries it as "Authorization: Wearer <token>". One picture per idea, each with words that say the same thing.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const token = decodeURIComponent(location.hash.replace(/^#/, ""));
const main = document.getElementById("me");
const REFRESH_MS = 15000;

function el(name, attrs, parent, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function svgIn(id, width, height, label) {
  const box = document.getElementById(id);
  box.textContent = "";
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label }, box);
  return svg;
}

function say(id, text) { document.getElementById(id).textContent = text; }

function clock(t) {
  const d = new Date(t * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function day(t) { return new Date(t * 1000).toLocaleDateString([], { day: "numeric", month: "short" }); }

async function call(path, options) {
  const opts = options || {};
  const headers = Object.assign({ Authorization: "Wearer " + token }, opts.headers || {});
  return fetch(path, Object.assign({}, opts, { headers, cache: "no-store", credentials: "omit" }));
}

// --- consent ---------------------------------------------------------------------------------------------------
function drawConsent(consent) {
  const svg = svgIn("consent-picture", 400, 130, "what your badge shares");
  const items = [["Body signals", consent.physiology], ["Colour you chose", consent.colour]];
  items.forEach(([name, on], i) => {
    const x = 100 + i * 200;
    el("circle", { cx: x, cy: 34, r: 26, class: on ? "shared" : "withheld" }, svg);
    el("text", { x, y: 42, "text-anchor": "middle" }, svg, on ? "✓" : "✗");
    el("text", { x, y: 90, "text-anchor": "middle" }, svg, name);
    el("text", { x, y: 116, "text-anchor": "middle" }, svg, on ? "shared" : "not shared");
  });
  let words;
  if (consent.epoch === null) words = "Your badge has not shared anything with the hub yet.";
  else if (consent.paused) words = "Your badge is paused: it is not sending body signals right now.";
  else if (consent.physiology && consent.colour) words = "Your badge shares your body signals and the colour you chose";
  else if (consent.physiology) words = "Your badge shares your body signals, not a colour";
  else if (consent.colour) words = "Your badge shares only the colour you chose: no body signals";
  else words = "Your badge shares nothing but that it is switched on";
  if (consent.since) words += ` (since ${clock(consent.since)} on ${day(consent.since)})`;
  if (consent.physiology && !consent.kept) {
    words += ". You erased this period: the hub keeps none of your body signals until you give consent again on your badge";
  }
  words += words.endsWith(".") ? "" : ".";
  say("consent-words", words);
}

// --- one chart per measure -------------------------------------------------------------------------------------
const W = 640, H = 260, PAD_L = 96, PAD_R = 14, PAD_T = 16, PAD_B = 40;

function chart(id, points, key, lo, hi, label, ticks) {
  const svg = svgIn(id, W, H, label);
  const shown = points.filter((p) => p[key] !== null && p[key] !== undefined);
  svg.dataset.points = String(shown.length);
  if (!shown.length) {
    el("rect", { x: 1, y: 1, width: W - 2, height: H - 2, class: "withheld", rx: 8 }, svg);
    el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, svg, label === "erased" ? "Erased" : "Nothing yet");
    return shown;
  }
  const t0 = shown[0].t, t1 = Math.max(shown[shown.length - 1].t, t0 + 60);
  const x = (t) => PAD_L + ((t - t0) / (t1 - t0)) * (W - PAD_L - PAD_R);
  const y = (v) => PAD_T + (1 - (Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo)) * (H - PAD_T - PAD_B);
  el("line", { x1: PAD_L, y1: H - PAD_B, x2: W - PAD_R, y2: H - PAD_B, class: "axis" }, svg);
  el("line", { x1: PAD_L, y1: PAD_T, x2: PAD_L, y2: H - PAD_B, class: "axis" }, svg);
  for (const [v, name] of ticks) el("text", { x: PAD_L - 6, y: y(v) + 4, "text-anchor": "end" }, svg, name);
  el("text", { x: PAD_L, y: H - 10 }, svg, clock(t0));
  el("text", { x: W - PAD_R, y: H - 10, "text-anchor": "end" }, svg, clock(t1));
  // separate runs (sessions, or a long silence) so a line never bridges time nobody measured
  let run = [];
  const runs = [run];
  shown.forEach((p, i) => {
    const prev = shown[i - 1];
    if (prev && (p.t - prev.t > 600 || p.session !== prev.session)) {
      el("line", { x1: x(p.t) - 3, y1: PAD_T, x2: x(p.t) - 3, y2: H - PAD_B, class: "gap" }, svg);
      run = [];
      runs.push(run);
    }
    run.push(p);
  });
  for (const r of runs) {
    el("polyline", { class: "line", points: r.map((p) => `${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" ") }, svg);
  }
  // confidence is the marker's size (and said in words), never only a shade
  for (const p of shown) {
    const c = p.confidence === null || p.confidence === undefined ? 0.3 : p.confidence;
    el("circle", { cx: x(p.t).toFixed(1), cy: y(p[key]).toFixed(1), r: (2 + 4 * c).toFixed(1), class: "marker" }, svg);
  }
  return shown;
}

function sure(c) {
  if (c === null || c === undefined) return "";
  if (c >= 0.66) return " We are fairly sure of this.";
  if (c >= 0.33) return " We are only partly sure of this yet.";
  return " This is an early, uncertain reading.";
}

function trendWords(trend) {
  if (trend === null || trend === undefined) return "";
  if (trend > 0.005) return ", rising ▲";
  if (trend < -0.005) return ", falling ▼";
  return ", steady ►";
}

function last(points, key) {
  for (let i = points.length - 1; i >= 0; i--) if (points[i][key] !== null && points[i][key] !== undefined) return points[i];
  return null;
}

function drawJourney(points, erased) {
  if (erased && !points.length) {
    for (const idea of ["level", "arousal", "regulation", "synchrony"]) {
      chart(`${idea}-chart`, [], idea, 0, 1, "erased", []);
      say(`${idea}-words`, "Erased at your request: nothing of this is kept.");
    }
    return;
  }
  chart("level-chart", points, "level", 0, 1, "your Compassion Metric over time", [[0, "0"], [0.5, "0.5"], [1, "1"]]);
  const lv = last(points, "level");
  say("level-words", lv ? `Your latest Compassion Metric is ${lv.level.toFixed(2)} on a scale from 0 to 1${trendWords(lv.trend)}.` +
    sure(lv.confidence) : "No Compassion Metric yet: it starts after a few minutes of shared body signals.");

  chart("arousal-chart", points, "arousal", 0, 1, "how stirred you were over time", [[0, "calm"], [0.5, "stirred"], [1, "intense"]]);
  const ar = last(points, "arousal");
  const arWord = (v) => (v < 0.33 ? "calm" : v < 0.66 ? "stirred" : "intense");
  say("arousal-words", ar ? `Lately your body was ${arWord(ar.arousal)}.` : "Not measured yet.");

  chart("regulation-chart", points, "regulation", 0, 1, "how quickly you settled over time", [[0, "slowly"], [1, "quickly"]]);
  const rg = last(points, "regulation");
  const rgWord = (v) => (v >= 0.66 ? "quickly" : v >= 0.33 ? "at an easy pace" : "slowly");
  say("regulation-words", rg ? `After a peak you settled ${rgWord(rg.regulation)}.` : "No peak to settle from yet.");

  chart("synchrony-chart", points, "synchrony", -0.5, 0.5, "how in step you were over time", [[-0.5, "apart"], [0, "even"], [0.5, "in step"]]);
  const sy = last(points, "synchrony");
  const syWord = (v) => (v > 0.1 ? "in step with the people you talked to" : v < -0.1 ? "out of step with them" : "neither more nor less in step than by chance");
  say("synchrony-words", sy ? `Lately your body was ${syWord(sy.synchrony)}. We never show who they were.`
    : "Not measured yet: it needs a few minutes of talking with others who share their signals.");
}

// --- what is stored ----------------------------------------------------------------------------------------------
function drawStored(me) {
  const epochs = me.epochs;
  const rowH = 64, height = Math.max(1, epochs.length) * rowH + 20;
  const svg = svgIn("stored-picture", W, height, "what the hub keeps about you, by consent period");
  const defs = el("defs", {}, svg);
  const hatch = el("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, defs);
  el("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#5b6370", "stroke-width": 2 }, hatch);
  const most = Math.max(1, ...epochs.map((e) => e.frames));
  const scale = (n) => (n / most) * (W - 120);
  epochs.forEach((e, i) => {
    const y = 10 + i * rowH;
    el("text", { x: 0, y: y + 20 }, svg, `period ${e.epoch}`);
    el("rect", { x: 110, y, width: Math.max(1, scale(e.frames)), height: 12, class: "bar-frames" }, svg);
    el("rect", { x: 110, y: y + 14, width: Math.max(e.erased ? 40 : 1, scale(e.physiology_rows)), height: 12, class: e.erased ? "bar-erased" : "bar-physio" }, svg);
    const note = e.erased ? "body signals erased" : `${e.physiology_rows} body readings`;
    el("text", { x: 110, y: y + 50 }, svg, `${e.frames} moments · ${note}`);
  });
  if (!epochs.length) el("text", { x: 0, y: 20 }, svg, "Nothing stored.");
  const s = me.stored;
  let words = `The hub keeps ${s.frames} moments from your badge (when it was on, its battery, your colour if shared)` +
    ` and ${s.physiology_rows} readings of your body signals`;
  words += epochs.length ? `, in ${epochs.length} consent period${epochs.length === 1 ? "" : "s"}.` : ".";
  const mine = me.erasures.filter((r) => r.reason === "wearer");
  if (mine.length) words += ` You erased your body signals ${mine.length === 1 ? "once" : mine.length + " times"}.`;
  say("stored-words", words);
}

// --- actions -----------------------------------------------------------------------------------------------------
async function download(format) {
  const result = document.getElementById("export-result");
  const r = await call(`/api/me/export?format=${format}`);
  if (!r.ok) { result.textContent = "The download did not work; try again."; return; }
  const blob = await r.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `lifepalette-my-data.${format}`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  result.textContent = `Downloaded your data (${format.toUpperCase()}).`;
}

async function erase() {
  const result = document.getElementById("erase-result");
  const button = document.getElementById("erase-button");
  button.disabled = true;
  const r = await call("/api/me/erase", { method: "POST", headers: { "X-LP-Wearer": "1" } });
  if (!r.ok) { result.textContent = "Nothing was erased: the hub refused. Ask the host."; return; }
  const receipt = await r.json();
  result.textContent = `Done: ${receipt.rows} readings of your body signals were erased at ${clock(receipt.at)}. ` +
    "The hub keeps a receipt of this, with no body signals in it.";
  main.dataset.erased = "1";
  document.getElementById("erase-sure").checked = false;
  await load();
}

// --- loading -----------------------------------------------------------------------------------------------------
function deny() {
  main.dataset.state = "denied";
  document.getElementById("loading").hidden = true;
  document.getElementById("content").hidden = true;
  document.getElementById("denied").hidden = false;
}

async function load() {
  if (!token) { deny(); return; }
  let r;
  try { r = await call("/api/me"); } catch (err) { return; } // offline for a moment: keep what is shown
  if (r.status === 401) { deny(); return; }
  if (!r.ok) return;
  const me = await r.json();
  document.getElementById("loading").hidden = true;
  document.getElementById("content").hidden = false;
  drawConsent(me.consent);
  drawJourney(me.trajectory, me.erasures.some((r) => r.reason === "wearer"));
  drawStored(me);
  main.dataset.state = "ready";
  main.dataset.loads = String(Number(main.dataset.loads || 0) + 1);
}

document.getElementById("export-csv").addEventListener("click", () => download("csv"));
document.getElementById("export-json").addEventListener("click", () => download("json"));
document.getElementById("erase-sure").addEventListener("change", (ev) => {
  document.getElementById("erase-button").disabled = !ev.target.checked;
});
document.getElementById("erase-button").addEventListener("click", erase);
load();
setInterval(() => { if (main.dataset.state === "ready") load(); }, REFRESH_MS);
