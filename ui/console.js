// Tenure web console (docs/console.md). Plain JavaScript, no framework, no
// network beyond the controller that served it (its CSP says so).
//
// Rules kept throughout:
// - Everything shown that came from the cluster (ids, zones, reasons) goes
//   into the page as text nodes (el() below), never as markup.
// - Nothing downloads the whole state: shards come a page at a time
//   (GET /v1/shards?limit=N&continue=T), everything else is small.
// - The admin token is asked for once, kept in sessionStorage (this tab
//   only) and sent only to this origin.
"use strict";

const PAGE_SIZE = 50;
const HANDOFFS_SHOWN = 200;
const PREVIEW_SHOWN = 500;
const FEED_MAX = 300;
const TOKEN_KEY = "tenure.adminToken";

// ---------------------------------------------------------------------------
// DOM helpers

const $ = (id) => document.getElementById(id);

/** Builds an element; strings among `children` become text nodes. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

function fillBody(table, rows, emptyText) {
  const body = table.tBodies[0];
  const cols = table.tHead.rows[0].cells.length;
  if (rows.length === 0) rows = [el("tr", {}, el("td", { colspan: cols, class: "hint" }, emptyText))];
  body.replaceChildren(...rows);
}

function badge(text, kind) {
  return el("span", { class: "badge " + (kind || "") }, text);
}

function fact(label, value) {
  return el("div", { class: "fact" }, el("b", {}, label), value);
}

let noticeTimer = null;
function showNotice(text, kind) {
  const n = $("notice");
  n.textContent = text;
  n.className = "notice " + (kind || "");
  n.hidden = !text;
  // Confirmations fade after a while; problems stay until something replaces them.
  clearTimeout(noticeTimer);
  if (kind === "info") noticeTimer = setTimeout(() => { n.hidden = true; }, 6000);
}

// ---------------------------------------------------------------------------
// Times

function pad(n) {
  return String(n).padStart(2, "0");
}

function clockTime(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
         `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function humanTime(ms) {
  if (typeof ms !== "number" || ms <= 0) return "—";
  return `${clockTime(ms)} (${duration(Date.now() - ms)} ago)`;
}

// ---------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
  }
}

function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function headers(extra) {
  const h = Object.assign({ Accept: "application/json" }, extra || {});
  const token = storedToken();
  if (token) h.Authorization = "Bearer " + token;
  return h;
}

async function api(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  let parsed = null;
  const text = await res.text();
  if (text) {
    try { parsed = JSON.parse(text); } catch (e) { parsed = { message: text.slice(0, 200) }; }
  }
  if (!res.ok) {
    // Reads closed by auth.read_token: ask for a token (once at a time).
    if (res.status === 401 && method === "GET" && !storedToken() && !$("token-dialog").open) askToken();
    throw new ApiError(res.status, parsed);
  }
  return parsed;
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------------------
// The admin token and confirmations

let clusterAuth = null;  // false when /v1/cluster says the group runs without tokens

function askToken() {
  const dialog = $("token-dialog");
  $("token-input").value = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "ok" && $("token-input").value) {
        sessionStorage.setItem(TOKEN_KEY, $("token-input").value);
      } else if (dialog.returnValue === "forget") {
        sessionStorage.removeItem(TOKEN_KEY);
      }
      $("token-input").value = "";
      if (storedToken()) {  // reads refused for want of it can go again now
        refreshSummary();
        scheduleRefresh(0);
      }
      resolve(storedToken() !== "");
    }, { once: true });
  });
}

function confirmAction(text) {
  const dialog = $("confirm-dialog");
  $("confirm-text").textContent = text;
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

/** A mutating call: asks for the token first when the group needs one and
 *  none is kept, and once more if the controller refuses the kept one
 *  (401 unknown, 403 a token of another role, e.g. the read token). */
