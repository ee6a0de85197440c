// The staff console in a real browser: Debian's Chromium, headless, driven by playwright-core.
// Every page is checked with axe-core (no serious or critical violation), every control has a
// label, focus is visible, the main flow is done with the keyboard alone, and no
// Content-Security-Policy violation happens anywhere. Screenshots go to $SCREENSHOT_DIR.
//
// Needs a server: BASE_URL, ADMIN_EMAIL, ADMIN_PASSWORD (see .ci/admin-e2e, which starts one).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const BASE = process.env.BASE_URL ?? "http://127.0.0.1:8080";
const ADMIN_EMAIL = process.env.ADMIN_EMAIL ?? "e2e-admin@tienda.test";
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD ?? "e2e-admin-password";
const CLERK_EMAIL = "clerk@tienda.test";
const CUSTOMER_EMAIL = "shopper@tienda.test";
const USER_PASSWORD = "user-password-1";
const SHOTS = process.env.SCREENSHOT_DIR ?? new URL("./screenshots/", import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const PAGE_WEIGHT_LIMIT = 150 * 1024;

let browser;
let admin; // the main page, driven with the keyboard where the flow allows
let adminToken;
const cspViolations = [];
const consoleErrors = [];
const pageWeights = {};

// ---- the API, to arrange data -------------------------------------------------------------

async function api(method, path, body, token = adminToken) {
  const response = await fetch(BASE + path, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function createUser(email, role) {
  const registered = await api("POST", "/api/v1/auth/register", { email, password: USER_PASSWORD }, null);
  assert.equal(registered.status, 201, JSON.stringify(registered.body));
  if (role !== "customer") {
    const changed = await api("PATCH", `/api/v1/users/${registered.body.id}`, { role });
    assert.equal(changed.status, 200);
  }
}

// ---- browser helpers ----------------------------------------------------------------------

async function newPage(context) {
  const page = await context.newPage();
  page.on("console", (message) => {
    const text = message.text();
    if (/Content[- ]Security[- ]Policy/i.test(text)) cspViolations.push(text);
    if (message.type() === "error") consoleErrors.push(text);
  });
  page.on("pageerror", (error) => consoleErrors.push(String(error)));
  return page;
}

async function newContext() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Injected by the browser, not by the page: the page's CSP does not apply to it.
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  return context;
}

/** axe-core on the page as it is now: no serious or critical violation. */
async function checkAccessibility(page, name) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")) }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad, [], `${name}: axe violations ${JSON.stringify(bad)}`);
  // Every visible control has a label (axe checks this too; this says which one).
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea")]
      .filter((el) => el.type !== "hidden")
      .filter((el) => el.labels.length === 0 && !el.getAttribute("aria-label"))
      .map((el) => el.name || el.id),
  );
  assert.deepEqual(unlabelled, [], `${name}: controls without a label`);
  const violations = await page.evaluate(() => window.__csp);
  assert.deepEqual(violations, [], `${name}: CSP violations`);
}

async function shot(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

/** Presses Tab until `selector` has focus, then checks the focus is visible. */
async function tabTo(page, selector, limit = 80) {
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press("Tab");
    const found = await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector);
    if (found) {
      const outline = await page.evaluate(() => {
        const style = getComputedStyle(document.activeElement);
        return { style: style.outlineStyle, width: parseFloat(style.outlineWidth) };
      });
      assert.ok(outline.style !== "none" && outline.width >= 2, `focus on ${selector} is visible: ${JSON.stringify(outline)}`);
      return;
    }
  }
  assert.fail(`${selector} was not reached with Tab`);
}

/** Loads `path` in a fresh browser (empty cache, same cookies) and records how many bytes its
 * document and subresources weigh. */
async function weigh(page, path, name) {
  const fresh = await browser.newContext();
  await fresh.addCookies(await page.context().cookies());
  page = await fresh.newPage();
  const sizes = [];
  const listener = (response) => {
    // Redirects have no body.
    sizes.push(response.body().then((b) => b.length, () => 0));
  };
  page.on("response", listener);
  await page.goto(BASE + path, { waitUntil: "networkidle" });
  page.off("response", listener);
  const bytes = (await Promise.all(sizes)).reduce((a, b) => a + b, 0);
  assert.match(page.url(), new RegExp(path.replace("?", "\\?") + "$"), `${name}: not redirected`);
  await fresh.close();
  pageWeights[name] = bytes;
  assert.ok(bytes < PAGE_WEIGHT_LIMIT, `${name} weighs ${bytes} bytes`);
}

