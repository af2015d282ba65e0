// vpp-maglev web UI: live updates for the server-rendered page. No build step.
// The page is complete without this file; the script keeps it current:
// server-sent events patch what they name at once and schedule a refetch of
// the JSON state, whose changed values flash once.
"use strict";

(function () {
  const body = document.body;
  const admin = body.dataset.admin === "true";
  const scope = body.dataset.scope;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const enc = encodeURIComponent;

  function fmtAge(seconds) {
    let s = Math.floor(seconds);
    if (s < 1) return "now";
    const parts = [];
    for (const [n, u] of [[86400, "d"], [3600, "h"], [60, "m"], [1, "s"]]) {
      const q = Math.floor(s / n);
      s -= q * n;
      parts.push([q, u]);
    }
    const first = parts.findIndex(([q]) => q > 0);
    let shown = parts.slice(first, first + 2);
    if (shown.length === 2 && shown[1][0] === 0) shown = shown.slice(0, 1);
    return shown.map(([q, u]) => q + u).join("");
  }

  function flash(el) {
    el.classList.remove("flash");
    void el.offsetWidth; // restart the animation
    el.classList.add("flash");
    el.addEventListener("animationend", () => el.classList.remove("flash"), { once: true });
  }

  // Set a cell's text; flash it only when the value really changed.
  function put(el, text, cls) {
    if (!el) return;
    text = String(text);
    if (el.textContent !== text) {
      el.textContent = text;
      flash(el);
    }
    if (cls !== undefined && el.className.split(" ").indexOf(cls) < 0) {
      el.className = el.className.replace(/\b(state|badge)-\S+/g, "").trim() + " " + cls;
    }
  }

  function tick() {
    const now = Date.now() / 1000;
    for (const el of document.querySelectorAll("[data-since]")) {
      const since = parseFloat(el.dataset.since);
      const text = since > 0 ? fmtAge(now - since) : "–";
      if (el.textContent !== text) el.textContent = text;
    }
  }

  function num(v) { return v === null || v === undefined ? "–" : String(v); }
  // The same texts as the server's page.py (probe_text, checks_text, duration, rate).
  function probeText(lp) {
    if (!lp) return "–";
    const code = lp.code || (lp.ok ? "ok" : "fail");
    return `${code}${lp.detail ? " " + lp.detail : ""} · ${(lp.duration * 1000).toFixed(1)} ms`;
  }
  function checksText(b) { return b.failed_checks ? `${b.checks} (${b.failed_checks} failed)` : String(b.checks); }
  function duration(s) { return s < 1 ? "0s" : fmtAge(s); }
  function rate(c, k) { return c && c.rates && c.rates[k] !== null ? `${c.rates[k].toFixed(1)}/s` : ""; }
  function pulse(el) {  // the API arrows light up when VPP API traffic was seen since the last look
    if (!el) return;
    el.classList.remove("on");
    void el.offsetWidth;
    el.classList.add("on");
  }
  // the counts the page was rendered with: traffic before the script's first look still pulses
  const apiCount = document.querySelector('[data-f="api-count"]');
  let apiSeen = apiCount ? [Number(apiCount.dataset.sent), Number(apiCount.dataset.received)] : null;

  const lastProbe = new Map();

  // --- the VIP's new-flow table: a bar of bucket shares per AS over a thin bar of weight shares
  function hue(address) {  // FNV-1a, spread by the golden angle: neighbours get far-apart colours
    let h = 2166136261;
    for (const ch of address) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
    return Math.round((h % 1000) * 137.508) % 360;
  }
  function pct(x) { return `${(100 * x).toFixed(1)}%`; }
  function bar(kind, shares, field, moved) {
    const el = document.createElement("div");
    el.className = `bar ${kind}`;
    for (const s of shares) {
      if (!(s[field] > 0)) continue;
      const seg = document.createElement("span");
      seg.className = "seg" + (moved && moved.has(s.address) ? " moved" : "");
      seg.dataset.address = s.address;
      seg.style.width = `${100 * s[field]}%`;
      seg.style.background = `hsl(${hue(s.address)} 55% 45%)`;
      const who = s.backend ? `${s.backend} ${s.address}` : s.address;
      seg.title = field === "bucket_share"
        ? `${who}: ${s.buckets} buckets (${pct(s.bucket_share)}), its weight asks ${pct(s.weight_share)}`
        : `${who}: weight share ${pct(s.weight_share)}`;
      if (kind === "buckets" && s[field] > 0.08) seg.textContent = s.backend || s.address;
      el.appendChild(seg);
    }
    return el;
  }
  function drawTable(el, t, moved) {
    el.replaceChildren();
    if (!t) return;
    el.appendChild(bar("buckets", t.shares, "bucket_share", moved));
    el.appendChild(bar("weights", t.shares, "weight_share"));
    const meta = document.createElement("p");
    const honoured = !t.weights
      ? `VPP has no weights: equal shares (off by up to ${(100 * t.weight_error).toFixed(1)} points)`
      : t.weight_error > 0.01
        ? `weights NOT honoured: worst backend off by ${(100 * t.weight_error).toFixed(1)} points`
        : `weights honoured within ${(100 * t.weight_error).toFixed(1)} points`;
    meta.className = "meta" + (t.weights && t.weight_error > 0.01 ? " bad" : "");
    meta.textContent = `${t.length} buckets, digest ${t.digest}, ${honoured}` +
      (t.weights && t.weight_scale !== 100 ? `, given to VPP at ${t.weight_scale}%` : "");
    el.appendChild(meta);
  }
  for (const el of document.querySelectorAll('.vip-table[data-table]')) {
    drawTable(el, JSON.parse(el.dataset.table));
  }

  function apply(state) {
    const seen = new Set();
    for (const fe of state.frontends) {
      const card = document.querySelector(`[data-fe="${CSS.escape(fe.name)}"]`);
      if (!card) return location.reload(); // the configuration changed: render it anew
      put(card.querySelector('[data-f="fe-state"]'), fe.state, "state-" + fe.state);
      const h = card.querySelector('[data-f="fe-health"]');
      put(h, fe.health_icon);
      h.title = fe.health_label;
      const tableEl = card.querySelector('[data-f="table"]');
      const tableJson = JSON.stringify(fe.table);
      if (tableEl && tableEl.dataset.table !== tableJson) {
        tableEl.dataset.table = tableJson;
        drawTable(tableEl, fe.table);
      }
      const agree = card.querySelector('[data-f="consistency"]');
      if (Boolean(agree) !== Boolean(fe.consistency) || (fe.consistency && !fe.consistency.consistent !== agree.classList.contains("differ"))) {
        return location.reload(); // routers began or stopped agreeing: render the banner anew
      }
      for (const pool of fe.pools) {
        for (const b of pool.backends) {
          const row = document.querySelector(`tr[data-key="${CSS.escape(b.key)}"]`);
          if (!row) return location.reload();
          seen.add(b.key);
          const f = (name) => row.querySelector(`[data-f="${name}"]`);
          put(f("state"), b.note ? `${b.state} (${b.note})` : b.state, "state-" + b.state);
          put(f("weight"), b.weight);
          put(f("effective_weight"), b.effective_weight);
          put(f("buckets"), num(b.buckets));
          const since = f("since");
          if (since.dataset.since !== b.since.toFixed(3)) {
            since.dataset.since = b.since.toFixed(3);
            flash(since);
          }
          const lp = b.last_probe;
          put(f("probe"), probeText(lp));
          put(f("checks"), checksText(b));
          put(f("downs"), b.downs);
          put(f("downtime"), duration(b.downtime));
          const beat = f("heartbeat");
          const t = lp ? lp.time : 0;
          if (b.in_flight || (lastProbe.has(b.key) && lastProbe.get(b.key) !== t)) {
            beat.textContent = "❤️";
            setTimeout(() => { beat.textContent = "·"; }, 600);
          }
          lastProbe.set(b.key, t);
        }
      }
      const c = fe.counters || {};
      const row = document.querySelector(`tr[data-counter="${CSS.escape(fe.name)}"]`);
      if (row) {
        for (const k of ["next", "first", "untracked", "no_server", "route_packets", "route_bytes"]) {
          put(row.querySelector(`[data-f="${k}"]`), num(c[k]));
          const r = row.querySelector(`[data-f="${k}_rate"]`);
          if (r) r.textContent = rate(fe.counters, k);
        }
      }
    }
    if (document.querySelectorAll("tr[data-key]").length !== seen.size) return location.reload();
    const v = state.vpp;
    put(document.querySelector('[data-f="vpp-state"]'), v.connected ? "connected" : "disconnected", v.connected ? "badge-up" : "badge-down");
    put(document.querySelector('[data-f="vpp-version"]'), v.version || "–");
    put(document.querySelector('[data-f="vpp-api"]'), v.api_mode || "–");
    if (apiSeen && v.connected && (v.api_sent || v.api_received)) {
      if (v.api_sent !== apiSeen[0]) pulse(document.querySelector('[data-f="api-up"]'));
      if (v.api_received !== apiSeen[1]) pulse(document.querySelector('[data-f="api-down"]'));
    }
    apiSeen = [v.api_sent, v.api_received];
    if (apiCount) apiCount.textContent = `${v.api_sent} ↑ ${v.api_received} ↓`;
    const up = document.querySelector('[data-f="vpp-uptime"]');
    if (up) up.dataset.since = v.connected ? v.boottime.toFixed(3) : "0";
    setDot(state.name, state.connected, state.error);
    tick();
  }

  function setDot(name, connected, error) {
    const tab = document.querySelector(`.scope[data-maglevd="${CSS.escape(name)}"]`);
    if (!tab) return;
    const dot = tab.querySelector(".dot");
    dot.className = "dot " + (connected ? "up" : "down");
    tab.title = error || "";
  }

  let refreshTimer = null;
  let fetching = false;
  async function refresh() {
    refreshTimer = null;
    if (fetching) return schedule(300);
    fetching = true;
    try {
      const r = await fetch(`/view/api/state/${enc(scope)}`, { cache: "no-store" });
      if (r.ok) apply(await r.json());
    } catch (e) {
      // the next event or poll tries again
    } finally {
      fetching = false;
    }
  }
  function schedule(ms) {
    if (refreshTimer === null) refreshTimer = setTimeout(refresh, ms);
  }

  // --- events -------------------------------------------------------------------------------
  const eventLog = document.getElementById("event-log");
  const eventsPaused = document.getElementById("events-pause");
  // Log records that repeat an event the panel already lists (each transition is both).
  const SAID = new Set(["backend-transition", "frontend-transition", "vpp-connect", "vpp-disconnect"]);
  function logEvent(kind, d) {
    if (!eventLog || (eventsPaused && eventsPaused.checked)) return;
    if (kind === "log" && SAID.has(d.event)) return;
    const li = document.createElement("li");
    const when = new Date(d.time * 1000).toLocaleTimeString();
    let text;
    if (kind === "backend") text = `backend ${d.backend}: ${d.old} → ${d.new} ${d.code} ${d.detail}`;
    else if (kind === "frontend") text = `frontend ${d.frontend}: ${d.old} → ${d.new}`;
    else if (kind === "vpp") text = d.connected ? `VPP connected ${d.version}` : `VPP disconnected: ${d.reason}`;
    else if (kind === "log") text = `${d.level} ${d.event}: ${d.message}`;
    else if (kind === "maglevd") text = d.connected ? "maglevd connected" : `maglevd unreachable: ${d.error}`;
    else text = kind;
    li.className = "ev-" + kind;
    li.textContent = `${when} [${d.maglevd || ""}] ${text}`;
    eventLog.appendChild(li);
    while (eventLog.children.length > 500) eventLog.removeChild(eventLog.firstChild);
    eventLog.scrollTop = eventLog.scrollHeight;
  }

  let source = null;
  let lastBeat = Date.now();
  function connect() {
    if (source) source.close();
    source = new EventSource((admin ? "/admin/api/events" : "/view/api/events"));
    for (const kind of ["backend", "frontend", "vpp", "log", "maglevd", "sync"]) {
      source.addEventListener(kind, (m) => {
        const d = JSON.parse(m.data);
        if (kind !== "sync") logEvent(kind, d);
        if (d.maglevd === undefined || kind === "log") return;
        if (kind === "maglevd") setDot(d.maglevd, d.connected, d.error);
        if (d.maglevd !== scope) return;
        if (kind === "backend") {
          for (const row of document.querySelectorAll(`tr[data-backend="${CSS.escape(d.backend)}"]`)) {
            put(row.querySelector('[data-f="state"]'), d.new, "state-" + d.new);
            row.querySelector('[data-f="since"]').dataset.since = d.time.toFixed(3);
          }
        }
        schedule(250);
      });
    }
    source.addEventListener("resync", () => schedule(0));
  }

  // A page that slept (laptop lid, background tab) reconnects and refetches.
  setInterval(() => {
    const now = Date.now();
    if (now - lastBeat > 5000) { connect(); schedule(0); }
    lastBeat = now;
    tick();
  }, 1000);
  setInterval(() => { if (!document.hidden) schedule(0); }, 2000);
  connect();

  // --- cards ------------------------------------------------------------------------------------
  for (const card of document.querySelectorAll("details.frontend")) {
    card.addEventListener("toggle", () => {
      const closed = [...document.querySelectorAll("details.frontend:not([open])")].map((c) => c.dataset.fe);
      document.cookie = `maglev_closed=${enc(closed.join(","))}; path=/; max-age=31536000; samesite=lax`;
    });
  }

  // --- admin ------------------------------------------------------------------------------------
  if (!admin) return;
  const notice = document.getElementById("notice");
  function say(text, bad) {
    notice.textContent = text;
    notice.className = bad ? "bad" : "good";
  }
  async function post(path, params, daemon) {
    const r = await fetch(`/admin/api/${enc(daemon || scope)}/${path}`, {
      method: "POST",
      headers: { "X-CSRF-Token": csrf },
      body: new URLSearchParams(params || {}),
    });
    let d = {};
    try { d = await r.json(); } catch (e) { d = { error: r.statusText }; }
    if (!r.ok) throw new Error(d.error || r.statusText);
    schedule(0);
    return d;
  }

  const dialog = document.getElementById("weight-dialog");
  const menu = document.getElementById("backend-menu");
  let menuRow = null;
  let target = null;
  function openMenu(button) {
    menuRow = button.closest("tr");
    const r = button.getBoundingClientRect();
    menu.style.top = `${window.scrollY + r.bottom}px`;
    menu.style.left = `${window.scrollX + r.right - 160}px`;
    menu.hidden = false;
  }
  document.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button[data-op], button[data-action]");
    if (!button) { menu.hidden = true; return; }
    const op = button.dataset.op;
    try {
      if (button.dataset.action === "sync") {
        const d = await post("sync");
        say(`VPP synced: ${d.changes} changes`);
      } else if (button.dataset.action === "release-isolation") {
        const d = await post("release-isolation");
        say(`checker isolation released: ${d.released.join(", ") || "nothing was held"}`);
      } else if (button.dataset.action === "reload") {
        const d = await post("reload");
        say(`configuration reloaded (generation ${d.generation})`);
      } else if (op === "menu") {
        openMenu(button);
      } else {
        menu.hidden = true;
        const row = menuRow;
        const backend = row.dataset.backend;
        if (op === "weight") {
          const [fe, pool] = row.dataset.key.split("/");
          target = { fe, pool, backend };
          document.getElementById("weight-target").textContent = `${fe} / ${pool} / ${backend}`;
          dialog.querySelector('[name="weight"]').value = row.querySelector('[data-f="weight"]').textContent;
          dialog.showModal();
          return;
        }
        let fields;
        if (button.dataset.timed) {
          const howLong = window.prompt(`${op} ${backend} for how long? (30s, 10m, 2h)`, "30m");
          if (!howLong) return;
          fields = { for: howLong };
        }
        const path = `backends/${enc(backend)}/${op}`;
        const how = await confirmPreview(`${op} ${backend}`, path, fields);
        if (!how) return;
        if (how === "fleet") return say(fleetSaid(`${op} ${backend}`, await post(path, fields, "*")));
        const d = await post(path, fields);
        say(`${backend}: ${op} done, now ${d.state}${fields ? ` for ${fields.for}` : ""}`);
      }
    } catch (e) {
      say(e.message, true);
    }
  });
  // --- several backends at once: tick their rows, then one action for all of them
  const bulk = document.getElementById("bulk");
  function picked() {
    const names = new Set();
    for (const box of document.querySelectorAll("input.pick:checked")) names.add(box.closest("tr").dataset.backend);
    return [...names];
  }
  function showBulk() {
    const names = picked();
    bulk.hidden = names.length === 0;
    bulk.querySelector('[data-f="bulk-count"]').textContent = `${names.length} selected: ${names.join(", ")}`;
  }
  document.addEventListener("change", (ev) => {
    const box = ev.target.closest("input.pick");
    if (!box) return;
    // a backend is one thing wherever it appears: tick or untick all its rows
    const name = box.closest("tr").dataset.backend;
    for (const row of document.querySelectorAll(`tr[data-backend="${CSS.escape(name)}"] input.pick`)) row.checked = box.checked;
    showBulk();
  });
  bulk.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button[data-bulk]");
    if (!button) return;
    const op = button.dataset.bulk;
    const names = picked();
    if (op === "clear" || !names.length) {
      for (const box of document.querySelectorAll("input.pick")) box.checked = false;
      return showBulk();
    }
    // What it does to their flows (docs/dataplane.md): said before anything is changed.
    const effect = {
      pause: "weight 0 in VPP, established flows drain (no flush)",
      disable: "probing stops, weight 0 with a FLUSH: their established flows are dropped",
      resume: "probing decides again (unknown until the checks pass)",
      enable: "probing starts again (unknown until the checks pass)",
    }[op];
    if (!window.confirm(`${op} ${names.length} backends: ${names.join(", ")}?\n${effect}`)) return;
    const done = [];
    const failed = [];
    for (const name of names) {  // one after the other: each is its own change, audited as such
      try {
        const d = await post(`backends/${enc(name)}/${op}`);
        done.push(`${name} ${d.state}`);
      } catch (e) {
        failed.push(`${name}: ${e.message}`);
      }
    }
    say(`${op}: ${done.length} done${done.length ? ` (${done.join(", ")})` : ""}` +
      (failed.length ? `; ${failed.length} failed: ${failed.join("; ")}` : ""), failed.length > 0);
  });

  function renderPreview(body, p) {
    const line = (text, cls) => {
      const el = document.createElement("p");
      el.textContent = text;
      if (cls) el.className = cls;
      body.appendChild(el);
    };
    if (p.error) return line(p.error, "lost");
    for (const note of p.notes || []) line(`note: ${note}`);
    if (!(p.vips || []).length) line("no VIP changes: no bucket moves, no flow is lost");
    for (const v of p.vips || []) {
      const moved = new Set();
      for (const m of v.moves || []) { if (m.from_as) moved.add(m.from_as); if (m.to_as) moved.add(m.to_as); }
      line(`${v.frontend} (${v.vip}): ${v.moved || 0} of ${v.length} buckets change owner (${pct(v.moved_share || 0)}, the fewest possible ${v.minimum || 0})`);
      if (v.recreated) line(`RECREATED (${v.recreated}): every established flow of this VIP is lost`, "lost");
      for (const a of v.drained || []) line(`drain ${a}: weight 0, established flows stay`);
      for (const a of v.flushed || []) line(`flush ${a}: established flows are dropped`, "lost");
      for (const [label, shares] of [["before", v.before], ["after", v.after]]) {
        const t = document.createElement("div");
        t.className = "vip-table";
        t.dataset.preview = label;
        t.appendChild(bar("buckets", shares || [], "bucket_share", label === "after" ? moved : null));
        t.appendChild(bar("weights", shares || [], "weight_share"));
        const cap = document.createElement("p");
        cap.className = "meta";
        cap.textContent = label;
        t.appendChild(cap);
        body.appendChild(t);
      }
    }
  }
  function fleetSaid(what, d) {
    return `${what}, on every router: ` + d.results.map((r) => `${r.maglevd} ${r.ok ? "done" : r.error}`).join("; ");
  }
  // A change is shown before it is made: per VIP, the table before and after, the moved share;
  // resolves to "one" (this maglevd), "fleet" (every router that has the backend) or null.
  const previewDialog = document.getElementById("preview-dialog");
  const fleetBox = document.getElementById("preview-fleet");
  async function confirmPreview(what, path, fields) {
    const params = { ...(fields || {}), preview: "1" };
    const one = await post(path, params);
    document.getElementById("preview-what").textContent = what;
    const body = document.getElementById("preview-body");
    const show = async () => {
      body.replaceChildren();
      if (!fleetBox.checked) return renderPreview(body, one);
      const all = await post(path, params, "*");
      for (const name of all.fleet) {
        const h = document.createElement("h4");
        h.textContent = `router ${name}`;
        body.appendChild(h);
        renderPreview(body, all.previews[name]);
      }
    };
    fleetBox.checked = false;
    document.getElementById("preview-fleet-choice").hidden = Number(body.ownerDocument.body.dataset.maglevds) < 2;
    fleetBox.onchange = () => show().catch((e) => say(e.message, true));
    await show();
    return new Promise((resolve) => {
      previewDialog.addEventListener("close", () => {
        resolve(previewDialog.returnValue !== "ok" ? null : fleetBox.checked ? "fleet" : "one");
      }, { once: true });
      previewDialog.showModal();
    });
  }
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "ok" || !target) return;
    const form = dialog.querySelector("form");
    const t = target;
    const path = `frontends/${enc(t.fe)}/pools/${enc(t.pool)}/backends/${enc(t.backend)}/weight`;
    const fields = { weight: form.weight.value, flush: form.flush.checked ? "true" : "false", for: form.for.value.trim() };
    try {
      const what = `${t.fe} / ${t.pool} / ${t.backend}: weight ${fields.weight}`;
      const how = await confirmPreview(what, path, fields);
      if (!how) return;
      if (how === "fleet") return say(fleetSaid(what, await post(path, fields, "*")));
      await post(path, fields);
      say(`${t.fe}/${t.pool}/${t.backend}: weight ${form.weight.value}`);
    } catch (e) {
      say(e.message, true);
    }
  });
})();