async function adminCall(method, path, body) {
  if (clusterAuth !== false && !storedToken() && !(await askToken())) return null;
  try {
    return await api(method, path, body);
  } catch (e) {
    if (e.status !== 401 && e.status !== 403) throw e;  // 403: a valid token of another role
    sessionStorage.removeItem(TOKEN_KEY);
    showNotice(`The controller refused the token (${e.message}): enter the admin token.`);
    if (!(await askToken())) return null;
    return api(method, path, body);
  }
}

async function runAction(label, fn) {
  try {
    const result = await fn();
    if (result !== null) showNotice(label, "info");
    return result;
  } catch (e) {
    showNotice(`${label} failed: ${e.message}`);
    return null;
  }
}

// ---------------------------------------------------------------------------
// Views and refresh

const views = {};
let current = "group";
let refreshTimer = null;

function registerView(name, refresh, intervalMs) {
  views[name] = { refresh, intervalMs };
}

function selectView(name) {
  current = name;
  for (const b of $("tabs").querySelectorAll("button")) {
    b.setAttribute("aria-selected", String(b.dataset.view === name));
  }
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "view-" + name;
  if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
  scheduleRefresh(0);
}

function scheduleRefresh(delay) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    const v = views[current];
    try {
      if (v && v.refresh) await v.refresh();
      // A load that failed before works again: its complaint goes.
      if ($("notice").textContent.startsWith("Could not load")) showNotice("");
    } catch (e) {
      showNotice(`Could not load ${current}: ${e.message}`);
    }
    if (v && v.intervalMs) scheduleRefresh(v.intervalMs);
  }, delay);
}

// ---------------------------------------------------------------------------
// Header summary and the group

let lastCluster = null;

async function refreshSummary() {
  try {
    const c = await api("GET", "/v1/cluster");
    lastCluster = c;
    if (typeof c.auth === "boolean") clusterAuth = c.auth;
    renderSummary();
    if ($("notice").textContent.startsWith("Could not reach")) showNotice("");
  } catch (e) {
    $("summary").textContent = "unreachable";
    showNotice(`Could not reach the controller: ${e.message}`);
  }
}

/** The header line; the revision also moves with the watch stream. */
function renderSummary() {
  const c = lastCluster;
  if (!c) return;
  const revision = Math.max(c.revision, feed.revision);
  $("summary").textContent = `leader ${c.leader_id || "none"} · term ${c.term} · revision ${revision} · via ${c.node_id}`;
}

function memberLag(m, c) {
  if (typeof m.lag === "number") return `${m.lag} entries`;
  if (typeof m.match_index === "number") return `${Math.max(0, c.commit_index - m.match_index)} entries`;
  if (m.id === c.node_id) return `${Math.max(0, c.commit_index - c.applied_index)} to apply`;
  return "—";
}

async function refreshGroup() {
  const c = await api("GET", "/v1/cluster");
  lastCluster = c;
  $("group-self").textContent = c.node_id;
  $("group-facts").replaceChildren(
    fact("leader", c.leader_id || "none"), fact("term", c.term), fact("commit index", c.commit_index),
    fact("applied index", c.applied_index), fact("revision", c.revision), fact("answered by", c.node_id));
  const rows = (c.members || []).map((m) => {
    const isLeader = m.id === c.leader_id;
    // Health is first hand only: a follower does not know the other
    // followers' (null); the leader knows everyone's.
    const health = m.healthy === true ? badge("healthy", "ok")
      : m.healthy === false ? badge("unreachable", "bad") : badge("known at the leader", "");
    const action = !isLeader && m.role !== "learner"
      ? el("button", { type: "button", class: "secondary", dataset: { member: m.id },
                       onclick: () => transferLeadership(m.id) }, "Make leader")
      : "";
    return el("tr", { dataset: { member: m.id } },
      el("td", { class: "id" }, m.id, m.id === c.node_id ? " (this)" : ""),
      el("td", { class: "mono" }, m.address),
      el("td", {}, isLeader ? badge("leader", "ok") : m.role),
      el("td", {}, health),
      el("td", {}, memberLag(m, c)),
      el("td", {}, action));
  });
  fillBody($("members"), rows, "no members");
}

