// Loads the `nudge preview` site in headless Chromium and checks that every email renders.
//
// Usage: node scripts/browser/preview.mjs SITE_DIR ARTIFACT_DIR TOOLS_DIR
//   SITE_DIR      the folder `nudge preview --out` wrote
//   ARTIFACT_DIR  where the screenshots go (preview-index.png, preview-email.png)
//   TOOLS_DIR     the folder playwright-core was installed into (npm --prefix)
//
// The site is served from a local static server on a free loopback port. Checked on the index
// and on every email page: no console error, no page error, no failed or 4xx/5xx request of the
// site's own files, no request of the site's own pages to anything remote (the site needs no
// network), no broken image (naturalWidth 0) or frame, and each email's frames (desktop and
// phone) non-empty at their widths (body scrollHeight > 0, visible text). Requests leaving
// the machine are aborted: a remote image written in a marketer's template is the template's
// (a real mail client loads it), so it is reported, not counted as broken; local images are
// checked.
//
// Exits 0 when everything passes, 1 with one line per problem otherwise.

import { createServer } from "node:http";
import { createRequire } from "node:module";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, normalize, resolve, sep } from "node:path";

const [siteDir, artifactDir, toolsDir] = process.argv.slice(2).map((p) => p && resolve(p));
if (!siteDir || !artifactDir || !toolsDir) {
  console.error("usage: node preview.mjs SITE_DIR ARTIFACT_DIR TOOLS_DIR");
  process.exit(2);
}
const { chromium } = createRequire(join(toolsDir, "package.json"))("playwright-core");

const TYPES = { ".html": "text/html; charset=utf-8", ".eml": "message/rfc822" };

function serve(root) {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const file = normalize(join(root, path.endsWith("/") ? path + "index.html" : path));
    if (!file.startsWith(root + sep)) {
      res.writeHead(403).end();
      return;
    }
    try {
      if (!statSync(file).isFile()) throw new Error("not a file");
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
      res.end(readFileSync(file));
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

const problems = [];
const remoteInTemplates = new Set();
const problem = (where, what) => problems.push(`${where}: ${what}`);

const server = await serve(siteDir);
const origin = `http://127.0.0.1:${server.address().port}`;
const profile = mkdtempSync(join(tmpdir(), "nudge-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1360, height: 900 },
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

let current = "(start)";
await context.route("**/*", (route) => {
  const req = route.request();
  const url = req.url();
  if (url.startsWith(origin) || url.startsWith("data:") || url.startsWith("about:")) {
    return route.continue();
  }
  const frame = req.frame();
  if (frame && frame.parentFrame() === null) {
    problem(current, `the page itself requests a remote resource ${url}`);
  } else {
    remoteInTemplates.add(url);
  }
  return route.abort();
});
const page = context.pages()[0] ?? (await context.newPage());
page.on("console", (msg) => {
  if (msg.type() === "error") problem(current, `console error: ${msg.text()}`);
});
page.on("pageerror", (err) => problem(current, `page error: ${err.message}`));
page.on("requestfailed", (req) => {
  if (req.url().startsWith(origin)) problem(current, `request failed: ${req.url()} (${req.failure()?.errorText})`);
});
page.on("response", (res) => {
  if (res.url().startsWith(origin) && res.status() >= 400) problem(current, `HTTP ${res.status()} for ${res.url()}`);
});

/** Local images of the document that did not load. */
const brokenImages = () =>
  [...document.images]
    .filter((img) => img.src.startsWith(location.origin) && img.complete && img.naturalWidth === 0)
    .map((img) => img.src);

async function open(path) {
  current = path;
  const res = await page.goto(`${origin}/${path}`, { waitUntil: "load" });
  if (!res || !res.ok()) problem(path, `HTTP ${res?.status()}`);
  for (const src of await page.evaluate(brokenImages)) problem(path, `broken image ${src}`);
}

await open("index.html");
const emails = await page.$$eval("a.email-card", (links) => links.map((a) => a.getAttribute("href")));
if (emails.length === 0) problem("index.html", "lists no email");
mkdirSync(artifactDir, { recursive: true });
const indexShot = join(artifactDir, "preview-index.png");
await page.screenshot({ path: indexShot, fullPage: true });

let frames = 0;
for (const href of emails) {
  await open(href);
  const failed = await page.$("li.error");
  if (failed) problem(href, `the email did not render: ${await failed.innerText()}`);
  const checks = await page.$$eval("iframe", (els) =>
    els.map((f) => {
      const doc = f.contentDocument;
      const body = doc && doc.body;
      return {
        title: f.title,
        width: doc ? doc.documentElement.clientWidth : 0,
        height: body ? body.scrollHeight : 0,
        text: body ? body.innerText.trim().length : 0,
        broken: doc
          ? [...doc.images]
              .filter((i) => i.src.startsWith(location.origin) && i.complete && i.naturalWidth === 0)
              .map((i) => i.src)
          : ["(frame document not reachable)"],
      };
    }),
  );
  const widths = { desktop: 640, phone: 375 };
  for (const want of Object.keys(widths)) {
    const f = checks.find((c) => c.title === want);
    if (!f) {
      problem(href, `no ${want} frame`);
      continue;
    }
    frames += 1;
    if (want === "phone" ? f.width !== 375 : f.width < 640) problem(href, `${want} frame is ${f.width}px wide`);
    if (f.height <= 0) problem(href, `${want} frame is empty (scrollHeight ${f.height})`);
    if (f.text <= 0) problem(href, `${want} frame shows no text`);
    for (const src of f.broken) problem(href, `broken image in the ${want} frame: ${src}`);
  }
  const text = await page.$$eval("pre.block", (els) => els.map((e) => e.innerText.trim().length));
  if (!(text[0] > 0)) problem(href, "the text part is empty");
}
let emailShot = null;
if (emails.length > 0) {
  await open(emails[0]);
  await page.waitForTimeout(200);
  emailShot = join(artifactDir, "preview-email.png");
  await page.screenshot({ path: emailShot, fullPage: true });
}

await context.close();
server.close();
rmSync(profile, { recursive: true, force: true });

for (const url of remoteInTemplates) console.log(`   note: a template links to ${url} (remote: not loaded, not checked)`);
console.log(`   ${emails.length} email pages, ${frames} frames checked in ${chromium.name()} (headless)`);
console.log(`   screenshot of the index: ${indexShot}`);
if (emailShot) console.log(`   screenshot of an email page: ${emailShot}`);
if (problems.length > 0) {
  for (const p of problems) console.error(`browser test: ${p}`);
  process.exit(1);
}
