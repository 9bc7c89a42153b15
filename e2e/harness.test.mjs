// The harness's own tests: a shop process is started and stopped, axe-core
// runs under the shops' Content-Security-Policy (and an inline script tag
// would not), violations fail with a readable list, and a failed test keeps
// its screenshot and log. No shop binary needed: a tiny HTTP server and a
// stand-in script play the parts.
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nodeTest from "node:test";
import {
  ARTIFACTS,
  checkA11y,
  eventually,
  launchBrowser,
  openContext,
  pageProblems,
  startShop,
  test,
  withArtifacts,
} from "./harness.mjs";

const CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

const PAGES = {
  "/good": `<!doctype html><html lang="en"><head><title>Good</title></head>
    <body><main><h1>Fine</h1><button type="button">Buy</button></main></body></html>`,
  "/bad": `<!doctype html><html lang="en"><head><title>Bad</title></head>
    <body><main><h1>Not fine</h1><button type="button"></button><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="></main></body></html>`,
};

/** A server of PAGES under the shops' CSP, for the test's duration. */
async function site(t) {
  const server = createServer((request, response) => {
    const body = PAGES[request.url];
    response.writeHead(body ? 200 : 404, { "content-type": "text/html; charset=utf-8", "content-security-policy": CSP });
    response.end(body ?? "not found");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${server.address().port}`;
}

test("axe-core runs under `default-src 'self'`, where an inline script tag is refused (and reported)", async (t) => {
  const base = await site(t);
  const browser = await launchBrowser({ t });
  const page = await (await openContext(browser)).newPage();
  await page.goto(`${base}/good`);
  const refused = await page
    .addScriptTag({ content: "window.inlineRan = true;" })
    .then(() => false)
    .catch(() => true);
  assert.equal(await page.evaluate(() => window.inlineRan === true), false, "the CSP refuses inline scripts");
  t.diagnostic(`addScriptTag with inline content: ${refused ? "rejected" : "added, but did not run"}`);
  await eventually(() => pageProblems().length > 0, { message: "the CSP refusal in pageProblems()" });
  assert.match(pageProblems()[0], /^CSP refusal on http:\/\/127\.0\.0\.1:\d+\/good: /);
  const violations = await checkA11y(page, { label: "good page" });
  assert.deepEqual(violations.filter((v) => v.impact === "serious" || v.impact === "critical"), []);
});

nodeTest("checkA11y fails on serious or critical violations and names them", async (t) => {
  const base = await site(t);
  const browser = await launchBrowser({ t });
  const page = await (await openContext(browser)).newPage();
  await page.goto(`${base}/bad`);
  await assert.rejects(checkA11y(page, { label: "bad page" }), (error) => {
    assert.match(error.message, /on bad page/);
    assert.match(error.message, /\[critical\] button-name/);
    assert.match(error.message, /\[critical\] image-alt/);
    return true;
  });
});

nodeTest("startShop waits for `listening on`, and stop ends the process", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "e2e-harness-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, "fake-shop");
  writeFileSync(
    bin,
    '#!/bin/sh\necho "starting with $*"\necho "to stderr" >&2\necho "db ${DATABASE_URL:-unset}"\n' +
      'echo "listening on http://127.0.0.1:9"\nexec sleep 60\n',
  );
  chmodSync(bin, 0o755);
  const saved = process.env.SHOP_BIN_DIR;
  process.env.SHOP_BIN_DIR = dir;
  t.after(() => {
    if (saved === undefined) delete process.env.SHOP_BIN_DIR;
    else process.env.SHOP_BIN_DIR = saved;
  });
  const shop = await startShop("fake-shop", { args: ["--manual-clock"], env: { DATABASE_URL: undefined }, t });
  assert.equal(shop.url, "http://127.0.0.1:9");
  assert.match(shop.stdout, /^starting with --port 0 --manual-clock$/m);
  assert.match(shop.stdout, /^db unset$/m);
  await shop.stop();
  const { signal } = await shop.exited;
  assert.equal(signal, "SIGTERM");
  assert.match(shop.log(), /\[\+[\d.]+s err\] to stderr/);

  writeFileSync(join(dir, "dies"), "#!/bin/sh\necho 'error: no database' >&2\nexit 1\n");
  chmodSync(join(dir, "dies"), 0o755);
  await assert.rejects(startShop("dies", { t }), /exited \(code 1.*\n.*error: no database/s);
});

nodeTest("a failed test keeps a screenshot of every open page and the logs", async (t) => {
  const base = await site(t);
  const name = "harness self-test, failing on purpose";
  const stem = join(ARTIFACTS, "harness--harness-self-test-failing-on-purpose");
  const fake = { name, filePath: "/somewhere/harness.test.mjs", after: () => {} };
  t.after(() => {
    for (const suffix of ["--1.png", "--2.png", ".log"]) rmSync(stem + suffix, { force: true });
  });
  const body = withArtifacts(async () => {
    const browser = await launchBrowser();
    const context = await openContext(browser);
    await (await context.newPage()).goto(`${base}/good`);
    await (await context.newPage()).goto(`${base}/bad`);
    throw new Error("on purpose");
  });
  await assert.rejects(body(fake), /on purpose[\s\S]*evidence: .*\.log/);
  assert.ok(existsSync(`${stem}--1.png`) && existsSync(`${stem}--2.png`), "one screenshot per page");
  const log = readFileSync(`${stem}.log`, "utf8");
  assert.match(log, /failure: Error: on purpose/);
  assert.match(log, /\[navigated\] http:\/\/127\.0\.0\.1:\d+\/bad/);
});
