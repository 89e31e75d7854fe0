// Headless Chromium, driven by puppeteer-core, through an app's
// authorization on a relay with --http-auth oidc, for TestOIDCChromium: it
// opens the authorize URL, fills the OpenID provider's login form as a
// person would, clicks Allow on the relay's consent page, and prints "BACK <url>" when the browser is sent back to
// the app's redirect URI (that navigation is stopped there), or "PAGE
// <html>" where it ended otherwise.
//
// node chromium_oidc.mjs PUPPETEER_CORE_DIR CHROMIUM AUTH_URL REDIRECT USER PASSWORD
import { pathToFileURL } from "node:url";

const [dir, chromium, authURL, redirect, user, password] = process.argv.slice(2);
const { default: puppeteer } = await import(pathToFileURL(`${dir}/lib/puppeteer/puppeteer-core.js`).href);
const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage();
  await page.setRequestInterception(true);
  let back;
  const sentBack = new Promise((resolve) => {
    page.on("request", (req) => {
      if (req.url().startsWith(redirect)) {
        back = req.url();
        req.abort();
        resolve();
      } else {
        req.continue();
      }
    });
  });
  await page.goto(authURL, { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#username", { timeout: 15000 });
  await page.type("#username", user);
  await page.type("#password", password);
  await Promise.all([
    page.waitForNavigation({ waitUntil: "domcontentloaded", timeout: 15000 }).catch(() => {}),
    page.click("button[type=submit]"),
  ]);
  if (!back && (await page.$("button[value=allow]"))) {
    await Promise.all([
      page.waitForNavigation({ waitUntil: "domcontentloaded", timeout: 15000 }).catch(() => {}),
      page.click("button[value=allow]"),
    ]);
  }
  await Promise.race([sentBack, new Promise((r) => setTimeout(r, 5000))]);
  if (back) console.log(`BACK ${back}`);
  else console.log(`PAGE ${await page.content()}`);
} finally {
  await browser.close();
}
