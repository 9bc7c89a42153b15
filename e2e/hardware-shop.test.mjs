// The hardware shop in a real Chromium: two buyers racing for one unit, a
// checkout paid on the local payment page with the order turning Paid live,
// a double-clicked Place order, a hold that lapses and is renewed, a payment
// that arrives too late and is refunded, and axe-core on every page. Each
// flow runs on the in-memory store and on PostgreSQL (a database of its own).
//
//   bash .ci/browser.sh                               # builds, installs, runs
//   SHOP_BIN_DIR=$CARGO_TARGET_DIR/debug node --test e2e/   # when built
import assert from "node:assert/strict";
import {
  checkA11y,
  eventually,
  freshDatabase,
  launchBrowser,
  openContext,
  pageProblems,
  startShop,
  test,
} from "./harness.mjs";

const SHOP = "hardware-shop";
/** One of the five fixed listings of the seed catalog (one unit). */
const GPU = "RTX 3090 Founders Edition (used)";
const GPU_PRICE = "AUD 1150.00";
/** The engine's defaults: a hold lasts 15 minutes, a payment window 31. */
const HOLD_MINUTES = 15;
const PAYMENT_WINDOW_MINUTES = 31;

const STORES = (process.env.E2E_STORES ?? "memory,postgres")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
for (const store of STORES) {
  if (store !== "memory" && store !== "postgres") throw new Error(`E2E_STORES: unknown store \`${store}\``);
}

/**
 * The shop on `store`: in memory (DATABASE_URL removed), or on a fresh
 * PostgreSQL database dropped when the test ends. Always the local payment
 * page (the Stripe variables removed).
 */
async function openShop(t, store, args = []) {
  const env = { DATABASE_URL: undefined, STRIPE_SECRET_KEY: undefined, STRIPE_WEBHOOK_SECRET: undefined };
  if (store === "postgres") env.DATABASE_URL = (await freshDatabase("e2e_hw", { t })).url;
  const shop = await startShop(SHOP, { args, env, t });
  if (store === "postgres") assert.match(shop.stdout, /store: PostgreSQL/, "the shop runs on PostgreSQL");
  else assert.match(shop.stdout, /^store: in memory$/m, "the shop runs in memory");
  return shop;
}

/** A browser and `n` buyers, each a context of its own (own cookies, own cart). */
async function buyers(t, shop, n) {
  const browser = await launchBrowser({ t });
  const pages = [];
  for (let i = 0; i < n; i++) {
    const context = await openContext(browser, { baseURL: shop.url });
    pages.push(await context.newPage());
  }
  return pages;
}

/** Scans each page state once per test (labels say which state). */
function scanner() {
  const seen = new Set();
  return async (page, label) => {
    if (seen.has(label)) return;
    seen.add(label);
    await checkA11y(page, { label });
  };
}

/** Opens `path` and waits for the page to be loaded (and live.js started). */
async function open(page, path) {
  const response = await page.goto(path);
  assert.ok(response.ok(), `GET ${path}: ${response.status()}`);
}

/** Clicks `locator` and waits for the navigation it starts to land where `url` says. */
async function clickTo(page, locator, url) {
  await Promise.all([page.waitForURL(url, { waitUntil: "load" }), locator.click()]);
}

/** The path of the product page of `name`, from the catalog. */
async function productPath(page, name, scan) {
  await open(page, "/");
  await scan?.(page, "catalog");
  const href = await page.getByRole("link", { name, exact: true }).getAttribute("href");
  assert.match(href, /^\/products\/[^/]+$/);
  return href;
}

/** The countdown's `m:ss` as seconds, once live.js has formatted it. */
async function countdownSeconds(page) {
  const text = await eventually(
    async () => {
      const value = await page.getByTestId("countdown").textContent();
      return /^\d+:\d\d$/.test(value) && value;
    },
    { message: "the countdown in m:ss" },
  );
  const [m, s] = text.split(":").map(Number);
  return m * 60 + s;
}

