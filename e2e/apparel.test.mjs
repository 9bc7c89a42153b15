// The apparel shop in a real Chromium: the size × colour picker disabling
// sold-out combinations (and the server refusing one sent anyway); US sales
// tax shown apart from the prices, with "3 for 2" taking the cheapest item
// off; checkout and payment on the local payment page, the order turning
// Paid by Server-Sent Events; Place order clicked twice making one order; a
// price changed in admin while the buyer is at checkout, confirmed on the
// page that shows the new total; customer accounts (sign up, order history,
// wishlist, a password reset through the development mailbox); axe-core on
// every page. Each flow runs on the in-memory store and on PostgreSQL (a
// database of its own).
//
//   SHOP_BINS="apparel" bash .ci/browser.sh                  # builds, installs, runs
//   SHOP_BIN_DIR=$CARGO_TARGET_DIR/debug node --test e2e/apparel.test.mjs
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

const SHOP = "apparel";
const PASSWORD = "e2e-admin-password-123";
/** Garments of the catalog (every seed), with their prices before tax. */
const TEE = "Classic Tee"; // USD 24.00
const HOODIE = "Pullover Hoodie"; // USD 58.00; XL sold out, S in Navy sold out
const BEANIE = "Wool Beanie"; // USD 18.00
const JACKET = "Chore Jacket"; // USD 129.00; Ecru sold out

const STORES = (process.env.E2E_STORES ?? "memory,postgres")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
for (const store of STORES) {
  if (store !== "memory" && store !== "postgres") throw new Error(`E2E_STORES: unknown store \`${store}\``);
}

/** The shop on `store`: in memory, or on a fresh PostgreSQL database dropped when the test ends. */
async function openShop(t, store, args = []) {
  const env = {
    DATABASE_URL: undefined,
    STRIPE_SECRET_KEY: undefined,
    STRIPE_WEBHOOK_SECRET: undefined,
    SHOP_ADMIN_PASSWORD: PASSWORD,
  };
  if (store === "postgres") env.DATABASE_URL = (await freshDatabase("e2e_ap", { t })).url;
  const shop = await startShop(SHOP, { args, env, t });
  if (store === "postgres") assert.match(shop.stdout, /store: PostgreSQL/, "the shop runs on PostgreSQL");
  else assert.match(shop.stdout, /^store: in memory$/m, "the shop runs in memory");
  return shop;
}