async function transferLeadership(id) {
  if (!(await confirmAction(`Hand leadership to ${id}?`))) return;
  await runAction(`Leadership handed to ${id}`,
                  () => adminCall("POST", "/v1/members/transfer-leadership", { to: id }));
  scheduleRefresh(300);
}

// ---------------------------------------------------------------------------
// Workers

let lastWorkers = [];

/** Each worker's fair share: the shards owned, split by capacity among the
 *  workers that take shards (alive ones). */
function fairShares(workers) {
  const total = workers.reduce((n, w) => n + (w.shards || 0), 0);
  const takers = workers.filter((w) => w.state === "alive");
  const capacity = takers.reduce((n, w) => n + (w.capacity || 1), 0);
  const fair = new Map();
  for (const w of workers) {
    fair.set(w.id, w.state === "alive" && capacity > 0 ? total * (w.capacity || 1) / capacity : 0);
  }
  return { total, fair };
}

function loadBar(shards, fair, scale) {
  const fill = el("div", { class: "fill" + (shards > Math.ceil(fair) ? " over" : "") });
  fill.style.width = `${scale ? Math.min(100, (100 * shards) / scale) : 0}%`;
  const mark = el("div", { class: "mark", title: `fair share ${fair.toFixed(1)}` });
  mark.style.left = `${scale ? Math.min(100, (100 * fair) / scale) : 0}%`;
  return el("div", { class: "bar", role: "img", "aria-label": `${shards} shards, fair share ${fair.toFixed(1)}` },
            fill, mark);
}

function workerRow(w, fair, scale) {
  const stateKind = { alive: "ok", draining: "warn", dead: "bad" }[w.state] || "";
  let action = "";
  if (w.state === "alive") {
    action = el("button", { type: "button", class: "danger", dataset: { action: "drain", worker: w.id },
                            onclick: () => drainWorker(w.id, true) }, "Drain");
  } else if (w.state === "draining") {
    action = el("button", { type: "button", class: "secondary", dataset: { action: "undrain", worker: w.id },
                            onclick: () => drainWorker(w.id, false) }, "Undrain");
  }
  // Zone and capacity last: on a phone the load and the action stay in view.
  return el("tr", { dataset: { worker: w.id } },
    el("td", { class: "id" }, w.id), el("td", {}, badge(w.state, stateKind)),
    el("td", { class: "shard-count" }, w.shards), el("td", {}, loadBar(w.shards, fair, scale)), el("td", {}, action),
    el("td", { class: "zone", title: w.zone || "" }, w.zone || "—"), el("td", {}, w.capacity));
}

/** Every worker: the list is paged too (1000 a page), but a fleet's
 *  workers are few enough to show at once; bounded all the same. */
async function listWorkers() {
  const workers = [];
  let token = "";
  for (let pages = 0; pages < 20; pages++) {
    const q = new URLSearchParams({ limit: "1000" });
    if (token) q.set("continue", token);
    const body = await api("GET", "/v1/workers?" + q.toString());
    workers.push(...(body.workers || []));
    token = body.continue || "";
    if (!token) break;
  }
  return workers;
}

async function refreshWorkers() {
  lastWorkers = await listWorkers();
  const { total, fair } = fairShares(lastWorkers);
  let scale = 0;
  for (const w of lastWorkers) scale = Math.max(scale, w.shards, fair.get(w.id));
  const count = (s) => lastWorkers.filter((w) => w.state === s).length;
  $("worker-facts").replaceChildren(fact("workers", lastWorkers.length), fact("alive", count("alive")),
                                    fact("draining", count("draining")), fact("dead", count("dead")),
                                    fact("shards owned", total));
  fillBody($("workers"), lastWorkers.map((w) => workerRow(w, fair.get(w.id), scale)), "no workers registered");
}

async function drainWorker(id, drain) {
  const verb = drain ? "drain" : "undrain";
  if (drain && !(await confirmAction(`Drain ${id}? Every shard it owns moves to other workers.`))) return;
  await runAction(`${id}: ${verb} requested`, () => adminCall("POST", `/v1/workers/${enc(id)}/${verb}`, {}));
  scheduleRefresh(200);
}

