// Wearer cards on the operator console: print a badge's card (its private link as a QR code, one line of words) or
// rotate it when a badge or card is lost (the old card stops working at once). Routes: lifepalette.web.me.
"use strict";

(function () {
  const dev = document.getElementById("card-dev");
  const result = document.getElementById("card-result");
  const frame = document.getElementById("card-preview");

  function badge() {
    const n = Number(dev.value);
    if (!Number.isInteger(n) || n < 1 || n > 65535) { result.textContent = "Give a badge number (1-65535)."; return null; }
    return n;
  }

  async function show(n) {
    const r = await fetch(`/api/operator/badges/${n}/card`, { credentials: "same-origin", cache: "no-store" });
    if (!r.ok) { result.textContent = (await r.json().catch(() => ({}))).error || `no card (${r.status})`; return false; }
    frame.src = `/api/operator/badges/${n}/card?shown=${Date.now()}`;  // img-src 'self': no blob: URLs
    frame.hidden = false;
    frame.dataset.dev = String(n);
    return true;
  }

  document.getElementById("card-print").addEventListener("click", async () => {
    const n = badge();
    if (n === null) return;
    if (await show(n)) {
      result.textContent = `Card for badge ${n}: print it and hand it to its wearer.`;
      const w = window.open(frame.src);
      if (w) w.addEventListener("load", () => w.print());
    }
  });

  document.getElementById("card-rotate").addEventListener("click", async () => {
    const n = badge();
    if (n === null) return;
    const r = await fetch(`/api/operator/badges/${n}/card/rotate`,
      { method: "POST", credentials: "same-origin", headers: { "X-LP-Operator": "1" } });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) { result.textContent = body.error || `refused (${r.status})`; return; }
    result.textContent = `Badge ${n} has a new card (number ${body.generation}); every older card stopped working.`;
    await show(n);
  });
})();
