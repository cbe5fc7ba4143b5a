// End-to-end test of the web UI in headless Chromium (run by tests/ui_e2e.rs).
//
// Environment: NJ_UI_URL (the server), NJ_MARKER (the file the failing task
// waits for), NJ_SHOTS (screenshot folder), NIGHTJAR_CHROMIUM (the browser),
// NIGHTJAR_PLAYWRIGHT_CORE (the playwright-core package folder), NJ_GO (the
// file the follow DAG's task waits for).
//
// Steps: the DAG list, the grid with the failed run, the failed task (its
// error and its log), "Rerun failed tasks", and the run turning green; then
// "Run now" of a long task and its log followed live.
import { createRequire } from "node:module";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const need = (name) => {
  const v = process.env[name];
  if (!v) { console.error(`e2e: ${name} is not set`); process.exit(2); }
  return v;
};
const base = need("NJ_UI_URL");
const marker = need("NJ_MARKER");
const go = need("NJ_GO");
const shots = need("NJ_SHOTS");
const { chromium } = createRequire(import.meta.url)(need("NIGHTJAR_PLAYWRIGHT_CORE"));

const profile = mkdtempSync(join(tmpdir(), "nj-chromium-"));
// A fresh profile (--user-data-dir): playwright passes it for a
// persistent context.
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: need("NIGHTJAR_CHROMIUM"),
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const step = (msg) => console.log(`e2e: ${msg}`);
const expect = (cond, msg) => { if (!cond) throw new Error(msg); };
let page;
try {
  page = await browser.newPage();
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.on("response", (r) => { if (r.status() >= 400) consoleErrors.push(`HTTP ${r.status()} ${r.url()}`); });

  // 1. The DAG list.
  await page.goto(base + "/");
  await page.waitForSelector("#dags tr[data-dag=nightly]");
  const row = page.locator("#dags tr[data-dag=nightly]");
  expect(await row.locator(".sq.s-failed").count() === 1, "the DAG list shows one failed run square");
  expect((await row.textContent()).includes("Europe/London"), "the DAG list shows the time zone");
  await page.screenshot({ path: join(shots, "1-dag-list.png"), fullPage: true });
  step("DAG list ok");

  // 2. The grid with the failed run.
  await row.locator("a.dag-link").click();
  await page.waitForSelector("#grid");
  const failedCell = page.locator("#grid a.cell.s-failed");
  expect(await failedCell.count() === 1, "the grid shows one failed cell");
  const title = await failedCell.getAttribute("title");
  expect(title.includes("attempt 1"), `the cell's hover text has attempts: ${title}`);
  await page.screenshot({ path: join(shots, "2-grid.png"), fullPage: true });
  step("grid ok: " + title);

  // 3. The failed task: its error and its log.
  await failedCell.click();
  await page.waitForSelector("#task-error");
  const error = await page.locator("#task-error").textContent();
  expect(/exit/.test(error), `the task page shows the error: ${error}`);
  const log = await page.locator("#log").textContent();
  expect(log.includes("waiting for the marker"), `the task page shows the log: ${log}`);
  expect(log.includes("marker missing"), `the log has the task's stderr: ${log}`);
  await page.screenshot({ path: join(shots, "3-failed-task.png"), fullPage: true });
  step("failed task ok: " + error.trim().split("\n")[0]);

  // 4. Fix the cause, press "Rerun failed tasks", see the run turn green.
  writeFileSync(marker, "ok");
  await page.locator("#rerun-failed").click();
  await page.waitForURL(/\/runs\/.*watch=1/);
  await page.waitForSelector("#run-state.s-success", { timeout: 60000 });
  const tasks = await page.locator("#tasks .badge").allTextContents();
  expect(tasks.every((s) => s === "success"), `every task succeeded: ${tasks}`);
  await page.screenshot({ path: join(shots, "4-run-green.png"), fullPage: true });
  step("rerun ok: the run is green");

  // 5. Back on the grid, the column is green.
  await page.goto(base + "/dags/nightly");
  expect(await page.locator("#grid a.cell.s-failed").count() === 0, "no failed cell left");
  expect(await page.locator("#grid thead a.sq.s-success").count() === 1, "the run's column is green");
  expect((await page.locator("#audit").textContent()).includes("rerun_failed"), "the action is in the audit list");
  await page.screenshot({ path: join(shots, "5-grid-green.png"), fullPage: true });
  step("grid green ok");

  // 6. "Run now" a DAG whose task runs until go.txt exists; its task page
  //    follows the log as lines come.
  await page.goto(base + "/dags/follow");
  await page.locator("#run-now button[type=submit]").click();
  await page.waitForURL(/\/dags\/follow\?watch=1/);
  await page.locator("#grid thead a.sq").first().click();
  await page.waitForSelector("#tasks tr[data-task=tail] a");
  await page.locator("#tasks tr[data-task=tail] a").click();
  await page.waitForFunction(() => document.getElementById("log").textContent.includes("started"));
  expect(await page.locator("#log").getAttribute("data-follow") === "true", "the running task's log is followed");
  expect(!(await page.locator("#log").textContent()).includes("finished"), "not finished yet");
  writeFileSync(go, "go");
  await page.waitForFunction(() => document.getElementById("log").textContent.includes("finished"), null, { timeout: 60000 });
  await page.waitForFunction(() => document.getElementById("log-status").textContent === "task finished");
  await page.screenshot({ path: join(shots, "6-log-followed.png"), fullPage: true });
  step("log follow ok");
  expect(consoleErrors.length === 0, `no console errors: ${consoleErrors.join("; ")}`);
  step("all steps passed");
} catch (e) {
  if (page) await page.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
  console.error("e2e FAILED: " + (e && e.stack || e));
  process.exitCode = 1;
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
