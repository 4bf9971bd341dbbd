// lispd web view. Plain JavaScript, no framework, nothing fetched from
// anywhere but this lispd: it reads the same JSON API lispctl reads
// (GET /v1/...) and follows the event stream (/v1/events, server-sent
// events). Read-only: it never sends anything but GETs.
"use strict";

const page = document.body.dataset.page;
const HISTORY_SECONDS = 600; // what the charts show: the last ten minutes
const state = { status: null, rtt: {}, traffic: {}, rlocTraffic: {}, lastCounters: null, refreshTimer: 0 };

// el builds an element; children are nodes or text (always as text: the
// API's strings are never parsed as HTML).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function replace(id, ...nodes) {
  const target = document.getElementById(id);
  if (target) target.replaceChildren(...nodes);
}

async function api(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
    throw new Error(path + ": " + msg);
  }
  return r.json();
}

function showError(err) {
  const p = document.getElementById("error");
  if (!p) return;
  if (err) { p.textContent = String(err.message || err); p.hidden = false; } else { p.hidden = true; }
}

function eidText(o) {
  if (!o || !o["eid-prefix"]) return "";
  return (o["instance-id"] ? "[" + o["instance-id"] + "] " : "") + o["eid-prefix"];
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return duration(s) + " ago";
}

function duration(s) {
  s = Math.round(s);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
  return Math.floor(s / 86400) + "d" + Math.floor(s % 86400 / 3600) + "h";
}

function pill(text) {
  const cls = text === "up" || text === "registered" || text === "local" ? "pill up"
    : text === "down" || text === "unreachable" || text === "away" ? "pill down" : "pill";
  return el("span", { class: cls }, text);
}

function table(headers, rows, empty) {
  if (!rows.length) return el("p", { class: "empty" }, empty || "none");
  return el("div", { class: "scroll" }, el("table", {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c)))))));
}

function locs(ls) {
  return (ls || []).map((l) => l.address + " p" + l.priority + "/w" + l.weight +
    (l.state && l.state !== "up" ? " " + l.state : "") + (l["rtt-ms"] !== undefined ? " " + l["rtt-ms"].toFixed(1) + "ms" : "")).join(", ");
}

// ---- navigation and status -------------------------------------------

async function loadStatus() {
  const s = await api("v1/status");
  state.status = s;
  const roles = s.roles || [];
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.nav === page) a.setAttribute("aria-current", "page");
    if (a.dataset.role && !roles.includes(a.dataset.role)) a.hidden = true;
  }
  replace("version", "lispd " + s.version);
  return s;
}

function renderStatus(s) {
  const card = (k, v) => el("div", { class: "card" }, el("div", { class: "k" }, k), el("div", { class: "v" }, v));
  const cards = [
    card("roles", (s.roles || []).join(", ") || "none"),
    card("uptime", duration(s["uptime-seconds"])),
    card("version", s.version),
    card("control", (s["control-addresses"] || []).join(" ")),
  ];
  if ((s.roles || []).includes("map-server")) {
    cards.push(card("sites", s.sites || 0), card("registered prefixes", s["registered-prefixes"] || 0));
  }
  if (s.metrics) cards.push(card("metrics", s.metrics));
  replace("status", ...cards);
}

// ---- Map-Server --------------------------------------------------------