async function rowNames(page) {
  return page.$$eval("#results tbody tr td:first-child", (cells) => cells.map((c) => c.textContent.trim()));
}

// ---- the suite ----------------------------------------------------------------------------

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const login = await api("POST", "/api/v1/auth/login", { email: ADMIN_EMAIL, password: ADMIN_PASSWORD }, null);
  assert.equal(login.status, 200, "the bootstrapped admin logs in");
  adminToken = login.body.access_token;
  // 60 products: 3 pages of 25; 6 mugs among them, some out of stock.
  for (let n = 1; n <= 60; n++) {
    const mug = n % 10 === 0;
    const created = await api("POST", "/api/v1/products", {
      name: mug ? `Stoneware mug ${n}` : `Cotton shirt ${n}`,
      sku: `E2E-${n}`,
      price: `${5 + (n % 30)}.50`,
      stock: n % 7 === 0 ? 0 : n,
    });
    assert.equal(created.status, 201);
  }
  await createUser(CLERK_EMAIL, "staff");
  await createUser(CUSTOMER_EMAIL, "customer");
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  admin = await newPage(await newContext());
});

after(async () => {
  await browser?.close();
  console.log(`page weights (bytes, uncompressed): ${JSON.stringify(pageWeights)}`);
});

test("the CSP check can fail: an injected inline script is reported", async () => {
  const context = await newContext();
  const page = await context.newPage(); // not counted in the suite's violations
  await page.goto(BASE + "/admin/sign-in");
  await page.evaluate(() => {
    const script = document.createElement("script");
    script.textContent = "window.__ran = true";
    document.head.append(script);
  });
  await page.waitForFunction(() => window.__csp.length > 0);
  assert.equal(await page.evaluate(() => window.__ran ?? false), false, "the inline script did not run");
  await context.close();
});

test("a customer is refused at sign-in", async () => {
  const page = await newPage(await newContext());
  await page.goto(BASE + "/admin/sign-in");
  await page.fill("#email", CUSTOMER_EMAIL);
  await page.fill("#password", USER_PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForSelector("#sign-in-error");
  assert.match(await page.textContent("#sign-in-error"), /staff and admin accounts only/);
  assert.match(page.url(), /\/admin\/sign-in$/);
  await page.goto(BASE + "/admin/products");
  assert.match(page.url(), /\/admin\/sign-in$/, "no session was given");
  await page.context().close();
});

test("sign in with the keyboard alone", async () => {
  await admin.goto(BASE + "/admin/sign-in");
  await weigh(admin, "/admin/sign-in", "sign-in");
  await checkAccessibility(admin, "sign-in");
  await shot(admin, "01-sign-in");
  // The email field has focus on arrival.
  assert.equal(await admin.evaluate(() => document.activeElement.id), "email");
  await admin.keyboard.type(ADMIN_EMAIL);
  await admin.keyboard.press("Tab");
  await admin.keyboard.type(ADMIN_PASSWORD);
  await Promise.all([admin.waitForURL(/\/admin\/products$/), admin.keyboard.press("Enter")]);
  assert.equal(await admin.textContent("h1"), "Products");
  assert.match(await admin.textContent("header.top"), new RegExp(ADMIN_EMAIL.replace(".", "\\.")));
  assert.equal((await rowNames(admin)).length, 25, "a page of 25");
  await weigh(admin, "/admin/products", "products");
  await checkAccessibility(admin, "products");
  await shot(admin, "02-products");
});

test("search, with the keyboard", async () => {
  await tabTo(admin, "#q");
  await admin.keyboard.type("mug");
  await Promise.all([
    admin.waitForResponse((r) => r.url().includes("q=mug")),
    admin.keyboard.press("Enter"),
  ]);
  await admin.waitForFunction(() => document.querySelectorAll("#results tbody tr").length === 6);
  const names = await rowNames(admin);
  assert.equal(names.length, 6);
  assert.ok(names.every((n) => n.startsWith("Stoneware mug")), names.join());
  assert.match(admin.url(), /q=mug/, "the search is in the address (htmx pushed it)");
  await checkAccessibility(admin, "search");
  await shot(admin, "03-search");
});

test("filter by price and stock", async () => {
  await admin.fill("#q", "");
  await admin.fill("#min_price", "10");
  await admin.fill("#max_price", "20");
  await admin.selectOption("#in_stock", "true");
  await Promise.all([
    admin.waitForResponse((r) => r.url().includes("min_price=10")),
    admin.click(".filters button[type=submit]"),
  ]);
  await admin.waitForFunction(() => new URL(location.href).searchParams.get("min_price") === "10");
  const rows = await admin.$$eval("#results tbody tr", (trs) =>
    trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent.trim())),
  );
  assert.ok(rows.length > 0, "some match");
  for (const [, , price, stock] of rows) {
    assert.ok(Number(price) >= 10 && Number(price) <= 20, `price ${price}`);
    assert.ok(Number(stock) > 0, `stock ${stock}`);
  }
  await shot(admin, "04-filter");
});

