// The click-and-collect marketplace in a real Chromium: the age gate refuses
// a checkout with liquor and then accepts it once the buyer confirms; the
// pickup slot and the tax invoice on the order page, which turns Paid by
// Server-Sent Events; the promotion panel changing as quantities change,
// without a reload; the staff pickup desk behind the admin login, refusing
// to hand liquor over without an ID check; axe-core on every page. Each
// flow runs on the in-memory store and on PostgreSQL (a database of its own).
//
//   SHOP_BINS="click-collect" bash .ci/browser.sh             # builds, installs, runs
//   SHOP_BIN_DIR=$CARGO_TARGET_DIR/debug node --test e2e/click-collect.test.mjs
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

const SHOP = "click-collect";
const STORE = "/s/harbour-st";
const PASSWORD = "e2e-staff-password-123";
/** Fixed items of the seed catalog (every seed), with their prices. */
const SHIRAZ = "WINE-SHIRAZ-BAROSSA"; // $24.99, GST $2.27
const BANANAS = "FRESH-BANANAS"; // $4.20, GST-free
const SAUV_BLANC = "WINE-SAUVBLANC-MARLBOROUGH"; // $18.00
const PALE_ALE = "BEER-PALE-ALE"; // $4.50
const CHIPS = "SNACK-CHIPS-SEASALT"; // $4.50
const WINE_RULE = "promo-wine-5-for-5";
const BEER_RULE = "promo-beer-6-snacks-20";

const STORES = (process.env.E2E_STORES ?? "memory,postgres")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
for (const store of STORES) {
  if (store !== "memory" && store !== "postgres") throw new Error(`E2E_STORES: unknown store \`${store}\``);
}

/**
 * The marketplace on `store`: in memory, or on a fresh PostgreSQL database
 * dropped when the test ends; the local payment page; a known staff password.
 */
async function openShop(t, store, args = []) {
  const env = {
    DATABASE_URL: undefined,
    STRIPE_SECRET_KEY: undefined,
    STRIPE_WEBHOOK_SECRET: undefined,
    SHOP_ADMIN_PASSWORD: PASSWORD,
  };
  if (store === "postgres") env.DATABASE_URL = (await freshDatabase("e2e_cc", { t })).url;
  // Seeding three stores on PostgreSQL takes a while in a debug build.
  const shop = await startShop(SHOP, { args, env, t, timeoutMs: 180_000 });
  if (store === "postgres") assert.match(shop.stdout, /store: PostgreSQL/, "the shop runs on PostgreSQL");
  else assert.match(shop.stdout, /^store: in memory$/m, "the shop runs in memory");
  return shop;
}

