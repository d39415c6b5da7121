// Drives the web console (/ui) in Debian's chromium through puppeteer-core.
// Started by test_console.py, which runs the cluster and passes it in:
//   TENURE_UI_BASE        http://HOST:PORT of the controller serving the page
//   TENURE_ADMIN_TOKEN    the group's admin token (typed into the page once)
//   TENURE_UI_ARTIFACTS   where the screenshots go
//   TENURE_UI_MOVE_SHARD / TENURE_UI_MOVE_TO   a move made through the API
//   TENURE_UI_DRAIN       the worker drained by a click
//   TENURE_UI_HOSTILE_ZONE  a zone holding markup, to show as text
// Exits non-zero with the failed check's message. Nothing sleeps for a state:
// every wait polls the page against a deadline.
"use strict";

const assert = require("node:assert/strict");
const path = require("node:path");
const puppeteer = require("puppeteer-core");

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run test_console.py)`);
  return v;
};
const BASE = env("TENURE_UI_BASE");
const TOKEN = env("TENURE_ADMIN_TOKEN");
const ARTIFACTS = env("TENURE_UI_ARTIFACTS");
const MOVE_SHARD = env("TENURE_UI_MOVE_SHARD");
const MOVE_TO = env("TENURE_UI_MOVE_TO");
const DRAIN = env("TENURE_UI_DRAIN");
const HOSTILE_ZONE = env("TENURE_UI_HOSTILE_ZONE");
const CHROMIUM = process.env.TENURE_CHROMIUM || "/usr/bin/chromium";

function log(...args) {
  console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...args);
}

async function shot(page, name) {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log("screenshot", file);
}

/** The static files: types, cache validation, a strict CSP, 404s. */
async function checkAssets() {
  const page = await fetch(`${BASE}/ui`);
  assert.equal(page.status, 200);
  assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
  const csp = page.headers.get("content-security-policy") || "";
  for (const part of ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) {
    assert.ok(csp.includes(part), `CSP lacks ${part}: ${csp}`);
  }
  assert.ok(!/unsafe-inline|unsafe-eval|\*/.test(csp), `CSP too loose: ${csp}`);
  assert.equal(page.headers.get("x-content-type-options"), "nosniff");
  assert.equal(page.headers.get("cache-control"), "no-cache");
  const etag = page.headers.get("etag");
  assert.match(etag || "", /^"[0-9a-f]{16}"$/);
  const again = await fetch(`${BASE}/ui/`, { headers: { "If-None-Match": etag } });
  assert.equal(again.status, 304);
  const js = await fetch(`${BASE}/ui/console.js`);
  assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
  const css = await fetch(`${BASE}/ui/console.css`);
  assert.equal(css.headers.get("content-type"), "text/css; charset=utf-8");
  const missing = await fetch(`${BASE}/ui/nothing.js`);
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error, "not_found");
  log("assets: types, ETag/304, CSP, 404 ok");
}

/** GET /v1/shards?prefix=P, which the search uses: matching ids only, paged. */
async function checkPrefixRoute() {
  const get = async (q) => {
    const res = await fetch(`${BASE}/v1/shards?${q}`);
    return { status: res.status, body: await res.json() };
  };
  const first = await get("prefix=s-1&limit=5");
  assert.equal(first.status, 200);
  const ids = first.body.shards.map((s) => s.id);
  assert.deepEqual(ids, ["s-1", "s-10", "s-11", "s-12", "s-13"]);
  const second = await get(`prefix=s-1&limit=10&continue=${encodeURIComponent(first.body.continue)}`);
  assert.deepEqual(second.body.shards.map((s) => s.id), ["s-14", "s-15", "s-16", "s-17", "s-18", "s-19"]);
  assert.equal(second.body.continue, null);
  const bad = await get("prefix=s%201");
  assert.deepEqual([bad.status, bad.body.error], [400, "bad_request"]);
  assert.match(bad.body.message, /prefix/);
  const otherPrefix = await get(`prefix=s-2&continue=${encodeURIComponent(first.body.continue)}`);
  assert.equal(otherPrefix.status, 400);
  log("GET /v1/shards?prefix: matching ids in pages, 400s ok");
}

async function apiCall(method, route, body) {
  const res = await fetch(BASE + route, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function openView(page, name) {
  await page.click(`#tabs button[data-view="${name}"]`);
  await page.waitForSelector(`#view-${name}:not([hidden])`);
}

/** Types the admin token into the page's dialog (asked for once). */
async function enterToken(page) {
  await page.waitForSelector("#token-dialog[open]", { timeout: 5000 });
  await page.type("#token-input", TOKEN);
  await page.click("#token-ok");
  await page.waitForSelector("#token-dialog:not([open])");
}

