// Haven dashboard: live updates over a WebSocket, fragment refreshes, alarms that are seen
// and heard, local times. No inline script anywhere (CSP script-src 'self'); every piece of
// texter text is put in the page as text (textContent), never as HTML.
(function () {
  "use strict";
  const body = document.body;
  const page = body.dataset.page;
  const cid = body.dataset.cid ? Number(body.dataset.cid) : null;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const baseTitle = document.title;

  // -- local times ------------------------------------------------------------------------
  // <time datetime="ISO">14:05 UTC</time> from the server becomes "9:05 AM · 3 min ago" in
  // the advocate's own zone; without this script the UTC time stays.
  const clockFmt = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  const dayFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
  function ago(ms) {
    const min = Math.floor(ms / 60000);
    if (min < 1) return "just now";
    if (min < 60) return min + " min ago";
    const h = Math.floor(min / 60);
    return h < 24 ? h + " h ago" : Math.floor(h / 24) + " d ago";
  }
  function localTimes(root) {
    const now = Date.now();
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      const at = Date.parse(el.getAttribute("datetime"));
      if (!at) return;
      const old = now - at > 86400000;
      el.textContent = (old ? dayFmt.format(at) : clockFmt.format(at)) + " · " + ago(now - at);
      el.title = new Date(at).toLocaleString();
    });
  }

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
  setInterval(function () { localTimes(); }, 30000);

  // -- a transcript that follows new messages ---------------------------------------------
  // At the bottom, a new message scrolls into view; scrolled up (reading back), the view
  // stays put and a "New message ↓" marker offers the way down.
  function follower(el) {
    const marker = document.querySelector('.new-below[data-for="' + el.id + '"]');
    function lastId() {
      let last = 0;
      el.querySelectorAll("[data-mid]").forEach(function (li) { last = Math.max(last, Number(li.dataset.mid) || 0); });
      return last;
    }
    function atBottom() { return el.scrollHeight - el.scrollTop - el.clientHeight < 40; }
    function toBottom() { el.scrollTop = el.scrollHeight; if (marker) marker.hidden = true; }
    el.addEventListener("scroll", function () { if (marker && atBottom()) marker.hidden = true; });
    if (marker) marker.addEventListener("click", toBottom);
    toBottom();
    return {
      before: function () { return { bottom: atBottom(), last: lastId() }; },
      after: function (was, force) {
        if (force || was.bottom) toBottom();
        else if (marker && lastId() > was.last) marker.hidden = false;
      },
      toBottom: toBottom,
    };
  }

  function refresh(el, force) {
    if (!el) return;
    if (el.dataset.busy) { el.dataset.again = force ? "force" : (el.dataset.again || "1"); return; }
    el.dataset.busy = "1";
    fetch(el.dataset.fragment, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { if (r.status === 401) { location.href = "/login"; } return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        const was = el.follow ? el.follow.before() : null;
        el.innerHTML = html;
        if (was) el.follow.after(was, force);
        tick();
        localTimes(el);
      })
      .catch(function () {})
      .finally(function () {
        delete el.dataset.busy;
        const again = el.dataset.again;
        if (again) { delete el.dataset.again; refresh(el, again === "force"); }
      });
  }
  const live = {
    queue: document.getElementById("queue-live"),
    transcript: document.getElementById("transcript"),
    supervisor: document.getElementById("supervisor-live"),
    training: document.getElementById("training-transcript"),
  };
  [live.transcript, live.training].forEach(function (el) { if (el) el.follow = follower(el); });

  // -- being told: sound, a system notification, the tab's title -------------------------
  let audio = null;
  function unlockAudio() {
    // Browsers allow sound only after the person has clicked something on the page.
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!audio && Ctx) audio = new Ctx();
    if (audio && audio.state === "suspended") audio.resume();
  }
  document.addEventListener("click", unlockAudio);
  function beep() {
    if (!audio || audio.state !== "running") return;
    const t = audio.currentTime;
    [0, 0.25].forEach(function (offset) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, t + offset);
      gain.gain.exponentialRampToValueAtTime(0.3, t + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + offset + 0.2);
      osc.connect(gain).connect(audio.destination);
      osc.start(t + offset);
      osc.stop(t + offset + 0.22);
    });
  }
  const canNotify = "Notification" in window;
  const enable = document.getElementById("alerts-enable");
  function showEnable() {
    if (enable) enable.hidden = !canNotify || Notification.permission !== "default";
  }
  if (enable) {
    enable.addEventListener("click", function () {
      unlockAudio();
      if (canNotify) Notification.requestPermission().then(showEnable);
    });
    showEnable();
  }
  function notify(title, text, conversation) {
    // The alias and priority only: a system notification may stay on screen for anyone
    // passing by, so the texter's own words stay inside the dashboard.
    if (!canNotify || Notification.permission !== "granted") return;
    try {
      const n = new Notification(title, { body: text, tag: "haven-" + conversation });
      n.onclick = function () { window.focus(); location.href = "/dashboard/conversations/" + conversation; };
    } catch (e) { /* some browsers allow notifications only from a service worker */ }
  }
  function tell(title, text, conversation) {
    beep();
    notify(title, text, conversation);
  }

  // Urgent things this screen knows of: alarms shown, and priority-1 texters waiting.
  const waitingP1 = new Set();
  let knownP1 = null; // null until the first look at the queue: nothing there is "new"
  function badge() {
    const urgent = new Set(waitingP1);
    document.querySelectorAll("#alarms .alarm").forEach(function (a) { urgent.add(a.dataset.cid + a.dataset.reason); });
    document.title = (urgent.size ? "(" + urgent.size + ") " : "") + baseTitle;
  }

  // -- alarms ------------------------------------------------------------------------------
  // Keys used: conversation_id, reason ("p1_unclaimed" | "danger_held"), and when present
  // alias, priority, words (the texter's telling words, already cut short by the server).
  function alarmText(reason) {
    return reason === "p1_unclaimed" ? "Priority-1 texter waiting unclaimed:" : "Danger in a held conversation:";
  }
  function dismissable(div) {
    const b = div.querySelector(".dismiss");
    if (b) b.addEventListener("click", function () { div.remove(); badge(); });
  }
  function addAlarm(ev) {
    const box = document.getElementById("alarms");
    const conversation = Number(ev.conversation_id);
    if (!box || !conversation) return;
    const reason = ev.reason === "p1_unclaimed" ? "p1_unclaimed" : "danger_held";
    const id = "alarm-" + conversation + "-" + reason;
    if (document.getElementById(id)) return;
    const div = document.createElement("div");
    div.className = "alarm " + reason;
    div.id = id;
    div.dataset.cid = String(conversation);
    div.dataset.reason = reason;
    const what = document.createElement("span");
    what.className = "what";
    what.textContent = alarmText(reason) + " ";
    div.appendChild(what);
    const a = document.createElement("a");
    a.href = "/dashboard/conversations/" + conversation;
    a.textContent = ev.alias ? String(ev.alias) : "open conversation #" + conversation;
    div.appendChild(a);
    const priority = Number(ev.priority);
    if (priority >= 1 && priority <= 4) {
      const p = document.createElement("span");
      p.className = "prio p" + priority;
      p.textContent = "P" + priority;
      div.appendChild(p);
    }
    if (ev.words) {
      const q = document.createElement("q");
      q.className = "said";
      q.textContent = String(ev.words);
      div.appendChild(q);
    }
    const b = document.createElement("button");
    b.type = "button";
    b.className = "dismiss";
    b.textContent = "Dismiss";
    div.appendChild(b);
    dismissable(div);
    box.appendChild(div);
    badge();
    tell(alarmText(reason).replace(/:$/, ""), (ev.alias ? ev.alias + " · " : "#" + conversation + " · ") + (priority ? "P" + priority : ""), conversation);
  }
  function clearAlarms(conversation, reason) {
    document.querySelectorAll("#alarms .alarm").forEach(function (a) {
      if (Number(a.dataset.cid) === Number(conversation) && (!reason || a.dataset.reason === reason)) a.remove();
    });
    badge();
  }
  // Alarms drawn by the server on page load dismiss like live ones.
  document.querySelectorAll("#alarms .alarm").forEach(dismissable);

  // The queue as JSON: prunes unclaimed alarms for texters someone took (whichever process
  // took them), and finds priority-1 texters who just arrived.
  let looking = false;
  function lookAtQueue() {
    if (looking || !live.indicator) return;
    looking = true;
    fetch("/dashboard/queue.json", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (rows) {
        if (!rows) return;
        const waiting = new Set(rows.map(function (r) { return Number(r.conversation_id); }));
        document.querySelectorAll("#alarms .alarm.p1_unclaimed").forEach(function (a) {
          if (!waiting.has(Number(a.dataset.cid))) a.remove();
        });
        waitingP1.clear();
        rows.forEach(function (r) {
          if (r.priority !== 1) return;
          waitingP1.add(r.conversation_id + "p1_unclaimed");
          if (knownP1 !== null && !knownP1.has(r.conversation_id)) {
            tell("Priority-1 texter waiting", r.alias + " · P1", r.conversation_id);
          }
        });
        knownP1 = new Set(rows.filter(function (r) { return r.priority === 1; }).map(function (r) { return r.conversation_id; }));
        badge();
      })
      .catch(function () {})
      .finally(function () { looking = false; });
  }

  // -- notices (a supervisor assigned you someone) ------------------------------------------
  function notice(text, conversation) {
    const box = document.getElementById("notices");
    if (!box) return;
    const div = document.createElement("div");
    div.className = "notice";
    div.appendChild(document.createTextNode(text + " "));
    const a = document.createElement("a");
    a.href = "/dashboard/conversations/" + Number(conversation);
    a.textContent = "open";
    div.appendChild(a);
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = "Dismiss";
    b.addEventListener("click", function () { div.remove(); });
    div.appendChild(b);
    box.appendChild(div);
  }

  // -- events --------------------------------------------------------------------------------
  function onEvent(ev) {
    switch (ev.kind) {
      case "alarm":
        addAlarm(ev);
        break;
      case "alarm_cleared":
        clearAlarms(ev.conversation_id, ev.reason);
        break;
      case "assigned":
        notice("Supervisor " + String(ev.by || "") + " assigned you " + String(ev.alias || "#" + ev.conversation_id) + ".", ev.conversation_id);
        tell("Assigned to you", String(ev.alias || "#" + ev.conversation_id), Number(ev.conversation_id));
        refresh(live.queue);
        break;
      case "message":
      case "status":
        if (cid !== null && ev.conversation_id === cid) refresh(live.transcript);
        refresh(live.queue);
        refresh(live.training);
        break;
      case "conversation":
        if (ev.state !== "queued") clearAlarms(ev.conversation_id, "p1_unclaimed");
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
      case "resync":
        // This screen fell behind and events were cut: re-read everything it shows.
        refresh(live.transcript);
        refresh(live.training);
        lookAtQueue();
        refresh(live.queue);
        break;
      case "queue":
        lookAtQueue();
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

  live.indicator = document.getElementById("live");
  let delay = 500;
  function connect() {
    const indicator = live.indicator;
    if (!indicator) return; // signed-out pages have no socket
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + location.host + "/ws");
    ws.addEventListener("open", function () {
      delay = 500;
      indicator.textContent = "live";
      indicator.className = "live on";
      // Anything that happened while disconnected: refresh once.
      [live.queue, live.transcript, live.supervisor, live.training].forEach(function (el) { refresh(el); });
      lookAtQueue();
    });
    ws.addEventListener("message", function (m) {
      let ev = null;
      try { ev = JSON.parse(m.data); } catch (e) { return; /* ignore malformed */ }
      onEvent(ev);
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

  // Your own message is always shown: the view goes to the bottom after sending.
  const reply = document.getElementById("reply-form");
  if (reply) ajax(reply, function (form) { form.reset(); refresh(live.transcript, true); });
  const training = document.getElementById("training-form");
  if (training) ajax(training, function (form) { form.reset(); refresh(live.training, true); });

  // Canned responses fill the reply box; the advocate still reads and sends.
  document.querySelectorAll(".canned-btn").forEach(function (b) {
    b.addEventListener("click", function () {
      const box = document.getElementById("reply-body");
      if (!box) return;
      box.value = box.value ? box.value + " " + b.dataset.text : b.dataset.text;
      box.focus();
    });
  });

  // Local resources: the search shows the server's fragment (names escaped there); Insert
  // puts the entry's one SMS line in the reply box and records the referral, once.
  const resourceForm = document.getElementById("resource-form");
  const resourceResults = document.getElementById("resource-results");
  if (resourceForm && resourceResults) {
    resourceForm.addEventListener("submit", function (e) {
      e.preventDefault();
      const url = resourceForm.action + "?" + new URLSearchParams(new FormData(resourceForm)).toString();
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) { return r.text().then(function (t) { return { ok: r.ok, text: t }; }); })
        .then(function (res) {
          if (res.ok) { resourceResults.innerHTML = res.text; return; }
          resourceResults.textContent = res.text || "Search failed.";
        })
        .catch(function () { resourceResults.textContent = "Network error."; });
    });
    resourceResults.addEventListener("click", function (e) {
      const b = e.target.closest(".insert-resource");
      const box = document.getElementById("reply-body");
      if (!b || !box) return;
      box.value = box.value ? box.value + " " + b.dataset.text : b.dataset.text;
      box.focus();
      b.disabled = true;
      fetch(b.dataset.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": csrf },
        body: new URLSearchParams({ service_id: b.dataset.service }),
      })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (!data.ok || !data.new) return;
          const list = document.querySelector("#referrals ul.referrals");
          if (!list) return;
          const none = list.querySelector(".none");
          if (none) none.remove();
          const li = document.createElement("li");
          li.textContent = String(data.name) + " · just now";
          list.appendChild(li);
        })
        .catch(function () { b.disabled = false; });
    });
  }

  // Ctrl/Cmd+Enter sends.
  document.querySelectorAll("textarea").forEach(function (t) {
    t.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && t.form) t.form.requestSubmit();
    });
  });

  tick();
  localTimes();
  badge();
  if (page === "queue" || page === "supervisor") setInterval(function () {
    refresh(live.queue); refresh(live.supervisor); lookAtQueue();
  }, 30000); // priorities age even when nothing else happens
})();
