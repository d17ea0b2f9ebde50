// Polls /api/qr every 2 s and shows the QR image until the session is connected.
(function () {
  "use strict";
  var section = document.getElementById("connect");
  var img = document.getElementById("qr");
  var statusEl = document.getElementById("status");
  if (!section || !img || !statusEl) { return; }
  var qrUrl = section.getAttribute("data-qr-endpoint");
  var statusUrl = section.getAttribute("data-status-endpoint");
  var timer = null;

  function show(state, text) {
    section.setAttribute("data-state", state);
    statusEl.textContent = text;
  }

  function connected() {
    img.hidden = true;
    img.removeAttribute("src");
    show("connected", "WhatsApp connected.");
    if (timer) { clearInterval(timer); timer = null; }
  }

  function checkStatus() {
    return fetch(statusUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.json().catch(function () { return {}; }); })
      .then(function (body) {
        if (body && body.state === "connected") { connected(); }
      });
  }

  function poll() {
    fetch(qrUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          if (r.status === 200 && body && body.state === "connected") { connected(); return; }
          if (r.status === 200 && body && typeof body.qr_data_url === "string" && body.qr_data_url.indexOf("data:image/") === 0) {
            if (img.getAttribute("src") !== body.qr_data_url) { img.setAttribute("src", body.qr_data_url); }
            img.hidden = false;
            show("qr", "Scan this QR code with WhatsApp (Settings \u2192 Linked devices).");
            return;
          }
          if (r.status === 409) { return checkStatus().then(function () { if (section.getAttribute("data-state") !== "connected") { connected(); } }); }
          if (r.status === 401) { window.location.reload(); return; }
          img.hidden = true;
          if (r.status === 410) { show("qr_expired", "The QR code expired; waiting for a new one\u2026"); return; }
          show((body && body.error) || "waiting", (body && body.message) || "Waiting for the WhatsApp server\u2026");
        });
      })
      .catch(function () { show("waiting", "Waiting for the WhatsApp server\u2026"); });
  }

  if (section.getAttribute("data-state") === "connected") { connected(); return; }
  timer = setInterval(poll, 2000);
  poll();
})();