// ---------------------------------------------------------------------------
// Shards: one page at a time

const shardPages = { tokens: [""], index: 0, next: "", query: "", worker: "", selected: "" };

function shardRow(s) {
  const kind = { active: "ok", handoff: "warn", unassigned: "bad" }[s.state] || "";
  return el("tr", { dataset: { shard: s.id }, onclick: () => showShard(s.id) },
    el("td", { class: "id" }, s.id), el("td", { class: "owner" }, s.worker || "—"),
    el("td", { class: "epoch" }, s.epoch), el("td", { class: "state" }, badge(s.state, kind)));
}

function shardListPath(token) {
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (shardPages.query) q.set("prefix", shardPages.query);
  if (shardPages.worker) q.set("worker", shardPages.worker);
  if (token) q.set("continue", token);
  return "/v1/shards?" + q.toString();
}

const ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

async function refreshShards() {
  const p = shardPages;
  for (const [what, value] of [["shard id or prefix", p.query], ["worker id", p.worker]]) {
    if (value && !ID_PATTERN.test(value)) {
      fillBody($("shards"), [], `not a valid ${what}: ids are 1 to 128 of A-Z a-z 0-9 . _ -`);
      $("shards-next").disabled = true;
      return;
    }
  }
  const page = await api("GET", shardListPath(p.tokens[p.index]));
  // A controller without the prefix filter answers with every shard's page:
  // keep only the matching ones (still one page, never the whole state).
  let shards = (page.shards || []).filter((s) => !p.query || s.id.startsWith(p.query)).slice(0, PAGE_SIZE);
  if (p.query && p.index === 0 && !shards.some((s) => s.id === p.query)) {
    try {
      const exact = await api("GET", `/v1/shards/${enc(p.query)}`);
      if (!p.worker || exact.worker === p.worker) shards = [exact, ...shards];
    } catch (e) {
      if (e.status !== 404 && e.status !== 400) throw e;
    }
  }
  p.next = page.continue || "";
  fillBody($("shards"), shards.map(shardRow), p.query ? `no shard matches "${p.query}"` : "no shards");
  $("shards-page").textContent = `page ${p.index + 1} · revision ${page.revision}`;
  $("shards-prev").disabled = p.index === 0;
  $("shards-next").disabled = !p.next;
  markSelected();
}

function markSelected() {
  for (const tr of $("shards").tBodies[0].rows) {
    tr.classList.toggle("selected", tr.dataset.shard === shardPages.selected);
  }
}

function searchShards(event) {
  event.preventDefault();
  Object.assign(shardPages, { tokens: [""], index: 0, next: "",
                              query: $("shard-query").value.trim(), worker: $("shard-worker").value.trim() });
  scheduleRefresh(0);
}

function turnPage(delta) {
  const p = shardPages;
  if (delta > 0 && p.next) {
    p.tokens = p.tokens.slice(0, p.index + 1);
    p.tokens.push(p.next);
    p.index += 1;
  } else if (delta < 0 && p.index > 0) {
    p.index -= 1;
  }
  scheduleRefresh(0);
}

// One fetch per row at a time; an event that arrives while it is out marks
// the row stale, and it is fetched once more when the first answer is in (a
// skipped refresh left a row showing the owner before the newest grant).
const rowRefreshes = new Map();  // shard id -> fetch again when this one ends

/** Updates the shard's row, if it is on the page, from the controller. */
function refreshShardRow(id) {
  if (rowRefreshes.has(id)) {
    rowRefreshes.set(id, true);
    return;
  }
  const row = [...$("shards").tBodies[0].rows].find((tr) => tr.dataset.shard === id);
  if (!row) return;
  rowRefreshes.set(id, false);
  api("GET", `/v1/shards/${enc(id)}`).then((s) => {
    const fresh = shardRow(s);
    fresh.classList.add("flash");
    if (row.isConnected) row.replaceWith(fresh);
    markSelected();
    if (shardPages.selected === id) showShard(id);
  }).catch(() => {}).finally(() => {
    const again = rowRefreshes.get(id);
    rowRefreshes.delete(id);
    if (again) refreshShardRow(id);
  });
}

