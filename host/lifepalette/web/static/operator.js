// The operator console: the hub's operator_state() live from /api/operator/events, plus the three actions.
// Rendering is generic (tables from lists and dicts) so new fields in the hub's state show up without a change here.
"use strict";
const $ = (id) => document.getElementById(id);
const KNOWN = {
  badges: ["badges", "devices"],
  rejections: ["rejections", "rejected", "rejection_counts", "reject_counts", "counters"],
  epochs: ["epochs", "consent_epochs", "consent"],
  receipts: ["receipts", "erasure_receipts", "erasures"],
  cadence: ["cadence_s", "scoring_cadence_s", "cadence", "scoring"],
  colour: ["group_colour", "group_color", "broadcast", "colour"],
  session: ["session", "session_id"],
  online: ["badges_online", "online"],
  privacy: ["privacy"],
};

function pick(state, names) { for (const n of names) if (state[n] !== undefined && state[n] !== null) return [n, state[n]]; return [null, undefined]; }

function fmt(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(3);
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (Array.isArray(v)) return v.map(fmt).join(", ");
  if (typeof v === "object") {
    const parts = Object.entries(v).filter(([, x]) => x !== false && x !== null && x !== undefined)
      .map(([k, x]) => (x === true ? k : `${k} ${typeof x === "object" ? JSON.stringify(x) : fmt(x)}`));
    return parts.length ? parts.join(" · ") : "–";
  }
  return String(v);
}

const TIME_KEYS = /(^|_)(at|now|last_seen|last_tick|time|started_at)$/;
function cell(col, v) {
  if (typeof v === "number" && TIME_KEYS.test(col) && v > 1e9) return new Date(v * 1000).toLocaleTimeString();
  if (col === "battery" && typeof v === "number") return `${v} %`;
  return fmt(v);
}

function table(value, keyName) {
  const t = document.createElement("table");
  let rows = [];
  if (Array.isArray(value)) rows = value.map((v) => (v && typeof v === "object" && !Array.isArray(v) ? v : { value: v }));
  else if (value && typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.every(([, v]) => v && typeof v === "object" && !Array.isArray(v))) rows = entries.map(([k, v]) => ({ [keyName]: k, ...v }));
    else rows = entries.map(([k, v]) => ({ [keyName]: k, value: cell(k, v) }));
  } else { const p = document.createElement("p"); p.textContent = fmt(value); return p; }
  if (rows.length === 0) { const p = document.createElement("p"); p.className = "empty"; p.textContent = "none"; return p; }
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const head = t.createTHead().insertRow();
  cols.forEach((c) => { const th = document.createElement("th"); th.textContent = c.replaceAll("_", " "); head.append(th); });
  const body = t.createTBody();
  rows.forEach((r) => { const tr = body.insertRow(); cols.forEach((c) => { tr.insertCell().textContent = cell(c, r[c]); }); });
  return t;
}

function colourOf(v) {
  if (!v) return null;
  if (typeof v === "string" && v.startsWith("#")) return v;
  const rgb = Array.isArray(v) ? v : Array.isArray(v.rgb) ? v.rgb : ("r" in v ? [v.r, v.g, v.b] : null);
  return rgb ? `rgb(${rgb.join(",")})` : null;
}

