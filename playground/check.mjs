// Checks the playground of a running server the way a person uses it, in
// headless Debian Chromium:
//   0. seeds an agency and a client through plain fetch against BASE/graphql
//      (BASE must be the API host, e.g. http://127.0.0.1:PORT);
//   1. opens BASE/playground: GraphiQL and the sign-in bar render, nothing
//      shows an error;
//   2. opens the Docs explorer: the schema loaded, and Client, Project and
//      Document are listed (Client opens and shows its fields);
//   3. signs in through the bar: a wrong password shows the API's code and
//      message, the right one shows who is signed in;
//   4. runs a query in the editor and sees the email and the client's name in
//      the result pane;
//   5. reloads: still signed in (the tab keeps the tokens) and the Headers
//      editor kept what was typed into it;
//   6. every request the browser made stayed on BASE's origin.
// Exits non-zero naming every failure.
// Usage: node check.mjs http://127.0.0.1:8080 [screenshot.png]
import { chromium } from 'playwright-core';
import { randomBytes } from 'node:crypto';
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
const endpoint = new URL('/graphql', base).href;
const timeout = 20_000;

const failures = [];
const oneLine = (e) => String(e?.message ?? e).split('\n')[0];

// --- 0. seed --------------------------------------------------------------
const agency = `pg${randomBytes(5).toString('hex')}`;
const email = `ana@${agency}.example.com`;
const password = 'tundra velvet orbit 42';
const clientName = `Client of ${agency}`;

async function gql(query, variables, headers = {}) {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json().catch(() => null);
  if (!body?.data || body.errors) {
    throw new Error(`${query.split('(')[0]} answered ${response.status}: ${JSON.stringify(body?.errors ?? body)}`);
  }
  return body.data;
}

try {
  const { signUp } = await gql(
    'mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }',
    { i: { agencyName: `Agency ${agency}`, subdomain: agency, email, password, firstName: 'Ana', lastName: 'Silva' } },
  );
  await gql(
    'mutation($i: CreateClientInput!) { createClient(input: $i) { id } }',
    { i: { name: clientName } },
    { authorization: `Bearer ${signUp.accessToken}`, 'x-tenant': agency },
  );
  console.log(`seeded agency ${agency}: owner ${email}, client "${clientName}"`);
} catch (e) {
  console.error(`FAIL: seeding through ${endpoint}: ${oneLine(e)}`);
  process.exit(1);
}

// --- the browser ------------------------------------------------------------
const userDataDir = mkdtempSync(join(tmpdir(), 'playground-check-'));
const requests = [];
let context;