async function showShard(id) {
  shardPages.selected = id;
  markSelected();
  try {
    const [s, h] = await Promise.all([api("GET", `/v1/shards/${enc(id)}`), api("GET", `/v1/shards/${enc(id)}/history`)]);
    $("detail-title").textContent = `Shard ${s.id}`;
    $("detail-facts").replaceChildren(fact("owner", s.worker || "—"), fact("epoch", s.epoch),
                                      fact("state", s.state), fact("revision", s.revision));
    const rows = (h.history || []).slice().reverse().map((e) => el("tr", {},
      el("td", {}, humanTime(e.at_ms)), el("td", {}, e.revision), el("td", {}, e.epoch),
      el("td", { class: "id" }, e.from || "—"), el("td", { class: "id" }, e.to || "—"), el("td", {}, e.reason)));
    fillBody($("history"), rows, "no history kept");
    if (!lastWorkers.length) await refreshWorkers().catch(() => {});
    const targets = lastWorkers.filter((w) => w.state === "alive" && w.id !== s.worker);
    $("move-to").replaceChildren(...targets.map((w) => el("option", { value: w.id }, w.id)));
    $("move-form").querySelector("button").disabled = targets.length === 0;
    $("shard-detail").hidden = false;
  } catch (e) {
    showNotice(`Could not load shard ${id}: ${e.message}`);
  }
}

async function moveSelected(event) {
  event.preventDefault();
  const id = shardPages.selected, to = $("move-to").value;
  if (!id || !to) return;
  await runAction(`Moving ${id} to ${to}`, () => adminCall("POST", `/v1/shards/${enc(id)}/move`, { to }));
  refreshShardRow(id);
}

// ---------------------------------------------------------------------------
// Handoffs and rebalance

async function refreshHandoffs() {
  // The first page only: a drain of a big worker may have many thousands in flight.
  const body = await api("GET", `/v1/rebalance?limit=${HANDOFFS_SHOWN}`);
  const now = Date.now();
  $("handoffs-more").hidden = !body.continue;
  const rows = (body.moves || []).map((m) => el("tr", { dataset: { shard: m.shard } },
    el("td", { class: "id" }, m.shard), el("td", { class: "id" }, m.from || "—"), el("td", { class: "id" }, m.to || "—"),
    el("td", {}, m.epoch), el("td", {}, m.reason),
    el("td", {}, m.phase ? `${m.phase} ${m.phase_since_ms ? duration(now - m.phase_since_ms) : ""}`.trim() : "—"),
    el("td", {}, m.since_ms ? duration(now - m.since_ms) : "—")));
  fillBody($("handoffs"), rows, "no handoffs in flight");
}

async function previewRebalance() {
  const body = await runAction("Rebalance preview ready", () => adminCall("POST", "/v1/rebalance?dry_run=true", {}));
  if (!body) return;
  const moves = body.moves || [];
  const total = typeof body.moves_total === "number" ? body.moves_total : moves.length;
  // The table shows the first PREVIEW_SHOWN; the controller lists at most 10,000.
  const shown = moves.slice(0, PREVIEW_SHOWN);
  $("preview").hidden = false;
  $("preview-summary").textContent = total
    ? `${total} move(s) would start now${shown.length < total ? ` (the first ${shown.length} below)` : ""}. ` +
      "Applying runs a fresh placement pass, which may differ if the cluster changed since."
    : "The placement is balanced: a rebalance would move nothing.";
  fillBody($("preview-moves"), shown.map((m) => el("tr", {},
    el("td", { class: "id" }, m.shard), el("td", { class: "id" }, m.from || "—"), el("td", { class: "id" }, m.to || "—"),
    el("td", {}, m.reason))), "nothing to move");
  $("rebalance-apply").hidden = total === 0;
}

async function applyRebalance() {
  const body = await runAction("Rebalance started", () => adminCall("POST", "/v1/rebalance", {}));
  if (body) {
    $("rebalance-apply").hidden = true;
    const started = typeof body.started === "number" ? body.started : (body.moves || []).length;
    $("preview-summary").textContent = `${started} move(s) started.`;
  }
  scheduleRefresh(200);
}

