// The browser tests' harness: start an example shop's binary, launch Debian's
// Chromium through playwright-core, keep screenshots and logs of a failed
// test, scan pages with axe-core, and wait on conditions (never on time).
//
// Environment:
//   SHOP_BIN_DIR    where the shops' binaries are (`$CARGO_TARGET_DIR/debug`)
//   CHROMIUM_PATH   the browser (default /usr/bin/chromium)
//   E2E_HEADED=1    show the browser (needs a display)
//   E2E_SLOWMO=ms   slow every browser action down, to watch a flow
import { spawn, execFile } from "node:child_process";
import { AsyncLocalStorage } from "node:async_hooks";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { createRequire } from "node:module";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import nodeTest from "node:test";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** Where a failed test leaves its screenshots and logs. */
export const ARTIFACTS = join(here, "artifacts");

// What the running test started: its shops and browsers, so a failure can
// show every page and log, whichever helper started them.
const scope = new AsyncLocalStorage();

function current() {
  return scope.getStore();
}

// ---------------------------------------------------------------------------
// Shops

/**
 * Starts `$SHOP_BIN_DIR/<name> --port 0 ...args` and waits for its
 * `listening on http://...` line.
 *
 * `env` is added to this process's environment; a key set to `undefined` is
 * removed (as `DATABASE_URL: undefined` for the in-memory store). With `t`
 * (a node:test context) the shop is stopped when the test ends.
 *
 * Returns `{ url, stdout, log(), stop(), exited }`: `stdout` is what the shop
 * printed on standard output so far, `log()` both streams interleaved,
 * `stop()` ends it (SIGTERM, then SIGKILL) and `exited` resolves with
 * `{ code, signal }` when it has ended.
 */