/** Runs one step; a failure is recorded and the steps that need it skipped. */
async function step(name, fn) {
  try {
    await fn();
    console.log(`ok: ${name}`);
    return true;
  } catch (e) {
    failures.push(`${name}: ${oneLine(e)}`);
    return false;
  }
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

// CodeMirror keeps a zero-width space in an empty line.
const text = async (locator) => (await locator.innerText()).replace(/\u200b/g, '').replace(/\s+/g, ' ').trim();

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 860 },
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
  context.setDefaultTimeout(timeout);
  context.on('request', (req) => requests.push({ method: req.method(), url: req.url() }));
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.error(`console error: ${msg.text()}`);
  });
  page.on('pageerror', (err) => failures.push(`page error: ${err.message}`));

  const queryEditor = page.locator('.graphiql-query-editor .CodeMirror').first();
  const responsePane = page.locator('.graphiql-response .CodeMirror').first();
  const bar = page.locator('header.pg-session');
  const signedIn = bar.getByTestId('signed-in');

  // 1. the page renders, without an error anywhere
  const loaded = await step('the page renders', async () => {
    const response = await page.goto(pageUrl, { waitUntil: 'load' });
    expect(response?.ok(), `GET ${pageUrl} answered ${response ? response.status() : 'nothing'}`);
    await page.locator('.graphiql-container').waitFor({ state: 'visible' });
    await queryEditor.waitFor({ state: 'visible' });
    // The bar found out it is on the API host: it asks for the agency.
    await bar.getByLabel('Agency').waitFor({ state: 'visible' });
  });
  if (loaded) {
    await step('nothing shows an error after loading', async () => {
      // The schema request has been answered (successfully or not) once the
      // re-fetch button is enabled again.
      await page.waitForFunction(() => {
        const b = document.querySelector('button[aria-label="Re-fetch GraphQL schema"]');
        return b && !b.disabled;
      });
      await page.waitForLoadState('networkidle');
      const shown = await text(responsePane);
      expect(shown === '', `the result pane shows "${shown.slice(0, 200)}" before anything ran`);
      const alerts = await page.getByRole('alert').allInnerTexts();
      expect(alerts.length === 0, `an error shows: ${alerts.join(' | ')}`);
    });
  }

  // 2. the Docs explorer lists the schema's types
  if (loaded) {
    await step('the Docs explorer lists Client, Project and Document', async () => {
      await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
      const docs = page.locator('.graphiql-doc-explorer');
      await docs.waitFor({ state: 'visible' });
      const error = docs.locator('.graphiql-doc-explorer-error');
      await docs.getByText('All Schema Types').waitFor({ state: 'visible', timeout: 5_000 }).catch(() => {});
      expect((await error.count()) === 0, `the Docs explorer says "${await error.first().innerText().catch(() => '')}"`);
      const typeLink = (name) => docs.locator('a.graphiql-doc-explorer-type-name', { hasText: new RegExp(`^${name}$`) });
      for (const name of ['Client', 'Project', 'Document']) {
        expect((await typeLink(name).count()) > 0, `${name} is not among the schema's types`);
      }
      await typeLink('Client').first().click();
      await docs.locator('.graphiql-doc-explorer-title', { hasText: /^Client$/ }).waitFor({ state: 'visible' });
      await docs.locator('a.graphiql-doc-explorer-field-name', { hasText: /^projects$/ }).waitFor({ state: 'visible' });
    });
  }

  // 3. signing in through the bar
  const isIn = loaded && (await step('signing in through the bar', async () => {
    await bar.getByLabel('Agency').fill(agency);
    await bar.getByLabel('Email').fill(email);
    await bar.getByLabel('Password').fill('not the password at all');
    await bar.getByRole('button', { name: 'Sign in' }).click();
    const problem = bar.getByRole('alert');
    await problem.waitFor({ state: 'visible' });
    const said = await text(problem);
    expect(said.includes('INVALID_CREDENTIALS'), `a wrong password shows "${said}", not the INVALID_CREDENTIALS code`);
    console.log(`wrong password: ${said}`);

    await bar.getByLabel('Password').fill(password);
    await bar.getByRole('button', { name: 'Sign in' }).click();
    await signedIn.waitFor({ state: 'visible' });
    const state = await text(signedIn);
    expect(state.includes(email) && state.includes(agency), `the bar shows "${state}"`);
    expect((await bar.getByRole('button', { name: 'Sign out' }).count()) === 1, 'there is no Sign out button');
    console.log(`bar: ${state}`);
  }));

  // 4. a query in the editor, with the bar's credentials
  if (isIn) {
    await step('running a query shows the signed-in data', async () => {
      const query = '{ me { email } clients(first: 1) { edges { node { name } } } }';
      await queryEditor.click();
      await page.keyboard.press('ControlOrMeta+A');
      await page.keyboard.press('Delete');
      await page.keyboard.insertText(query);
      await page.keyboard.press('Escape');
      const typed = await text(page.locator('.graphiql-query-editor .CodeMirror-code').first());
      expect(typed.includes('clients(first: 1)'), `the editor holds "${typed}"`);
      await page.locator('button.graphiql-execute-button').click();
      await responsePane.filter({ hasText: email }).filter({ hasText: clientName }).waitFor({ state: 'visible' }).catch(async () => {
        throw new Error(`the result pane shows "${(await text(responsePane)).slice(0, 300)}"`);
      });
      console.log(`result pane: ${await text(responsePane)}`);
    });
  }

  if (shot) {
    await page.screenshot({ path: shot });
    console.log(`screenshot: ${shot}`);
  }

  // 5. a reload keeps the session and the Headers editor
  if (isIn) {
    await step('a reload keeps the session and the typed headers', async () => {
      const headersTab = page.getByRole('button', { name: 'Headers' });
      await headersTab.click();
      const headersEditor = page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror').first();
      await headersEditor.click();
      await page.keyboard.press('ControlOrMeta+A');
      await page.keyboard.press('Delete');
      await page.keyboard.insertText('{ "x-playground-check": "kept" }');
      await page.waitForTimeout(700); // GraphiQL stores edits after a short debounce
      await page.reload({ waitUntil: 'load' });
      await signedIn.waitFor({ state: 'visible' });
      expect((await text(signedIn)).includes(email), 'the bar forgot the session');
      await page.getByRole('button', { name: 'Headers' }).click();
      const kept = page.locator('.graphiql-editor-tool .CodeMirror', { hasText: 'x-playground-check' });
      await kept.first().waitFor({ state: 'visible' });
    });
  }
} catch (e) {
  failures.push(`browser run failed: ${oneLine(e)}`);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}

// 6. every request went to the same origin (data: URLs never reach the network)
for (const r of requests) console.log(`request: ${r.method} ${r.url.slice(0, 120)}`);
const foreign = requests.filter((r) => !r.url.startsWith('data:') && new URL(r.url).origin !== origin);
for (const r of foreign) failures.push(`request to another origin: ${r.method} ${r.url}`);
if (requests.length === 0) failures.push('no request recorded');

if (failures.length) {
  for (const f of failures) console.error(`FAIL: ${f}`);
  process.exit(1);
}
console.log(`OK: ${pageUrl} loaded its schema, signed in as ${email} and ran a query; ${requests.length} requests, all to ${origin}`);