// ---------------------------------------------------------------------------
// The live event feed (GET /v1/watch, ndjson read as a stream)

const feed = { revision: 0, paused: false, controller: null, retryMs: 500 };

function eventText(e) {
  const parts = [`#${e.revision}`, e.type];
  if (e.shard !== undefined) parts.push(`shard ${e.shard}`);
  if (e.worker !== undefined && e.worker !== null) parts.push(`worker ${e.worker}`);
  if (e.epoch !== undefined) parts.push(`epoch ${e.epoch}`);
  if (e.state !== undefined) parts.push(`→ ${e.state}`);
  return parts.join("  ");
}

function onEvent(e) {
  if (typeof e.revision === "number") feed.revision = Math.max(feed.revision, e.revision);
  if (e.error) throw new Error(e.message || e.error);
  renderSummary();
  if (e.type === "progress") return;
  if (!feed.paused) {
    const list = $("feed");
    const at = typeof e.at_ms === "number" ? e.at_ms : Date.now();
    list.prepend(el("li", { dataset: { type: e.type, shard: e.shard } },
                    el("span", { class: "time" }, clockTime(at).slice(11)), eventText(e)));
    while (list.childElementCount > FEED_MAX) list.lastElementChild.remove();
  }
  if (e.shard !== undefined) refreshShardRow(e.shard);
  if (e.type === "worker" && current === "workers") scheduleRefresh(100);
}

async function readWatch() {
  const path = "/v1/watch" + (feed.revision ? `?since=${feed.revision}` : "");
  feed.controller = new AbortController();
  const res = await fetch(path, { headers: headers(), signal: feed.controller.signal });
  if (res.status === 410) {  // compacted: start from now
    feed.revision = 0;
    await res.body.cancel();
    throw new Error("history compacted; following from now");
  }
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
  $("feed-state").textContent = "live";
  $("feed-state").className = "badge ok";
  feed.retryMs = 500;
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) onEvent(JSON.parse(line));
    }
  }
  throw new Error("stream ended");
}

/** Follows the watch stream for as long as the page is open, reconnecting
 *  (from the last revision seen) with a growing delay. */
async function followWatch() {
  for (;;) {
    try {
      await readWatch();
    } catch (e) {
      $("feed-state").textContent = `reconnecting (${e.message})`;
      $("feed-state").className = "badge warn";
    }
    await new Promise((r) => setTimeout(r, feed.retryMs));
    feed.retryMs = Math.min(feed.retryMs * 2, 10000);
  }
}

// ---------------------------------------------------------------------------
// Start

function start() {
  registerView("group", refreshGroup, 2000);
  registerView("workers", refreshWorkers, 2000);
  registerView("shards", refreshShards, 0);
  registerView("handoffs", refreshHandoffs, 1000);
  registerView("events", null, 0);

  for (const b of $("tabs").querySelectorAll("button")) b.addEventListener("click", () => selectView(b.dataset.view));
  $("token-button").addEventListener("click", () => askToken());
  $("shard-search").addEventListener("submit", searchShards);
  $("shards-prev").addEventListener("click", () => turnPage(-1));
  $("shards-next").addEventListener("click", () => turnPage(1));
  $("move-form").addEventListener("submit", moveSelected);
  $("rebalance-preview").addEventListener("click", previewRebalance);
  $("rebalance-apply").addEventListener("click", applyRebalance);
  $("feed-pause").addEventListener("click", () => {
    feed.paused = !feed.paused;
    $("feed-pause").textContent = feed.paused ? "Resume" : "Pause";
  });
  $("feed-clear").addEventListener("click", () => $("feed").replaceChildren());

  refreshSummary();
  setInterval(refreshSummary, 3000);
  followWatch();
  const wanted = location.hash.slice(1);
  selectView(views[wanted] ? wanted : "group");
}

document.addEventListener("DOMContentLoaded", start);
