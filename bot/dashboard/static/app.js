// Haven dashboard: live updates over a WebSocket, fragment refreshes, small conveniences.
// No inline script anywhere (CSP script-src 'self'); events carry ids only, and the page
// fetches what it needs over authenticated HTTP.
(function () {
  "use strict";
  const body = document.body;
  const page = body.dataset.page;
  const cid = body.dataset.cid ? Number(body.dataset.cid) : null;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";

  function refresh(el) {
    if (!el || el.dataset.busy) { if (el) el.dataset.again = "1"; return; }
    el.dataset.busy = "1";
    fetch(el.dataset.fragment, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { if (r.status === 401) { location.href = "/login"; } return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { el.innerHTML = html; tick(); } })
      .catch(function () {})
      .finally(function () {
        delete el.dataset.busy;
        if (el.dataset.again) { delete el.dataset.again; refresh(el); }
      });
  }
  const live = {
    queue: document.getElementById("queue-live"),
    transcript: document.getElementById("transcript"),
    supervisor: document.getElementById("supervisor-live"),
    training: document.getElementById("training-transcript"),
  };

  // Waiting times count up between refreshes.
  function fmt(s) {
    s = Math.max(0, s);
    if (s < 3600) return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
    return Math.floor(s / 3600) + "h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }
  function tick() {
    const now = Math.floor(Date.now() / 1000);
    document.querySelectorAll("[data-since]").forEach(function (el) {
      const since = Number(el.dataset.since);
      if (since) el.textContent = fmt(now - since);
    });
  }
  setInterval(tick, 1000);

  function alarm(ev) {
    const box = document.getElementById("alarms");
    if (!box) return;
    const id = "alarm-" + ev.conversation_id + "-" + ev.reason;
    if (document.getElementById(id)) return;
    const div = document.createElement("div");
    div.className = "alarm " + ev.reason;
    div.id = id;
    const text = ev.reason === "p1_unclaimed"
      ? "Priority-1 texter waiting unclaimed: "
      : "Danger in a held conversation: ";
    div.appendChild(document.createTextNode(text));
    const a = document.createElement("a");
    a.href = "/dashboard/conversations/" + Number(ev.conversation_id);
    a.textContent = "open conversation #" + Number(ev.conversation_id);
    div.appendChild(a);
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = "Dismiss";
    b.addEventListener("click", function () { div.remove(); });
    div.appendChild(b);
    box.appendChild(div);
  }

  // Alarms drawn by the server on page load dismiss like live ones.
  document.querySelectorAll("#alarms .alarm .dismiss").forEach(function (b) {
    b.addEventListener("click", function () { b.parentNode.remove(); });
  });

  function onEvent(ev) {
    switch (ev.kind) {
      case "alarm":
        alarm(ev);
        break;
      case "message":
      case "status":
        if (cid !== null && ev.conversation_id === cid) refresh(live.transcript);
        refresh(live.queue);
        refresh(live.training);
        break;
      case "conversation":
        if (cid !== null && ev.conversation_id === cid && ev.state === "deleted") {
          // The texter deleted everything: nothing left to show or answer.
          const t = document.getElementById("transcript");
          if (t) t.textContent = "The texter deleted this conversation and everything in it.";
          const f = document.getElementById("reply-form");
          if (f) f.remove();
        } else if (cid !== null && ev.conversation_id === cid) {
          const st = document.getElementById("conv-state");
          if (st && st.textContent !== ev.state && !leaving) location.reload();
        }
        refresh(live.queue);
        break;
      default:
        refresh(live.queue);
    }
    refresh(live.supervisor);
  }

  // A form that navigates (take, transfer, close) must not be undone by a live reload.
  let leaving = false;
  window.addEventListener("submit", function (e) { if (!e.defaultPrevented) leaving = true; });

  const indicator = document.getElementById("live");
  let delay = 500;
  function connect() {
    if (!indicator) return; // signed-out pages have no socket
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + location.host + "/ws");
    ws.addEventListener("open", function () {
      delay = 500;
      indicator.textContent = "live";
      indicator.className = "live on";
      // Anything that happened while disconnected: refresh once.
      Object.values(live).forEach(refresh);
    });
    ws.addEventListener("message", function (m) {
      try { onEvent(JSON.parse(m.data)); } catch (e) { /* ignore malformed */ }
    });
    ws.addEventListener("close", function () {
      indicator.textContent = "reconnecting…";
      indicator.className = "live off";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    });
  }
  connect();

  // Reply, training and note forms post with fetch so the page (and the socket) stay put.
  function ajax(form, after) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      const btn = form.querySelector("button[type=submit]");
      if (btn) btn.disabled = true;
      fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": csrf },
        body: new URLSearchParams(new FormData(form)),
      })
        .then(function (r) { return r.json().catch(function () { return { ok: false, error: "HTTP " + r.status }; }); })
        .then(function (data) {
          if (!data.ok) { showError(form, data.error || "Not sent."); return; }
          clearError(form);
          after(form, data);
        })
        .catch(function () { showError(form, "Network error: not sent."); })
        .finally(function () { if (btn) btn.disabled = false; });
    });
  }
  function showError(form, text) {
    let p = form.querySelector(".error");
    if (!p) { p = document.createElement("p"); p.className = "error"; p.setAttribute("role", "alert"); form.appendChild(p); }
    p.textContent = text;
  }
  function clearError(form) { const p = form.querySelector(".error"); if (p) p.remove(); }

  const reply = document.getElementById("reply-form");
  if (reply) ajax(reply, function (form) { form.reset(); refresh(live.transcript); });
  const training = document.getElementById("training-form");
  if (training) ajax(training, function (form) { form.reset(); refresh(live.training); });

  // Canned responses fill the reply box; the advocate still reads and sends.
  document.querySelectorAll(".canned-btn").forEach(function (b) {
    b.addEventListener("click", function () {
      const box = document.getElementById("reply-body");
      if (!box) return;
      box.value = box.value ? box.value + " " + b.dataset.text : b.dataset.text;
      box.focus();
    });
  });

  // Ctrl/Cmd+Enter sends.
  document.querySelectorAll("textarea").forEach(function (t) {
    t.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && t.form) t.form.requestSubmit();
    });
  });

  // The transcript stays scrolled to the newest message.
  if (live.transcript) live.transcript.scrollTop = live.transcript.scrollHeight;
  tick();
  if (page === "queue" || page === "supervisor") setInterval(function () {
    refresh(live.queue); refresh(live.supervisor);
  }, 30000); // priorities age even when nothing else happens
})();