async function checkGroup(page) {
  await page.waitForFunction(() => document.querySelectorAll("#members tbody tr[data-member]").length === 3 &&
                                   document.querySelector("#members .badge.ok"), { timeout: 10000 });
  const healthy = await page.$$eval("#members tbody tr", (rows) => rows.map((r) => r.cells[3].textContent));
  log("group: members", healthy);
  await shot(page, "group");
}

async function checkWorkers(page) {
  await openView(page, "workers");
  await page.waitForFunction(() => document.querySelectorAll("#workers tbody tr[data-worker]").length === 4,
                             { timeout: 10000 });
  // The hostile zone is shown as the text it is, and made no element.
  const zones = await page.$$eval("#workers tbody tr", (rows) => rows.map((r) => r.querySelector(".zone").textContent));
  assert.ok(zones.includes(HOSTILE_ZONE), `zones shown: ${JSON.stringify(zones)}`);
  assert.equal(await page.$("#pwn"), null, "a zone's markup became an element");
  assert.equal(await page.$$eval("#workers img", (imgs) => imgs.length), 0);
  assert.equal(await page.$$eval("#workers .bar .mark", (m) => m.length), 4, "one load bar per worker");
  await shot(page, "workers");
}

/** Searches the shard, then moves it through the API: the watch event must
 *  reach the feed and the shard's row. How long that took is logged (a
 *  figure, tens of milliseconds on an idle machine), not asserted: the move
 *  is a handoff through the agent (revoke, release, grant), and on a loaded
 *  CI machine a one-second bound failed once (01:34 UTC, 5 Dec) without
 *  anything being wrong. */
async function checkMoveShowsUp(page) {
  await openView(page, "shards");
  await page.waitForSelector("#shards tbody tr[data-shard]", { timeout: 10000 });
  await page.type("#shard-query", MOVE_SHARD);
  await page.click("#shard-search button[type=submit]");
  await page.waitForFunction((id) => {
    const rows = [...document.querySelectorAll("#shards tbody tr[data-shard]")];
    return rows.length > 0 && rows.every((r) => r.dataset.shard.startsWith(id)) &&
           rows.some((r) => r.dataset.shard === id);
  }, { timeout: 5000 }, MOVE_SHARD);
  await page.click(`#shards tbody tr[data-shard="${MOVE_SHARD}"]`);
  await page.waitForSelector("#shard-detail:not([hidden]) #history tbody tr", { timeout: 5000 });
  const reasons = await page.$$eval("#history tbody tr", (rows) => rows.map((r) => r.cells[5].textContent));
  assert.ok(reasons.includes("created"), `history reasons: ${reasons}`);
  await page.waitForFunction(() => document.querySelector("#feed-state").textContent === "live", { timeout: 5000 });

  const moved = await apiCall("POST", `/v1/shards/${MOVE_SHARD}/move`, { to: MOVE_TO });
  assert.equal(moved.status, 202, JSON.stringify(moved.body));
  const accepted = Date.now();
  // The row shows the owner of the shard's newest grant in the feed (newest
  // first): the move's, or a rebalance's that gave it back right after (a
  // CI run saw placement move it back 20 ms later, the row rightly following).
  await page.waitForFunction((id, to) => {
    const row = document.querySelector(`#shards tbody tr[data-shard="${id}"]`);
    const grants = [...document.querySelectorAll("#feed li[data-type=grant]")].filter((li) => li.dataset.shard === id);
    const inFeed = grants.some((li) => li.textContent.includes(`worker ${to}`));
    if (!inFeed || !row) return false;
    return grants[0].textContent.includes(`worker ${row.querySelector(".owner").textContent}`);
  }, { timeout: 15000, polling: 20 }, MOVE_SHARD, MOVE_TO);
  log(`move ${MOVE_SHARD} -> ${MOVE_TO}: in the feed and the row ${Date.now() - accepted} ms after the 202`);
  await page.waitForFunction(() => [...document.querySelectorAll("#history tbody tr")]
    .some((r) => r.cells[5].textContent === "manual"), { timeout: 3000 });
  await shot(page, "shards");
}

async function checkRebalancePreview(page) {
  await openView(page, "handoffs");
  await page.click("#rebalance-preview");
  await enterToken(page);  // the first action asks for the token
  await page.waitForSelector("#preview:not([hidden])", { timeout: 5000 });
  const summary = await page.$eval("#preview-summary", (p) => p.textContent);
  log("rebalance preview:", summary);
  assert.equal(await page.evaluate(() => sessionStorage.getItem("tenure.adminToken")), TOKEN);
  assert.equal(await page.evaluate(() => localStorage.length), 0, "nothing kept beyond the session");
  await shot(page, "handoffs");
}