function renderSites(sites) {
  const blocks = sites.map((st) => {
    const rows = [];
    for (const r of st.registrations || []) {
      for (const by of r["registered-by"] || []) {
        rows.push([eidText(r), by.source, by["xtr-id"] || "", by["site-id"] || "", locs(by.locators),
          ago(by["last-register"]), duration(by["expires-in-seconds"]), r.moves ? r.moves + " (" + ago(r["last-move"]) + ")" : "0"]);
      }
    }
    return el("div", { class: "site", "data-site": st.name },
      el("h3", {}, st.name, " ", el("span", { class: "pill" }, (st.registrations || []).length + " registered"),
        st["auth-failures"] ? el("span", { class: "pill down" }, st["auth-failures"] + " auth failures") : null),
      st.description ? el("p", { class: "hint" }, st.description) : null,
      el("p", { class: "hint" }, "EID prefixes: " + (st["eid-prefixes"] || []).join(", ") + " · last register " + ago(st["last-register"])),
      table(["EID prefix", "registered by", "xTR-ID", "site-ID", "locators", "last register", "expires in", "moves"], rows, "no registration"));
  });
  replace("sites", ...(blocks.length ? blocks : [el("p", { class: "empty" }, "no site configured")]));
}

// renderMap draws sites -> xTRs -> RLOCs as three columns of boxes.
function renderMap(sites) {
  const cols = [[], [], []];
  const index = [new Map(), new Map(), new Map()];
  const edges = new Set();
  const add = (col, key, label, cls) => {
    if (!index[col].has(key)) { index[col].set(key, cols[col].length); cols[col].push({ key, label, cls }); }
    return index[col].get(key);
  };
  for (const st of sites) {
    const s = add(0, st.name, st.name, "site");
    for (const r of st.registrations || []) {
      for (const by of r["registered-by"] || []) {
        const host = by.source.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
        const xkey = st.name + "|" + (by["xtr-id"] || host);
        const x = add(1, xkey, host + (by["site-id"] ? " (site-id " + by["site-id"] + ")" : ""), "xtr");
        edges.add("0:" + s + ">1:" + x);
        for (const l of by.locators || []) {
          const rl = add(2, l.address, l.address, "rloc");
          edges.add("1:" + x + ">2:" + rl);
        }
      }
    }
  }
  const W = 640, colX = [8, 232, 456], boxW = 176, boxH = 26, rowH = 34;
  const rows = Math.max(1, ...cols.map((c) => c.length));
  const H = rows * rowH + 28;
  const y = (col, i) => 24 + i * rowH + (rows - cols[col].length) * rowH / 2;
  const g = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "map of sites, xTRs and RLOCs" });
  ["sites", "xTRs", "RLOCs"].forEach((t, i) => g.append(svg("text", { x: colX[i], y: 14, "font-weight": "600" }, t)));
  for (const e of edges) {
    const [a, b] = e.split(">").map((p) => p.split(":").map(Number));
    const x1 = colX[a[0]] + boxW, y1 = y(a[0], a[1]) + boxH / 2, x2 = colX[b[0]], y2 = y(b[0], b[1]) + boxH / 2;
    const mx = (x1 + x2) / 2;
    g.append(svg("path", { class: "edge", d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` }));
  }
  cols.forEach((c, ci) => c.forEach((n, i) => {
    const label = n.label.length > 26 ? n.label.slice(0, 25) + "…" : n.label;
    g.append(svg("g", { class: "node " + n.cls },
      svg("title", {}, n.label),
      svg("rect", { x: colX[ci], y: y(ci, i), width: boxW, height: boxH, rx: 6 }),
      svg("text", { x: colX[ci] + 8, y: y(ci, i) + 17 }, label)));
  }));
  const legend = el("div", { class: "legend" },
    el("span", {}, "site: a Map-Server site"), el("span", {}, "xTR: who registered (source, site-ID)"), el("span", {}, "RLOC: its locators"));
  replace("ms-map", cols[0].length ? g : el("p", { class: "empty" }, "no site"), legend);
}

function renderSubscriptions(subs) {
  replace("subscriptions", table(["EID prefix", "site", "xTR-ID", "site-ID", "ITR-RLOCs", "nonce"],
    subs.map((s) => [eidText(s), s.site, s["xtr-id"], s["site-id"], (s["itr-rlocs"] || []).join(", "), s.nonce]), "no subscriber"));
}

// ---- xTR -----------------------------------------------------------------

function renderMapCache(entries) {
  replace("map-cache", table(["EID prefix", "locators", "action", "TTL", "expires in", "uptime", "source", "subscribed"],
    entries.map((e) => [eidText(e), e.negative ? "negative" : locs(e.locators), e.action || "", e["ttl-seconds"] + "s",
      duration(e["expires-in-seconds"]), duration(e["uptime-seconds"]), e.source, e.subscribed ? "yes" : "no"]), "the map-cache is empty"));
}

function renderProbing(rlocs) {
  const now = Date.now() / 1000;
  for (const r of rlocs) {
    const h = state.rtt[r.address] || (state.rtt[r.address] = []);
    const v = r.state === "up" && r.replies > 0 ? r["rtt-ms"] : null;
    h.push([now, v]);
  }
  trim(state.rtt, now);
  replace("rloc-probing", table(["RLOC", "state", "RTT", "last probe", "last reply", "probes", "replies", "missed"],
    rlocs.map((r) => [r.address, pill(r.state), r.replies ? r["rtt-ms"].toFixed(2) + " ms" : "-", ago(r["last-probe"]),
      ago(r["last-reply"]), r.probes, r.replies, r.missed]), "no RLOC probed"));
  replace("rtt-chart", lineChart(state.rtt, "ms", "RTT of each probed RLOC (gaps: down)"));
}

function trim(hist, now) {
  for (const k of Object.keys(hist)) {
    hist[k] = hist[k].filter((p) => p[0] >= now - HISTORY_SECONDS);
    if (!hist[k].length) delete hist[k];
  }
}

// trafficFrom turns the data plane's packet counters into rates.
function trafficFrom(counters) {
  const now = Date.now() / 1000;
  const pick = (name) => counters.filter((c) => c.subsystem === "dataplane" && c.name === name)
    .reduce((a, c) => a + c.value, 0);
  const cur = { t: now, encap: pick("packets_encapsulated"), decap: pick("packets_decapsulated"), rloc: {} };
  for (const c of counters) {
    if (c.subsystem === "dataplane" && c.name === "rloc_packets_encapsulated" && c.labels) cur.rloc[c.labels.rloc] = c.value;
  }
  const has = counters.some((c) => c.subsystem === "dataplane");
  const last = state.lastCounters;
  state.lastCounters = cur;
  if (!has) { replace("traffic-chart", el("p", { class: "empty" }, "no userspace data plane on this node")); return; }
  if (last && cur.t > last.t) {
    const dt = cur.t - last.t;
    (state.traffic["encapsulated pkt/s"] ||= []).push([now, Math.max(0, (cur.encap - last.encap) / dt)]);
    (state.traffic["decapsulated pkt/s"] ||= []).push([now, Math.max(0, (cur.decap - last.decap) / dt)]);
    for (const [rloc, v] of Object.entries(cur.rloc)) {
      if (last.rloc[rloc] !== undefined) (state.rlocTraffic[rloc] ||= []).push([now, Math.max(0, (v - last.rloc[rloc]) / dt)]);
    }
  }
  trim(state.traffic, now);
  trim(state.rlocTraffic, now);
  replace("traffic-chart", lineChart(state.traffic, "pkt/s", "packets through the data plane, all RLOCs"));
  replace("rloc-traffic-chart", lineChart(state.rlocTraffic, "pkt/s", "packets encapsulated toward each RLOC (userspace path)"));
}

const COLORS = ["#1f6feb", "#cf222e", "#1a7f37", "#8250df", "#9a6700", "#0a7a7a", "#bf3989", "#57606a"];

// lineChart draws the last HISTORY_SECONDS of each series (null: a gap).
function lineChart(series, unit, caption) {
  const names = Object.keys(series).sort();
  if (!names.length) return el("p", { class: "empty" }, "no data yet");
  const W = 640, H = 180, L = 44, R = 8, T = 10, B = 22;
  const now = Date.now() / 1000;
  let max = 0;
  for (const n of names) for (const p of series[n]) if (p[1] !== null) max = Math.max(max, p[1]);
  max = max > 0 ? max * 1.15 : 1;
  const x = (t) => L + (W - L - R) * (1 - (now - t) / HISTORY_SECONDS);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": caption });
  g.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#d9dee7" }),
    svg("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#d9dee7" }),
    svg("text", { x: 2, y: T + 8 }, fmt(max) + " " + unit),
    svg("text", { x: 2, y: H - B }, "0"),
    svg("text", { x: L, y: H - 6 }, "-" + HISTORY_SECONDS / 60 + " min"),
    svg("text", { x: W - R - 24, y: H - 6 }, "now"));
  names.forEach((n, i) => {
    let d = "", pen = false;
    for (const [t, v] of series[n]) {
      if (v === null) { pen = false; continue; }
      d += (pen ? "L" : "M") + x(t).toFixed(1) + "," + y(v).toFixed(1);
      pen = true;
    }
    const last = series[n][series[n].length - 1];
    if (d) g.append(svg("path", { d, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 1.6 }));
    if (last && last[1] !== null) g.append(svg("circle", { cx: x(last[0]), cy: y(last[1]), r: 2.5, fill: COLORS[i % COLORS.length] }));
  });
  const legend = el("div", { class: "legend" }, names.map((n, i) => {
    const last = series[n][series[n].length - 1];
    const sw = el("i");
    sw.style.background = COLORS[i % COLORS.length];
    return el("span", {}, sw, n + ": " + (last && last[1] !== null ? fmt(last[1]) + " " + unit : "down"));
  }));
  return el("div", {}, g, legend);
}

function fmt(v) { return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2); }

function renderDatabase(db) {
  replace("database",
    el("p", { class: "hint" }, "xTR-ID " + db["xtr-id"] + (db["site-id"] ? " · site-ID " + db["site-id"] : "")),
    table(["EID prefix", "locators"], (db.database || []).map((e) => [eidText(e), locs(e.locators)]), "no local EID"),
    table(["Map-Server", "state", "last register", "last Map-Notify", "registers", "Map-Notifies"],
      (db["map-servers"] || []).map((m) => [m.address, pill(m.state), ago(m["last-register"]), ago(m["last-map-notify"]), m.registers, m["map-notifies"]]),
      "no Map-Server"));
}

function renderDynamic(ranges) {
  const rows = [];
  for (const r of ranges) {
    for (const h of r.hosts || []) rows.push([r.name, eidText(r), h.eid, pill(h.state), h["detected-by"], duration(h["since-seconds"]), h.moves, (h["moved-to"] || []).join(", ")]);
    if (!(r.hosts || []).length) rows.push([r.name, eidText(r), "", "", "", "", "", ""]);
  }
  replace("dynamic-eids", table(["range", "EID prefix", "host", "state", "detected by", "since", "moves", "moved to"], rows, "no dynamic-EID range"));
}

// ---- counters ------------------------------------------------------------

function renderCounters(counters) {
  const f = (document.getElementById("counter-filter").value || "").toLowerCase();
  const nz = document.getElementById("counter-nonzero").checked;
  const rows = counters.filter((c) => (!nz || c.value > 0))
    .map((c) => ["lisp_" + c.subsystem + "_" + c.name + "_total", Object.entries(c.labels || {}).map(([k, v]) => k + "=" + v).join(" "), c.value])
    .filter((r) => !f || (r[0] + " " + r[1]).toLowerCase().includes(f));
  replace("counters", table(["metric", "labels", "value"], rows, "no counter matches"));
}

// ---- live timeline ---------------------------------------------------------

function family(t) {
  if (t === "registration-moved" || t === "host-moved") return "move";
  if (t === "locator-down" || t === "auth-failure" || t === "drop" || t === "events-lost") return "bad";
  if (t === "locator-up") return "ok";
  return "";
}

function describe(e) {
  const parts = [];
  if (e["eid-prefix"]) parts.push(eidText(e));
  if (e["from-site"]) parts.push(e["from-site"] + " → " + (e.site || "?"));
  else if (e.site) parts.push("site " + e.site);
  if (e.peer) parts.push("peer " + e.peer);
  if (e.rloc) parts.push("RLOC " + e.rloc);
  if (e.locators) parts.push("locators " + e.locators.join(", "));
  if (e["rtt-ms"]) parts.push(e["rtt-ms"].toFixed(2) + " ms");
  if (e.reason) parts.push(e.reason);
  if (e.count) parts.push("×" + e.count);
  return parts.join(" · ");
}

function addEvent(e, fresh) {
  const list = document.getElementById("timeline");
  if (list) {
    const cls = "ev ev-" + e.type.split("-")[0] + " ev-" + e.type;
    const li = el("li", { "data-type": e.type, "data-seq": e.seq, class: fresh ? "fresh" : null },
      el("time", { datetime: e.time }, e.time.slice(11, 23)), el("span", { class: cls }, e.type), el("span", { class: "what" }, describe(e)));
    list.prepend(li);
    while (list.children.length > 300) list.lastChild.remove();
  }
  const strip = document.getElementById("strip");
  if (strip) {
    strip.prepend(el("span", { class: family(e.type), title: e.type + " " + describe(e) }));
    while (strip.children.length > 120) strip.lastChild.remove();
  }
}

function follow() {
  const live = document.getElementById("live");
  const es = new EventSource("v1/events?history=100");
  let replaying = true;
  es.onopen = () => { live.textContent = "live"; live.classList.add("on"); };
  es.onerror = () => { live.textContent = "reconnecting"; live.classList.remove("on"); };
  es.onmessage = (m) => {
    let e;
    try { e = JSON.parse(m.data); } catch (_) { return; }
    addEvent(e, !replaying);
    soon();
  };
  // The history arrives at once; what comes later is live.
  setTimeout(() => { replaying = false; }, 500);
}

// soon refreshes the page's state shortly after an event: what the
// timeline shows happened should be in the tables too.
function soon() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refresh, 300);
}

// ---- refresh loop ------------------------------------------------------

async function refresh() {
  try {
    const s = await loadStatus();
    const roles = s.roles || [];
    if (page === "overview") renderStatus(s);
    if (page === "map-server") {
      if (!roles.includes("map-server")) throw new Error("this lispd is not a Map-Server");
      const [sites, subs] = await Promise.all([api("v1/site"), api("v1/subscriptions")]);
      renderSites(sites); renderMap(sites); renderSubscriptions(subs);
    }
    if (page === "xtr") {
      if (!roles.includes("xtr")) throw new Error("this lispd is not a tunnel router");
      const [mc, probing, db, counters] = await Promise.all([api("v1/map-cache"), api("v1/rloc-probing"), api("v1/database"), api("v1/statistics")]);
      renderMapCache(mc); renderProbing(probing); renderDatabase(db); trafficFrom(counters);
      if (s["dynamic-eids"]) renderDynamic(await api("v1/dynamic-eid"));
      else replace("dynamic-eids", el("p", { class: "empty" }, "no dynamic-EID range configured"));
    }
    if (page === "counters") {
      state.counters = await api("v1/statistics");
      renderCounters(state.counters);
    }
    showError(null);
  } catch (err) {
    showError(err);
  }
  document.body.dataset.loaded = "1"; // what tests wait for
}

function start() {
  if (page === "counters") {
    for (const id of ["counter-filter", "counter-nonzero"]) {
      document.getElementById(id).addEventListener("input", () => state.counters && renderCounters(state.counters));
    }
  }
  refresh();
  setInterval(refresh, page === "xtr" ? 2000 : 5000);
  follow();
}

start();
