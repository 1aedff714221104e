// The operator console: the hub's operator state live from /api/operator/events, drawn as cards, charts of the
// last 30 minutes, a badge table with sparklines and flags, and tables of rejections, consent and erasures.
// Charts are plain SVG written here (no library, no CDN): the console works on a Pi with no internet.
"use strict";
const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";
const CHART = { w: 320, h: 120, left: 34, right: 8, top: 8, bottom: 20 };
const SPARK = { w: 110, h: 26 };

function fmt(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(3);
  if (typeof v === "boolean") return v ? "yes" : "no";
  return String(v);
}
function time(t) { return typeof t === "number" && t > 1e9 ? new Date(t * 1000).toLocaleTimeString() : "–"; }
function el(name, attrs = {}, ...children) {
  const e = document.createElement(name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}
function svgEl(name, attrs) {
  const e = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

// -- charts ----------------------------------------------------------------------------------------------------
function scaleOf(series, fixed) {
  if (fixed) return fixed;
  const values = series.map((p) => p[1]).filter((v) => typeof v === "number");
  const top = Math.max(1, ...values);
  const nice = top <= 5 ? Math.ceil(top) : Math.ceil(top / 5) * 5;
  return [0, nice];
}

// Points of a series as polylines (a null value breaks the line), within a box [x0, x1] x [y0, y1].
function lines(series, t0, t1, [lo, hi], [x0, x1, y0, y1]) {
  const runs = [];
  let run = [];
  for (const [t, v] of series) {
    if (typeof v !== "number") { if (run.length) runs.push(run); run = []; continue; }
    const x = x0 + (x1 - x0) * (t - t0) / Math.max(t1 - t0, 1);
    const y = y1 - (y1 - y0) * (Math.min(hi, Math.max(lo, v)) - lo) / Math.max(hi - lo, 1e-9);
    run.push(`${x.toFixed(1)},${y.toFixed(1)}`);
  }
  if (run.length) runs.push(run);
  return runs.map((r) => (r.length === 1 ? [r[0], r[0]] : r).join(" "));
}

function drawChart(svg, series, now, windowS, fixed, unit) {
  const [lo, hi] = scaleOf(series, fixed);
  const box = [CHART.left, CHART.w - CHART.right, CHART.top, CHART.h - CHART.bottom];
  const parts = [];
  for (const [v, y] of [[hi, box[2]], [lo, box[3]]]) {
    parts.push(svgEl("line", { x1: box[0], x2: box[1], y1: y, y2: y, class: "grid" }));
    const label = svgEl("text", { x: box[0] - 4, y: y + 4, "text-anchor": "end", class: "tick" });
    label.textContent = String(v);
    parts.push(label);
  }
  for (const [frac, words] of [[0, "−30 min"], [0.5, "−15"], [1, "now"]]) {
    const label = svgEl("text", { x: box[0] + (box[1] - box[0]) * frac, y: CHART.h - 4, class: "tick",
      "text-anchor": frac === 0 ? "start" : frac === 1 ? "end" : "middle" });
    label.textContent = words;
    parts.push(label);
  }
  for (const points of lines(series, now - windowS, now, [lo, hi], box)) {
    parts.push(svgEl("polyline", { points, class: "series", "vector-effect": "non-scaling-stroke" }));
  }
  svg.replaceChildren(...parts);
  const values = series.filter((p) => typeof p[1] === "number");
  svg.dataset.points = String(values.length);
  const last = values.length ? values[values.length - 1][1] : null;
  svg.setAttribute("aria-label", `${svg.getAttribute("aria-label").split(":")[0]}: latest ${last === null ? "none" : fmt(last) + unit}`);
  return last;
}

function renderCharts(dash) {
  if (!dash || !dash.charts) return;
  const c = dash.charts, now = c.now, w = c.window_s;
  const show = (id, series, fixed, unit = "") => {
    const last = drawChart($(`chart-${id}`), series || [], now, w, fixed, unit);
    $(`latest-${id}`).textContent = last === null ? "–" : fmt(last) + unit;
  };
  show("contributors", c.contributors);
  show("arousal", c.arousal, [0, 1]);
  show("synchrony", c.synchrony, [0, 1]);
  show("frames", c.frames_per_s, null, " /s");
  show("rejections", c.rejections_per_s, null, " /s");
}

function spark(series, fixed, label) {
  const svg = svgEl("svg", { viewBox: `0 0 ${SPARK.w} ${SPARK.h}`, class: "spark", role: "img" });
  const values = (series || []).filter((p) => typeof p[1] === "number");
  const last = values.length ? values[values.length - 1][1] : null;
  svg.setAttribute("aria-label", `${label}: ${last === null ? "no data yet" : fmt(last)}`);
  if (values.length) {
    const t0 = values[0][0], t1 = values[values.length - 1][0];
    for (const points of lines(values, t0, t1, scaleOf(values, fixed), [1, SPARK.w - 1, 2, SPARK.h - 2])) {
      svg.append(svgEl("polyline", { points, class: "series" }));
    }
  }
  return svg;
}

// -- the badge table ---------------------------------------------------------------------------------------------
function consentWords(c) {
  if (!c) return "–";
  const parts = [c.physio ? "physiology" : null, c.colour ? "colour" : null].filter(Boolean);
  return `${parts.length ? parts.join(" + ") : "none"}${c.paused ? " (paused)" : ""}`;
}

function badgeTable(badges, dash) {
  if (!badges.length) return el("p", { class: "empty" }, "no badge heard yet");
  const sparks = (dash && dash.sparklines) || {}, flags = (dash && dash.flags) || {};
  const table = el("table", { id: "badge-table" });
  table.append(el("caption", {}, "One row per badge heard; sparklines cover its last minutes."));
  const head = table.createTHead().insertRow();
  for (const h of ["Badge", "Link", "Link: frames/s", "Battery", "Battery trend", "Signal quality (0-3)", "Quality trend", "Consent", "Needs a hand"]) {
    head.append(el("th", { scope: "col" }, h));
  }
  const body = table.createTBody();
  for (const b of badges) {
    const id = String(b.dev_id), s = sparks[id] || {}, f = flags[id] || [];
    const row = body.insertRow();
    row.dataset.dev = id;
    if (f.length) row.className = "flagged";
    const link = `${b.online ? "online" : "offline"} · ${b.link || "–"} · ${b.age_s != null ? b.age_s + " s ago" : "–"}${b.rssi != null ? ` · ${b.rssi} dBm` : ""}`;
    const battery = b.battery != null ? `${b.battery} %${b.charging ? " (charging)" : ""}` : "–";
    const q = b.quality || 0, sq = (q & 1 ? 1 : 0) + (q & 2 ? 1 : 0) + (q & 4 ? 1 : 0);
    const cells = [el("th", { scope: "row" }, id), link, spark(s.link, null, "frames per second"), battery,
      spark(s.battery, [0, 100], "battery per cent"), `${sq} of 3`, spark(s.quality, [0, 3], "signal quality"),
      consentWords(b.consent),
      f.length ? el("ul", { class: "flags" }, ...f.map((x) => el("li", {}, `⚠ ${x}`))) : "✓ fine"];
    for (const c of cells) {
      const cell = c instanceof Element && c.tagName === "TH" ? c : row.insertCell();
      if (cell === c) row.append(c); else cell.append(c);
    }
  }
  return table;
}

// -- plain tables ------------------------------------------------------------------------------------------------
function simpleTable(caption, headers, rows) {
  if (!rows.length) return el("p", { class: "empty" }, "none");
  const table = el("table", {}, el("caption", { class: "sr" }, caption));
  const head = table.createTHead().insertRow();
  headers.forEach((h) => head.append(el("th", { scope: "col" }, h)));
  const body = table.createTBody();
  rows.forEach((r) => { const tr = body.insertRow(); r.forEach((v) => { tr.insertCell().textContent = v; }); });
  return table;
}

function renderTables(s) {
  const rejections = Object.entries(s.rejections || {});
  $("rejections").replaceChildren(simpleTable("rejected frames by reason", ["Reason", "Frames"],
    rejections.map(([reason, n]) => [reason.replaceAll("_", " "), fmt(n)])));
  $("epochs").replaceChildren(simpleTable("consent epochs", ["Badge", "Epoch", "Consent", "Opened", "Closed", "Erased"],
    (s.consent_epochs || []).map((e) => [fmt(e.dev_id), fmt(e.epoch),
      `${consentWords(e)}${e.revoked_at_ctr != null ? " · revoked" : ""}`, time(e.opened_at), time(e.closed_at), e.erased ? "yes" : "no"])));
  // an erasure the store could not commit yet (disk full) is listed first, until its receipt exists
  const pending = (s.erasures_pending || []).map((p) => [time(p.at), fmt(p.dev_id), p.epoch == null ? "all" : fmt(p.epoch),
    "physiology", "–", fmt(p.reason), "⚠ pending: not yet committed, retrying"]);
  $("receipts").replaceChildren(simpleTable("erasure receipts", ["At", "Badge", "Epoch", "What", "Rows", "Reason", "Scrubbed"],
    pending.concat((s.erasures || []).map((r) => [time(r.at), fmt(r.dev_id), r.epoch == null ? "all" : fmt(r.epoch), fmt(r.what),
      fmt(r.rows), fmt(r.reason), r.scrubbed == null ? "–" : r.scrubbed ? "yes" : "pending"]))));
}

// -- the cards ---------------------------------------------------------------------------------------------------
let lastSessionId = null;

function renderCards(data, s) {
  $("cove-name").textContent = data.cove ? `· ${data.cove}` : "";
  $("badges-online").textContent = fmt(s.online);
  const flagged = Object.values((data.dashboard && data.dashboard.flags) || {}).filter((f) => f.length).length;
  $("badges-flagged").textContent = flagged ? `⚠ ${flagged} badge${flagged > 1 ? "s" : ""}` : "✓ none";
  const scoring = s.scoring || {};
  $("cadence").textContent = scoring.cadence_s != null ? `every ${scoring.cadence_s} s` : "–";
  $("cadence").title = scoring.ticks != null ? `${scoring.ticks} ticks` : "";
  const colour = s.group_colour;
  $("group-colour").querySelector(".text").textContent = colour && colour.rgb
    ? `rgb ${colour.rgb.join(" ")}${colour.group_id != null ? " · group " + colour.group_id : ""}` : "–";
  if (colour && colour.rgb) $("group-colour").querySelector(".chip").style.setProperty("background", `rgb(${colour.rgb.join(",")})`);
  const session = s.session || {};
  $("session").textContent = session.active ? `running${session.id != null ? " #" + session.id : ""}` : "no session";
  if (session.active && session.clock_synced === false) $("session").textContent += " (clock not synchronised at start)";
  if (session.active) lastSessionId = session.id;
  else if (lastSessionId != null) { showReportLink(lastSessionId); lastSessionId = null; }
  const budget = s.privacy;  // per person, spent on public numbers since the session started
  $("privacy-budget").textContent = budget && budget.limit
    ? `${Math.round(100 * budget.fraction)} % · rho ${fmt(budget.spent)} of ${fmt(budget.limit)}${budget.exhausted ? " · spent: numbers held" : ""}`
    : "–";
  if (budget) $("privacy-budget").title = `${budget.releases} releases · epsilon ${fmt(budget.epsilon)} at delta ${budget.delta}`;
  // An unsynchronised clock is said plainly: the hub marks what it writes, and corrects nothing by itself.
  const clock = s.clock, synced = clock && clock.synced;
  $("clock").textContent = synced === true ? "NTP-synchronised" : synced === false ? "NOT synchronised" : "unknown";
  $("clock").className = synced === true ? "big" : "big unsynced";
  $("clock").title = clock ? `${clock.source}: ${clock.detail}` : "";
  const release = s.release;
  $("release").textContent = release ? `lifepalette ${release.lifepalette} · database schema ${release.schema_version}` : "–";
}

function showReportLink(id) {
  const link = el("a", { href: `/operator/report?session=${encodeURIComponent(id)}`, target: "_blank", rel: "noopener" },
    `open the report of session ${id}`);
  $("report-link").replaceChildren(`Session ${id} ended: `, link, " (printable; also `lifepalette report --db … --session " + id + "`)");
  $("report-link").hidden = false;
}

function render(data) {
  if (!data || !data.state) return;
  const s = data.state;
  renderCards(data, s);
  renderCharts(data.dashboard);
  $("badges").replaceChildren(badgeTable(s.badges || [], data.dashboard));
  renderTables(s);
  $("console").dataset.seq = String(data.seq);
  $("console").dataset.renders = String(Number($("console").dataset.renders || 0) + 1);
}

async function act(path) {
  const activeId = lastSessionId;
  const r = await fetch(`/api/operator/${path}`, { method: "POST", credentials: "same-origin", headers: { "X-LP-Operator": "1" } });
  if (r.status === 401) { location.replace("/operator"); return; }
  const body = await r.json().catch(() => ({}));
  const result = body.result;
  const said = result == null ? "" : typeof result === "object" ? (result.active ? `session #${result.id} running` : "no session running") : fmt(result);
  $("action-result").textContent = r.ok ? `${body.action.replaceAll("_", " ")}: done ${said}` : `refused: ${body.error || r.status}`;
  $("action-result").className = r.ok ? "ok" : "bad";
  if (r.ok && path === "session/end" && activeId != null) { showReportLink(activeId); lastSessionId = null; }
}

document.querySelectorAll("button[data-action]").forEach((b) => b.addEventListener("click", () => act(b.dataset.action)));
fetch("/api/operator/state", { credentials: "same-origin" }).then((r) => {
  if (r.status === 401) { location.replace("/operator"); return null; }
  return r.json();
}).then(render).catch(() => {});
const source = new EventSource("/api/operator/events");
source.onmessage = (ev) => { $("link-status").textContent = ""; try { render(JSON.parse(ev.data)); } catch (e) { console.error(e); } };
source.onerror = () => { $("link-status").textContent = "reconnecting to the hub…"; };
