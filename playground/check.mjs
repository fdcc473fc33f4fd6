// Loads BASE/playground in headless Debian Chromium, runs the default query and
// checks that the page rendered, the result appeared and no request left BASE's origin.
// Usage: node check.mjs http://127.0.0.1:8080 [screenshot.png]
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = process.argv[2];
const shot = process.argv[3];
if (!base) {
  console.error('usage: node check.mjs BASE_URL [SCREENSHOT.png]');
  process.exit(2);
}
const origin = new URL(base).origin;
const pageUrl = new URL('/playground', base).href;
const timeout = 20_000;

const userDataDir = mkdtempSync(join(tmpdir(), 'playground-check-'));
const failures = [];
const requests = [];
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  context.on('request', (req) => requests.push({ method: req.method(), url: req.url() }));
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.error(`console error: ${msg.text()}`);
  });
  page.on('pageerror', (err) => failures.push(`page error: ${err.message}`));

  // (a) the page rendered
  const response = await page.goto(pageUrl, { waitUntil: 'load', timeout });
  if (!response || !response.ok()) {
    failures.push(`GET ${pageUrl} answered ${response ? response.status() : 'nothing'}`);
  }
  let rendered = false;
  try {
    await page.locator('.graphiql-container').waitFor({ state: 'visible', timeout });
    await page.locator('.graphiql-query-editor .CodeMirror').first().waitFor({ state: 'visible', timeout });
    rendered = true;
  } catch (e) {
    failures.push(`GraphiQL did not render: ${e.message.split('\n')[0]}`);
  }

  // (b) the query result appeared
  if (rendered) {
    try {
      await page.locator('button.graphiql-execute-button').click({ timeout });
      await page
        .locator('.graphiql-response .CodeMirror')
        .filter({ hasText: '__typename' })
        .waitFor({ state: 'visible', timeout });
      const result = (await page.locator('.graphiql-response .CodeMirror-code').innerText()).replace(/\s+/g, ' ').trim();
      console.log(`result pane: ${result}`);
    } catch (e) {
      failures.push(`query result did not appear: ${e.message.split('\n')[0]}`);
    }
  }

  if (shot) {
    await page.screenshot({ path: shot });
    console.log(`screenshot: ${shot}`);
  }
} catch (e) {
  failures.push(`browser run failed: ${e.message.split('\n')[0]}`);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}

// (c) every request went to the same origin (data: URLs never reach the network)
for (const r of requests) console.log(`request: ${r.method} ${r.url.slice(0, 120)}`);
const foreign = requests.filter((r) => !r.url.startsWith('data:') && new URL(r.url).origin !== origin);
for (const r of foreign) failures.push(`request to another origin: ${r.method} ${r.url}`);
if (requests.length === 0) failures.push('no request recorded');

if (failures.length) {
  for (const f of failures) console.error(`FAIL: ${f}`);
  process.exit(1);
}
console.log(`OK: ${pageUrl} rendered, ran the query and made ${requests.length} requests, all to ${origin}`);