/** Adds the product at `path` to the buyer's cart and lands on the cart. */
async function hold(page, path, scan) {
  await open(page, path);
  await scan?.(page, "product");
  await clickTo(page, page.getByTestId("add-to-cart"), (u) => u.pathname === "/cart");
  await page.getByTestId("countdown").waitFor();
  await scan?.(page, "cart with a held line");
}

/** From the cart through checkout to the local payment page; the order id. */
async function placeOrder(page, scan) {
  const cartTotal = (await page.getByTestId("cart-total").textContent()).trim();
  await clickTo(page, page.getByTestId("to-checkout"), (u) => u.pathname === "/checkout");
  await scan?.(page, "checkout");
  assert.equal((await page.getByTestId("checkout-total").textContent()).trim(), cartTotal);
  await clickTo(page, page.getByTestId("place-order"), (u) => u.pathname.startsWith("/pay/"));
  await scan?.(page, "pay");
  assert.equal((await page.getByTestId("pay-amount").textContent()).trim(), cartTotal);
  return orderIdOf(page.url(), "/pay/");
}

function orderIdOf(url, prefix) {
  const path = new URL(url, "http://x").pathname;
  assert.ok(path.startsWith(prefix), `${path} starts with ${prefix}`);
  return decodeURIComponent(path.slice(prefix.length));
}

/** Moves the engine's manual clock `minutes` forward from /dev/clock. */
async function advanceClock(page, minutes, scan) {
  await open(page, "/dev/clock");
  await scan?.(page, "clock");
  const before = (await page.getByTestId("engine-time").textContent()).trim();
  await page.getByLabel("Minutes to move forward").fill(String(minutes));
  await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === "/dev/clock" && r.request().method() === "GET"),
    page.getByTestId("advance").click(),
  ]);
  await page.waitForLoadState("load");
  const after = (await page.getByTestId("engine-time").textContent()).trim();
  assert.equal(after, plusMinutes(before, minutes), `the engine's clock moved ${minutes} minutes`);
}

/** `HH:MM UTC` plus `minutes`. */
function plusMinutes(clock, minutes) {
  const [h, m] = clock.replace(" UTC", "").split(":").map(Number);
  const total = (h * 60 + m + minutes) % (24 * 60);
  return `${String(Math.floor(total / 60)).padStart(2, "0")}:${String(total % 60).padStart(2, "0")} UTC`;
}

/** The admin API key the shop printed at start-up. */
function adminKey(shop) {
  const key = /admin API key \(all scopes\): (\S+)/.exec(shop.stdout)?.[1];
  assert.ok(key, "the shop printed an admin API key");
  return key;
}

/** Every order in the shop, through the admin API. */
async function allOrders(shop) {
  const response = await fetch(`${shop.url}/api/admin/orders?limit=100`, {
    headers: { authorization: `Bearer ${adminKey(shop)}` },
  });
  assert.equal(response.status, 200, `GET /api/admin/orders: ${await response.clone().text()}`);
  return (await response.json()).data;
}

/**
 * An init script (it runs before the page's own, outside its CSP): counts
 * the Server-Sent Events frames the page's listeners handle in
 * `window.__e2eFrames`, and records every change of the order status's
 * `data-status` in `window.__e2eStatusChanges`.
 */
function recordStatusChanges() {
  window.__e2eFrames = 0;
  window.__e2eStatusChanges = [];
  const add = EventSource.prototype.addEventListener;
  EventSource.prototype.addEventListener = function (type, listener, options) {
    const counted = (event) => {
      try {
        return listener.call(this, event);
      } finally {
        window.__e2eFrames += 1;
      }
    };
    return add.call(this, type, counted, options);
  };
  document.addEventListener("DOMContentLoaded", () => {
    const status = document.querySelector('[data-testid="order-status"]');
    if (!status) return;
    new MutationObserver(() => window.__e2eStatusChanges.push(status.dataset.status)).observe(status, {
      attributes: true,
      attributeFilter: ["data-status"],
    });
  });
}

function assertNoPageProblems() {
  assert.deepEqual(pageProblems(), [], "no uncaught script error or CSP refusal in any page");
}

