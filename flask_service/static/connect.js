// Shows the tenant's QR code until WhatsApp is connected, and never leaves a person at a dead end.
// QR codes expire when nobody scans them, and node then waits for a request before pairing again.
// This page sends that request (the "Get a new code" form) by itself at most AUTO_RENEW_MAX times, and
// only while the tab is visible: WhatsApp limits pairing attempts, so a tab left open must not pair
// forever. After that the button waits for a person. Without JavaScript the forms post and redirect.
(function () {
  "use strict";
  var POLL_MS = 2000;
  var AUTO_RENEW_MAX = 2;
  var SCAN_TEXT = "Scan this QR code with WhatsApp (Settings \u2192 Linked devices).";
  var section = document.getElementById("connect");
  var img = document.getElementById("qr");
  var statusEl = document.getElementById("status");
  if (!section || !img || !statusEl) { return; }
  var renewForm = document.getElementById("renew-form");
  var scanForm = document.getElementById("scan-form");
  var unlinkForm = document.getElementById("unlink-form");
  var badge = document.getElementById("state-badge");
  var badges = {};
  try { badges = JSON.parse(section.getAttribute("data-badges") || "{}") || {}; } catch (e) { badges = {}; }
  var qrUrl = section.getAttribute("data-qr-endpoint");
  var statusUrl = section.getAttribute("data-status-endpoint");
  var timer = null;
  var busy = false;
  var autoRenewals = 0;

  function state() { return section.getAttribute("data-state"); }

  // The status badge: [label, tone] per state from flask (pages.STATE_BADGES), "" for any other state.
  function showBadge(newState) {
    var own = Object.prototype.hasOwnProperty;
    var entry = own.call(badges, newState) ? badges[newState] : badges[""];
    if (!badge || !entry) { return; }
    badge.textContent = entry[0];
    badge.setAttribute("data-tone", entry[1]);
  }

  function show(newState, text) {
    section.setAttribute("data-state", newState);
    statusEl.textContent = text;
    showBadge(newState);
    // Each form belongs to one state: a new code after expiry, a scan while a code shows, unlink once linked.
    if (renewForm) { renewForm.hidden = newState !== "qr_expired"; }
    if (scanForm) { scanForm.hidden = newState !== "qr"; }
    if (unlinkForm) { unlinkForm.hidden = newState !== "connected"; }
    if (newState !== "qr") { img.hidden = true; }
  }

  function schedule() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(poll, POLL_MS);
  }

  function stopPolling() {
    if (timer) { clearTimeout(timer); timer = null; }
  }

  function connected() {
    stopPolling();
    img.removeAttribute("src");
    show("connected", "WhatsApp connected.");
  }

  function expired() {
    stopPolling();
    if (document.visibilityState === "visible" && autoRenewals < AUTO_RENEW_MAX) {
      autoRenewals += 1;
      section.setAttribute("data-auto-renewals", String(autoRenewals));
      renew();
      return;
    }
    show("qr_expired", "The QR code expired. Get a new code to link WhatsApp.");
  }

  // POST one of the page's forms (its CSRF token included) and read flask's JSON answer.
  function post(form) {
    return fetch(form.getAttribute("action"), {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Accept": "application/json" }
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (r.status === 401) { window.location.reload(); }
        return { ok: r.ok && body && body.ok === true, body: body || {} };
      });
    });
  }

  function renew() {
    if (!renewForm || busy) { return; }
    busy = true;
    show("starting", "Getting a new QR code\u2026");
    post(renewForm)
      .then(function (res) {
        busy = false;
        if (res.ok && res.body.state === "connected") { connected(); return; }
        if (!res.ok) { show("qr_expired", res.body.message || "Could not get a new code; try again."); return; }
        poll();
      })
      .catch(function () {
        busy = false;
        show("qr_expired", "The WhatsApp server did not answer; try again.");
      });
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
            show("qr", SCAN_TEXT);
            img.hidden = false;
            schedule();
            return;
          }
          if (r.status === 409) { return checkStatus().then(function () { if (state() !== "connected") { connected(); } }); }
          if (r.status === 401) { window.location.reload(); return; }
          if (r.status === 410) { expired(); return; }
          show((body && body.error) || "waiting", (body && body.message) || "Waiting for the WhatsApp server\u2026");
          schedule();
        });
      })
      .catch(function () { show("waiting", "Waiting for the WhatsApp server\u2026"); schedule(); });
  }

  if (renewForm) {
    renewForm.addEventListener("submit", function (ev) { ev.preventDefault(); renew(); });
  }
  if (scanForm) {
    scanForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      post(scanForm).then(function (res) {
        if (res.ok && res.body.state === "connected") { connected(); return; }
        statusEl.textContent = res.body.message || "The scan could not be simulated.";
        poll();
      });
    });
  }
  // A tab that comes back into view after its code expired gets a new one, within the same budget.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && state() === "qr_expired" && autoRenewals < AUTO_RENEW_MAX) {
      expired();
    }
  });

  if (state() === "connected") { connected(); return; }
  if (state() === "qr_expired") { expired(); return; }
  poll();
})();
