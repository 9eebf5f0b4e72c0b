// Polls the admin summary (the same document /health serves) once a second
// and renders it; no framework, no build step.
"use strict";

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  return td;
}

function render(doc) {
  const line = document.getElementById("health-line");
  line.textContent = doc.status + ": " + doc.healthy + " of " + doc.total +
    " healthy (threshold " + doc.threshold + ")" + (doc.ready ? ", ready" : "");
  line.className = doc.status;
  const rows = document.getElementById("service-rows");
  rows.replaceChildren();
  Object.keys(doc.services).sort().forEach(function (name) {
    const svc = doc.services[name];
    const tr = document.createElement("tr");
    tr.dataset.service = name;
    tr.append(cell(name), cell(svc.state), cell(svc.reason));
    rows.append(tr);
  });
}

async function tick() {
  try {
    // /health answers 503 with the same body while degraded.
    const res = await fetch("/health", { cache: "no-store" });
    render(await res.json());
  } catch (e) {
    document.getElementById("health-line").textContent = "daemon unreachable";
  }
}

tick();
setInterval(tick, 1000);