async function buyer(t, shop) {
  const browser = await launchBrowser({ t });
  const context = await openContext(browser, { baseURL: shop.url });
  return { browser, context, page: await context.newPage() };
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

/** Searches the store for `words` and adds `quantity` of `sku` from the results. */
async function add(page, words, sku, quantity = 1, scan) {
  await open(page, STORE);
  await page.getByLabel("Search the store").fill(words);
  await clickTo(page, page.getByTestId("search-button"), (u) => u.searchParams.get("q") === words);
  await scan?.(page, "store, search results");
  const card = page.locator(`[data-testid="product"][data-sku="${sku}"]`);
  await card.getByRole("spinbutton").fill(String(quantity));
  await clickTo(page, page.getByTestId(`add-${sku}`), (u) => u.searchParams.has("added") || u.searchParams.has("refused"));
  assert.match(await page.getByTestId("added").textContent(), new RegExp(`Added to your cart: ${quantity} x `));
}

/** The admin API key the shop printed for `slug`. */
function adminKey(shop, slug) {
  const key = new RegExp(`admin API key for ${slug} \\(all scopes\\): (\\S+)`).exec(shop.stdout)?.[1];
  assert.ok(key, `the shop printed an admin API key for ${slug}`);
  return key;
}

/** Every order of `slug`, through the admin API. */
async function ordersOf(shop, slug) {
  const response = await fetch(`${shop.url}/api/admin/orders?limit=100`, {
    headers: { authorization: `Bearer ${adminKey(shop, slug)}` },
  });
  assert.equal(response.status, 200, `GET /api/admin/orders: ${await response.clone().text()}`);
  return (await response.json()).data;
}

/** From the cart through the age gate (refused, then confirmed) to the payment page. */
async function checkOutWithLiquor(page, shop, scan) {
  await clickTo(page, page.getByTestId("to-checkout"), (u) => u.pathname === `${STORE}/checkout`);
  await scan?.(page, "checkout with the age gate");
  await page.getByTestId("age-gate").waitFor();

  // Placing the order without confirming: refused by the server.
  await clickTo(page, page.getByTestId("place-order"), (u) => u.searchParams.get("refused") === "age");
  const refusal = page.getByTestId("checkout-refusal");
  assert.match(await refusal.textContent(), /Your order was not placed/);
  assert.match(await refusal.textContent(), /confirm you are 18 or over/);
  assert.equal((await ordersOf(shop, "harbour-st")).length, 0, "no order was placed");
  await scan?.(page, "checkout, refused for the age check");

  // Confirming without the tick: refused too.
  await clickTo(page, page.getByTestId("confirm-age"), (u) => u.searchParams.get("refused") === "age_unticked");
  // Ticked: recorded, and the order goes through.
  await page.getByLabel("I am 18 or over, and I will show photo ID when I collect").check();
  await clickTo(page, page.getByTestId("confirm-age"), (u) => u.searchParams.get("notice") === "age");
  await page.getByTestId("age-confirmed").waitFor();
  await scan?.(page, "checkout, age confirmed");

  const slot = page.getByLabel("Pickup slot (Brisbane time)");
  const option = slot.locator("option").nth(2);
  const label = (await option.textContent()).trim();
  await slot.selectOption(await option.getAttribute("value"));
  const total = (await page.getByTestId("checkout-total").textContent()).trim();
  await clickTo(page, page.getByTestId("place-order"), (u) => u.pathname.startsWith("/pay/"));
  await scan?.(page, "pay");
  assert.equal((await page.getByTestId("pay-amount").textContent()).trim(), `AUD ${total.replace("$", "")}`);
  return { order: decodeURIComponent(new URL(page.url()).pathname.slice("/pay/".length)), slot: label, total };
}

function assertNoPageProblems() {
  assert.deepEqual(pageProblems(), [], "no uncaught script error or CSP refusal in any page");
}

for (const store of STORES) {
  test(`[${store}] the age gate refuses, then accepts; the pickup slot and the tax invoice reach the order, which turns Paid live`, async (t) => {
    const shop = await openShop(t, store);
    const scan = scanner();
    const { context, page } = await buyer(t, shop);
    await open(page, "/");
    await scan(page, "stores");
    await clickTo(page, page.getByRole("link", { name: "Harbour St Market" }), (u) => u.pathname === STORE);
    await scan(page, "store");
    await add(page, "barossa shiraz", SHIRAZ, 1, scan);
    await add(page, "bananas", BANANAS, 1);
    await clickTo(page, page.getByRole("link", { name: "Cart", exact: true }), (u) => u.pathname === `${STORE}/cart`);
    await scan(page, "cart");
    assert.equal((await page.getByTestId("cart-total").textContent()).trim(), "$29.19");
    assert.equal((await page.getByTestId("cart-gst").textContent()).trim(), "$2.27");

    const { order, slot, total } = await checkOutWithLiquor(page, shop, scan);
    assert.equal(total, "$29.19");

    // The order page, open in a second tab before paying, follows the order live.
    const tab = await context.newPage();
    await open(tab, `${STORE}/orders/${order}`);
    await scan(tab, "order, awaiting payment");
    const status = tab.getByTestId("order-status");
    assert.equal(await status.getAttribute("data-status"), "awaiting_payment");
    await tab.evaluate(() => {
      window.__e2eMarker = "still the same document";
    });
    await clickTo(page, page.getByTestId("pay"), (u) => u.pathname === `${STORE}/orders/${order}`);
    await tab.waitForFunction(
      () => document.querySelector('[data-testid="order-status"]').dataset.status === "paid",
      null,
      { timeout: 30_000 },
    );
    assert.equal(await tab.evaluate(() => window.__e2eMarker), "still the same document", "no reload");
    assert.equal((await status.textContent()).trim(), "Paid: we are packing it");
    await scan(tab, "order, paid");

    // The slot chosen, and the invoice: GST per line, bananas GST-free.
    assert.match(await tab.getByTestId("pickup-slot").textContent(), new RegExp(`^${slot} \\(Brisbane time\\)`));
    const gst = async (sku) =>
      (await tab.locator(`[data-testid="invoice-line"][data-sku="${sku}"] [data-testid="line-gst"]`).textContent()).trim();
    assert.equal(await gst(SHIRAZ), "$2.27");
    assert.equal(await gst(BANANAS), "$0.00");
    assert.match(await tab.locator(`[data-testid="invoice-line"][data-sku="${BANANAS}"]`).textContent(), /GST-free/);
    assert.equal((await tab.getByTestId("invoice-gst").textContent()).trim(), "$2.27");
    assert.match(await tab.getByTestId("gst-statement").textContent(), /The total price includes GST of \$2\.27\./);
    assert.equal((await ordersOf(shop, "harbour-st")).length, 1);
    assert.equal((await ordersOf(shop, "laneway-kitchen")).length, 0, "another store has no such order");
    const elsewhere = await tab.goto(`/s/laneway-kitchen/orders/${order}`);
    assert.equal(elsewhere.status(), 404);
    await scan(tab, "order of another store (404)");
    assertNoPageProblems();
  });

  test(`[${store}] the promotion panel changes as quantities change, without a reload`, async (t) => {
    const shop = await openShop(t, store);
    const scan = scanner();
    const { page } = await buyer(t, shop);
    await open(page, `${STORE}/cart`);
    await scan(page, "empty cart");
    assert.match(await page.getByTestId(WINE_RULE).textContent(), /Add 5 wines to get 5% off wine\./);

    await add(page, "sauvignon blanc marlborough", SAUV_BLANC, 4);
    await open(page, `${STORE}/cart`);
    const wine = page.getByTestId(WINE_RULE);
    assert.equal(await wine.getAttribute("data-standing"), "not-yet");
    assert.match(await wine.textContent(), /Add 1 more wine to get 5% off wine\./);
    assert.equal((await page.getByTestId("cart-total").textContent()).trim(), "$72.00");
    await scan(page, "cart, an offer not yet");
    await page.evaluate(() => {
      window.__e2eMarker = "same document";
    });

    // 4 → 5 wines: the panel says what it saves, and the total drops.
    await page.getByTestId(`quantity-${SAUV_BLANC}`).fill("5");
    await page.getByTestId(`quantity-${SAUV_BLANC}`).press("Enter");
    await eventually(async () => (await page.getByTestId(WINE_RULE).getAttribute("data-standing")) === "applied", {
      message: "the wine offer to apply",
    });
    assert.match(await page.getByTestId(WINE_RULE).textContent(), /Applied: you save \$4\.50 \(5% off wine\)\./);
    assert.equal((await page.getByTestId("cart-total").textContent()).trim(), "$85.50");
    assert.equal(await page.evaluate(() => window.__e2eMarker), "same document", "the page was not reloaded");
    await scan(page, "cart, an offer applied");

    // Back to 4 with the Update button: not yet again.
    await page.getByTestId(`quantity-${SAUV_BLANC}`).fill("4");
    await page.getByTestId(`update-${SAUV_BLANC}`).click();
    await eventually(async () => (await page.getByTestId(WINE_RULE).getAttribute("data-standing")) === "not-yet", {
      message: "the wine offer to stop applying",
    });
    assert.match(await page.getByTestId(WINE_RULE).textContent(), /Add 1 more wine/);

    // Six beers qualify for 20% off snacks; with chips in the cart it applies.
    await add(page, "harbour pale ale", PALE_ALE, 6);
    await open(page, `${STORE}/cart`);
    assert.equal(await page.getByTestId(BEER_RULE).getAttribute("data-standing"), "qualified");
    assert.match(await page.getByTestId(BEER_RULE).textContent(), /You qualify: add snacks to get 20% off snacks\./);
    await scan(page, "cart, an offer qualified");
    await add(page, "sea salt chips", CHIPS, 2);
    await open(page, `${STORE}/cart`);
    assert.match(await page.getByTestId(BEER_RULE).textContent(), /Applied: you save \$1\.80 \(20% off snacks\)\./);
    await page.evaluate(() => {
      window.__e2eMarker = "same document again";
    });
    await page.getByTestId(`quantity-${PALE_ALE}`).fill("5");
    await page.getByTestId(`quantity-${PALE_ALE}`).press("Enter");
    await eventually(async () => (await page.getByTestId(BEER_RULE).getAttribute("data-standing")) === "not-yet", {
      message: "the beer offer to stop applying",
    });
    assert.match(await page.getByTestId(BEER_RULE).textContent(), /Add 1 more beer to get 20% off snacks\./);
    assert.equal(await page.evaluate(() => window.__e2eMarker), "same document again");

    // Removing a line works the same way.
    await page.getByTestId(`remove-${CHIPS}`).click();
    await eventually(async () => (await page.locator(`[data-testid="line"][data-sku="${CHIPS}"]`).count()) === 0, {
      message: "the chips to leave the cart",
    });
    assertNoPageProblems();
  });

  test(`[${store}] the pickup desk: staff sign in, liquor is handed over only after an ID check, another store's desk is refused`, async (t) => {
    const shop = await openShop(t, store);
    const scan = scanner();
    const { page } = await buyer(t, shop);
    await add(page, "barossa shiraz", SHIRAZ, 2);
    await open(page, `${STORE}/cart`);
    const { order } = await checkOutWithLiquor(page, shop);
    await clickTo(page, page.getByTestId("pay"), (u) => u.pathname === `${STORE}/orders/${order}`);
    await eventually(async () => (await page.getByTestId("order-status").getAttribute("data-status")) === "paid", {
      message: "the order to be paid",
    });

    // The desk asks for a login; a wrong password is refused.
    await clickTo(page, page.getByRole("link", { name: "Staff: pickups" }), (u) => u.pathname === "/admin/login");
    await scan(page, "admin login");
    await page.getByLabel("Name").fill("harbour-st");
    await page.getByLabel("Password").fill("not the password");
    await clickTo(page, page.getByTestId("login"), (u) => u.searchParams.has("failed"));
    await page.getByLabel("Name").fill("harbour-st");
    await page.getByLabel("Password").fill(PASSWORD);
    await clickTo(page, page.getByTestId("login"), (u) => u.pathname === "/admin");
    await open(page, "/admin/pickups/harbour-st");
    await scan(page, "pickup desk");
    const pickup = page.locator(`[data-testid="pickup"][data-order="${order}"]`);
    await pickup.waitFor();
    assert.match(await pickup.textContent(), /Liquor\./);

    // Without the ID check: refused, and the order still waits.
    await pickup.getByLabel("Your name").fill("Sam");
    await clickTo(page, pickup.getByTestId("hand-over"), (u) => u.searchParams.get("refused") === "id");
    assert.match(await page.getByTestId("handover-refusal").textContent(), /holds liquor: check the buyer's photo ID/);
    await scan(page, "pickup desk, hand-over refused");
    const again = page.locator(`[data-testid="pickup"][data-order="${order}"]`);
    await again.getByLabel("Your name").fill("Sam");
    await again.getByLabel("Photo ID checked: the buyer is 18 or over").check();
    await clickTo(page, again.getByTestId("hand-over"), (u) => u.searchParams.has("done"));
    await page.getByTestId("handed-over").waitFor();
    assert.equal(await page.locator(`[data-testid="pickup"][data-order="${order}"]`).count(), 0);
    assert.match(await page.getByTestId("collected").textContent(), /photo ID checked by Sam/);
    await scan(page, "pickup desk, handed over");
    const [placed] = await ordersOf(shop, "harbour-st");
    assert.equal(placed.status, "fulfilled");

    // Signed in for Harbour St, another store's desk is refused.
    const other = await page.goto("/admin/pickups/laneway-kitchen");
    assert.equal(other.status(), 403);
    await scan(page, "another store's desk (403)");
    assertNoPageProblems();
  });

  test(`[${store}] axe-core finds nothing serious on the pages the flows do not reach`, async (t) => {
    const shop = await openShop(t, store, ["--manual-clock"]);
    const { page } = await buyer(t, shop);
    for (const [path, label] of [
      ["/", "stores"],
      [`${STORE}`, "store, first page"],
      ["/s/northside-cellars?q=gin", "another store's search"],
      [`${STORE}?q=zzzz`, "store, no results"],
      [`${STORE}/cart?refused=stock`, "cart, refusal"],
      ["/dev/clock", "clock"],
    ]) {
      await open(page, path);
      await checkA11y(page, { label });
    }
    await open(page, STORE);
    await clickTo(page, page.getByTestId("next-page"), (u) => u.searchParams.has("after") || u.searchParams.has("page"));
    await checkA11y(page, { label: "store, next page" });
    const missing = await page.goto("/s/nowhere");
    assert.equal(missing.status(), 404);
    await checkA11y(page, { label: "unknown store (404)" });
    const empty = await page.goto(`${STORE}/checkout`);
    assert.equal(empty.status(), 409);
    await checkA11y(page, { label: "checkout of an empty cart" });
    assertNoPageProblems();
  });
}
