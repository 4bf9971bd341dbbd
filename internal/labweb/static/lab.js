// lisplab's lab page: the topology as a graph, each lispd's state, the
// story's steps. Plain JavaScript; it polls /lab/state every second.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const COLORS = { "map-server": "#1f6feb", xtr: "#8250df", pxtr: "#bf3989", host: "#57606a", router: "#9a6700", switch: "#0a7a7a" };
let topo = null;
let pos = {};

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null && v !== false) e.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function get(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

// kind is what a node is drawn as: its LISP role when lispd runs there
// (from its status), else the lab's role.
function kind(n, st) {
  const roles = (st && st.roles) || [];
  if (roles.includes("map-server")) return "map-server";
  if (roles.includes("xtr")) return n.name.startsWith("px") || (n.role || "").includes("px") ? "pxtr" : "xtr";
  const r = (n.role || "").toLowerCase();
  if (r.includes("switch") || r.includes("bridge") || n.name.startsWith("sw")) return "switch";
  if (r.includes("router") || n.name === "core") return "router";
  return "host";
}

// layout places the nodes with a small deterministic force simulation.
function layout() {
  const n = topo.nodes.length;
  topo.nodes.forEach((node, i) => {
    const a = 2 * Math.PI * i / n;
    pos[node.name] = { x: 400 + 250 * Math.cos(a), y: 230 + 180 * Math.sin(a) };
  });
  const links = topo.links.filter((l) => pos[l.a] && pos[l.b]);
  for (let it = 0; it < 400; it++) {
    const f = {};
    for (const a of topo.nodes) f[a.name] = { x: 0, y: 0 };
    for (const a of topo.nodes) for (const b of topo.nodes) {
      if (a === b) continue;
      const dx = pos[a.name].x - pos[b.name].x, dy = pos[a.name].y - pos[b.name].y;
      const d2 = Math.max(dx * dx + dy * dy, 1);
      f[a.name].x += 4000 * dx / d2; f[a.name].y += 4000 * dy / d2;
    }
    for (const l of links) {
      const dx = pos[l.b].x - pos[l.a].x, dy = pos[l.b].y - pos[l.a].y;
      const d = Math.sqrt(dx * dx + dy * dy) || 1, k = 0.05 * (d - 90) / d;
      f[l.a].x += k * dx; f[l.a].y += k * dy; f[l.b].x -= k * dx; f[l.b].y -= k * dy;
    }
    const cool = 1 - it / 400;
    for (const a of topo.nodes) {
      pos[a.name].x += Math.max(-20, Math.min(20, f[a.name].x)) * cool;
      pos[a.name].y += Math.max(-20, Math.min(20, f[a.name].y)) * cool;
    }
  }
  // Fit the drawing into the box.
  const xs = Object.values(pos).map((p) => p.x), ys = Object.values(pos).map((p) => p.y);
  const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
  for (const p of Object.values(pos)) {
    p.x = 50 + (p.x - minX) * 700 / Math.max(maxX - minX, 1);
    p.y = 35 + (p.y - minY) * 390 / Math.max(maxY - minY, 1);
  }
}

function drawGraph(state) {
  const g = svg("svg", { viewBox: "0 0 800 460", role: "img", "aria-label": "lab topology" });
  for (const l of topo.links) {
    if (!pos[l.a] || !pos[l.b]) continue;
    g.append(svg("line", { class: "link" + (l.down ? " down" : ""), x1: pos[l.a].x, y1: pos[l.a].y, x2: pos[l.b].x, y2: pos[l.b].y },
      svg("title", {}, l.a + " " + l["a-addrs"].join(" ") + " — " + l.b + " " + l["b-addrs"].join(" "))));
  }
  for (const n of topo.nodes) {
    const st = state.nodes[n.name];
    const k = kind(n, st);
    const bad = st && (st.error || st["rlocs-down"] > 0);
    const detail = st ? (st.error ? "unreachable" : (st.roles || []).join(", ")) : (n.role || "");
    g.append(svg("g", { class: "node" + (bad ? " bad" : ""), "data-node": n.name },
      svg("title", {}, n.name + ": " + detail),
      svg("circle", { cx: pos[n.name].x, cy: pos[n.name].y, r: st ? 15 : 10, fill: COLORS[k] }),
      svg("text", { x: pos[n.name].x + 18, y: pos[n.name].y + 4 }, n.name)));
  }
  document.getElementById("graph").replaceChildren(g);
  document.getElementById("legend").replaceChildren(...Object.entries(COLORS).map(([k, c]) => {
    const i = el("i");
    i.style.background = c;
    return el("span", {}, i, k);
  }), el("span", {}, "red ring: a locator down or lispd unreachable"));
}

function drawSteps(steps) {
  document.getElementById("steps").replaceChildren(...steps.map((s) =>
    el("li", { class: s.state, "data-state": s.state }, el("b", {}, s.name), " ", s.state === "pending" ? "" : s.state,
      s.figure ? el("span", { class: "figure" }, s.figure) : null)));
}

function drawNodes(state) {
  const names = Object.keys(state.nodes).sort();
  document.getElementById("nodes").replaceChildren(...names.map((name) => {
    const s = state.nodes[name];
    if (s.error) return el("div", { class: "card", "data-node": name }, el("b", {}, name), el("div", { class: "bad" }, s.error));
    const lines = [el("div", { class: "k" }, (s.roles || []).join(", "))];
    if ((s.roles || []).includes("map-server")) lines.push(el("div", {}, s["registered-prefixes"] + " registered prefixes"));
    if ((s.roles || []).includes("xtr")) {
      lines.push(el("div", {}, "map-cache " + s["map-cache"] + " · registered with " + s["registered-with"]));
      lines.push(el("div", { class: s["rlocs-down"] ? "bad" : "" }, "RLOCs up " + s["rlocs-up"] + ", down " + s["rlocs-down"]));
    }
    return el("div", { class: "card", "data-node": name }, el("b", {}, name), ...lines);
  }));
}

async function tick() {
  const live = document.getElementById("live");
  try {
    const state = await get("lab/state");
    drawGraph(state); drawSteps(state.steps); drawNodes(state);
    live.textContent = "live"; live.classList.add("on");
    document.getElementById("error").hidden = true;
  } catch (err) {
    live.textContent = "lab gone"; live.classList.remove("on");
    const p = document.getElementById("error");
    p.textContent = String(err.message || err); p.hidden = false;
  }
  document.body.dataset.loaded = "1";
}

async function start() {
  try {
    topo = await get("lab/topology");
  } catch (err) {
    const p = document.getElementById("error");
    p.textContent = String(err.message || err); p.hidden = false;
    document.body.dataset.loaded = "1";
    return;
  }
  document.getElementById("lab-name").textContent = topo.name;
  layout();
  await tick();
  setInterval(tick, 1000);
}

start();
