// Sign in with a token from the URL fragment (#token=..., never sent to the server in the URL), or from the form.
"use strict";
async function signIn(token) {
  const r = await fetch("/operator/login", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token }), credentials: "same-origin" });
  if (r.ok) { location.replace("/operator"); return; }
  document.getElementById("login-error").textContent = "That token was not accepted.";
}
const m = location.hash.match(/token=([^&]+)/);
if (m) { history.replaceState(null, "", location.pathname); signIn(decodeURIComponent(m[1])); }
document.getElementById("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  signIn(document.getElementById("token").value.trim());
});
