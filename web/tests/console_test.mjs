// The web console in a real browser (Debian's Chromium, headless, driven by playwright-core)
// against a real drover serve with real agents: started here, torn down at the end.
// What it checks: login (a bad token refused, the token kept in sessionStorage only, never
// in a URL), the overview's counts, the device list with a filter and a change that shows up
// without a reload, a device's page with its deployment history from a real rollout, an
// operator accepting a pending device with the console's button, and a viewer who sees no
// button that would fail; a rollout from the form (previewed, predicted), its chart, a halt
// and a rollback; a rollout's health gates; monitoring — a device whose agent died found
// offline, at risk in the fleet's health and on its own page, its alert acknowledged and
// resolved from the alerts page; and the console behind a reverse proxy's path prefix.
// Screenshots of each page go to SCREENSHOTS.
//
// Usage: node tests/console_test.mjs   with DROVER_BIN (the directory holding drover and
// drover-agent), SCREENSHOTS (a directory), CHROMIUM (default /usr/bin/chromium).
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import http from "node:http";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const bin = process.env.DROVER_BIN;
const shots = process.env.SCREENSHOTS;
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!bin || !shots) {
  console.error("DROVER_BIN and SCREENSHOTS must be set");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const work = mkdtempSync(join(tmpdir(), "drover-console-"));
const children = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function start(cmd, args, log) {
  const out = join(work, log);
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], cwd: work });
  let text = "";
  const keep = (d) => {
    text += d;
    writeFileSync(out, text);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  children.push(child);
  return { child, text: () => text };
}