for (const store of STORES) {
  test(`[${store}] two buyers race for one unit: one holds it with a live countdown, the other is told it was taken`, async (t) => {
    const shop = await openShop(t, store);
    const scan = scanner();
    const [alice, bob] = await buyers(t, shop, 2);
    const path = await productPath(alice, GPU, scan);
    await Promise.all([open(alice, path), open(bob, path)]);
    await scan(alice, "product");
    for (const page of [alice, bob]) {
      assert.equal((await page.getByTestId("availability").textContent()).trim(), "1 available");
    }

    // Both click at once; each lands on its cart (won) or back on the product (taken).
    const landed = (u) => u.pathname === "/cart" || u.searchParams.get("notice") === "taken";
    await Promise.all(
      [alice, bob].map((page) =>
        Promise.all([page.waitForURL(landed, { waitUntil: "load" }), page.getByTestId("add-to-cart").click()]),
      ),
    );
    const won = [alice, bob].filter((page) => new URL(page.url()).pathname === "/cart");
    assert.equal(won.length, 1, `exactly one buyer holds the unit (landed on ${alice.url()} and ${bob.url()})`);
    const winner = won[0];
    const loser = winner === alice ? bob : alice;

    // The winner's line counts down, live.
    await scan(winner, "cart with a held line");
    const first = await countdownSeconds(winner);
    assert.ok(first <= HOLD_MINUTES * 60 && first > (HOLD_MINUTES - 1) * 60, `the hold starts near 15:00 (${first} s)`);
    await winner.waitForFunction(
      (start) => {
        const [m, s] = document.querySelector('[data-testid="countdown"]').textContent.split(":").map(Number);
        return m * 60 + s < start;
      },
      first,
      { timeout: 30_000 },
    );
    const until = /\(until (\d\d:\d\d UTC)\)/.exec(await winner.locator("td", { has: winner.getByTestId("countdown") }).textContent())?.[1];
    assert.ok(until, "the cart says until when the unit is held");

    // The loser reads why, and the product stays held for them.
    const taken = loser.getByTestId("taken");
    await taken.waitFor();
    assert.match(await taken.textContent(), /Another buyer added this unit to their cart a moment before you: 0 available/);
    assert.equal(await loser.getByTestId("add-to-cart").count(), 1, "the loser may try again");
    await scan(loser, "product, just taken");
    const badge = loser.getByTestId("availability");
    const held = await eventually(
      async () => {
        const text = (await badge.textContent()).trim();
        return /^held by another buyer/.test(text) && text;
      },
      { message: 'the loser\'s badge to say "held by another buyer"' },
    );
    assert.match(held, /^held by another buyer(, may come back at \d\d:\d\d UTC)?$/);
    if (held.includes("may come back at")) assert.ok(held.endsWith(`may come back at ${until}`), `${held} (hold until ${until})`);
    // After a reload too (rendered by the server, then kept by the stream).
    await open(loser, new URL(loser.url()).pathname);
    assert.match((await badge.textContent()).trim(), /^held by another buyer/);
    assert.equal(await loser.getByTestId("taken").count(), 0);

    // The winner's product page says the unit is theirs.
    await open(winner, path);
    assert.equal((await winner.getByTestId("availability").textContent()).trim(), `held for you until ${until}`);
    assert.equal(await winner.getByTestId("add-to-cart").count(), 0);
    await scan(winner, "product, held for you");
    assertNoPageProblems();
  });

  test(`[${store}] checkout, pay on the local payment page, and the open order page turns Paid by SSE without a reload`, async (t) => {
    const shop = await openShop(t, store);
    const scan = scanner();
    const [buyer] = await buyers(t, shop, 1);
    await hold(buyer, await productPath(buyer, GPU, scan), scan);
    assert.equal((await buyer.getByTestId("cart-total").textContent()).trim(), GPU_PRICE);
    const order = await placeOrder(buyer, scan);

    // Back to the order before paying: it awaits payment.
    await clickTo(buyer, buyer.getByRole("link", { name: "Back to the order" }), (u) => u.pathname === `/orders/${order}`);
    const status = buyer.getByTestId("order-status");
    assert.equal(await status.getAttribute("data-status"), "awaiting_payment");
    assert.equal((await status.textContent()).trim(), "Awaiting payment");
    await buyer.getByTestId("to-pay").waitFor();
    await scan(buyer, "order, awaiting payment");
    await buyer.evaluate(() => {
      window.__e2eMarker = "still the same document";
    });
    let navigations = 0;
    buyer.on("framenavigated", (frame) => {
      if (frame === buyer.mainFrame()) navigations += 1;
    });

    // Pay in a second tab, as if the payment provider's page were elsewhere.
    const tab = await buyer.context().newPage();
    await tab.addInitScript(recordStatusChanges);
    await open(tab, `/pay/${encodeURIComponent(order)}`);
    await clickTo(tab, tab.getByTestId("pay"), (u) => u.pathname === `/orders/${order}`);
    assert.equal(await tab.getByTestId("order-status").getAttribute("data-status"), "paid");
    // Its stream replays the whole log: the status it shows stays Paid throughout.
    const rows = await tab.getByTestId("order-log").locator("li").count();
    await tab.waitForFunction((n) => window.__e2eFrames >= n, rows, { timeout: 30_000 });
    assert.deepEqual(await tab.evaluate(() => window.__e2eStatusChanges), [], "the replayed log leaves the status alone");

    // The first tab follows by Server-Sent Events.
    await buyer.waitForFunction(
      () => document.querySelector('[data-testid="order-status"]').dataset.status === "paid",
      null,
      { timeout: 30_000 },
    );
    assert.equal((await status.textContent()).trim(), "Paid");
    await eventually(async () => /payment received \(Paid\)/.test(await buyer.getByTestId("order-log").textContent()), {
      message: "the log's payment received row",
    });
    // A paid order offers no payment any more.
    await buyer.getByTestId("to-pay").waitFor({ state: "hidden", timeout: 30_000 });
    assert.equal(await buyer.evaluate(() => window.__e2eMarker), "still the same document");
    assert.equal(navigations, 0, "the order page did not navigate");
    await scan(buyer, "order, paid live");

    const orders = await allOrders(shop);
    assert.equal(orders.length, 1);
    assert.equal(orders[0].status, "paid");
    assertNoPageProblems();
  });

  test(`[${store}] Place order clicked twice, the second time while the first post is in flight, makes one order`, async (t) => {
    const shop = await openShop(t, store);
    const scan = scanner();
    const [buyer] = await buyers(t, shop, 1);
    await hold(buyer, await productPath(buyer, GPU, scan), scan);
    await clickTo(buyer, buyer.getByTestId("to-checkout"), (u) => u.pathname === "/checkout");
    await scan(buyer, "checkout");
    const form = {
      key: await buyer.locator('input[name="key"]').inputValue(),
      expected: await buyer.locator('input[name="expected"]').inputValue(),
    };

    // A slow network: the first post reaches the shop, but its answer is held
    // back until the buyer has clicked again. (Two clicks within one task,
    // as a synthetic dblclick makes, are merged by the browser into one
    // post: a person's second click comes while the first is in flight.)
    const answers = [];
    let inFlight;
    const firstSent = new Promise((resolve) => (inFlight = resolve));
    let releaseFirst;
    const secondClicked = new Promise((resolve) => (releaseFirst = resolve));
    await buyer.route(
      (u) => u.pathname === "/checkout",
      async (route) => {
        if (route.request().method() !== "POST") return route.continue();
        const first = answers.length === 0;
        const answer = route.fetch({ maxRedirects: 0 });
        answers.push(answer);
        const response = await answer;
        if (first) {
          inFlight();
          await secondClicked;
        }
        await route.fulfill({ response }).catch(() => {}); // the browser dropped the first for the second
      },
    );
    const button = buyer.getByTestId("place-order");
    const box = await button.boundingBox();
    const [x, y] = [box.x + box.width / 2, box.y + box.height / 2];
    await buyer.mouse.click(x, y);
    await firstSent;
    await buyer.mouse.click(x, y);
    await eventually(() => answers.length === 2, { message: "the second post" });
    await answers[1];
    releaseFirst();
    await buyer.waitForURL((u) => u.pathname.startsWith("/pay/"), { waitUntil: "load" });
    const order = orderIdOf(buyer.url(), "/pay/");
    for (const [i, answer] of answers.entries()) {
      const response = await answer;
      assert.equal(response.status(), 303, `post ${i + 1}`);
      assert.equal(orderIdOf(response.headers().location, "/pay/"), order, `post ${i + 1} ends on the same order`);
    }
    await buyer.unroute((u) => u.pathname === "/checkout");

    // The same form sent once more (a resent post): the same order.
    const again = await buyer.context().request.post("/checkout", { form, maxRedirects: 0 });
    assert.equal(again.status(), 303);
    assert.equal(orderIdOf(again.headers().location, "/pay/"), order, "a resent post ends on the same order");

    const orders = await allOrders(shop);
    assert.deepEqual(
      orders.map((o) => o.id),
      [order],
      "the shop holds exactly one order",
    );
    await open(buyer, `/orders/${encodeURIComponent(order)}`);
    const placed = await buyer.getByTestId("order-log").locator("li", { hasText: /: placed \(/ }).count();
    assert.equal(placed, 1, "the order's log has one placed event");
    await scan(buyer, "order, awaiting payment");
    assertNoPageProblems();
  });

  test(`[${store}] a hold lapses when the manual clock moves 16 minutes, and Renew takes it back while it is free`, async (t) => {
    const shop = await openShop(t, store, ["--manual-clock"]);
    const scan = scanner();
    const [buyer, other] = await buyers(t, shop, 2);
    const path = await productPath(buyer, GPU, scan);
    await hold(buyer, path, scan);
    // The other buyer watches the product page: held by someone else.
    await open(other, path);
    const badge = other.getByTestId("availability");
    assert.match((await badge.textContent()).trim(), /^held by another buyer/);
    await other.evaluate(() => {
      window.__e2eMarker = "watching";
    });

    await advanceClock(buyer, HOLD_MINUTES + 1, scan);
    // The lapse reaches the open product page by its availability stream.
    await other.waitForFunction(
      () => document.querySelector('[data-testid="availability"]').textContent.trim() === "1 available",
      null,
      { timeout: 30_000 },
    );
    assert.equal(await badge.getAttribute("class"), "badge available");
    assert.equal(await other.evaluate(() => window.__e2eMarker), "watching", "no reload");
    await open(buyer, "/cart");
    await buyer.getByTestId("lapsed").waitFor();
    assert.equal((await buyer.getByTestId("lapsed").textContent()).trim(), "Your hold lapsed");
    assert.equal(await buyer.getByTestId("countdown").count(), 0);
    assert.equal(await buyer.getByTestId("to-checkout").count(), 0, "no checkout with a lapsed hold");
    await scan(buyer, "cart with a lapsed hold");

    // Still free: Renew holds it again for the full 15 minutes.
    await clickTo(buyer, buyer.getByTestId("renew"), (u) => u.searchParams.get("notice") === "renewed");
    assert.equal((await buyer.getByTestId("cart-notice").textContent()).trim(), "Your hold is renewed.");
    const renewed = await countdownSeconds(buyer);
    assert.ok(renewed > (HOLD_MINUTES - 1) * 60, `a fresh 15-minute hold (${renewed} s)`);
    await buyer.getByTestId("to-checkout").waitFor();
    await scan(buyer, "cart, renewed");
    await open(buyer, path);
    assert.match((await buyer.getByTestId("availability").textContent()).trim(), /^held for you until \d\d:\d\d UTC$/);

    // Lapsed again and taken by another buyer meanwhile: Renew explains.
    await advanceClock(buyer, HOLD_MINUTES + 1);
    await hold(other, path);
    await open(buyer, "/cart");
    await clickTo(buyer, buyer.getByTestId("renew"), (u) => u.searchParams.get("notice") === "gone");
    assert.match(await buyer.getByTestId("cart-notice").textContent(), /Another buyer holds it now/);
    await buyer.getByTestId("lapsed").waitFor();
    await scan(buyer, "cart, renew refused");
    assertNoPageProblems();
  });

  test(`[${store}] a payment that arrives after the window closed and the unit sold is refunded automatically`, async (t) => {
    const shop = await openShop(t, store, ["--manual-clock"]);
    const scan = scanner();
    const [casey, drew] = await buyers(t, shop, 2);
    const path = await productPath(casey, GPU, scan);
    await hold(casey, path, scan);
    const late = await placeOrder(casey, scan);

    // The payment window closes with Casey still on the payment page.
    await advanceClock(drew, PAYMENT_WINDOW_MINUTES + 1, scan);
    await open(drew, path);
    await drew.waitForFunction(
      () => document.querySelector('[data-testid="availability"]').textContent.trim() === "1 available",
      null,
      { timeout: 30_000 },
    );
    await hold(drew, path);
    const sold = await placeOrder(drew);
    await clickTo(drew, drew.getByTestId("pay"), (u) => u.pathname === `/orders/${sold}`);
    assert.equal(await drew.getByTestId("order-status").getAttribute("data-status"), "paid");

    // Casey pays now, on the page she left open.
    await clickTo(casey, casey.getByTestId("pay"), (u) => u.pathname === `/orders/${late}`);
    const status = casey.getByTestId("order-status");
    assert.equal(await status.getAttribute("data-status"), "oversold_refunded");
    assert.equal(
      (await status.textContent()).trim(),
      "Refunded automatically: the item sold before your payment arrived",
    );
    const refunds = casey.getByTestId("refunds");
    assert.match(await refunds.textContent(), new RegExp(`${GPU_PRICE.replace(".", "\\.")}: (refunded|pending)`));
    await scan(casey, "order, refunded automatically");

    // Drew keeps the unit.
    await open(drew, `/orders/${encodeURIComponent(sold)}`);
    assert.equal(await drew.getByTestId("order-status").getAttribute("data-status"), "paid");
    const orders = Object.fromEntries((await allOrders(shop)).map((o) => [o.id, o.status]));
    assert.deepEqual(orders, { [late]: "oversold_refunded", [sold]: "paid" });
    assertNoPageProblems();
  });

  test(`[${store}] axe-core finds no serious or critical violation on any page`, async (t) => {
    const shop = await openShop(t, store, ["--manual-clock"]);
    const [buyer] = await buyers(t, shop, 1);
    const pages = [];
    const scan = async (label) => {
      await checkA11y(buyer, { label });
      pages.push(label);
    };
    await open(buyer, "/cart");
    await scan("cart, empty");
    const path = await productPath(buyer, GPU);
    await scan("catalog");
    await open(buyer, path);
    await scan("product");
    await hold(buyer, path);
    await scan("cart with a held line");
    await open(buyer, "/checkout");
    await scan("checkout");
    await open(buyer, "/cart");
    const order = await placeOrder(buyer);
    await scan("pay");
    await open(buyer, `/orders/${encodeURIComponent(order)}`);
    await scan("order");
    await advanceClock(buyer, 1);
    await scan("clock");
    const missing = await buyer.goto("/products/not-a-product");
    assert.equal(missing.status(), 404);
    await scan("error page (404)");
    const checkedOut = await buyer.goto("/checkout");
    assert.equal(checkedOut.status(), 200);
    assert.equal(
      new URL(buyer.url()).pathname,
      `/orders/${order}`,
      "back on checkout once the cart is ordered: the order is the answer",
    );
    await buyer.context().clearCookies();
    const empty = await buyer.goto("/checkout");
    assert.equal(empty.status(), 409, "no checkout without a cart");
    await scan("error page (409: the cart is empty)");
    t.diagnostic(`scanned: ${pages.join("; ")}`);
    assertNoPageProblems();
  });
}
