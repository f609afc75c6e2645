// fluxbridge console: live updates over Server-Sent Events, ticking relative times, form rows.
// Vanilla, no build step; the Content-Security-Policy allows only this file as script.
"use strict";
(function () {
  // ---- relative times --------------------------------------------------------------------
  function ago(d) {
    const s = Math.round((Date.now() - d.getTime()) / 1000);
    const a = Math.abs(s), fut = s < 0;
    let t;
    if (a < 45) t = fut ? "in a few seconds" : "just now";
    else if (a < 3600) t = Math.round(a / 60) + " min";
    else if (a < 86400) t = Math.round(a / 3600) + " h";
    else return d.toLocaleString();
    if (a < 45) return t;
    return fut ? "in " + t : t + " ago";
  }
  function tick(root) {
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      const d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) {
        el.textContent = ago(d);
        el.title = d.toLocaleString() + " (" + d.toISOString().replace(".000", "") + ")";
      }
    });
  }

  // ---- fragments: re-render in place, by id ------------------------------------------------
  const pending = new Map();
  function refresh(el) {
    const url = el.getAttribute("data-fragment");
    if (!url || pending.has(url)) return;
    pending.set(url, setTimeout(function () {
      fetch(url, { headers: { Accept: "text/html", "X-Fluxbridge-Fragment": "1" }, credentials: "same-origin" }).then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      }).then(function (html) {
        pending.delete(url);
        const cur = el.id ? document.getElementById(el.id) : el;
        if (!cur) return;
        let next;
        if (/^\s*<!doctype/i.test(html)) {
          // A whole page (data-fragment names the page itself): take this element out of it.
          next = cur.id ? new DOMParser().parseFromString(html, "text/html").getElementById(cur.id) : null;
          if (next) next = document.importNode(next, true);
        } else {
          const tpl = document.createElement("template");
          tpl.innerHTML = html.trim();
          next = tpl.content.firstElementChild;
        }
        if (!next) return;
        const hadFocus = cur.contains(document.activeElement) ? document.activeElement : null;
        const same = norm(cur) === norm(next);
        cur.replaceWith(next);
        tick(next);
        bindPoll(next);
        if (hadFocus && hadFocus.id) { const f = document.getElementById(hadFocus.id); if (f) f.focus(); }
        if (!same) { next.classList.add("changed"); announce(next); }
      }).catch(function () { pending.delete(url); });
    }, 120));
  }
  // norm is an element's text without its relative times, which tick on their own.
  function norm(el) {
    const c = el.cloneNode(true);
    c.querySelectorAll("time").forEach(function (t) { t.textContent = ""; });
    return c.textContent.replace(/\s+/g, " ");
  }
  function announce(el) {
    const live = document.getElementById("live");
    const label = el.querySelector(".badge span");
    if (live && label) live.textContent = "Updated: " + label.textContent;
  }
  function matching(key) {
    return Array.prototype.filter.call(document.querySelectorAll("[data-live]"), function (el) {
      return el.getAttribute("data-live").split(" ").indexOf(key) >= 0;
    });
  }
  function bindPoll(el) {
    const ms = parseInt(el.getAttribute("data-poll") || "0", 10);
    if (ms > 0 && !el.dataset.polling) {
      el.dataset.polling = "1";
      setTimeout(function () { if (document.body.contains(el)) refresh(el); }, ms);
    }
  }

  // ---- the change feed --------------------------------------------------------------------
  // connect follows the project's change feed, or with no project the user's own (their
  // notifications and approval requests across projects).
  function connect(project) {
    if (!window.EventSource) return;
    const conn = document.getElementById("conn");
    let shown = null;
    const from = document.body.getAttribute("data-feed-from");
    const es = new EventSource((project ? "/api/v1/projects/" + encodeURIComponent(project) + "/events/stream" : "/api/v1/events/stream") +
      (from ? "?last_event_id=" + encodeURIComponent(from) : ""));
    es.onopen = function () { clearTimeout(shown); if (conn) conn.hidden = true; document.body.dataset.live = "open"; };
    es.onerror = function () {
      document.body.dataset.live = "reconnecting";
      clearTimeout(shown);
      shown = setTimeout(function () { if (conn) { conn.textContent = "Reconnecting…"; conn.hidden = false; } }, 300);
    };
    ["resource", "deployment", "reconcile", "approval", "notification", "audit"].forEach(function (kind) {
      es.addEventListener(kind, function (msg) {
        let ev;
        try { ev = JSON.parse(msg.data); } catch (e) { return; }
        let ref = ev.ref_id;
        if (kind === "reconcile" && ev.payload) ref = ev.payload.resource_id;
        matching(kind + ":" + ref).forEach(refresh);
        matching(kind + ":*").forEach(refresh); // lists of every object of the kind
      });
    });
    es.addEventListener("flux_event", function (msg) {
      let ev;
      try { ev = JSON.parse(msg.data); } catch (e) { return; }
      if (ev.payload && ev.payload.resource_id) matching("resource:" + ev.payload.resource_id).forEach(refresh);
      addEvent(project, ev);
    });
  }

  // ---- the event stream page ----------------------------------------------------------------
  let paused = false;
  const queued = [];
  function addEvent(project, ev) {
    const table = document.getElementById("events");
    const p = ev.payload || {};
    if (!table) return;
    const f = table.dataset;
    if ((f.cluster && f.cluster !== p.cluster) || (f.kind && f.kind !== p.kind) ||
        (f.severity && f.severity !== p.severity) || (f.env && String(ev.environment_id) !== f.env)) return;
    const tr = document.createElement("tr");
    tr.className = "sev-" + p.severity + " changed";
    function td(text, cls) { const c = document.createElement("td"); if (cls) c.className = cls; c.textContent = text || ""; tr.appendChild(c); return c; }
    const t = document.createElement("time");
    t.setAttribute("datetime", p.event_time || ev.at);
    td("").appendChild(t);
    const sev = td("");
    const b = document.createElement("span");
    b.className = "badge " + (p.severity === "error" ? "st-failed" : "st-info");
    b.textContent = p.severity === "error" ? "Warning" : "Info";
    sev.appendChild(b);
    const obj = td("");
    const a = document.createElement("a");
    a.href = "/projects/" + encodeURIComponent(project) + "/resources/" + p.resource_id;
    a.textContent = p.kind + " " + p.namespace + "/" + p.name;
    obj.appendChild(a);
    td(p.reason); td(p.message, "msg");
    const rev = td(""); if (p.revision) { const c = document.createElement("code"); c.className = "sha"; c.title = p.revision; c.textContent = shortRev(p.revision); rev.appendChild(c); }
    td(p.cluster);
    tick(tr);
    if (paused || window.scrollY > 200) { queued.push(tr); showQueued(); return; }
    insert(tr);
  }
  function insert(tr) {
    const body = document.querySelector("#events tbody");
    const empty = body.querySelector(".empty-row");
    if (empty) empty.remove();
    body.insertBefore(tr, body.firstChild);
  }
  function showQueued() {
    const p = document.getElementById("pending"), b = document.getElementById("show-pending");
    if (!p) return;
    p.hidden = queued.length === 0;
    b.textContent = queued.length + " new event" + (queued.length === 1 ? "" : "s");
  }
  function shortRev(rev) {
    const i = rev.lastIndexOf(":");
    const s = i >= 0 ? rev.slice(i + 1) : rev;
    return /^[0-9a-f]{40,64}$/.test(s) ? s.slice(0, 7) : rev;
  }

  // ---- deploy form rows -------------------------------------------------------------------
  function renumber(container) {
    const name = container.getAttribute("data-rows");
    container.querySelectorAll("[data-row]").forEach(function (row, i) {
      row.querySelectorAll("[name]").forEach(function (el) {
        const n = el.getAttribute("name").replace(/^[a-z_]+\[(-?\d+|__i__)\]/, name + "[" + i + "]");
        el.setAttribute("name", n);
        const id = n.replace(/[^a-zA-Z0-9_-]/g, "-");
        const label = row.querySelector('label[for="' + el.id + '"]');
        el.id = id;
        if (label) label.setAttribute("for", id);
      });
    });
  }
  function bindRows() {
    document.addEventListener("click", function (e) {
      const add = e.target.closest("[data-add]");
      if (add) {
        const name = add.getAttribute("data-add");
        const tpl = document.getElementById("tpl-" + name);
        const rows = document.getElementById("rows-" + name);
        rows.appendChild(tpl.content.cloneNode(true));
        renumber(rows);
        const last = rows.lastElementChild.querySelector("input, select");
        if (last) last.focus();
        return;
      }
      const rm = e.target.closest("[data-remove]");
      if (rm) {
        const rows = rm.closest("[data-rows]");
        const row = rm.closest("[data-row]");
        const next = row.nextElementSibling || row.previousElementSibling;
        row.remove();
        renumber(rows);
        const f = next ? next.querySelector("input, select") : rows.parentElement.querySelector("[data-add]");
        if (f) f.focus();
      }
    });
  }

  function focusFirstError() {
    const invalid = document.querySelector('[aria-invalid="true"]');
    const summary = document.getElementById("errors");
    if (invalid) invalid.focus();
    else if (summary) summary.focus();
    else { const f = document.getElementById("flash"); if (f) f.focus(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 15000);
    bindRows();
    focusFirstError();
    document.querySelectorAll("[data-poll]").forEach(bindPoll);
    const pause = document.getElementById("pause");
    if (pause) pause.addEventListener("click", function () {
      paused = !paused;
      pause.setAttribute("aria-pressed", String(paused));
      pause.textContent = paused ? "Resume" : "Pause";
      if (!paused) { while (queued.length) insert(queued.shift()); showQueued(); }
    });
    const show = document.getElementById("show-pending");
    if (show) show.addEventListener("click", function () { while (queued.length) insert(queued.shift()); showQueued(); });
    if (document.body.hasAttribute("data-feed-from")) connect(document.body.getAttribute("data-project"));
  });
})();
