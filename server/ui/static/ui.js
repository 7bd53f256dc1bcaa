// termd console: what every page does in the browser. No inline script,
// no eval (the Content-Security-Policy forbids both).
//  - <time datetime> shown in the operator's time zone (UTC stays in the title)
//  - forms with data-confirm ask first, in a <dialog>
//  - the live stream (/ui/stream): the online count, toasts, the events page;
//    it reconnects by itself, and after a termd restart (sessions are in
//    memory) it sends the page to the sign-in form
(function () {
  "use strict";

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) { t.textContent = d.toLocaleString(); }
    });
  }

  function fmt(n) { return Number(n).toLocaleString("en-US"); }

  // Confirmation dialogs for state-changing forms.
  function confirmForms() {
    var dlg = document.getElementById("confirm");
    if (!dlg) { return; }
    var pending = null;
    document.addEventListener("submit", function (e) {
      var f = e.target;
      if (!f.dataset || !f.dataset.confirm || f.dataset.confirmed === "1") { return; }
      e.preventDefault();
      pending = f;
      document.getElementById("confirm-text").textContent = f.dataset.confirm;
      dlg.returnValue = "";
      dlg.showModal();
    }, true);
    dlg.addEventListener("close", function () {
      if (dlg.returnValue === "ok" && pending) {
        pending.dataset.confirmed = "1";
        pending.requestSubmit();
      }
      pending = null;
    });
  }

  function toast(t) {
    var box = document.getElementById("toasts");
    if (!box) { return; }
    var el = document.createElement("div");
    el.className = "toast toast-" + t.kind;
    el.setAttribute("role", "alert");
    el.dataset.kind = t.kind;
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = "×";
    close.setAttribute("aria-label", "dismiss");
    close.addEventListener("click", function () { el.remove(); });
    var title = document.createElement("strong");
    title.textContent = t.title;
    var body = document.createElement("span");
    body.textContent = t.body;
    el.append(close, title, body);
    box.append(el);
    setTimeout(function () { el.remove(); }, 30000);
  }

  var groups = {
    online: "presence", offline: "presence", replaced: "presence", duplicate: "presence",
    service: "service", upgrade: "upgrade", upgrade_failure: "upgrade", release: "upgrade",
    rollout: "upgrade", campaign: "upgrade", group: "group"
  };
  function groupOf(kind) { return groups[kind] || (kind.indexOf("group") === 0 ? "group" : "other"); }

  function eventsPage(m) {
    var log = document.getElementById("event-log");
    if (!log) { return; }
    var body = log.tBodies[0];
    var filters = document.getElementById("event-filters");
    function shown(g) { var c = filters && filters.elements[g]; return !c || c.checked; }
    var rows = [];
    (m.events || []).forEach(function (raw) {
      var ev = raw;
      var tr = document.createElement("tr");
      var g = groupOf(ev.kind);
      tr.dataset.group = g;
      if (!shown(g)) { tr.className = "hidden"; }
      var subject = ev.device_id || ev.service || ev.release_id || "";
      var details = [];
      ["state", "stage", "reason", "remote", "release_id"].forEach(function (k) {
        if (ev[k] && ev[k] !== subject) { details.push(k + "=" + ev[k]); }
      });
      if (ev.digest) { details.push(ev.digest.failures + " failures on " + ev.digest.devices + " devices"); }
      var when = new Date(ev.at_ms || m.at_ms);
      [when.toLocaleString(), ev.kind, subject, details.join(" ")].forEach(function (s, i) {
        var td = document.createElement("td");
        if (i === 0) {
          var t = document.createElement("time");
          t.setAttribute("datetime", when.toISOString());
          t.title = when.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
          t.textContent = s;
          td.append(t);
        } else { td.textContent = s; }
        tr.append(td);
      });
      rows.push(tr);
    });
    if (m.omitted > 0) {
      var tr = document.createElement("tr");
      tr.className = "agg";
      tr.dataset.group = "other";
      var td = document.createElement("td");
      td.colSpan = 4;
      td.textContent = "+" + fmt(m.omitted) + " more in this half second";
      tr.append(td);
      rows.push(tr);
    }
    // Newest on top: the window's events in order, its summary above them.
    rows.forEach(function (r) { body.prepend(r); });
    while (body.rows.length > 500) { body.deleteRow(body.rows.length - 1); }
    var parts = Object.keys(m.counts || {}).sort().map(function (k) { return fmt(m.counts[k]) + " " + k; });
    if (parts.length) { document.getElementById("event-rate").textContent = parts.join(", "); }
    document.getElementById("event-dropped").textContent = fmt(m.dropped || 0);
  }

  function eventFilters() {
    var filters = document.getElementById("event-filters");
    if (!filters) { return; }
    filters.addEventListener("change", function () {
      document.querySelectorAll("#event-log tbody tr").forEach(function (tr) {
        var c = filters.elements[tr.dataset.group];
        tr.classList.toggle("hidden", !!c && !c.checked);
      });
    });
    document.getElementById("event-clear").addEventListener("click", function () {
      document.querySelector("#event-log tbody").replaceChildren();
    });
  }

  function setLive(state) {
    var el = document.getElementById("live-state");
    if (el) { el.className = "live-state " + state; el.title = "live event stream: " + state; }
  }

  function live() {
    if (!document.body.dataset.live || !window.EventSource) { return; }
    var es;
    function checkSession() {
      fetch("/ui/session", { credentials: "same-origin", cache: "no-store" }).then(function (r) {
        if (r.status === 401) {
          location.href = "/ui/login?next=" + encodeURIComponent(location.pathname + location.search);
        } else { setTimeout(connect, 2000); }
      }, function () { setTimeout(checkSession, 2000); });
    }
    function connect() {
      es = new EventSource("/ui/stream");
      es.addEventListener("open", function () { setLive("on"); });
      es.addEventListener("tick", function (e) {
        var m = JSON.parse(e.data);
        if (m.online >= 0) {
          document.querySelectorAll("[data-live-online]").forEach(function (el) {
            el.textContent = fmt(m.online);
            el.dataset.value = String(m.online);
          });
        }
        eventsPage(m);
      });
      es.addEventListener("toast", function (e) { toast(JSON.parse(e.data)); });
      es.addEventListener("error", function () {
        setLive("off");
        // CLOSED: the console refused the stream (signed out, or termd
        // restarted and forgot the session); otherwise EventSource retries.
        if (es.readyState === EventSource.CLOSED) { es.close(); checkSession(); }
      });
    }
    connect();
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    confirmForms();
    eventFilters();
    live();
    document.body.addEventListener("htmx:afterSettle", function () { localTimes(document); });
    // A polled fragment whose session is gone: go and sign in.
    document.body.addEventListener("htmx:responseError", function (e) {
      if (e.detail.xhr && e.detail.xhr.status === 401) { location.href = "/ui/login"; }
    });
  });
})();