async function until(what, fn, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

const drover = join(bin, "drover");
let server = "";
let adminToken = "";
function cli(...args) {
  return execFileSync(drover, args, {
    cwd: work,
    env: { ...process.env, DROVER_SERVER: server, DROVER_TOKEN: adminToken },
    encoding: "utf8",
  });
}
async function api(method, path, token, body) {
  const r = await fetch(`${server}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

function agentConfig(id, revision, token, healthCheck) {
  const dir = join(work, id);
  mkdirSync(dir, { recursive: true });
  const config = {
    server,
    data_dir: dir,
    device: { id, type: "thermostat", hardware_revision: revision, site: "lab" },
    component: "firmware",
    installed: { firmware: "1.0.0" },
    poll: { default: "2s", backoff_initial: "1s", backoff_max: "3s" },
    // Its uptime every second, sent at once: fresh against the profile's contract below.
    telemetry: { interval: "1s", send_every: "1s", collect: ["uptime"] },
    commit_timeout: "1m",
    module: { type: "file", target: join(dir, "firmware.bin"), restart: ["true"] },
  };
  if (token) config.enrollment_token = token;
  if (healthCheck) config.health_checks = [{ command: healthCheck, timeout: "10s" }];
  const path = join(work, `${id}.json`);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

let browser;
let failed = false;
try {
  // The server, on a port it picks.
  adminToken = execFileSync(drover, ["token", "create", "--data", "server", "--name", "admin", "--init"], {
    cwd: work,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  }).trim();
  // One remediation rule: a device offline is a person's at once.
  writeFileSync(join(work, "rules.json"), JSON.stringify({ rules: [{ name: "offline", condition: "offline", after: "0s" }] }));
  const serve = start(
    drover,
    ["serve", "--data", "server", "--listen", "127.0.0.1:0", "--enrollment-token", "lab-token",
     "--poll-interval", "2s", "--busy-poll-interval", "1s", "--tick-interval", "1s",
     "--remediation-rules", "rules.json", "--remediation-interval", "1s"],
    "serve.log",
  );
  const port = await until("the server", () => /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(serve.text())?.[1]);
  server = `http://127.0.0.1:${port}`;
  assert.match(serve.text(), /web console at http:\/\/127\.0\.0\.1:\d+\/console\//);
  const viewer = await api("POST", "/tokens", adminToken, { name: "watcher", role: "viewer" });
  writeFileSync(join(work, "site.json"),
    JSON.stringify({ name: "lab", time_zone: "UTC", maintenance_windows: [{ days: "daily", start: "00:00", length: "24h" }] }));
  cli("site", "put", "site.json");

  // The thermostats report every 5 seconds, 5 late allowed; quiet for 20 they are offline.
  await api("PUT", "/profiles/thermostat", adminToken,
    { device_type: "thermostat", telemetry: { report_every: "5s", late_after: "5s", stale_after: "20s" } });
  // Two devices enrolled with the token, one waiting for an operator (no token).
  start(join(bin, "drover-agent"), ["--config", agentConfig("thermo-1", "rev-a", "lab-token")], "thermo-1.log");
  // thermo-2's health check fails once the test lays down its marker: a bad release on rev-b.
  const marker = join(work, "rev-b-is-broken");
  const thermo2 = start(join(bin, "drover-agent"),
    ["--config", agentConfig("thermo-2", "rev-b", "lab-token", ["sh", "-c", `test ! -e ${marker}`])], "thermo-2.log");
  start(join(bin, "drover-agent"), ["--config", agentConfig("thermo-9", "rev-a", null)], "thermo-9.log");
  await until("three devices", async () => (await api("GET", "/devices?limit=10", adminToken)).matched === 3);
  await until("two check-ins", async () =>
    (await api("GET", "/devices?limit=10", adminToken)).devices.filter((d) => d.last_seen !== null).length >= 2);

  // A real rollout, so that a device has a history.
  writeFileSync(join(work, "fw-2.bin"), Buffer.alloc(200000, 7));
  cli("artifact", "upload", "fw-2.bin", "--name", "firmware", "--version", "2.0.0", "--device-type", "thermostat");
  writeFileSync(join(work, "plan.json"), JSON.stringify({
    name: "fw-2", artifact: { name: "firmware", version: "2.0.0" },
    filter: { device_types: ["thermostat"] }, stages: [{ name: "all", percent: 100 }],
    gate: { max_failure_rate: 0, min_sample: 1, health_window: "1h",
            health: [{ metric: "uptime_seconds", measure: "slope", worse: "lower" }] },
    on_failure: "pause",
  }));
  cli("rollout", "create", "plan.json", "--start");
  await until("the rollout to finish", async () =>
    ["completed", "completed_partial"].includes((await api("GET", "/rollouts/rollout-0001", adminToken)).state), 90000);

  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ["--no-sandbox"] });

  // --- Login: a bad token is refused; the good one is kept in sessionStorage only.
  const admin = await browser.newPage({ viewport: { width: 1360, height: 860 } });
  const consoleErrors = [];
  // Errors the page logged; the one expected is the 401 of the bad token's /whoami.
  admin.on("console", (m) => {
    if (m.type() === "error" && !(m.text().includes("401") && m.location().url.endsWith("/api/v1/whoami"))) {
      consoleErrors.push(`${m.text()} (${m.location().url})`);
    }
  });
  admin.on("pageerror", (e) => consoleErrors.push(String(e)));
  // Polls the browser revalidated with the ETag it held (the server's 304 to such a request
  // is checked over the wire by tests/transport/etag_test.cc).
  let revalidated = 0;
  admin.on("request", async (r) => {
    if (r.url().includes("/api/v1/") && (await r.allHeaders())["if-none-match"]) revalidated++;
  });
  await admin.goto(`${server}/`);
  assert.equal(new URL(admin.url()).pathname, "/console/");
  await admin.fill("#token", "drover_not-a-token");
  await admin.click("button[type=submit]");
  await admin.getByRole("alert").filter({ hasText: "not valid" }).waitFor();
  await admin.screenshot({ path: join(shots, "login.png") });
  await admin.fill("#token", adminToken);
  await admin.click("button[type=submit]");
  await admin.locator("nav .who").filter({ hasText: "admin (admin)" }).waitFor();
  assert.ok(!admin.url().includes(adminToken), "the token is not in the URL");
  assert.equal(await admin.evaluate(() => sessionStorage.getItem("drover.token")), adminToken);
  assert.equal(await admin.evaluate(() => localStorage.length), 0);

  // --- Overview: the counts the API gives.
  const card = (label) => admin.locator(`[data-card="${label}"] .n`);
  await until("the overview's counts", async () => (await card("devices").textContent()) === "3");
  assert.equal(await card("waiting for acceptance").textContent(), "1");
  await admin.getByRole("cell", { name: "lab", exact: true }).waitFor();
  const revisions = await admin.locator('[data-breakdown="Hardware revision"] tbody tr').allTextContents();
  assert.deepEqual(revisions, ["rev-a2", "rev-b1"]);
  assert.match(await admin.locator('[data-breakdown="Installed"]').textContent(), /firmware@2\.0\.0\s*2/);
  assert.match(await admin.locator("table.sites").textContent(), /lab\s*UTC\s*3/);
  await admin.screenshot({ path: join(shots, "overview.png"), fullPage: true });

  // --- Devices: the list, a filter, and a change made elsewhere shown without a reload.
  await admin.click("nav >> text=Devices");
  await admin.locator("table.devices tbody tr").nth(2).waitFor();
  assert.equal(await admin.locator("table.devices tbody tr").count(), 3);
  await admin.fill("input[name=hardware_revision]", "rev-b");
  await admin.click("form.filters button[type=submit]");
  await until("the filtered list", async () => (await admin.locator("table.devices tbody tr").count()) === 1);
  assert.match(await admin.locator("table.devices tbody").textContent(), /thermo-2/);
  assert.match(admin.url(), /#\/devices\?hardware_revision=rev-b$/);
  cli("device", "tag", "thermo-2", "lobby");
  await admin.locator("table.devices tbody td", { hasText: "lobby" }).waitFor({ timeout: 15000 });
  await admin.screenshot({ path: join(shots, "devices.png"), fullPage: true });

  // --- A device's page: identity, check-ins, its deployment's steps from the rollout.
  await admin.click("text=thermo-2");
  await admin.locator("h1", { hasText: "Device thermo-2" }).waitFor();
  await admin.locator("section.deployment h3", { hasText: "rollout-0001 · firmware@2.0.0 · succeeded" }).waitFor();
  const steps = await admin.locator("table.history tbody tr td:nth-child(2)").allTextContents();
  assert.ok(steps.includes("offer") && steps.includes("succeeded"), `steps: ${steps}`);
  assert.match(await admin.locator(".facts").textContent(), /firmware@2\.0\.0/);
  await admin.screenshot({ path: join(shots, "device.png"), fullPage: true });

  // --- A viewer sees the pending device without a button; the admin accepts it in the page.
  const view = await browser.newPage({ viewport: { width: 1360, height: 860 } });
  await view.goto(`${server}/console/#/devices/thermo-9`);
  await view.fill("#token", viewer.token);
  await view.click("button[type=submit]");
  await view.locator(".facts", { hasText: "pending" }).waitFor();
  assert.equal(await view.locator("main button").count(), 0, "a viewer sees no action button");
  await view.screenshot({ path: join(shots, "device-viewer.png"), fullPage: true });

  // --- An operator may accept or reject a pending device, and no more: a rejection is
  // undone by an admin only, and the operator has no Tokens page but may start rollouts.
  const ops = await browser.newPage({ viewport: { width: 1360, height: 860 } });
  const opsToken = (await api("POST", "/tokens", adminToken, { name: "shift-lead", role: "operator" })).token;
  await ops.goto(`${server}/console/#/devices/thermo-9`);
  await ops.fill("#token", opsToken);
  await ops.click("button[type=submit]");
  await ops.locator("nav .who").filter({ hasText: "shift-lead (operator)" }).waitFor();
  assert.equal(await ops.locator("nav >> text=Tokens").count(), 0, "an operator has no Tokens page");
  ops.on("dialog", (d) => d.accept());
  await ops.getByRole("button", { name: "Reject" }).click();
  await ops.locator(".facts", { hasText: "rejected" }).waitFor();
  assert.equal(await ops.locator("main button").count(), 0, "an operator cannot undo a rejection");
  await ops.screenshot({ path: join(shots, "device-operator.png"), fullPage: true });
  await admin.goto(`${server}/console/#/devices/thermo-9`);
  await admin.getByRole("button", { name: "Undo the rejection" }).click();
  await admin.locator(".facts", { hasText: "pending" }).waitFor();
  await ops.click("nav >> text=Rollouts");
  await ops.locator("a.button", { hasText: "New rollout" }).waitFor();
  await ops.close();

  await admin.getByRole("button", { name: "Accept" }).click();
  await until("the acceptance", async () => (await api("GET", "/devices/thermo-9", adminToken)).enrollment === undefined);
  await admin.locator(".facts", { hasText: "accepted" }).waitFor();
  await view.locator(".facts", { hasText: "accepted" }).waitFor({ timeout: 15000 });

  // --- A rollout from the form: previewed, created and started; rev-b's devices fail their
  // health check, so its stratum halts with the gate's reason; then the admin rolls it back.
  admin.on("dialog", (d) => d.accept());
  for (const v of ["1.0.0", "3.0.0"]) {
    writeFileSync(join(work, `fw-${v}.bin`), Buffer.alloc(150000, v.charCodeAt(0)));
    cli("artifact", "upload", `fw-${v}.bin`, "--name", "firmware", "--version", v, "--device-type", "thermostat");
  }
  writeFileSync(marker, "");
  await admin.click("nav >> text=Rollouts");
  await admin.locator("table.rollouts", { hasText: "rollout-0001" }).waitFor();
  await admin.screenshot({ path: join(shots, "rollouts.png"), fullPage: true });
  await admin.click("text=New rollout");
  await admin.locator("select[name=artifact] option[value='firmware@3.0.0']").waitFor({ state: "attached" });
  await admin.selectOption("select[name=artifact]", "firmware@3.0.0");
  await admin.fill("input[name=stages]", "all:100");
  await admin.locator("input[name=stages]").dispatchEvent("change");
  await admin.fill("input[name=max_failure_rate]", "0");
  await admin.locator("input[name=max_failure_rate]").dispatchEvent("change");
  await admin.fill("input[name=min_sample]", "1");
  await admin.locator("input[name=min_sample]").dispatchEvent("change");
  const planText = await admin.inputValue("textarea[name=plan]");
  assert.deepEqual(JSON.parse(planText).artifact, { name: "firmware", version: "3.0.0" });
  await admin.getByRole("button", { name: "Preview" }).click();
  await admin.locator("[data-preview=targets]", { hasText: "3 devices targeted" }).waitFor();
  // The twin's prediction on the live fleet, with the install time the form gives.
  await admin.click("details.assumptions summary");
  await admin.fill("input[name=install_time]", "20s");
  await admin.getByRole("button", { name: "Predict" }).click();
  await admin.locator("[data-prediction=fleet]", { hasText: "on the 3 devices in service" }).waitFor();
  assert.match(await admin.locator("[data-prediction=times]").textContent(), /3 targeted; 50% updated after .*; the rollout ends completed/);
  assert.equal(await admin.locator("table.predicted-stages tbody tr").count(), 1);
  await admin.locator(".prediction", { hasText: "install 20s" }).waitFor();
  await admin.screenshot({ path: join(shots, "rollout-new.png"), fullPage: true });
  assert.equal((await api("GET", "/rollouts", adminToken)).rollouts.length, 1, "a preview or a prediction creates nothing");
  await admin.getByRole("button", { name: "Create and start" }).click();
  await admin.locator("h1", { hasText: "Rollout rollout-0002" }).waitFor();
  const halted = admin.locator("table.halted tbody tr", { hasText: "hardware_revision=rev-b" });
  await halted.waitFor({ timeout: 60000 });
  assert.match(await halted.textContent(), /1 of 1 failed/);
  await admin.locator("table.strata tbody tr", { hasText: "HALTED" }).waitFor();
  await admin.locator("table.events", { hasText: "stratum_halted" }).waitFor();
  await admin.locator("[data-fact=State]", { hasText: "completed_partial" }).waitFor({ timeout: 60000 });
  // The chart is the server's timeline: two updated, one failed (rev-b), by the end.
  const chart = admin.locator(".chart");
  await admin.locator(".chart[data-updated='2'][data-failed='1']").waitFor({ timeout: 15000 });
  assert.equal(await chart.getAttribute("data-series"), "all");
  assert.ok(Number(await chart.getAttribute("data-points")) >= 2, "the chart has points over time");
  await admin.locator(".chart canvas").waitFor();
  // One stratum alone: rev-b's device, offered and failed.
  await admin.selectOption("select[name=chart-series]", "stratum:rev-b");
  await admin.locator(".chart[data-series='stratum:rev-b'][data-offered='1'][data-failed='1'][data-updated='0'][data-size='1']").waitFor();
  await admin.selectOption("select[name=chart-series]", "all");
  await admin.locator(".chart[data-series='all'][data-size='3']").waitFor();
  await admin.screenshot({ path: join(shots, "rollout.png"), fullPage: true });

  // The viewer sees the same rollout and no button; the admin rolls it back.
  await view.goto(`${server}/console/#/rollouts/rollout-0002`);
  await view.locator("[data-fact=State]", { hasText: "completed_partial" }).waitFor();
  assert.equal(await view.locator("main button").count(), 0, "a viewer sees no rollout button");
  // A page opened after the fact sees the whole rollout's history, not only from now on.
  await view.locator(".chart[data-updated='2'][data-failed='1']").waitFor();
  await view.screenshot({ path: join(shots, "rollout-viewer.png"), fullPage: true });
  await admin.locator("button[data-action=rollback]").click();
  await admin.locator("[data-fact=State]", { hasText: /rolled_back|rollback_incomplete/ }).waitFor({ timeout: 90000 });
  assert.equal((await api("GET", "/rollouts/rollout-0002", adminToken)).state, "rolled_back");
  assert.equal((await api("GET", "/devices/thermo-1", adminToken)).installed.firmware, "2.0.0");

  // --- The first rollout's health gate: its table, nothing paired (the one stage updated
  // every device: nobody was left to compare with).
  await admin.goto(`${server}/console/#/rollouts/rollout-0001`);
  const gate = admin.locator("table.health-gates tbody tr", { hasText: "uptime_seconds" }).first();
  await gate.waitFor();
  assert.match(await gate.textContent(), /^all\s*uptime_seconds\s*slope\s*0\s*0\s*0\s*0\.00/);
  await admin.locator("[data-health-waiting]").waitFor();

  // --- Monitoring: thermo-2's agent dies. Offline past its contract, it is at risk in the
  // fleet's health and critical on its page; the rule hands it to a person; the admin
  // acknowledges the alert, then resolves it.
  await admin.click("nav >> text=Health");
  await until("the fleet's health", async () => (await admin.locator('[data-card="devices"] .n').textContent()) === "3");
  thermo2.child.kill("SIGKILL");
  // Late first, then offline past the contract's 20 seconds.
  const risk = admin.locator("table.at-risk tbody tr", { hasText: "offline:" });
  await risk.waitFor({ timeout: 60000 });
  assert.match(await risk.textContent(), /^thermo-2\s*thermostat\s*critical\s*\d+\s*offline:/);
  assert.equal(await admin.locator('[data-card="critical"] .n').textContent(), "1");
  await admin.screenshot({ path: join(shots, "health.png"), fullPage: true });
  await admin.click("nav >> text=Alerts");
  const alertRow = admin.locator("table.alerts tbody tr", { hasText: "thermo-2" }).first();
  await alertRow.waitFor({ timeout: 30000 });
  assert.match(await alertRow.textContent(), /offline\s*open/);
  await view.goto(`${server}/console/#/alerts`);
  await view.locator("table.alerts tbody tr", { hasText: "thermo-2" }).first().waitFor();
  assert.equal(await view.locator("main button").count(), 0, "a viewer sees no alert button");
  await alertRow.locator("button[data-action=acknowledge]").click();
  await admin.locator("table.alerts tbody tr", { hasText: "acknowledged" }).first().waitFor();
  const [first] = (await api("GET", "/alerts?device=thermo-2", adminToken)).alerts;
  assert.equal(first.state, "acknowledged");
  assert.match(first.acknowledged_by, /admin/);
  await admin.screenshot({ path: join(shots, "alerts.png"), fullPage: true });
  await admin.locator("table.alerts tbody tr", { hasText: "acknowledged" }).first().locator("button[data-action=resolve]").click();
  await until("the resolution", async () =>
    (await api("GET", `/alerts/${first.id}`, adminToken)).state === "resolved");
  await admin.goto(`${server}/console/#/alerts?state=all`);
  await admin.locator("table.alerts tbody tr", { hasText: "resolved" }).first().waitFor();
  // The device is still dead: the rule opens its alert again, listed beside the resolved one.
  await admin.locator("table.alerts tbody tr", { hasText: /offline\s*open/ }).first().waitFor({ timeout: 30000 });
  const again = (await api("GET", "/alerts?device=thermo-2", adminToken)).alerts;
  assert.equal(again.length, 1);
  assert.notEqual(again[0].id, first.id);
  // Its page: critical with the reason, and the alerts that were opened for it.
  await admin.goto(`${server}/console/#/devices/thermo-2`);
  await admin.locator("[data-health=critical]").waitFor();
  assert.match(await admin.locator("table.reasons").textContent(), /offline\s*critical/);
  await admin.locator(".device-health table.alerts tbody tr", { hasText: "resolved" }).first().waitFor();
  await admin.screenshot({ path: join(shots, "device-health.png"), fullPage: true });

  // --- Artifacts, tokens (admin only) and the audit log.
  await admin.click("nav >> text=Artifacts");
  await admin.locator("table.artifacts tbody tr").nth(2).waitFor();
  assert.equal(await admin.locator("table.artifacts tbody tr").count(), 3);
  await admin.screenshot({ path: join(shots, "artifacts.png"), fullPage: true });
  assert.equal(await view.locator("nav >> text=Tokens").count(), 0, "a viewer has no Tokens page");
  await admin.click("nav >> text=Tokens");
  await admin.fill("input[name=name]", "release-bot");
  await admin.selectOption("select[name=role]", "operator");
  await admin.click("text=Create token");
  const secret = await admin.locator("[data-secret]").textContent();
  await admin.locator("table.tokens tbody tr", { hasText: "release-bot" }).waitFor();
  await admin.screenshot({ path: join(shots, "tokens.png"), fullPage: true });
  const bot = await api("GET", "/whoami", secret);
  assert.equal(bot.role, "operator");
  // A viewer who types the tokens page's address gets no form, only why.
  await view.goto(`${server}/console/#/tokens`);
  await view.locator("main", { hasText: "needs the admin role" }).waitFor();
  assert.equal(await view.locator("main form").count(), 0);
  await admin.click("nav >> text=Audit");
  const rollbackRow = admin.locator("table.audit tbody tr", { hasText: "POST /api/v1/rollouts/{id}/rollback" }).first();
  await rollbackRow.waitFor();
  assert.match(await rollbackRow.textContent(), /token:[0-9a-f]+:admin/);
  await admin.screenshot({ path: join(shots, "audit.png"), fullPage: true });

  // The polls revalidate what the browser holds: they carry its ETag.
  revalidated = 0;
  await admin.click("nav >> text=Artifacts");
  await until("a poll with If-None-Match", () => revalidated > 0, 20000);

  // --- Behind a reverse proxy that serves drover under /drover/: the redirect, the console's
  // files and its API calls all keep the prefix.
  const target = new URL(server);
  const proxy = http.createServer((req, res) => {
    if (!req.url.startsWith("/drover/")) {
      res.writeHead(404).end("not under /drover/");
      return;
    }
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url.slice("/drover".length), headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", (e) => res.writeHead(502).end(String(e)));
    req.pipe(upstream);
  });
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const proxied = await browser.newPage({ viewport: { width: 1360, height: 860 } });
  proxied.on("pageerror", (e) => consoleErrors.push(String(e)));
  await proxied.goto(`http://127.0.0.1:${proxy.address().port}/drover/`);
  assert.equal(new URL(proxied.url()).pathname, "/drover/console/");
  await proxied.fill("#token", viewer.token);
  await proxied.click("button[type=submit]");
  await proxied.locator("nav .who").filter({ hasText: "watcher (viewer)" }).waitFor();
  await until("the overview behind the proxy", async () => (await proxied.locator('[data-card="devices"] .n').textContent()) === "3");
  await proxied.close();
  proxy.close();

  // --- Log out: the token leaves the tab.
  await admin.getByRole("button", { name: "Log out" }).click();
  await admin.locator("#token").waitFor();
  assert.equal(await admin.evaluate(() => sessionStorage.getItem("drover.token")), null);
  assert.deepEqual(consoleErrors, [], "no errors in the page");
  console.log(`console_test: passed; screenshots in ${shots}`);
} catch (e) {
  failed = true;
  console.error(`console_test: FAILED: ${e.stack ?? e}`);
  for (const log of ["serve.log", "thermo-1.log", "thermo-2.log", "thermo-9.log"]) {
    try {
      console.error(`--- ${log}\n${readFileSync(join(work, log), "utf8").slice(-3000)}`);
    } catch {}
  }
} finally {
  if (browser) await browser.close();
  for (const c of children) c.kill("SIGTERM");
  await sleep(300);
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
