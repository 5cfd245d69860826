// tcpws live page: plain JS, no build step, nothing loaded from outside.
//
// One WebSocket to /ws?format=json (same host; wss under https). Every frame
// is a JSON array of {id, port, peer, ts, data}. The page remembers the last
// id it showed (also in sessionStorage, so a reload resumes too) and, when
// the socket closes for any reason, reconnects by itself with exponential
// back-off and `since=<last id>`: the server replays what was missed from its
// history, so a web restart or a reload loses nothing the history still holds.
// /api/status is polled once a second for the workers table.
"use strict";

(function () {
  const params = new URLSearchParams(location.search);
  const TOKEN = params.get("token");
  // With --metrics-token, /api/status needs it as a bearer header; given in
  // the fragment (#metrics_token=T), it never reaches a server's logs.
  const METRICS_TOKEN = new URLSearchParams(location.hash.slice(1)).get("metrics_token");
  const MAX_SHOWN = clampInt(params.get("lines"), 500, 10, 5000);  // lines on screen
  const MAX_KEPT = Math.max(2000, MAX_SHOWN * 2);                 // lines kept for filters
  const RATE_WINDOW = 60;                                          // seconds per sparkline
  const BACKOFF_MIN = 250, BACKOFF_MAX = 5000;                     // ms
  const STORE_KEY = "tcpws.lastId";

  const $ = (id) => document.getElementById(id);
  const ui = {
    state: $("conn-state"), clients: $("clients"), rateTotal: $("rate-total"),
    received: $("received"), lastId: $("last-id"), pause: $("pause"),
    portFilter: $("port-filter"), search: $("search"), clear: $("clear"),
    streamInfo: $("stream-info"), stream: $("stream"), rates: $("rates"),
    workers: document.querySelector("#workers tbody"), statusInfo: $("status-info"),
  };

  // ---- state -------------------------------------------------------------
  const kept = [];            // last MAX_KEPT messages, oldest first
  let pending = [];           // received, not yet rendered
  let paused = false;
  let unseenWhilePaused = 0;
  let received = 0;
  let lastId = loadLastId();
  let lastKey = lastId ? idKey(lastId) : null;
  const portsSeen = new Set();
  const buckets = new Map();  // port -> Map(second -> count)
  let clockSkew = null;       // best estimate of (server time - browser time), s

  function clampInt(text, dflt, lo, hi) {
    const n = parseInt(text || "", 10);
    return Number.isFinite(n) ? Math.min(hi, Math.max(lo, n)) : dflt;
  }

  function loadLastId() {
    try { return sessionStorage.getItem(STORE_KEY); } catch (e) { return null; }
  }

  function saveLastId(id) {
    try { sessionStorage.setItem(STORE_KEY, id); } catch (e) { /* storage off: memory only */ }
  }

  // Line ids are "ms-seq-index"; compare them as tuples of integers. An entry
  // id "ms-seq" (from /api/status) stands for the whole entry: index +inf.
  function idKey(id) {
    const key = String(id).split("-").map(Number);
    if (key.length === 2) key.push(Infinity);
    return key;
  }
  function idAfter(a, b) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const x = a[i] || 0, y = b[i] || 0;
      if (x !== y) return x > y;
    }
    return false;
  }

  // ---- connection --------------------------------------------------------
  let ws = null;
  let attempt = 0;
  let retryTimer = null;

  function wsUrl() {
    const url = new URL("ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.search = "";
    url.searchParams.set("format", "json");
    if (lastId) url.searchParams.set("since", lastId);
    if (TOKEN) url.searchParams.set("token", TOKEN);
    return url.toString();
  }

  function setState(state, text) {
    document.body.dataset.state = state;
    ui.state.textContent = text;
    ui.state.className = "badge " + state;
  }

  function connect() {
    retryTimer = null;
    setState(attempt ? "reconnecting" : "connecting",
             attempt ? "reconnecting…" : "connecting…");
    let socket;
    try {
      socket = new WebSocket(wsUrl());
    } catch (e) {
      scheduleReconnect("cannot open: " + e.message);
      return;
    }
    ws = socket;
    let openedAt = 0;
    socket.onopen = () => {
      openedAt = Date.now();
      setState("live", received ? "live (resumed)" : "live");
    };
    socket.onmessage = (ev) => {
      attempt = 0;  // a working connection: the next retry may be quick again
      let items;
      try { items = JSON.parse(ev.data); } catch (e) { return; }
      if (Array.isArray(items)) onMessages(items);
    };
    socket.onclose = (ev) => {
      if (ws !== socket) return;
      ws = null;
      // Open for a while and then closed (a restart): retry quickly. Closed at
      // once (bad token, refused resume): keep backing off.
      if (openedAt && Date.now() - openedAt > 3000) attempt = 0;
      const why = ev.code + (ev.reason ? " " + ev.reason : "");
      if (ev.code === 1008 && /since/i.test(ev.reason)) {
        // The server refused our resume point: start again from live data.
        lastId = null; lastKey = null; saveLastId("");
      }
      scheduleReconnect(why);
    };
    // onerror is always followed by onclose, which does the work.
  }

  function scheduleReconnect(why) {
    attempt += 1;
    // Exponential back-off with "equal jitter"; the first retry is quick.
    const cap = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** (attempt - 1));
    const delay = cap / 2 + Math.random() * cap / 2;
    setState("down", "disconnected (" + why + "), retry in " + (delay / 1000).toFixed(1) + " s");
    retryTimer = setTimeout(connect, delay);
  }

  // ---- messages ----------------------------------------------------------
  function onMessages(items) {
    const now = Date.now() / 1000;
    for (const m of items) {
      if (!m || typeof m.id !== "string") continue;
      const key = idKey(m.id);
      if (lastKey && !idAfter(key, lastKey)) continue;  // never show a line twice
      lastKey = key;
      lastId = m.id;
      received += 1;
      kept.push(m);
      if (paused) unseenWhilePaused += 1; else pending.push(m);
      countRate(m);
      if (!portsSeen.has(m.port)) addPort(m.port);
      const skew = m.ts - now;  // ts precedes arrival: the largest value is the best
      if (clockSkew === null || skew > clockSkew) clockSkew = skew;
    }
    if (kept.length > MAX_KEPT) kept.splice(0, kept.length - MAX_KEPT);
    // Only the newest MAX_SHOWN can be shown; a hidden tab (no animation
    // frames) must not pile up the rest.
    if (pending.length > MAX_SHOWN) pending.splice(0, pending.length - MAX_SHOWN);
    saveLastId(lastId || "");
    scheduleRender();
  }

  function countRate(m) {
    let b = buckets.get(m.port);
    if (!b) { b = new Map(); buckets.set(m.port, b); }
    const sec = Math.floor(m.ts);
    b.set(sec, (b.get(sec) || 0) + 1);
  }

  function addPort(port) {
    portsSeen.add(port);
    const opts = Array.from(ui.portFilter.options).slice(1).map((o) => Number(o.value));
    opts.push(port);
    opts.sort((a, b) => a - b);
    const current = ui.portFilter.value;
    ui.portFilter.length = 1;
    for (const p of opts) ui.portFilter.add(new Option(String(p), String(p)));
    ui.portFilter.value = current;
  }

  // ---- the stream view ---------------------------------------------------
  let renderQueued = false;

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; renderPending(); });
  }

  function matches(m) {
    const port = ui.portFilter.value;
    if (port && String(m.port) !== port) return false;
    const q = ui.search.value.trim().toLowerCase();
    return !q || String(m.data).toLowerCase().includes(q);
  }

  function lineNode(m) {
    const row = document.createElement("div");
    row.className = "line";
    row.dataset.id = m.id;
    row.dataset.port = m.port;
    const t = document.createElement("span");
    t.className = "ts";
    t.textContent = new Date(m.ts * 1000).toLocaleTimeString([], { hour12: false });
    const p = document.createElement("span");
    p.className = "port";
    p.textContent = m.port;
    p.title = m.peer;
    const d = document.createElement("span");
    d.className = "data";
    appendHighlighted(d, String(m.data), ui.search.value.trim());
    row.append(t, p, d);
    return row;
  }

  // Text only (never innerHTML): lines are untrusted input.
  function appendHighlighted(el, text, q) {
    if (!q) { el.textContent = text; return; }
    const lower = text.toLowerCase(), ql = q.toLowerCase();
    let at = 0;
    for (let i = lower.indexOf(ql); i >= 0; i = lower.indexOf(ql, at)) {
      if (i > at) el.append(text.slice(at, i));
      const mark = document.createElement("mark");
      mark.textContent = text.slice(i, i + q.length);
      el.append(mark);
      at = i + q.length;
    }
    if (at < text.length) el.append(text.slice(at));
  }

  function atBottom() {
    const s = ui.stream;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 40;
  }

  function renderPending() {
    if (paused) {
      pending = [];
      updateInfo();
      return;
    }
    const stick = atBottom();
    const frag = document.createDocumentFragment();
    for (const m of pending) if (matches(m)) frag.append(lineNode(m));
    pending = [];
    ui.stream.append(frag);
    while (ui.stream.childElementCount > MAX_SHOWN) ui.stream.firstElementChild.remove();
    if (stick) ui.stream.scrollTop = ui.stream.scrollHeight;
    updateInfo();
  }

  function renderAll() {
    pending = [];
    const shown = kept.filter(matches).slice(-MAX_SHOWN);
    ui.stream.replaceChildren(...shown.map(lineNode));
    ui.stream.scrollTop = ui.stream.scrollHeight;
    updateInfo();
  }

  function updateInfo() {
    ui.received.textContent = received.toLocaleString();
    ui.lastId.textContent = lastId || "–";
    ui.streamInfo.textContent = paused
      ? "paused: " + unseenWhilePaused + " new line(s) not shown"
      : ui.stream.childElementCount + " shown (last " + MAX_SHOWN + ")";
  }

  ui.pause.addEventListener("click", () => {
    paused = !paused;
    ui.pause.textContent = paused ? "Resume" : "Pause";
    ui.pause.setAttribute("aria-pressed", String(paused));
    document.body.classList.toggle("paused", paused);
    if (!paused) { unseenWhilePaused = 0; renderAll(); } else updateInfo();
  });
  ui.portFilter.addEventListener("change", renderAll);
  ui.search.addEventListener("input", renderAll);
  ui.clear.addEventListener("click", () => { kept.length = 0; renderAll(); });

  // ---- rates (sparklines) ------------------------------------------------
  function serverNow() { return Date.now() / 1000 + (clockSkew || 0); }

  function drawRates() {
    const end = Math.floor(serverNow()) - 1;  // the last whole second
    const start = end - RATE_WINDOW + 1;
    let total = 0;
    const ports = Array.from(buckets.keys()).sort((a, b) => a - b);
    if (ports.length && ui.rates.querySelector("p")) ui.rates.replaceChildren();
    for (const port of ports) {
      const b = buckets.get(port);
      for (const sec of b.keys()) if (sec < start - 5) b.delete(sec);
      const series = [];
      for (let s = start; s <= end; s++) series.push(b.get(s) || 0);
      const now = series[series.length - 1];
      total += now;
      const row = rateRow(port);
      row.querySelector(".rate").textContent = now.toLocaleString();
      sparkline(row.querySelector("canvas"), series);
    }
    ui.rateTotal.textContent = total.toLocaleString();
  }

  function rateRow(port) {
    let row = ui.rates.querySelector('[data-port="' + port + '"]');
    if (row) return row;
    row = document.createElement("div");
    row.className = "rate-row";
    row.dataset.port = port;
    const label = document.createElement("span");
    label.className = "rate-port";
    label.textContent = port;
    const canvas = document.createElement("canvas");
    canvas.width = 180; canvas.height = 32;
    const rate = document.createElement("span");
    rate.className = "rate";
    row.append(label, canvas, rate);
    const after = Array.from(ui.rates.children).find((r) => Number(r.dataset.port) > port);
    ui.rates.insertBefore(row, after || null);
    return row;
  }

  function sparkline(canvas, series) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 180, h = canvas.clientHeight || 32;
    if (canvas.width !== Math.round(w * ratio)) {
      canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const max = Math.max(1, ...series);
    const step = w / (series.length - 1);
    const y = (v) => h - 2 - (v / max) * (h - 4);
    ctx.beginPath();
    series.forEach((v, i) => (i ? ctx.lineTo(i * step, y(v)) : ctx.moveTo(0, y(v))));
    ctx.strokeStyle = "#4fc3f7";
    ctx.lineWidth = 1.5;
    ctx.stroke();
    ctx.lineTo(w, h); ctx.lineTo(0, h); ctx.closePath();
    ctx.fillStyle = "rgba(79, 195, 247, 0.15)";
    ctx.fill();
  }

  // ---- workers (/api/status) ---------------------------------------------
  async function fetchStatus() {
    const url = new URL("api/status", location.href);
    if (TOKEN) url.searchParams.set("token", TOKEN);
    const headers = METRICS_TOKEN ? { Authorization: "Bearer " + METRICS_TOKEN } : {};
    const resp = await fetch(url, { cache: "no-store", headers });
    if (resp.status === 401) throw new Error("needs #metrics_token=… in the address");
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    return resp.json();
  }

  async function pollStatus() {
    try {
      renderStatus(await fetchStatus());
    } catch (e) {
      ui.statusInfo.textContent = "(status unavailable: " + e.message + ")";
      document.body.dataset.status = "down";
    }
  }

  function renderStatus(st) {
    document.body.dataset.status = "ok";
    const workers = Array.isArray(st.workers) ? st.workers : [];
    const webs = workers.filter((w) => w.kind === "web");
    const allClients = webs.reduce((n, w) => n + (Number(w.clients) || 0), 0);
    ui.clients.textContent = webs.length > 1
      ? st.clients + " here, " + allClients + " in all"
      : String(st.clients ?? allClients);
    ui.statusInfo.textContent = "(" + workers.length + ", from " + (st.name || "?") + ")";
    const rows = workers.map((w) => {
      const tr = document.createElement("tr");
      tr.dataset.name = w.name;
      tr.dataset.kind = w.kind || "";
      const age = Number(w.age);
      if (age > 3) tr.className = "stale";
      const cells = [
        w.name, w.pid, w.port,
        w.kind === "web" ? (w.clients ?? "") + " ws" : w.connections,
        w.kind === "web" ? w.lines_sent : w.lines,
        Number.isFinite(age) ? age.toFixed(1) + " s ago" : "",
        w.state,
      ];
      const classes = ["name", "pid", "port", "conns", "lines", "age", "state"];
      cells.forEach((v, i) => {
        const td = document.createElement("td");
        td.className = classes[i];
        td.textContent = v === undefined || v === null ? "" : String(v);
        tr.append(td);
      });
      return tr;
    });
    ui.workers.replaceChildren(...rows);
  }

  // ---- start -------------------------------------------------------------
  // A first visit has no last id. Start from the newest entry the server
  // has delivered (/api/status last_id), not from "live only": then even a
  // web restart before the first line arrives loses nothing.
  async function start() {
    if (!lastId) {
      try {
        const st = await fetchStatus();
        if (typeof st.last_id === "string" && /^\d+-\d+$/.test(st.last_id)) {
          lastId = st.last_id;
        } else if (st.ready && st.last_id === null) {
          lastId = "0-0";  // the history was empty: everything in it is new
        }
        if (lastId) lastKey = idKey(lastId);
      } catch (e) { /* web not reachable yet: start live, reconnects resume */ }
    }
    updateInfo();
    connect();
  }

  updateInfo();
  start();
  pollStatus();
  setInterval(pollStatus, 1000);
  setInterval(drawRates, 1000);
  window.addEventListener("beforeunload", () => { if (lastId) saveLastId(lastId); });
  // For tests and curious users: read-only view of the connection.
  window.tcpws = {
    get lastId() { return lastId; },
    get received() { return received; },
    get state() { return document.body.dataset.state; },
  };
})();