test("page forward through keyset pages", async () => {
  await admin.goto(BASE + "/admin/products");
  const first = await rowNames(admin);
  await tabTo(admin, "#next-page");
  await Promise.all([admin.waitForURL(/cursor=/), admin.keyboard.press("Enter")]);
  await admin.waitForFunction((firstName) => {
    const cell = document.querySelector("#results tbody tr td");
    return cell && cell.textContent.trim() !== firstName;
  }, first[0]);
  const second = await rowNames(admin);
  assert.equal(second.length, 25);
  assert.ok(second.every((n) => !first.includes(n)), "page 2 holds other products");
  await checkAccessibility(admin, "page 2");
  await shot(admin, "05-page-2");
});

let createdId;

test("create with a bad price, then fix it", async () => {
  await admin.goto(BASE + "/admin/products");
  await tabTo(admin, 'nav a[href="/admin/products/new"]');
  await Promise.all([admin.waitForURL(/\/admin\/products\/new$/), admin.keyboard.press("Enter")]);
  await tabTo(admin, "#name");
  await admin.keyboard.type("Linen apron");
  await tabTo(admin, "#price");
  await admin.keyboard.type("12.345");
  await tabTo(admin, "#stock");
  await admin.keyboard.type("5");
  await tabTo(admin, "#save");
  await Promise.all([admin.waitForLoadState("load"), admin.keyboard.press("Enter")]);
  await admin.waitForSelector("#price-error");
  assert.equal(await admin.textContent("#price-error"), "at most 2 decimal places");
  assert.equal(await admin.getAttribute("#price", "aria-invalid"), "true");
  assert.equal(await admin.inputValue("#name"), "Linen apron", "what was typed is kept");
  await checkAccessibility(admin, "create with errors");
  await shot(admin, "06-create-bad-price");
  // The first invalid field has the focus: fix it right there.
  assert.equal(await admin.evaluate(() => document.activeElement.id), "price");
  await admin.keyboard.press("Control+A");
  await admin.keyboard.type("12.34");
  await tabTo(admin, "#save");
  await Promise.all([admin.waitForURL(/\/admin\/products\/\d+\?created=1$/), admin.keyboard.press("Enter")]);
  assert.equal(await admin.textContent("#notice"), "Product created.");
  createdId = Number(admin.url().match(/products\/(\d+)/)[1]);
  const stored = await api("GET", `/api/v1/products/${createdId}`);
  assert.equal(stored.body.price, "12.34");
  assert.equal(stored.body.stock, 5);
  await checkAccessibility(admin, "edit");
  await shot(admin, "07-edit");
});

test("leaving with unsaved changes asks first", async () => {
  await admin.fill("#description", "Half-typed");
  const dialogs = [];
  const onDialog = async (dialog) => {
    dialogs.push(dialog.type());
    await dialog.dismiss(); // stay on the page
  };
  admin.on("dialog", onDialog);
  await admin.click('nav a[href="/admin/products"]', { noWaitAfter: true });
  await admin.waitForTimeout(500);
  admin.off("dialog", onDialog);
  assert.deepEqual(dialogs, ["beforeunload"]);
  assert.match(admin.url(), new RegExp(`/admin/products/${createdId}`), "still on the form");
  // Leave for real this time: the form is reloaded, its half-typed text dropped.
  admin.once("dialog", (dialog) => dialog.accept());
  await admin.goto(BASE + `/admin/products/${createdId}`);
  assert.equal(await admin.inputValue("#description"), "");
});

