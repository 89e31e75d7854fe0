// Headless Chromium, driven by puppeteer-core, uses the preview page as a
// person would, for TestInteractive: it picks a tool in the list, types an
// argument in the form built from its inputSchema, presses Call, waits for
// the widget to show the result, switches the theme, reads the message
// log, then changes the widget on the server (BUMP_URL) and waits for the
// page to render the new version with the last result. It prints one JSON
// object with what it saw.
//
// node interactive.mjs PUPPETEER_CORE_DIR CHROMIUM PAGE_URL TOOL TEXT BUMP_URL
import { pathToFileURL } from "node:url";

const [dir, chromium, url, tool, text, bump] = process.argv.slice(2);
const { default: puppeteer } = await import(pathToFileURL(`${dir}/lib/puppeteer/puppeteer-core.js`).href);
const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
const out = {};
try {
  const page = await browser.newPage();
  await page.goto(url, { waitUntil: "domcontentloaded" });
  await page.waitForSelector(`nav button[data-tool="${tool}"]`, { timeout: 15000 });
  out.tools = await page.$$eval("nav button", (bs) => bs.map((b) => b.dataset.tool));
  await page.click(`nav button[data-tool="${tool}"]`);
  await page.waitForSelector('form input[name="text"]');
  await page.type('form input[name="text"]', text);
  out.json = await page.$eval('form textarea[name="json"]', (t) => t.value);
  await page.click("form button[type=submit]");
  const widget = async () => {
    const f = await (await page.waitForSelector("#stage iframe")).contentFrame();
    const inner = await (await f.waitForSelector("iframe")).contentFrame();
    return inner;
  };
  const inner = await widget();
  await inner.waitForSelector("#result", { timeout: 15000 });
  out.result = await inner.$eval("#result", (e) => e.textContent);
  out.themeBefore = await inner.evaluate(() => window.hostContext && window.hostContext.theme);
  await page.select("#theme", "dark");
  await page.waitForFunction(
    () => [...document.querySelectorAll("#log summary")].some((s) => s.textContent.includes("ui/notifications/host-context-changed")),
    { timeout: 15000 },
  );
  out.log = await page.$$eval("#log summary", (ss) => ss.map((s) => s.textContent).reverse());
  out.problems = await page.$$eval("#problems li", (ls) => ls.map((l) => l.textContent));
  out.versionBefore = await inner.$eval("#version", (e) => e.textContent);
  await fetch(bump);
  const deadline = Date.now() + 15000;
  for (;;) {
    try {
      const w = await widget();
      const v = await w.$eval("#version", (e) => e.textContent);
      const r = await w.$eval("#result", (e) => e.textContent);
      if (v !== out.versionBefore) {
        out.versionAfter = v;
        out.resultAfter = r;
        break;
      }
    } catch {}
    if (Date.now() > deadline) throw new Error("the page did not render the changed widget");
    await new Promise((r) => setTimeout(r, 100));
  }
} catch (e) {
  out.error = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