/** Views re-render on every refresh: a button handle can be replaced
 *  between finding and clicking it (CI runs failed on "Node is detached
 *  from document", in the group view and the workers view). Clicks in the
 *  page until the confirmation dialog opens. */
async function clickUntilConfirm(page, selector) {
  await page.waitForFunction((sel) => {
    if (!document.querySelector("#confirm-dialog[open]")) {
      const button = document.querySelector(sel);
      if (button) button.click();
    }
    return !!document.querySelector("#confirm-dialog[open]");
  }, { timeout: 10000, polling: 100 }, selector);
}

async function checkDrainClick(page) {
  await openView(page, "workers");
  await clickUntilConfirm(page, `#workers button[data-action="drain"][data-worker="${DRAIN}"]`);
  await page.click("#confirm-ok");  // no token asked again: the session has it
  await page.waitForFunction((w) => {
    const row = document.querySelector(`#workers tr[data-worker="${w}"]`);
    return row && row.cells[1].textContent === "draining" && row.querySelector(".shard-count").textContent === "0";
  }, { timeout: 20000, polling: 100 }, DRAIN);
  const after = await apiCall("GET", "/v1/workers");
  const w = after.body.workers.find((x) => x.id === DRAIN);
  assert.deepEqual([w.state, w.shards], ["draining", 0]);
  assert.ok(await page.$(`#workers button[data-action="undrain"][data-worker="${DRAIN}"]`), "an Undrain button");
  log(`drain of ${DRAIN} clicked: the worker is empty`);
  await shot(page, "workers-drained");
}

/** While leadership is handed over, a member may answer a read or a write
 *  503 for a few milliseconds (no leader yet: docs/api.md); the page tries
 *  again at its next poll. Chromium logs every 5xx answer as a console
 *  error, so such 503s are allowed in that window, and nowhere else. */
const handover = { from: 0, to: 0 };
function inHandover(now) { return handover.from > 0 && now >= handover.from && (handover.to === 0 || now <= handover.to); }

/** "Make leader" on a follower: the group hands leadership over. */
async function checkTransferLeadership(page) {
  await openView(page, "group");
  const before = (await apiCall("GET", "/v1/cluster")).body.leader_id;
  const target = await page.$eval("#members button[data-member]", (b) => b.dataset.member);
  assert.notEqual(target, before);
  await clickUntilConfirm(page, `#members button[data-member="${target}"]`);
  handover.from = Date.now();
  await page.click("#confirm-ok");
  await page.waitForFunction((id) => {
    const row = document.querySelector(`#members tr[data-member="${id}"]`);
    return row && row.cells[2].textContent === "leader";
  }, { timeout: 15000, polling: 100 }, target);
  handover.to = Date.now() + 1000;  // a poll already in flight answers within it
  assert.equal((await apiCall("GET", "/v1/cluster")).body.leader_id, target);
  log(`leadership handed from ${before} to ${target} by a click`);
}

/** The Move form of the selected shard. */
async function checkMoveForm(page) {
  await openView(page, "shards");
  // The list re-renders as it loads and as watch events refresh rows: a
  // row handle can be replaced between finding and clicking it (a CI run
  // failed on "Node is detached"). Find and click in one step in the page,
  // until the detail shows (a row's click only selects it: repeats are
  // harmless).
  await page.waitForFunction((id) => {
    const row = document.querySelector(`#shards tbody tr[data-shard="${id}"]`);
    if (row) row.click();
    return document.querySelector("#detail-title").textContent === `Shard ${id}`;
  }, { timeout: 5000, polling: 100 }, MOVE_SHARD);
  const owner = await page.$eval(`#shards tbody tr[data-shard="${MOVE_SHARD}"] .owner`, (td) => td.textContent);
  const target = await page.$eval("#move-to", (sel) => sel.options[0].value);
  assert.notEqual(target, owner);
  await page.click("#move-form button[type=submit]");
  await page.waitForFunction((id, to) => {
    const row = document.querySelector(`#shards tbody tr[data-shard="${id}"]`);
    return row && row.querySelector(".owner").textContent === to;
  }, { timeout: 10000, polling: 50 }, MOVE_SHARD, target);
  const s = (await apiCall("GET", `/v1/shards/${MOVE_SHARD}`)).body;
  assert.equal(s.worker, target);
  log(`${MOVE_SHARD} moved from ${owner} to ${target} by the Move form`);
}

async function checkEventsView(page) {
  await openView(page, "events");
  const n = await page.$$eval("#feed li", (li) => li.length);
  assert.ok(n > 0, "the feed shows events");
  await shot(page, "events");
}

