//! `GET /`: one HTML page whose script calls the API and renders with `textContent` only.

use http::Response;

use crate::server::Resp;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Clinic app</title>
<style>
body { font-family: sans-serif; margin: 2em; max-width: 60em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
</style>
</head>
<body>
<h1>Clinic app</h1>
<p id="status">Loading…</p>
<div id="content"></div>
<script>
"use strict";
function el(tag, text) { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text ?? ""); return e; }
function table(title, columns, rows) {
  const box = document.getElementById("content");
  box.appendChild(el("h2", title));
  if (!Array.isArray(rows)) { box.appendChild(el("p", rows && rows.error ? rows.error : "unavailable")); return; }
  const t = el("table"); const head = el("tr");
  columns.forEach(c => head.appendChild(el("th", c)));
  t.appendChild(head);
  rows.forEach(r => { const tr = el("tr"); columns.forEach(c => tr.appendChild(el("td", r[c]))); t.appendChild(tr); });
  box.appendChild(t);
}
async function api(path) { const r = await fetch(path, { credentials: "same-origin" }); return r.json(); }
async function main() {
  const status = document.getElementById("status");
  const meResponse = await fetch("/api/me", { credentials: "same-origin" });
  if (meResponse.status === 401) {
    status.textContent = "";
    const a = el("a", "Sign in"); a.href = "/login"; status.appendChild(a);
    return;
  }
  const me = await meResponse.json();
  status.textContent = "Signed in as " + (me.fhirUser || "unknown user");
  if (!me.patient) { status.textContent += " (no patient in context)"; return; }
  const id = encodeURIComponent(me.patient);
  const patient = await api("/api/patients/" + id);
  table("Patient", ["name", "birthDate", "gender", "mrn"], patient && !patient.error ? [patient] : patient);
  table("Recent labs", ["date", "display", "value", "unit"], await api("/api/patients/" + id + "/labs"));
  table("Vital signs", ["date", "display", "value", "unit"], await api("/api/observations?patient=" + id));
  table("Medications", ["medication", "status", "authoredOn"], await api("/api/patients/" + id + "/medications"));
}
main().catch(() => { document.getElementById("status").textContent = "Something went wrong."; });
</script>
</body>
</html>
"#;

/// The page.
pub(crate) fn index() -> Resp {
    let mut response = Response::new(PAGE.to_string());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        "content-security-policy",
        http::HeaderValue::from_static(
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    response
}