export async function startShop(name, { args = [], env = {}, t, timeoutMs = 60_000 } = {}) {
  const dir = process.env.SHOP_BIN_DIR;
  if (!dir) {
    throw new Error(
      "SHOP_BIN_DIR is not set: build the shop (cargo build -p " + name + ") and set SHOP_BIN_DIR " +
        "to $CARGO_TARGET_DIR/debug, or run `bash .ci/browser.sh`",
    );
  }
  const bin = join(dir, name);
  if (!existsSync(bin)) throw new Error(`no shop binary at ${bin}: cargo build -p ${name}`);
  const childEnv = { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "info" };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[key];
    else childEnv[key] = String(value);
  }
  const child = spawn(bin, ["--port", "0", ...args], {
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let all = "";
  const started = Date.now();
  const stamp = () => `+${((Date.now() - started) / 1000).toFixed(3)}s`;
  const exited = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      all += `[${stamp()} exited: code ${code}, signal ${signal}]\n`;
      resolve({ code, signal });
    });
  });
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not print "listening on" within ${timeoutMs} ms:\n${all}`)),
      timeoutMs,
    );
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${bin}: ${error.message}`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (code ${code}, signal ${signal}) before listening:\n${all}`));
    });
    const lines = (stream, tag, onLine) => {
      let rest = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        rest += chunk;
        let end;
        while ((end = rest.indexOf("\n")) >= 0) {
          const line = rest.slice(0, end);
          rest = rest.slice(end + 1);
          all += `[${stamp()} ${tag}] ${line}\n`;
          onLine?.(line);
        }
      });
    };
    lines(child.stdout, "out", (line) => {
      stdout += line + "\n";
      const seen = /^listening on (http:\/\/\S+)/.exec(line);
      if (seen) {
        clearTimeout(timer);
        resolve(seen[1]);
      }
    });
    lines(child.stderr, "err");
  });
  let stopping;
  const shop = {
    name,
    get stdout() {
      return stdout;
    },
    log: () => all,
    exited,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
          await exited;
          clearTimeout(timer);
        }
      })();
      return stopping;
    },
  };
  current()?.shops.push(shop);
  t?.after(() => shop.stop());
  try {
    shop.url = await url;
  } catch (error) {
    await shop.stop();
    throw error;
  }
  return shop;
}

// ---------------------------------------------------------------------------
// The browser

/** The Chromium the tests drive: `CHROMIUM_PATH` or Debian's. */
export function chromiumPath() {
  return process.env.CHROMIUM_PATH || "/usr/bin/chromium";
}

/**
 * Launches headless Chromium (Debian's: playwright-core downloads none).
 * `--no-sandbox` only when running as root, where Chromium's sandbox cannot
 * start. With `t` the browser is closed when the test ends.
 */
export async function launchBrowser({ t } = {}) {
  const executablePath = chromiumPath();
  if (!existsSync(executablePath)) {
    throw new Error(
      `no Chromium at ${executablePath}: apt-get install chromium, or set CHROMIUM_PATH ` +
        "(bash .ci/browser.sh installs it)",
    );
  }
  const args = ["--disable-dev-shm-usage"];
  if (process.getuid?.() === 0) args.push("--no-sandbox");
  const browser = await chromium.launch({
    executablePath,
    headless: process.env.E2E_HEADED !== "1",
    slowMo: Number(process.env.E2E_SLOWMO) || undefined,
    args,
  });
  current()?.browsers.push(browser);
  t?.after(() => browser.close());
  return browser;
}

/**
 * A new browser context (a buyer of its own: its own cookies) whose pages
 * are watched: uncaught errors and CSP refusals are collected for
 * [pageProblems], console errors and navigations go to a failed test's log.
 */
export async function openContext(browser, options = {}) {
  const context = await browser.newContext(options);
  const scoped = current();
  context.on("page", (page) => watchPage(page, scoped));
  return context;
}

function watchPage(page, scoped) {
  const notes = scoped?.notes ?? [];
  const problems = scoped?.problems ?? [];
  const where = () => page.url();
  page.on("pageerror", (error) => {
    problems.push(`uncaught error on ${where()}: ${error.message}`);
    notes.push(`[pageerror] ${where()}: ${error.stack || error.message}`);
  });
  page.on("console", (message) => {
    const text = message.text();
    if (message.type() === "error" || message.type() === "warning") {
      notes.push(`[console.${message.type()}] ${where()}: ${text}`);
    }
    if (/Content Security Policy/i.test(text)) {
      problems.push(`CSP refusal on ${where()}: ${text}`);
    }
  });
  page.on("response", (response) => {
    if (response.status() >= 400) notes.push(`[${response.status()}] ${response.request().method()} ${response.url()}`);
  });
  page.on("requestfailed", (request) => {
    notes.push(`[failed: ${request.failure()?.errorText}] ${request.method()} ${request.url()}`);
  });
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) notes.push(`[navigated] ${frame.url()}`);
  });
}

/**
 * What went wrong in the pages of the running test so far (uncaught script
 * errors, Content-Security-Policy refusals): the flows assert it is empty.
 */
export function pageProblems() {
  return [...(current()?.problems ?? [])];
}

// ---------------------------------------------------------------------------
// Failures keep their evidence

function slug(text) {
  return String(text)
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "")
    .slice(0, 120);
}

async function keepEvidence(t, scoped, error) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = basename(t.filePath ?? process.argv[1] ?? "test").replace(/\.test\.mjs$|\.mjs$/, "");
  const stem = join(ARTIFACTS, `${slug(file)}--${slug(t.name)}`);
  const pages = scoped.browsers
    .filter((b) => b.isConnected())
    .flatMap((b) => b.contexts().flatMap((c) => c.pages()))
    .filter((p) => !p.isClosed());
  const shots = [];
  for (const [i, page] of pages.entries()) {
    const path = pages.length === 1 ? `${stem}.png` : `${stem}--${i + 1}.png`;
    try {
      await page.screenshot({ path, fullPage: true, timeout: 10_000 });
      shots.push(`${path} (${page.url()})`);
    } catch (e) {
      shots.push(`${path}: no screenshot (${e.message.split("\n")[0]})`);
    }
  }
  let log = `test: ${t.name}\nfailure: ${error?.stack ?? error}\n\nscreenshots:\n${shots.join("\n") || "(no open page)"}\n`;
  if (scoped.notes.length) log += `\n== browser\n${scoped.notes.join("\n")}\n`;
  for (const shop of scoped.shops) log += `\n== ${shop.name} at ${shop.url ?? "(not listening)"}\n${shop.log()}`;
  writeFileSync(`${stem}.log`, log);
  return `${stem}.log`;
}

/**
 * Wraps a test body: on failure, every open page of the browsers the test
 * launched is saved as `e2e/artifacts/<file>--<test>[--N].png`, and the
 * shops' logs with the browser's console errors as `<file>--<test>.log`.
 * Shops and browsers the test started are ended afterwards either way.
 */
export function withArtifacts(fn) {
  return async (t) => {
    const scoped = { shops: [], browsers: [], notes: [], problems: [] };
    try {
      await scope.run(scoped, () => fn(t));
    } catch (error) {
      let kept = "";
      try {
        kept = await keepEvidence(t, scoped, error);
      } catch (e) {
        kept = `(could not keep evidence: ${e.message})`;
      }
      if (error instanceof Error) error.message += `\n  evidence: ${kept}`;
      throw error;
    } finally {
      await Promise.allSettled(scoped.browsers.map((b) => b.close()));
      await Promise.allSettled(scoped.shops.map((s) => s.stop()));
    }
  };
}

/** `node:test`'s `test`, with [withArtifacts] around the body. */
export function test(name, options, fn) {
  if (typeof options === "function") [options, fn] = [{}, options];
  return nodeTest(name, options, withArtifacts(fn));
}

// ---------------------------------------------------------------------------
// Accessibility

let axeSource;

/**
 * Runs axe-core on the page as it is now and fails on serious or critical
 * violations, listing each rule, its help and the offending elements.
 *
 * axe's source goes in through `page.evaluate` (the DevTools protocol), not a
 * `<script>` tag: the shops' `Content-Security-Policy: default-src 'self'`
 * refuses inline scripts, and the scan must not loosen the page's policy.
 */
export async function checkA11y(page, { label = page.url(), rules, exclude = [] } = {}) {
  axeSource ??= readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
  const loaded = await page.evaluate(() => typeof window.axe === "object");
  if (!loaded) await page.evaluate(axeSource);
  const result = await page.evaluate(
    async ({ rules, exclude }) => {
      const context = exclude.length ? { include: [document], exclude } : document;
      const options = { resultTypes: ["violations"] };
      if (rules) options.rules = rules;
      const run = await window.axe.run(context, options);
      return run.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        helpUrl: v.helpUrl,
        nodes: v.nodes.map((n) => ({ target: n.target.join(" "), summary: n.failureSummary, html: n.html })),
      }));
    },
    { rules, exclude },
  );
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (bad.length) {
    const lines = bad.flatMap((v) => [
      `- [${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})`,
      ...v.nodes.map((n) => `    at ${n.target}: ${n.html}\n      ${(n.summary ?? "").replace(/\n/g, "\n      ")}`),
    ]);
    throw new Error(`accessibility: ${bad.length} serious or critical violation(s) on ${label}:\n${lines.join("\n")}`);
  }
  return result;
}

// ---------------------------------------------------------------------------
// Waiting on conditions

/**
 * Polls `probe` until it returns a truthy value (returned), or fails after
 * `timeoutMs` with `message` and the last value or error seen.
 */
export async function eventually(probe, { timeoutMs = 30_000, intervalMs = 100, message = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message} (last: ${seen})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// ---------------------------------------------------------------------------
// PostgreSQL: a database of its own per shop run

const execFileP = promisify(execFile);

/** The administrative URL the tests create databases with. */
export function adminDatabaseUrl() {
  return process.env.DATABASE_URL;
}

async function psql(url, sql, timeoutMs = 60_000) {
  try {
    const { stdout } = await execFileP("psql", [url, "-XAtqv", "ON_ERROR_STOP=1", "-c", sql], { timeout: timeoutMs });
    return stdout.trim();
  } catch (error) {
    throw new Error(`psql ${sql}: ${error.stderr || error.message}`);
  }
}

/**
 * Creates a fresh database (`<prefix>_<random>`) with `psql` on the server
 * `DATABASE_URL` names and returns its URL; with `t` it is dropped when the
 * test ends (after the shop has stopped: register the shop after this).
 * Fails, never skips, when `DATABASE_URL` is unset or the server is down.
 *
 * The drop is best effort: `DROP DATABASE` waits for a checkpoint, which
 * takes minutes when other work keeps the disk busy, and a database left
 * behind fails no test (`.ci/browser.sh` drops `e2e_hw_*` before and after
 * a run).
 */
export async function freshDatabase(prefix, { t } = {}) {
  const admin = adminDatabaseUrl();
  if (!admin) {
    throw new Error(
      "DATABASE_URL is not set: the PostgreSQL runs need a server, as in\n" +
        "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bash .ci/browser.sh\n" +
        "(E2E_STORES=memory runs the in-memory store only)",
    );
  }
  const name = `${prefix}_${randomBytes(5).toString("hex")}`;
  await psql(admin, `CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  const drop = () => psql(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`, 120_000);
  t?.after(() =>
    drop().catch((error) => t.diagnostic(`database ${name} left behind: ${error.message.split("\n")[0]}`)),
  );
  return { name, url: url.toString(), drop };
}