test("edit while another session changes the same product, then re-apply", async () => {
  // Ours: the form loaded, the price changed, not yet saved.
  await admin.fill("#price", "15.00");
  // Theirs: the clerk, in another browser session, renames it and saves first.
  const clerk = await newPage(await newContext());
  await clerk.goto(BASE + "/admin/sign-in");
  await clerk.fill("#email", CLERK_EMAIL);
  await clerk.fill("#password", USER_PASSWORD);
  await Promise.all([clerk.waitForURL(/\/admin\/products$/), clerk.click("button[type=submit]")]);
  await clerk.goto(BASE + `/admin/products/${createdId}`);
  await clerk.fill("#name", "Linen apron, natural");
  await Promise.all([clerk.waitForURL(/saved=1$/), clerk.click("#save")]);
  assert.equal(await clerk.textContent("#notice"), "Changes saved.");
  await clerk.context().close();

  // Ours is refused, and shows what changed.
  await Promise.all([admin.waitForLoadState("load"), admin.click("#save")]);
  await admin.waitForSelector("#conflict");
  const conflict = await admin.textContent("#conflict");
  assert.match(conflict, /Name \(changed meanwhile\)/);
  assert.match(conflict, /Linen apron, natural/);
  assert.match(conflict, /15\.00/);
  assert.doesNotMatch(conflict, /Price \(changed meanwhile\)/);
  assert.equal((await api("GET", `/api/v1/products/${createdId}`)).body.price, "12.34", "nothing of ours saved");
  await checkAccessibility(admin, "conflict");
  await shot(admin, "08-conflict");

  assert.match(conflict, /\(unchanged\)/, "we did not touch the name");
  // The form holds their name and our price: re-applying keeps both.
  assert.equal(await admin.inputValue("#name"), "Linen apron, natural");
  assert.equal(await admin.inputValue("#price"), "15.00");
  assert.equal(await admin.textContent("#save"), "Re-apply my changes");
  await Promise.all([admin.waitForURL(/saved=1$/), admin.click("#save")]);
  const stored = (await api("GET", `/api/v1/products/${createdId}`)).body;
  assert.equal(stored.name, "Linen apron, natural");
  assert.equal(stored.price, "15.00");
});

test("adjust stock and see the ledger", async () => {
  await admin.goto(BASE + `/admin/products/${createdId}`);
  await tabTo(admin, "#delta");
  await admin.keyboard.type("-2");
  await tabTo(admin, "#reason");
  await admin.keyboard.type("damaged in transit");
  await Promise.all([
    admin.waitForResponse((r) => r.url().endsWith("/stock")),
    admin.keyboard.press("Enter"),
  ]);
  await admin.waitForSelector("#stock-notice");
  assert.equal(await admin.textContent("#stock-notice"), "Stock changed by -2: now 3.");
  assert.equal(await admin.textContent("#current-stock"), "3");
  const newest = await admin.$$eval("#ledger tbody tr:first-child td", (tds) => tds.map((td) => td.textContent.trim()));
  assert.equal(newest[1], ADMIN_EMAIL, "who");
  assert.equal(newest[2], "-2");
  assert.equal(newest[3], "3", "stock after");
  assert.equal(newest[4], "damaged in transit", "why");
  await checkAccessibility(admin, "stock adjusted");
  await weigh(admin, `/admin/products/${createdId}`, "edit");
  await shot(admin, "09-stock-ledger");
  // The form's version followed our own adjustment: saving now is no conflict.
  await admin.fill("#description", "Washed linen");
  await Promise.all([admin.waitForURL(/saved=1$/), admin.click("#save")]);
  assert.equal((await api("GET", `/api/v1/products/${createdId}`)).body.description, "Washed linen");
});

test("users: an admin changes a role", async () => {
  await weigh(admin, "/admin/users", "users");
  await admin.goto(BASE + "/admin/users");
  await checkAccessibility(admin, "users");
  await shot(admin, "10-users");
  const clerkRow = admin.locator("tr", { hasText: CLERK_EMAIL });
  await clerkRow.locator("select[name=role]").selectOption("admin");
  await Promise.all([admin.waitForURL(/changed=1$/), clerkRow.getByRole("button").click()]);
  assert.equal(await admin.textContent("#notice"), "Saved.");
  const users = (await api("GET", "/api/v1/users?per_page=100")).body.items;
  assert.equal(users.find((u) => u.email === CLERK_EMAIL).role, "admin");
});