/** The picture in docs/console.png: a page of shards, one shard's history. */
async function overviewShot(page) {
  await openView(page, "shards");
  await page.$eval("#shard-query", (input) => { input.value = ""; });
  await page.click("#shard-search button[type=submit]");
  await page.waitForFunction(() => document.querySelectorAll("#shards tbody tr[data-shard]").length >= 10,
                             { timeout: 5000 });
  await page.click(`#shards tbody tr[data-shard="${MOVE_SHARD}"]`);
  await page.waitForFunction((id) => document.querySelector("#detail-title").textContent === `Shard ${id}`,
                             { timeout: 5000 }, MOVE_SHARD);
  const file = path.join(ARTIFACTS, "console.png");
  await page.screenshot({ path: file, fullPage: false });
  log("screenshot", file);
}

/** Every view at a phone's width: nothing wider than the screen (tables
 *  scroll inside their own box). */
async function checkPhone(page) {
  await page.setViewport({ width: 375, height: 740, deviceScaleFactor: 1, isMobile: true, hasTouch: true });
  for (const view of ["group", "workers", "shards", "handoffs", "events"]) {
    await openView(page, view);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `${view} is ${width}px wide at 375px`);
    await shot(page, `phone-${view}`);
  }
  log("phone width: every view fits 375 px");
}

/** With auth.read_token the page loads (its files are public), asks for a
 *  token when its first read is refused, and shows the group once given. */
async function mainReadToken(browser) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${BASE}/ui`, { waitUntil: "load" });
  await page.waitForSelector("#token-dialog[open]", { timeout: 5000 });
  assert.equal(await page.$$eval("#members tbody tr[data-member]", (r) => r.length), 0, "nothing shown unread");
  await page.type("#token-input", process.env.TENURE_READ_TOKEN);
  await page.click("#token-ok");
  await page.waitForFunction(() => document.querySelectorAll("#members tbody tr[data-member]").length === 3,
                             { timeout: 10000 });
  await page.waitForFunction(() => document.querySelector("#feed-state").textContent === "live", { timeout: 15000 });
  // The complaints about the refused reads are gone once they succeed.
  await page.waitForFunction(() => document.querySelector("#notice").hidden &&
                                   document.querySelector("#summary").textContent.startsWith("leader "),
                             { timeout: 5000 });
  assert.deepEqual(errors, []);
  await shot(page, "read-token");
  log("read token: asked for once, then the group and the live feed");
}

async function main() {
  if (process.env.TENURE_READ_TOKEN) {
    const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true,
                                             args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
    try {
      await mainReadToken(browser);
    } finally {
      await browser.close();
    }
    return;
  }
  await checkAssets();
  await checkPrefixRoute();
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const problems = [];
  try {
    const page = await browser.newPage();
    page.on("console", (m) => {
      if (m.type() !== "error" && m.type() !== "warn") return;
      if (/status of 503/.test(m.text()) && inHandover(Date.now())) {
        return log(`during the handover (allowed): ${m.text()} ${(m.location() || {}).url || ""}`);
      }
      problems.push(`console ${m.type()}: ${m.text()} ${(m.location() || {}).url || ""}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    // Every list the page asks for is one bounded page: never the whole state.
    const unbounded = [];
    const limits = { "/v1/shards": 50, "/v1/workers": 1000, "/v1/rebalance": 200 };
    page.on("request", (r) => {
      const url = new URL(r.url());
      const cap = limits[url.pathname];
      if (cap && r.method() === "GET" && !(Number(url.searchParams.get("limit")) <= cap)) unbounded.push(r.url());
    });
    page.on("requestfailed", (r) => {
      // The watch stream is cut when the page goes away; anything else is a failure.
      if (!r.url().includes("/v1/watch")) problems.push(`request failed: ${r.url()} ${r.failure().errorText}`);
    });
    await page.setViewport({ width: 1280, height: 800 });
    await page.goto(`${BASE}/ui`, { waitUntil: "load" });
    await checkGroup(page);
    await checkWorkers(page);
    await checkMoveShowsUp(page);
    await checkRebalancePreview(page);
    await checkDrainClick(page);
    await checkMoveForm(page);
    await checkTransferLeadership(page);
    await checkEventsView(page);
    await overviewShot(page);
    await checkPhone(page);
    assert.deepEqual(problems, [], "the page logged errors");
    assert.deepEqual(unbounded, [], "lists fetched without a bounded limit");
    log("ok: no console errors");
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error("FAILED:", e && e.stack ? e.stack : e);
  process.exit(1);
});
