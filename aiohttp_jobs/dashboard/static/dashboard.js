/* aiohttp-jobs dashboard: live updates (Server-Sent Events), local times,
   confirmations and keyboard navigation. No dependencies, no inline script. */
(function () {
  "use strict";
  var body = document.body;
  var status = document.querySelector("[data-testid=live-status]");
  var source = null;
  // The live feed's id when the server began this page: the stream resumes
  // from it, so what changed while the page was built and loaded reaches it.
  var lastId = body.getAttribute("data-seq") || null;
  var refreshTimer = null;
  var refreshSeq = 0;
  var lastRefresh = 0;

  function setStatus(state, text) {
    if (!status) return;
    status.setAttribute("data-state", state);
    status.textContent = text;
  }

  /* Times: UTC from the server, shown in the browser's zone; UTC on hover. */
  function localTimes(root) {
    var items = (root || document).querySelectorAll("time[data-ts]");
    for (var i = 0; i < items.length; i++) {
      var t = items[i];
      if (t.getAttribute("data-local")) continue;
      var d = new Date(parseFloat(t.getAttribute("data-ts")) * 1000);
      if (isNaN(d.getTime())) continue;
      t.textContent = d.toLocaleString(undefined, {
        year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit"
      });
      t.setAttribute("data-local", "1");
    }
  }

  /* Confirmations: every action form asks first. */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if ((form.getAttribute("method") || "get").toLowerCase() === "get") {
      // Short, bookmarkable URLs: leave the empty filters out.
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.name && !el.value) el.disabled = true;
      });
      window.setTimeout(function () {
        Array.prototype.forEach.call(form.elements, function (el) { el.disabled = false; });
      }, 0);
      return;
    }
    var field = form.getAttribute("data-json-field");
    if (field) {
      var area = form.elements[field];
      try {
        var parsed = JSON.parse(area.value || "{}");
        if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
          throw new Error("not an object");
        }
      } catch (e) {
        event.preventDefault();
        window.alert("The payload must be a JSON object, like {\"id\": 1}.");
        return;
      }
    }
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  /* Live: apply job changes in place; reload the page's content when rows
     would appear or disappear (at most every two seconds). */
  function updateJob(job) {
    var rows = document.querySelectorAll('[data-job-id="' + CSS.escape(job.id) + '"]');
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      if (row === body) continue;
      row.setAttribute("data-state", job.state);
      var states = row.querySelectorAll('[data-field="state"]');
      for (var j = 0; j < states.length; j++) {
        states[j].textContent = job.state;
        states[j].className = "state state-" + job.state;
      }
      var bars = row.querySelectorAll('[data-field="progress"]');
      for (var k = 0; k < bars.length; k++) renderProgress(bars[k], job.progress);
    }
    return rows.length > 0;
  }

  function renderProgress(holder, p) {
    holder.textContent = "";
    if (!p) return;
    var bar = document.createElement("progress");
    if (p.fraction !== null && p.fraction !== undefined) {
      bar.max = 1;
      bar.value = p.fraction;
      bar.textContent = Math.round(p.fraction * 100) + "%";
    }
    holder.appendChild(bar);
    var msg = document.createElement("span");
    msg.className = "progress-message";
    msg.setAttribute("data-field", "progress-message");
    msg.textContent = p.message || "";
    holder.appendChild(msg);
  }

  function updateCounts(counts) {
    if (!counts) return;
    Object.keys(counts).forEach(function (key) {
      var el = document.querySelector('[data-count="' + key + '"]');
      if (el) el.textContent = counts[key];
    });
  }

  function busy() {
    var active = document.activeElement;
    return active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) &&
      active.closest("main");
  }

  /* A refresh replaces the page's content: the row a reader moved to with
     j/k (or the element they focused) is found again in the new content, so
     Enter still opens it and the place is not lost under their hands. */
  function rowId(row) {
    return row.getAttribute("data-job-id") || row.getAttribute("data-workflow-id");
  }

  function focusKey(main) {
    var active = document.activeElement;
    if (!active || active === document.body || !main.contains(active)) return null;
    var row = active.closest("tr[data-row]");
    if (row) {
      var id = rowId(row);
      if (id) return { row: id, self: active === row };
    }
    if (active.id) return { id: active.id };
    return active.name && active.matches(FIELDS) ? { field: active.name } : null;
  }

  function markRow(row) {
    document.querySelectorAll("tr[data-row].focused").forEach(function (r) {
      r.classList.remove("focused");
    });
    row.setAttribute("tabindex", "-1");
    row.classList.add("focused");
    row.focus();
  }

  function restoreFocus(main, key) {
    if (!key) return;
    if (key.id) {
      var el = document.getElementById(key.id);
      if (el && main.contains(el)) el.focus();
      return;
    }
    if (key.field) {
      var fields = main.querySelectorAll(FIELDS);
      for (var j = 0; j < fields.length; j++) {
        if (fields[j].name === key.field) { fields[j].focus(); return; }
      }
      return;
    }
    var rows = main.querySelectorAll("tr[data-row]");
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      if (rowId(r) === key.row) {
        if (key.self) markRow(r);
        else { var a = r.querySelector("a"); if (a) a.focus(); }
        return;
      }
    }
  }

  /* What the reader typed or chose in a form and has not sent yet (a filter,
     a payload to fire) survives a refresh too, even once the field lost focus. */
  var FIELDS = "input[name]:not([type=hidden]), select[name], textarea[name]";

  function edited(el) {
    if (el.tagName === "SELECT") {
      return Array.prototype.some.call(el.options, function (o) {
        return o.selected !== o.defaultSelected;
      });
    }
    if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
    return el.value !== el.defaultValue;
  }

  function editedFields(main) {
    var kept = [];
    main.querySelectorAll(FIELDS).forEach(function (el) {
      if (edited(el)) kept.push({ name: el.name, value: el.value, checked: el.checked });
    });
    return kept;
  }

  function restoreEdits(main, kept) {
    kept.forEach(function (f) {
      main.querySelectorAll(FIELDS).forEach(function (el) {
        if (el.name !== f.name) return;
        if (el.type === "checkbox" || el.type === "radio") {
          if (el.value === f.value) el.checked = f.checked;
        } else {
          el.value = f.value;
        }
      });
    });
  }

  function softRefresh() {
    if (refreshTimer) return;
    var wait = Math.max(0, 2000 - (Date.now() - lastRefresh));
    refreshTimer = window.setTimeout(function () {
      refreshTimer = null;
      if (document.hidden) return;
      if (busy()) { softRefresh(); return; }
      lastRefresh = Date.now();
      // Under load an earlier answer can arrive after a later one: only the
      // latest request may replace the content.
      var mine = ++refreshSeq;
      fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html || mine !== refreshSeq) return;
          // The reader started typing while the content was on its way: not
          // under their hands; fetch it again once they are done.
          if (busy()) { softRefresh(); return; }
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("main");
          var main = document.getElementById("main");
          if (fresh && main) {
            var focus = focusKey(main);
            var edits = editedFields(main);
            main.replaceChildren.apply(main, Array.prototype.slice.call(fresh.childNodes));
            localTimes(main);
            restoreEdits(main, edits);
            restoreFocus(main, focus);
          }
        })
        .catch(function () {});
    }, wait);
  }

  function updateWorkflow() {
    var api = body.getAttribute("data-workflow-api");
    if (!api) return;
    fetch(api, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        var states = data.step_states || {};
        Object.keys(states).forEach(function (id) {
          var nodes = document.querySelectorAll('[data-step-id="' + CSS.escape(id) + '"]');
          for (var i = 0; i < nodes.length; i++) {
            var node = nodes[i];
            var state = states[id];
            node.setAttribute("data-state", state);
            if (node.tagName.toLowerCase() === "g") {
              var kind = node.classList.contains("wf-workflow") ? "wf-workflow" : "wf-step";
              node.setAttribute("class", kind + " wf-" + state);
              var texts = node.querySelectorAll("text");
              if (kind === "wf-step" && texts.length > 1) texts[1].textContent = state;
            } else {
              var label = node.querySelector('[data-field="state"]');
              if (label) { label.textContent = state; label.className = "state state-" + state; }
            }
          }
        });
        var head = document.querySelector('[data-field="workflow-state"]');
        if (head && data.state) { head.textContent = data.state; head.className = "state state-" + data.state; }
        if (data.debrief && !document.querySelector("[data-testid=workflow-debrief]")) softRefresh();
      })
      .catch(function () {});
  }

  function onUpdate(event) {
    lastId = event.lastEventId || lastId;
    var msg;
    try { msg = JSON.parse(event.data); } catch (e) { return; }
    var page = body.getAttribute("data-page");
    var missing = false;
    var shown = body.getAttribute("data-job-id");
    (msg.jobs || []).forEach(function (job) {
      if (!updateJob(job)) missing = true;
      // A job page shows the result or the error once the job is over.
      if (shown && job.id === shown && /^(succeeded|failed|cancelled)$/.test(job.state)) {
        softRefresh();
      }
    });
    updateCounts(msg.counts);
    var wf = body.getAttribute("data-workflow-id");
    if (wf && (msg.workflows || []).indexOf(wf) >= 0) updateWorkflow();
    if (msg.more ||
        (page === "jobs" && missing && !body.getAttribute("data-job-id")) ||
        (page === "tasks" && msg.tasks) ||
        (page === "overview") ||
        (page === "workflows" && (msg.workflows || []).length)) {
      softRefresh();
    }
  }

  function connect() {
    var url = body.getAttribute("data-stream");
    if (!url || !window.EventSource) { setStatus("off", "no live updates"); return; }
    if (lastId) url += (url.indexOf("?") < 0 ? "?" : "&") + "last=" + encodeURIComponent(lastId);
    source = new EventSource(url);
    source.addEventListener("open", function () { setStatus("live", "live"); });
    source.addEventListener("hello", function (e) { lastId = e.lastEventId; setStatus("live", "live"); });
    source.addEventListener("update", onUpdate);
    source.addEventListener("refresh", function (e) { lastId = e.lastEventId; softRefresh(); });
    source.addEventListener("error", function () {
      setStatus("reconnecting", "reconnecting…");
    });
  }

  function disconnect() {
    if (source) { source.close(); source = null; }
  }

  /* Paused while the tab is hidden; on return, resume and catch up. */
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      disconnect();
      setStatus("paused", "paused");
    } else if (!source) {
      // Resuming from the last id gets what was missed (or a "refresh");
      // a page hidden since it loaded has no id yet: reload its content.
      if (!lastId) softRefresh();
      connect();
    }
  });

  /* Keyboard: "/" search, j/k rows, Enter opens, g + letter goes to a page. */
  var pendingG = false;
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) {
      if (event.key === "Escape") target.blur();
      return;
    }
    if (pendingG) {
      pendingG = false;
      var link = document.querySelector('nav a[data-key="' + event.key + '"]');
      if (link) { event.preventDefault(); link.click(); }
      return;
    }
    if (event.key === "g") { pendingG = true; return; }
    if (event.key === "/") {
      var search = document.getElementById("search");
      if (search) { event.preventDefault(); search.focus(); }
      return;
    }
    if (event.key === "j" || event.key === "k") {
      var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-row]"));
      if (!rows.length) return;
      var current = rows.indexOf(document.activeElement);
      var next = event.key === "j" ? current + 1 : current - 1;
      next = Math.max(0, Math.min(rows.length - 1, next));
      markRow(rows[next]);
      event.preventDefault();
      return;
    }
    if (event.key === "Enter" && target.matches && target.matches("tr[data-row]")) {
      var a = target.querySelector("a");
      if (a) a.click();
    }
  });

  localTimes(document);
  if (!document.hidden) connect(); else setStatus("paused", "paused");
})();