test("import a CSV: a dry run shows the bad row by line and field, then skip imports the rest", async () => {
  const csv = "sku,name,description,price,stock\n" +
    "IMP-1,Imported lamp one,,12.50,4\n" +
    "IMP-2,Imported lamp two,,not-a-price,4\n" +
    "IMP-3,Imported lamp three,,14.00,0\n";
  const file = { name: "lamps.csv", mimeType: "text/csv", buffer: Buffer.from(csv) };
  await admin.goto(BASE + "/admin/imports");
  await checkAccessibility(admin, "imports");
  await weigh(admin, "/admin/imports", "imports");
  // A wrong header row is refused at once, before any job: the API's message, under the form.
  await admin.setInputFiles("#file", { name: "bad.csv", mimeType: "text/csv", buffer: Buffer.from("sku,name,colour\nX,Y,red\n") });
  await admin.click("#import-form button[type=submit]");
  await admin.waitForSelector("#upload-error");
  assert.match(await admin.textContent("#upload-error"), /colour/);
  await checkAccessibility(admin, "import refused");
  await shot(admin, "11-import-refused");

  // The dry run: the job's page shows the bad row's line and field, and writes nothing.
  await admin.setInputFiles("#file", file);
  assert.equal(await admin.isChecked("#dry_run"), true, "a dry run by default");
  await Promise.all([admin.waitForURL(/\/admin\/jobs\/\d+$/), admin.click("#import-form button[type=submit]")]);
  await admin.waitForFunction(() => document.querySelector("#job-state")?.textContent === "succeeded", null, { timeout: 20000 });
  const errorRows = await admin.$$eval("#row-errors tbody tr", (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent.trim())));
  assert.equal(errorRows.length, 1);
  assert.equal(errorRows[0][0], "3", "the line (the header is line 1)");
  assert.equal(errorRows[0][1], "price", "the field");
  assert.equal(await admin.textContent("[data-count=invalid]"), "1");
  assert.equal(await admin.textContent("[data-count=created]"), "2", "would be created");
  assert.match(await admin.textContent("h1"), /Dry run/);
  await checkAccessibility(admin, "import dry run");
  await shot(admin, "12-import-dry-run");
  const none = await api("GET", "/api/v1/products?q=Imported%20lamp");
  assert.equal(none.body.items.length, 0, "a dry run writes nothing");

  // Again with skip, for real: the two good rows are written, the bad one counted.
  await admin.goto(BASE + "/admin/imports");
  await admin.setInputFiles("#file", file);
  await admin.selectOption("#on_error", "skip");
  await admin.uncheck("#dry_run");
  await Promise.all([admin.waitForURL(/\/admin\/jobs\/\d+$/), admin.click("#import-form button[type=submit]")]);
  await admin.waitForFunction(() => document.querySelector("#job-state")?.textContent === "succeeded", null, { timeout: 20000 });
  assert.equal(await admin.textContent("[data-count=rows]"), "3");
  assert.equal(await admin.textContent("[data-count=created]"), "2");
  assert.equal(await admin.textContent("[data-count=invalid]"), "1");
  assert.equal(await admin.$$eval("#row-errors tbody tr", (trs) => trs.length), 1);
  await checkAccessibility(admin, "import done");
  await shot(admin, "13-import-skip");
  const written = await api("GET", "/api/v1/products?q=Imported%20lamp");
  assert.deepEqual(written.body.items.map((p) => p.sku).sort(), ["IMP-1", "IMP-3"]);
});

test("export the filtered list and download it; the jobs list shows it first", async () => {
  await admin.goto(BASE + "/admin/products?q=mug");
  await Promise.all([
    admin.waitForURL(/\/admin\/jobs\/\d+$/),
    admin.click("form.export button[type=submit]"),
  ]);
  const jobId = admin.url().match(/(\d+)$/)[1];
  await admin.waitForSelector("#download", { timeout: 20000 });
  assert.equal(await admin.textContent("#job-state"), "succeeded");
  await checkAccessibility(admin, "export");
  await shot(admin, "14-export");
  const [download] = await Promise.all([admin.waitForEvent("download"), admin.click("#download")]);
  assert.equal(download.suggestedFilename(), `export-${jobId}.csv`);
  const lines = readFileSync(await download.path(), "utf8").trim().split("\n");
  assert.match(lines[0], /^sku,name/);
  const mugs = (await api("GET", "/api/v1/products?q=mug&per_page=100")).body.items;
  assert.equal(lines.length - 1, mugs.length, "one line per product the filter matches");
  assert.ok(mugs.length > 0);
  for (const mug of mugs) {
    assert.ok(lines.some((line) => line.startsWith(`${mug.sku},`)), `${mug.sku} is in the file`);
  }
  assert.ok(!lines.some((line) => /Cotton shirt/.test(line)), "nothing the filter excludes");

  await admin.goto(BASE + "/admin/jobs?kind=export");
  const first = await admin.$$eval("tbody tr:first-child > *", (cells) => cells.map((c) => c.textContent.trim()));
  assert.equal(first[0], `#${jobId}`, "newest first");
  assert.deepEqual([...new Set(await admin.$$eval("tbody tr td:nth-child(2)", (tds) => tds.map((td) => td.textContent)))], ["export"]);
  await checkAccessibility(admin, "jobs");
  await weigh(admin, "/admin/jobs", "jobs");
  await shot(admin, "15-jobs");
});

