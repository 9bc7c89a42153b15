// The hardware shop's admin pages in a real Chromium: logging in, a price
// changed while a buyer is at checkout (the buyer is shown the new total and
// confirms it), fulfilling the paid order from its audit-logged page, and
// axe-core on every admin page. In memory and on PostgreSQL.
import assert from "node:assert/strict";
import { checkA11y, freshDatabase, launchBrowser, openContext, pageProblems, startShop, test } from "./harness.mjs";

const SHOP = "hardware-shop";
const GPU = "RTX 3090 Founders Edition (used)";

const STORES = (process.env.E2E_STORES ?? "memory,postgres")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);

async function openShop(t, store) {
  const env = { DATABASE_URL: undefined, STRIPE_SECRET_KEY: undefined, STRIPE_WEBHOOK_SECRET: undefined, SHOP_ADMIN_PASSWORD: undefined };
  if (store === "postgres") env.DATABASE_URL = (await freshDatabase("e2e_hwa", { t })).url;
  return startShop(SHOP, { env, t });
}

/** The admin password the shop printed at start-up. */
function password(shop) {
  const found = /admin pages: \S+ \(name admin, password (\S+)\)/.exec(shop.stdout)?.[1];
  assert.ok(found, "the shop printed the admin password");
  return found;
}

async function clickTo(page, locator, url) {
  await Promise.all([page.waitForURL(url, { waitUntil: "load" }), locator.click()]);
}

async function logIn(page, shop) {
  await page.goto("/admin");
  assert.equal(new URL(page.url()).pathname, "/admin/login", "not logged in: the login page");
  await page.getByLabel("Name").fill("admin");
  await page.getByLabel("Password").fill("not-the-password");
  await clickTo(page, page.getByTestId("login"), (u) => u.pathname === "/admin/login");
  await page.getByTestId("login-failed").waitFor();
  await page.getByLabel("Name").fill("admin");
  await page.getByLabel("Password").fill(password(shop));
  await clickTo(page, page.getByTestId("login"), (u) => u.pathname === "/admin");
  assert.equal((await page.getByTestId("admin-tenant").textContent()).trim(), "gpu-exchange");
}

