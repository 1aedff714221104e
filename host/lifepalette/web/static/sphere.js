// The sphere: every cove as one circle (colour + pulse for arousal + ring style for synchrony + words).
"use strict";
const $ = (id) => document.getElementById(id);
const css = (rgb) => `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
const word = (a) => (a == null ? "" : a < 0.34 ? "calm" : a < 0.67 ? "stirred" : "intense");
const pulse = (a) => `${(8 - 6.4 * (a ?? 0)).toFixed(2)}s`;

function dot(rgb, arousal, sync) {
  const d = document.createElement("div");
  d.className = "cove-dot" + (sync != null && sync >= 0.5 ? " together" : "");
  if (rgb) d.style.setProperty("background", css(rgb));
  d.style.setProperty("--pulse", pulse(arousal));
  return d;
}

function render(data) {
  if (!data || !Array.isArray(data.coves)) return;
  const city = data.city;
  const cd = $("city-dot");
  cd.replaceWith(Object.assign(dot(city.rgb, city.arousal, city.synchrony), { id: "city-dot" }));
  $("city-words").textContent = city.coves_ready === 0
    ? `${city.coves} cove${city.coves === 1 ? "" : "s"} connected, waiting for 5 people in one`
    : `${city.contributors} people in ${city.coves_ready} cove${city.coves_ready === 1 ? "" : "s"}: the city is ${word(city.arousal)}`;
  $("coves").replaceChildren(...data.coves.map((c) => {
    const li = document.createElement("li");
    li.className = c.online ? "online" : "offline";
    li.dataset.cove = c.cove;
    const name = Object.assign(document.createElement("span"), { className: "name", textContent: c.cove });
    const words = Object.assign(document.createElement("span"), { className: "words",
      textContent: !c.online ? "offline" : c.ready ? `${word(c.arousal)}${c.synchrony >= 0.5 ? ", in step" : ""}` : "waiting for 5 people" });
    li.append(dot(c.ready && c.palette ? c.palette.rgb : null, c.arousal, c.synchrony), name, words);
    return li;
  }));
  $("sphere").dataset.coves = String(data.coves.length);
  $("link-status").textContent = data.broker_connected ? "" : "broker unreachable, retrying…";
}

fetch("/api/sphere").then((r) => r.json()).then(render).catch(() => {});
const source = new EventSource("/api/sphere/events");
source.onmessage = (ev) => render(JSON.parse(ev.data));
source.onerror = () => { $("link-status").textContent = "reconnecting…"; };