test("webhooks: an endpoint gets a delivery, retried from the console; events, secret rotation, disabling", async () => {
  // A tiny receiver: records each delivery and answers 204.
  const received = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push({ id: req.headers["webhook-id"], signature: req.headers["webhook-signature"], body });
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const target = `http://127.0.0.1:${receiver.address().port}/hook`;
  try {
    await admin.goto(BASE + "/admin/webhooks");
    await checkAccessibility(admin, "webhooks");
    await weigh(admin, "/admin/webhooks", "webhooks");
    await admin.fill("#url", target);
    await admin.check("#event-product\\.created");
    await Promise.all([admin.waitForLoadState("load"), admin.click("#create-webhook")]);
    await admin.waitForSelector("#secret");
    const secret = (await admin.textContent("#secret")).trim();
    assert.ok(secret.length >= 24, `a secret is shown once: ${secret}`);
    await checkAccessibility(admin, "webhook created");
    await shot(admin, "16-webhook-created");
    const endpoint = (await api("GET", "/api/v1/webhooks")).body.items.find((w) => w.url === target);
    assert.deepEqual(endpoint.events, ["product.created"]);
    await admin.goto(BASE + `/admin/webhooks/${endpoint.id}`);
    assert.equal(await admin.$("#secret"), null, "the secret is not shown again");

    // An event: a delivery reaches the receiver and the log says delivered.
    const created = await api("POST", "/api/v1/products", { name: "Webhook lamp", price: "10.00", stock: 1 });
    assert.equal(created.status, 201);
    const deadline = Date.now() + 20000;
    let status = "";
    while (Date.now() < deadline) {
      await admin.goto(BASE + `/admin/webhooks/${endpoint.id}`);
      status = (await admin.$$eval("#deliveries tbody tr:first-child td", (tds) => tds.map((td) => td.textContent.trim())))[1] ?? "";
      if (status === "delivered") break;
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal(status, "delivered");
    assert.equal(received.length, 1);
    assert.equal(JSON.parse(received[0].body).type, "product.created");
    await checkAccessibility(admin, "webhook deliveries");
    await shot(admin, "17-webhook-deliveries");

    // Retry: the same event (same webhook-id) is sent again.
    await Promise.all([admin.waitForURL(new RegExp(`/admin/webhooks/${endpoint.id}$`)), admin.click("#deliveries button")]);
    const again = Date.now() + 20000;
    while (received.length < 2 && Date.now() < again) await new Promise((r) => setTimeout(r, 200));
    assert.equal(received.length, 2, "the retry was sent");
    assert.equal(received[1].id, received[0].id);

    // Rotate: a new secret, shown once.
    await Promise.all([admin.waitForLoadState("load"), admin.click("#rotate")]);
    await admin.waitForSelector("#secret");
    const rotated = (await admin.textContent("#secret")).trim();
    assert.notEqual(rotated, secret);

    // Events and disabling.
    await admin.goto(BASE + `/admin/webhooks/${endpoint.id}`);
    await admin.check("#event-product\\.updated");
    await admin.selectOption("#status", "disabled");
    await Promise.all([admin.waitForURL(new RegExp(`/admin/webhooks/${endpoint.id}$`)), admin.click("#save-webhook")]);
    const after = (await api("GET", `/api/v1/webhooks/${endpoint.id}`)).body;
    assert.deepEqual([...after.events].sort(), ["product.created", "product.updated"]);
    assert.equal(after.disabled, true);
    assert.equal(await admin.inputValue("#status"), "disabled");
  } finally {
    receiver.close();
  }
});

test("sign out", async () => {
  await admin.goto(BASE + "/admin/products");
  await Promise.all([admin.waitForURL(/\/admin\/sign-in$/), admin.click("header.top button[type=submit]")]);
  await admin.goto(BASE + "/admin/products");
  assert.match(admin.url(), /\/admin\/sign-in$/, "the session is over");
});

test("no Content-Security-Policy violation and no script error anywhere", async () => {
  assert.deepEqual(cspViolations, []);
  assert.deepEqual(consoleErrors.filter((e) => !/status of 4\d\d/.test(e)), []);
});