for (const store of STORES) {
  test(`[${store}] a price changed in admin while the buyer is at checkout: the buyer sees the new total and confirms it; admin fulfils the paid order`, async (t) => {
    const shop = await openShop(t, store);
    const browser = await launchBrowser({ t });
    const buyer = await (await openContext(browser, { baseURL: shop.url })).newPage();
    const admin = await (await openContext(browser, { baseURL: shop.url })).newPage();

    // The buyer holds the GPU and reaches checkout at the old price.
    await buyer.goto("/");
    await clickTo(buyer, buyer.getByRole("link", { name: GPU, exact: true }), (u) => u.pathname.startsWith("/products/"));
    await clickTo(buyer, buyer.getByTestId("add-to-cart"), (u) => u.pathname === "/cart");
    await clickTo(buyer, buyer.getByTestId("to-checkout"), (u) => u.pathname === "/checkout");
    assert.equal((await buyer.getByTestId("checkout-total").textContent()).trim(), "AUD 1150.00");

    // Meanwhile the shop lowers the price.
    await logIn(admin, shop);
    await admin.goto("/admin/products");
    await clickTo(admin, admin.getByRole("link", { name: GPU, exact: true }), (u) => u.pathname.startsWith("/admin/products/"));
    const variants = admin.getByTestId("variants");
    const before = await variants.inputValue();
    assert.match(before, /\| 1150\.00$/m);
    await variants.fill(before.replace("1150.00", "1099.00"));
    await clickTo(admin, admin.getByTestId("save-product"), (u) => u.searchParams.get("notice") === "saved");
    assert.match(await admin.getByTestId("variants").inputValue(), /\| 1099\.00$/m);

    // The buyer's Place order is refused with the new total to confirm.
    await clickTo(buyer, buyer.getByTestId("place-order"), (u) => u.pathname === "/checkout");
    await buyer.getByTestId("price-changed").waitFor();
    assert.match(await buyer.getByTestId("price-changed").textContent(), /AUD 1099\.00/);
    assert.equal((await buyer.getByTestId("checkout-total").textContent()).trim(), "AUD 1099.00");
    await checkA11y(buyer, { label: "checkout, price changed" });
    await clickTo(buyer, buyer.getByTestId("place-order"), (u) => u.pathname.startsWith("/pay/"));
    assert.equal((await buyer.getByTestId("pay-amount").textContent()).trim(), "AUD 1099.00");
    const order = decodeURIComponent(new URL(buyer.url()).pathname.slice("/pay/".length));
    await clickTo(buyer, buyer.getByTestId("pay"), (u) => u.pathname === `/orders/${order}`);
    await buyer.getByTestId("order-status").and(buyer.locator('[data-status="paid"]')).waitFor();

    // The order in admin: its audit log, then fulfilled.
    await admin.goto(`/admin/orders/${order}`);
    const log = await admin.getByTestId("audit-log").textContent();
    assert.match(log, /placed, AUD 1099\.00 due/);
    assert.match(log, /payment of AUD 1099\.00 received/);
    assert.equal((await admin.getByTestId("admin-order-status").textContent()).trim(), "Paid");
    await clickTo(admin, admin.getByTestId("fulfil"), (u) => u.searchParams.get("notice") === "fulfilled");
    assert.equal((await admin.getByTestId("admin-order-status").textContent()).trim(), "Fulfilled");
    assert.match(await admin.getByTestId("audit-log").textContent(), /fulfilled/);

    // The buyer's order page follows.
    await buyer.getByTestId("order-status").and(buyer.locator('[data-status="fulfilled"]')).waitFor();
    assert.deepEqual(pageProblems(), [], "no script error or CSP refusal in any page");
  });

  test(`[${store}] axe-core finds no serious or critical violation on any admin page`, async (t) => {
    const shop = await openShop(t, store);
    const browser = await launchBrowser({ t });
    const buyer = await (await openContext(browser, { baseURL: shop.url })).newPage();
    const admin = await (await openContext(browser, { baseURL: shop.url })).newPage();

    // One order, so the order pages have something on them.
    await buyer.goto("/");
    await clickTo(buyer, buyer.getByRole("link", { name: GPU, exact: true }), (u) => u.pathname.startsWith("/products/"));
    await clickTo(buyer, buyer.getByTestId("add-to-cart"), (u) => u.pathname === "/cart");
    await clickTo(buyer, buyer.getByTestId("to-checkout"), (u) => u.pathname === "/checkout");
    await clickTo(buyer, buyer.getByTestId("place-order"), (u) => u.pathname.startsWith("/pay/"));
    const order = decodeURIComponent(new URL(buyer.url()).pathname.slice("/pay/".length));

    await admin.goto("/admin/login");
    await checkA11y(admin, { label: "admin login" });
    await logIn(admin, shop);
    const scanned = [];
    for (const [path, label] of [
      ["/admin", "dashboard"],
      ["/admin/orders", "orders"],
      ["/admin/orders?status=awaiting_payment", "orders, filtered"],
      [`/admin/orders/${order}`, "order"],
      ["/admin/products", "products"],
      ["/admin/products/new", "new product"],
      ["/admin/promotions", "promotions"],
      ["/admin/settings", "settings"],
      ["/admin/keys", "API keys"],
    ]) {
      const response = await admin.goto(path);
      assert.equal(response.status(), 200, path);
      await checkA11y(admin, { label });
      scanned.push(label);
    }
    await admin.goto("/admin/products");
    await clickTo(admin, admin.getByRole("link", { name: GPU, exact: true }), (u) => u.pathname.startsWith("/admin/products/"));
    await checkA11y(admin, { label: "product with stock history" });

    // A key made on the keys page is shown once.
    await admin.goto("/admin/keys");
    await admin.getByLabel("Name").fill("warehouse");
    await admin.getByLabel("inventory").check();
    await clickTo(admin, admin.getByRole("button", { name: "Make the key" }), (u) => u.pathname === "/admin/keys");
    assert.match(await admin.getByTestId("issued-key").textContent(), /^ck_gpu-exchange\./);
    await checkA11y(admin, { label: "API keys, a key just made" });
    t.diagnostic(`scanned: ${scanned.join("; ")}`);
    assert.deepEqual(pageProblems(), [], "no script error or CSP refusal in any page");
  });
}