function render(data) {
  if (!data || !data.state) return;
  const s = data.state, used = new Set();
  const take = (names) => { const [k, v] = pick(s, names); if (k) used.add(k); return v; };
  $("cove-name").textContent = data.cove ? `· ${data.cove}` : "";
  const badges = take(KNOWN.badges);
  let online = take(KNOWN.online);
  if (online === undefined && badges) {
    const list = Array.isArray(badges) ? badges : Object.values(badges);
    online = list.filter((b) => b && (b.online === true || b.link === "online" || b.state === "online")).length;
  }
  $("badges-online").textContent = fmt(online);
  const cadence = take(KNOWN.cadence);
  const every = typeof cadence === "number" ? cadence : cadence && cadence.cadence_s;
  $("cadence").textContent = every != null ? `every ${every} s` : fmt(cadence);
  if (cadence && typeof cadence === "object" && cadence.ticks != null) $("cadence").title = `${cadence.ticks} ticks`;
  const colour = take(KNOWN.colour);
  $("group-colour").querySelector(".text").textContent = colour && colour.rgb ? `rgb ${colour.rgb.join(" ")}${colour.group_id != null ? " · group " + colour.group_id : ""}` : fmt(colour);
  const c = colourOf(colour);
  if (c) $("group-colour").querySelector(".chip").style.setProperty("background", c);
  const session = take(KNOWN.session);
  $("session").textContent = session && typeof session === "object"
    ? (session.active ? `running${session.id != null ? " #" + session.id : ""}` : "no session") : fmt(session);
  const budget = take(KNOWN.privacy);  // per person, spent on public numbers since the session started
  $("privacy-budget").textContent = budget && typeof budget === "object" && budget.limit
    ? `${Math.round(100 * budget.fraction)} % · rho ${fmt(budget.spent)} of ${fmt(budget.limit)}${budget.exhausted ? " · spent: numbers held" : ""}`
    : fmt(budget);
  if (budget && typeof budget === "object") $("privacy-budget").title = `${budget.releases} releases · epsilon ${fmt(budget.epsilon)} at delta ${budget.delta}`;
  if (session && session.active && session.clock_synced === false) $("session").textContent += " (clock not synchronised at start)";
  // An unsynchronised clock is said plainly: the hub marks what it writes, and corrects nothing by itself.
  const clock = take(["clock"]);
  const synced = clock && clock.synced;
  $("clock").textContent = synced === true ? "NTP-synchronised" : synced === false ? "NOT synchronised" : "unknown";
  $("clock").className = synced === true ? "big" : "big unsynced";
  $("clock").title = clock ? `${clock.source}: ${clock.detail}` : "";
  const release = take(["release"]);
  $("release").textContent = release ? `lifepalette ${release.lifepalette} · database schema ${release.schema_version}` : "–";
  $("badges").replaceChildren(table(badges ?? [], "badge"));
  $("rejections").replaceChildren(table(take(KNOWN.rejections) ?? {}, "reason"));
  $("epochs").replaceChildren(table(take(KNOWN.epochs) ?? [], "badge"));
  $("receipts").replaceChildren(table(take(KNOWN.receipts) ?? [], "receipt"));
  const rest = Object.fromEntries(Object.entries(s).filter(([k]) => !used.has(k)));
  $("other").replaceChildren(table(rest, "field"));
  $("console").dataset.seq = String(data.seq);
}

async function act(path) {
  const r = await fetch(`/api/operator/${path}`, { method: "POST", credentials: "same-origin", headers: { "X-LP-Operator": "1" } });
  if (r.status === 401) { location.replace("/operator"); return; }
  const body = await r.json().catch(() => ({}));
  $("action-result").textContent = r.ok ? `${body.action.replaceAll("_", " ")}: done ${body.result != null ? fmt(body.result) : ""}`
    : `refused: ${body.error || r.status}`;
  $("action-result").className = r.ok ? "ok" : "bad";
}

document.querySelectorAll("button[data-action]").forEach((b) => b.addEventListener("click", () => act(b.dataset.action)));
fetch("/api/operator/state", { credentials: "same-origin" }).then((r) => {
  if (r.status === 401) { location.replace("/operator"); return null; }
  return r.json();
}).then(render).catch(() => {});
const source = new EventSource("/api/operator/events");
source.onmessage = (ev) => { $("link-status").textContent = ""; try { render(JSON.parse(ev.data)); } catch (e) { console.error(e); } };
source.onerror = () => { $("link-status").textContent = "reconnecting to the hub…"; };
