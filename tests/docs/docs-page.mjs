// Drives GET /docs in a real headless browser (Debian's chromium through
// playwright-core; no browser is downloaded) against a running Roster:
// the page must render one block per operation of /openapi.json, offer
// "Authorize", fetch nothing from outside the server, and "Try it out" on
// /healthz must show the live 200 answer. Saves a screenshot.
//
//   node tests/docs/docs-page.mjs http://127.0.0.1:8421 target/docs/docs.png

import { chromium } from "playwright-core";

const [base, screenshot] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const failures = [];
let blocksShown = 0;
const check = (ok, what) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
};

const document = await (await fetch(`${base}/openapi.json`)).json();
const operations = Object.values(document.paths).reduce(
  (n, item) => n + Object.keys(item).filter((k) => ["get", "put", "post", "delete", "patch"].includes(k)).length,
  0,
);

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 2000 } });
  const foreign = [];
  page.on("request", (req) => {
    if (!req.url().startsWith(base) && !req.url().startsWith("data:")) foreign.push(req.url());
  });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  await page.goto(`${base}/docs`, { waitUntil: "networkidle" });
  await page.waitForSelector(".opblock", { timeout: 20000 });
  const blocks = await page.locator(".opblock").count();
  blocksShown = blocks;
  check(blocks === operations, `the page shows ${blocks} operations; the document has ${operations}`);
  check((await page.locator("button.authorize").count()) === 1, `an "Authorize" button is offered`);

  // Try /healthz out and read the live answer.
  const health = page.locator(".opblock", { has: page.locator('[data-path="/healthz"]') }).first();
  await health.locator(".opblock-summary").click();
  await health.locator("button.try-out__btn").click();
  await health.locator("button.execute").click();
  const status = health.locator(".live-responses-table .response .response-col_status").first();
  await status.waitFor({ timeout: 10000 });
  const code = (await status.innerText()).trim();
  const body = await health.locator(".live-responses-table .response-col_description pre").first().innerText();
  check(code === "200", `"Try it out" on /healthz answered ${code}`);
  check(body.includes('"status": "ok"'), `and showed the body ${JSON.stringify(body.slice(0, 60))}`);
  check(foreign.length === 0, `nothing fetched from outside the server (${foreign.length}: ${foreign.slice(0, 3)})`);
  check(errors.length === 0, `no script errors (${errors.slice(0, 3)})`);
  await page.screenshot({ path: screenshot, fullPage: false });
  console.log(`screenshot: ${screenshot}`);
} finally {
  await browser.close();
}
console.log(`docs ${failures.length === 0 ? "pass" : "FAIL"}: ${blocksShown} of ${operations} operations rendered, /healthz tried in the browser, screenshot ${screenshot}`);
process.exit(failures.length === 0 ? 0 : 1);