/** `n` pages, each in a browser context of its own (its own cookies: its own cart). */
async function buyers(t, shop, n) {
  const browser = await launchBrowser({ t });
  const pages = [];
  for (let i = 0; i < n; i++) pages.push(await (await openContext(browser, { baseURL: shop.url })).newPage());
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

async function open(page, path) {
  const response = await page.goto(path);
  assert.ok(response.ok(), `GET ${path}: ${response.status()}`);
}

/** Clicks `locator` and waits for the navigation it starts to land where `url` says. */
async function clickTo(page, locator, url) {
  await Promise.all([page.waitForURL(url, { waitUntil: "load" }), locator.click()]);
}

const text = async (locator) => (await locator.textContent()).trim();

/** From the catalog to `name`'s product page; its path. */
async function product(page, name, scan) {
  await open(page, "/");
  await scan?.(page, "catalog");
  await clickTo(page, page.getByRole("link", { name, exact: true }), (u) => u.pathname.startsWith("/products/"));
  return new URL(page.url()).pathname;
}

/** The radio button for `value` in the picker's `name` group ("size" or "colour"). */
function option(page, name, value) {
  return page.locator(`input[name="${name}"][data-value="${value}"]`);
}

/** Adds `quantity` of `name` in `size` and `colour` to the cart. */
async function add(page, name, size, colour, quantity = 1, scan) {
  await product(page, name, scan);
  await scan?.(page, `product ${name}`);
  await option(page, "size", size).check();
  await option(page, "colour", colour).check();
  await page.getByLabel("Quantity").fill(String(quantity));
  await clickTo(page, page.getByTestId("add-to-cart"), (u) => u.pathname === "/cart");
}

const orderIdOf = (url, prefix) => decodeURIComponent(new URL(url, "http://shop").pathname.slice(prefix.length));

/** Logs `page` into the admin pages. */
async function adminLogIn(page) {
  await open(page, "/admin/login");
  await page.getByLabel("Name").fill("admin");
  await page.getByLabel("Password").fill(PASSWORD);
  await clickTo(page, page.getByTestId("login"), (u) => u.pathname === "/admin");
}

/** The ids of the shop's orders, from the admin orders page. */
async function adminOrders(page) {
  await open(page, "/admin/orders");
  return page.locator('[data-testid="orders"] tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.order));
}

function assertNoPageProblems() {
  assert.deepEqual(pageProblems(), [], "no uncaught script error or CSP refusal in any page");
}

for (const store of STORES) {
  test(`[${store}] the variant picker disables sold-out sizes and colours, and the server refuses one sent anyway`, async (t) => {
    const shop = await openShop(t, store);
    const scan = scanner();
    const [page] = await buyers(t, shop, 1);
    const path = await product(page, HOODIE, scan);
    await scan(page, "product, picker");

    // XL is sold out in every colour: disabled from the server's page.
    assert.equal(await option(page, "size", "XL").isDisabled(), true, "XL is disabled");
    assert.equal(await page.locator("label", { hasText: "XL (sold out)" }).count(), 1, "XL is labelled sold out");
    // Size S: Navy is sold out there, so the script disables it.
    await option(page, "size", "S").check();
    await eventually(async () => await option(page, "colour", "Navy").isDisabled(), { message: "Navy to be disabled in size S" });
    assert.equal(await option(page, "colour", "Black").isChecked(), true, "Black is chosen instead");
    assert.match(await text(page.getByTestId("picker-status")), /^Size S, Black: \d+ left$/);
    // Size M: Navy is back.
    await option(page, "size", "M").check();
    await eventually(async () => !(await option(page, "colour", "Navy").isDisabled()), { message: "Navy in size M" });
    await option(page, "colour", "Navy").check();
    assert.match(await text(page.getByTestId("picker-status")), /^Size M, Navy: \d+ left$/);
    assert.equal(await page.getByTestId("add-to-cart").isEnabled(), true);
    await scan(page, "product, a size chosen");

    // The jacket's Ecru is sold out in every size: disabled whatever the size.
    await product(page, JACKET);
    assert.equal(await option(page, "colour", "Ecru").isDisabled(), true, "Ecru is disabled");
    for (const size of ["S", "M", "L"]) {
      await option(page, "size", size).check();
      assert.equal(await option(page, "colour", "Ecru").isDisabled(), true, `Ecru in ${size}`);
    }

    // A sold-out combination posted anyway (no script, an old page): refused, with why.
    const id = path.slice("/products/".length);
    const refused = await page.context().request.post("/cart/lines", {
      form: { product: id, size: "S", colour: "Navy", quantity: "1" },
      maxRedirects: 0,
    });
    assert.equal(refused.status(), 303);
    await open(page, refused.headers().location);
    assert.match(await text(page.getByTestId("product-refusal")), /Size S in Navy is sold out/);
    await scan(page, "product, refused");
    await open(page, "/cart");
    await scan(page, "empty cart");
    assert.match(await page.locator("main").textContent(), /Your cart is empty/);
    assertNoPageProblems();
  });

  test(`[${store}] sales tax apart, 3 for 2, checkout and pay: the order turns Paid live and Pay now goes away`, async (t) => {
    const shop = await openShop(t, store);
    const scan = scanner();
    const [page] = await buyers(t, shop, 1);
    await add(page, TEE, "M", "Black", 1, scan);
    await add(page, HOODIE, "M", "Black");
    await scan(page, "cart, two items");
    assert.equal(await text(page.getByTestId("subtotal")), "USD 82.00");
    assert.equal(await text(page.getByTestId("sales-tax")), "USD 8.41");
    assert.equal(await text(page.getByTestId("total")), "USD 90.41");
    assert.match(await page.getByTestId("summary").textContent(), /WA sales tax \(10\.25% of USD 82\.00\)/);
    assert.equal(await page.getByTestId("included-tax").count(), 0, "no tax inside the prices");

    // A third item: the cheapest, the beanie, is free, so tax and total stay.
    await add(page, BEANIE, "One size", "Mustard");
    await scan(page, "cart, 3 for 2");
    assert.equal(await text(page.getByTestId("subtotal")), "USD 100.00");
    assert.equal(await text(page.getByTestId("discount")), "−USD 18.00");
    assert.equal(await text(page.getByTestId("sales-tax")), "USD 8.41");
    assert.equal(await text(page.getByTestId("total")), "USD 90.41");

    await clickTo(page, page.getByTestId("to-checkout"), (u) => u.pathname === "/checkout");
    await scan(page, "checkout");
    assert.equal(await text(page.getByTestId("total")), "USD 90.41");
    await clickTo(page, page.getByTestId("place-order"), (u) => u.pathname.startsWith("/pay/"));
    await scan(page, "pay");
    assert.equal(await text(page.getByTestId("pay-amount")), "USD 90.41");
    const order = orderIdOf(page.url(), "/pay/");

    // The order page, open in a second tab before paying, follows the order.
    const tab = await page.context().newPage();
    await open(tab, `/orders/${encodeURIComponent(order)}`);
    await scan(tab, "order, awaiting payment");
    assert.equal(await tab.getByTestId("order-status").getAttribute("data-status"), "awaiting_payment");
    assert.equal(await tab.getByTestId("to-pay").isVisible(), true, "Pay now while the order awaits payment");
    await tab.evaluate(() => {
      window.__e2eMarker = "still the same document";
    });
    await clickTo(page, page.getByTestId("pay"), (u) => u.pathname === `/orders/${order}`);
    await tab.waitForFunction(
      () => document.querySelector('[data-testid="order-status"]').dataset.status === "paid",
      null,
      { timeout: 30_000 },
    );
    assert.equal(await tab.evaluate(() => window.__e2eMarker), "still the same document", "no reload");
    assert.equal(await text(tab.getByTestId("order-status")), "Paid");
    assert.equal(await tab.getByTestId("to-pay").isVisible(), false, "Pay now goes once the order is paid");
    assert.equal(await text(tab.getByTestId("total")), "USD 90.41", "the order keeps its own prices and tax");
    await scan(tab, "order, paid");
    assertNoPageProblems();
  });

  test(`[${store}] Place order clicked twice, the second time while the first post is in flight, makes one order`, async (t) => {
    const shop = await openShop(t, store);
    const scan = scanner();
    const [buyer, admin] = await buyers(t, shop, 2);
    await add(buyer, TEE, "S", "Black");
    await clickTo(buyer, buyer.getByTestId("to-checkout"), (u) => u.pathname === "/checkout");
    const form = {
      key: await buyer.locator('input[name="key"]').inputValue(),
      expected: await buyer.locator('input[name="expected"]').inputValue(),
    };

    // A slow network: the first post reaches the shop, but its answer is held
    // back until the buyer has clicked again.
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
    const box = await buyer.getByTestId("place-order").boundingBox();
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

    // The same form sent once more: the same order.
    const again = await buyer.context().request.post("/checkout", { form, maxRedirects: 0 });
    assert.equal(again.status(), 303);
    assert.equal(orderIdOf(again.headers().location, "/pay/"), order, "a resent post ends on the same order");

    await adminLogIn(admin);
    assert.deepEqual(await adminOrders(admin), [order], "the shop holds exactly one order");
    await scan(admin, "admin orders");
    await open(buyer, `/orders/${encodeURIComponent(order)}`);
    const placed = await buyer.getByTestId("order-log").locator("li", { hasText: /placed/ }).count();
    assert.equal(placed, 1, "the order's log has one placed event");
    assertNoPageProblems();
  });

  test(`[${store}] a price changed in admin while the buyer is at checkout: the buyer sees the new total and confirms it`, async (t) => {
    const shop = await openShop(t, store);
    const scan = scanner();
    const [buyer, admin] = await buyers(t, shop, 2);
    await add(buyer, HOODIE, "L", "Navy");
    await clickTo(buyer, buyer.getByTestId("to-checkout"), (u) => u.pathname === "/checkout");
    assert.equal(await text(buyer.getByTestId("total")), "USD 63.95"); // 58.00 + 5.95 tax

    // The shop raises the hoodie's price.
    await adminLogIn(admin);
    await open(admin, "/admin/products");
    await clickTo(admin, admin.getByRole("link", { name: HOODIE, exact: true }), (u) => u.pathname.startsWith("/admin/products/"));
    await scan(admin, "admin product");
    const variants = admin.getByTestId("variants");
    const before = await variants.inputValue();
    assert.match(before, /^HOODIE-L-NAVY \| 58\.00/m);
    await variants.fill(before.replaceAll("| 58.00", "| 62.00"));
    await clickTo(admin, admin.getByTestId("save-product"), (u) => u.searchParams.get("notice") === "saved");

    // Place order: refused, nothing ordered, the new total to confirm.
    await clickTo(buyer, buyer.getByTestId("place-order"), (u) => u.pathname === "/checkout");
    await buyer.getByTestId("price-changed").waitFor();
    assert.match(await buyer.getByTestId("price-changed").textContent(), /total of USD 63\.95/);
    assert.equal(await text(buyer.getByTestId("new-total")), "USD 68.36"); // 62.00 + 6.36 tax
    assert.deepEqual(await adminOrders(admin), [], "nothing was ordered");
    await scan(buyer, "checkout, price changed");
    await clickTo(buyer, buyer.getByTestId("price-changed-confirm"), (u) => u.pathname.startsWith("/pay/"));
    assert.equal(await text(buyer.getByTestId("pay-amount")), "USD 68.36");
    const order = orderIdOf(buyer.url(), "/pay/");
    assert.deepEqual(await adminOrders(admin), [order]);
    assertNoPageProblems();
  });

  test(`[${store}] accounts: sign up, wishlist, an order in the history, a password reset through the mailbox`, async (t) => {
    const shop = await openShop(t, store);
    const scan = scanner();
    const [page] = await buyers(t, shop, 1);
    const email = "robin@example.com";

    await open(page, "/account/signup");
    await scan(page, "sign up");
    await page.getByLabel("Email address").fill(email);
    await page.getByLabel("Your name").fill("Robin");
    await page.getByLabel("New password (at least 12 characters)").fill("first-password-123");
    await page.getByLabel("Type the password again").fill("first-password-123");
    await clickTo(page, page.getByTestId("signup-submit"), (u) => u.pathname === "/account");
    assert.match(await text(page.locator("h1")), /Hello, Robin/);
    await page.getByTestId("no-orders").waitFor();
    await scan(page, "account, empty");

    // The wishlist, from a product page.
    await product(page, BEANIE);
    await clickTo(page, page.getByTestId("wishlist-add"), (u) => u.pathname.startsWith("/products/"));
    await page.getByTestId("wishlist-remove").waitFor();

    // An order placed while logged in is in the history.
    await add(page, BEANIE, "One size", "Forest");
    await clickTo(page, page.getByTestId("to-checkout"), (u) => u.pathname === "/checkout");
    assert.match(await page.locator("main").textContent(), new RegExp(`Ordering as ${email}`));
    await clickTo(page, page.getByTestId("place-order"), (u) => u.pathname.startsWith("/pay/"));
    const order = orderIdOf(page.url(), "/pay/");
    await open(page, "/account");
    assert.match(await page.getByTestId("order-history").textContent(), new RegExp(order));
    assert.match(await page.getByTestId("wishlist").textContent(), new RegExp(BEANIE));
    await scan(page, "account, an order and a wish");

    // Log out; a wrong password is refused; a reset through the mailbox.
    await clickTo(page, page.getByTestId("logout"), (u) => u.pathname !== "/account");
    await open(page, "/account/login");
    await scan(page, "log in");
    await page.getByLabel("Email address").fill(email);
    await page.getByLabel("Password").fill("not-the-password");
    await clickTo(page, page.getByTestId("login-submit"), (u) => u.pathname === "/account/login");
    await page.getByTestId("account-error").waitFor();
    await scan(page, "log in, refused");
    await open(page, "/account/reset");
    await scan(page, "reset request");
    await page.getByLabel("Email address").fill(email);
    await clickTo(page, page.getByTestId("reset-request-submit"), (u) => u.pathname.startsWith("/account/reset"));
    await page.getByTestId("reset-sent").waitFor();
    await scan(page, "reset sent");
    await open(page, "/dev/mailbox");
    await scan(page, "mailbox");
    const mail = page.getByTestId("mail").first();
    assert.equal(await text(mail.getByTestId("mail-to")), email);
    const link = await mail.getByTestId("mail-link").getAttribute("href");
    await open(page, new URL(link, shop.url).pathname);
    await scan(page, "reset");
    await page.getByLabel("New password (at least 12 characters)").fill("second-password-456");
    await page.getByLabel("Type the password again").fill("second-password-456");
    await clickTo(page, page.getByTestId("reset-submit"), (u) => !u.pathname.startsWith("/account/reset/"));
    // The link works once.
    const reused = await page.context().request.get(new URL(link, shop.url).pathname);
    assert.ok(!reused.ok() || /expired|used|no longer/i.test(await reused.text()), "the reset link works once");

    await open(page, "/account/login");
    await page.getByLabel("Email address").fill(email);
    await page.getByLabel("Password").fill("second-password-456");
    await clickTo(page, page.getByTestId("login-submit"), (u) => u.pathname === "/account");
    assert.match(await page.getByTestId("order-history").textContent(), new RegExp(order));
    assertNoPageProblems();
  });

  test(`[${store}] axe-core finds nothing serious on the pages the flows do not reach`, async (t) => {
    const shop = await openShop(t, store, ["--manual-clock"]);
    const [page, admin] = await buyers(t, shop, 2);
    for (const [path, label] of [
      ["/", "catalog"],
      ["/dev/clock", "clock"],
      ["/dev/mailbox", "mailbox, empty"],
      ["/cart?notice=gone", "cart, a notice"],
    ]) {
      await open(page, path);
      await checkA11y(page, { label });
    }
    const missing = await page.goto("/orders/nope");
    assert.ok(missing.status() >= 400, "an unknown order is an error page");
    await checkA11y(page, { label: "unknown order" });
    const empty = await page.goto("/checkout");
    assert.ok(empty.status() >= 400, "checkout of an empty cart is refused");
    await checkA11y(page, { label: "checkout of an empty cart" });

    await open(admin, "/admin/login");
    await checkA11y(admin, { label: "admin login" });
    await adminLogIn(admin);
    for (const [path, label] of [
      ["/admin", "admin dashboard"],
      ["/admin/orders", "admin orders"],
      ["/admin/products", "admin products"],
      ["/admin/promotions", "admin promotions"],
      ["/admin/settings", "admin settings"],
      ["/admin/keys", "admin API keys"],
    ]) {
      await open(admin, path);
      await checkA11y(admin, { label });
    }
    assertNoPageProblems();
  });
}
