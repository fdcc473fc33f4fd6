// Checks the playground of a running server the way a person uses it, in
// headless Debian Chromium:
//   0. seeds an agency and a client through plain fetch against BASE/graphql
//      (BASE must be the API host, e.g. http://127.0.0.1:PORT);
//   1. opens BASE/playground: GraphiQL and the sign-in bar render, nothing
//      shows an error;
//   2. opens the Docs explorer: the schema loaded, and Client, Project and
//      Document are listed (Client opens and shows its fields);
//   3. runs a subscription (`clientChanged`, over a WebSocket to BASE/graphql)
//      before signing in: the result pane shows the server's refusal (4403);
//   4. signs in through the bar: a wrong password shows the API's code and
//      message, the right one shows who is signed in;
//   5. runs a query in the editor and sees the email and the client's name in
//      the result pane;
//   6. runs the subscription again, signed in: a client created meanwhile by
//      a plain HTTP mutation from here shows in the result pane (its name and
//      CREATED), and Stop ends it (the socket closes);
//   7. reloads: still signed in (the tab keeps the tokens) and the Headers
//      editor kept what was typed into it;
//   8. opens the playground on the agency's own address ({agency}.localhost
//      for a loopback BASE): the bar asks for no agency, signs in, and a
//      subscription there shows another client created by HTTP;
//   9. every request the browser made (WebSockets included) stayed on BASE's
//      origin or the agency's.
// Exits non-zero naming every failure.
// Usage: node check.mjs http://127.0.0.1:8080 [screenshot.png]
// (a second screenshot, showing the subscription's event, goes next to it:
// screenshot-subscription.png)
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
const wsEndpoint = endpoint.replace(/^http/, 'ws');
const timeout = 20_000;

const failures = [];
const oneLine = (e) => String(e?.message ?? e).split('\n')[0];

// --- 0. seed --------------------------------------------------------------
const agency = `pg${randomBytes(5).toString('hex')}`;
const email = `ana@${agency}.example.com`;
const password = 'tundra velvet orbit 42';
const clientName = `Client of ${agency}`;
const liveClientName = `Live client of ${agency}`;
const subscription = 'subscription { clientChanged { kind client { name } } }';
let ownerToken;
// The agency's own address: {agency}.{base domain}, the base domain of a
// loopback API host being `localhost` (Chromium resolves *.localhost itself).
const apiHost = new URL(base);
const baseDomain = ['127.0.0.1', 'localhost', '[::1]'].includes(apiHost.hostname) ? 'localhost' : apiHost.hostname.replace(/^api\./, '');
const agencyOrigin = `${apiHost.protocol}//${agency}.${baseDomain}${apiHost.port ? `:${apiHost.port}` : ''}`;
const agencyWsEndpoint = `${agencyOrigin.replace(/^http/, 'ws')}/graphql`;

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

/** Creates a client as the owner, by plain HTTP on the API host. */
function createClient(name) {
  return gql(
    'mutation($i: CreateClientInput!) { createClient(input: $i) { id } }',
    { i: { name } },
    { authorization: `Bearer ${ownerToken}`, 'x-tenant': agency },
  );
}

try {
  const { signUp } = await gql(
    'mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }',
    { i: { agencyName: `Agency ${agency}`, subdomain: agency, email, password, firstName: 'Ana', lastName: 'Silva' } },
  );
  ownerToken = signUp.accessToken;
  await createClient(clientName);
  console.log(`seeded agency ${agency}: owner ${email}, client "${clientName}"`);
} catch (e) {
  console.error(`FAIL: seeding through ${endpoint}: ${oneLine(e)}`);
  process.exit(1);
}

// --- the browser ------------------------------------------------------------
const userDataDir = mkdtempSync(join(tmpdir(), 'playground-check-'));
const requests = [];
// Every WebSocket the page opened and the frames it sent and received.
const sockets = [];
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

/** Waits until `probe()` answers something truthy, and answers it. */
async function until(probe, what, ms = timeout) {
  const end = Date.now() + ms;
  for (;;) {
    const found = probe();
    if (found) return found;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The graphql-transport-ws messages of `socket` in direction `dir` ('sent' or 'received'). */
function messages(socket, dir) {
  return socket.frames
    .filter((f) => f.dir === dir)
    .map((f) => {
      try {
        return JSON.parse(f.text);
      } catch {
        return null;
      }
    })
    .filter(Boolean);
}


/** Records `page`'s WebSockets (with their frames), console errors and uncaught errors. */
function watch(page) {
  page.on('websocket', (ws) => {
    const socket = { url: ws.url(), frames: [], closed: false };
    sockets.push(socket);
    ws.on('framesent', (f) => socket.frames.push({ dir: 'sent', text: String(f.payload) }));
    ws.on('framereceived', (f) => socket.frames.push({ dir: 'received', text: String(f.payload) }));
    ws.on('close', () => (socket.closed = true));
    ws.on('socketerror', (e) => socket.frames.push({ dir: 'error', text: String(e) }));
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.error(`console error: ${msg.text()}`);
  });
  page.on('pageerror', (err) => failures.push(`page error: ${err.message}`));
}

/** The parts of the playground in `page` that a person uses. */
function playground(page) {
  const queryEditor = page.locator('.graphiql-query-editor .CodeMirror').first();
  const responsePane = page.locator('.graphiql-response .CodeMirror').first();
  const bar = page.locator('header.pg-session');
  const signedIn = bar.getByTestId('signed-in');
  const executeButton = page.locator('button.graphiql-execute-button');

  /** Replaces the editor's text with `query`, as typed. */
  async function type(query, expected) {
    await queryEditor.click();
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(query);
    await page.keyboard.press('Escape');
    const typed = await text(page.locator('.graphiql-query-editor .CodeMirror-code').first());
    expect(typed.includes(expected), `the editor holds "${typed}"`);
    // GraphiQL parses the editor's text 100 ms after the last change; a run
    // before that would not know the operation is a subscription.
    await page.waitForTimeout(400);
  }
  return { page, queryEditor, responsePane, bar, signedIn, executeButton, type };
}

// The sockets and their frames, for a failure's message (credentials left out).
const redact = (t) => t.replace(/(Bearer )[^"\\]+/gi, '$1…').replace(/agk_[A-Za-z0-9_-]+/g, 'agk_…');
const describe = (socketList) =>
  socketList
    .map((s) => `${s.url} (${s.closed ? 'closed' : 'open'}): ${s.frames.map((f) => `${f.dir} ${redact(f.text).slice(0, 160)}`).join(' | ')}`)
    .join(' ; ') || 'none';

/**
 * In the signed-in playground `pg`: runs the subscription, creates the client
 * `name` by plain HTTP, expects the result pane to show its name and CREATED
 * (then takes the screenshot `shotPath`, if any), and stops it.
 */
async function liveSubscription(pg, name, wsUrl, shotPath) {
  const { page, responsePane, executeButton, type } = pg;
  const before = sockets.length;
  await type(subscription, 'clientChanged');
  await executeButton.click();
  const acked = (s) => messages(s, 'received').some((m) => m.type === 'connection_ack');
  const socket = await until(
    // A socket closed unacknowledged: refused (the result pane says why).
    () => sockets.slice(before).find((s) => acked(s) || s.closed),
    'a WebSocket whose connection was acknowledged',
  ).catch((e) => e);
  if (!socket?.url || !acked(socket)) {
    await page.waitForTimeout(500);
    const why = socket?.url ? 'the WebSocket was closed without an acknowledgement' : socket.message;
    throw new Error(`${why}; the result pane shows "${(await text(responsePane)).slice(0, 300)}"; sockets: ${describe(sockets.slice(before))}`);
  }
  expect(socket.url === wsUrl, `the WebSocket went to ${socket.url}, not ${wsUrl}`);
  const init = messages(socket, 'sent').find((m) => m.type === 'connection_init');
  expect(/^Bearer ./.test(init?.payload?.authorization ?? ''), `connection_init carried ${JSON.stringify(Object.keys(init?.payload ?? {}))}, not the bar's token`);
  console.log(`websocket ${socket.url}: connection_init with ${Object.keys(init.payload).join(', ')}; acknowledged`);
  await until(() => messages(socket, 'sent').some((m) => m.type === 'subscribe' && m.payload?.query?.includes('clientChanged')), 'the subscribe message');
  await page.getByRole('button', { name: 'Stop query (Ctrl-Enter)' }).waitFor({ state: 'visible' });
  // There is no "subscribed" answer in the protocol: give the server a moment.
  await page.waitForTimeout(500);
  await createClient(name);
  console.log(`created "${name}" by HTTP`);
  await responsePane.filter({ hasText: name }).filter({ hasText: 'CREATED' }).waitFor({ state: 'visible' }).catch(async () => {
    throw new Error(`the result pane shows "${(await text(responsePane)).slice(0, 300)}"; sockets: ${describe([socket])}`);
  });
  console.log(`result pane: ${await text(responsePane)}`);
  if (shotPath) {
    await page.screenshot({ path: shotPath });
    console.log(`screenshot: ${shotPath}`);
  }
  await page.getByRole('button', { name: 'Stop query (Ctrl-Enter)' }).click();
  await page.getByRole('button', { name: 'Execute query (Ctrl-Enter)' }).waitFor({ state: 'visible' });
  await until(() => messages(socket, 'sent').some((m) => m.type === 'complete') && socket.closed, 'the complete message and the socket closing', 5_000).catch((e) => {
    throw new Error(`${e.message}; sockets: ${describe([socket])}`);
  });
  expect((await text(responsePane)).includes(name), 'the result pane emptied when stopped');
}

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
  watch(page);
  const pg = playground(page);
  const { queryEditor, responsePane, bar, signedIn, executeButton, type } = pg;

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

  // 3. a subscription before signing in: the server's refusal shows
  if (loaded) {
    await step('a subscription run signed out shows the refusal (4403)', async () => {
      await type(subscription, 'clientChanged');
      await executeButton.click();
      await responsePane.filter({ hasText: '4403' }).waitFor({ state: 'visible' }).catch(async () => {
        throw new Error(`the result pane shows "${(await text(responsePane)).slice(0, 300)}"`);
      });
      console.log(`signed out, the subscription shows: ${await text(responsePane)}`);
      await page.getByRole('button', { name: 'Execute query (Ctrl-Enter)' }).waitFor({ state: 'visible' });
    });
  }

  // 4. signing in through the bar
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

  // 5. a query in the editor, with the bar's credentials
  if (isIn) {
    await step('running a query shows the signed-in data', async () => {
      await type('{ me { email } clients(first: 1) { edges { node { name } } } }', 'clients(first: 1)');
      await executeButton.click();
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

  // 6. a live subscription, signed in after the page loaded (the socket's
  // connection_init is read when it connects), sees a client created elsewhere
  if (isIn) {
    await step('a running subscription shows a client created by another request, and stops', () =>
      liveSubscription(pg, liveClientName, wsEndpoint, shot && shot.replace(/(\.png)?$/i, '-subscription.png')),
    );
  }

  // 7. a reload keeps the session and the Headers editor
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

  // 8. the agency's own address: the agency is the address's, and a
  // subscription there sees a client created elsewhere too
  if (loaded) {
    await step(`on the agency's own address (${agencyOrigin}) a subscription shows a client created by another request`, async () => {
      const there = await context.newPage();
      watch(there);
      const pg2 = playground(there);
      const response = await there.goto(`${agencyOrigin}/playground`, { waitUntil: 'load' });
      expect(response?.ok(), `GET ${agencyOrigin}/playground answered ${response ? response.status() : 'nothing'}`);
      await pg2.bar.getByLabel('Email').waitFor({ state: 'visible' });
      expect((await pg2.bar.getByLabel('Agency').count()) === 0, 'the bar asks for an agency on the agency\'s own address');
      await pg2.bar.getByLabel('Email').fill(email);
      await pg2.bar.getByLabel('Password').fill(password);
      await pg2.bar.getByRole('button', { name: 'Sign in' }).click();
      await pg2.signedIn.waitFor({ state: 'visible' });
      expect((await text(pg2.signedIn)).includes(email), `the bar shows "${await text(pg2.signedIn)}"`);
      await liveSubscription(pg2, `Client seen on the agency's address, ${agency}`, agencyWsEndpoint, null);
    });
  }
} catch (e) {
  failures.push(`browser run failed: ${oneLine(e)}`);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}

// 9. every request went to the page's origin (data: URLs never reach the network)
for (const s of sockets) requests.push({ method: 'WEBSOCKET', url: s.url });
for (const r of requests) console.log(`request: ${r.method} ${r.url.slice(0, 120)}`);
const sameOrigin = (url) => url.startsWith('data:') || [origin, agencyOrigin].includes(new URL(url.replace(/^ws/, 'http')).origin);
const foreign = requests.filter((r) => !sameOrigin(r.url));
for (const r of foreign) failures.push(`request to another origin: ${r.method} ${r.url}`);
if (requests.length === 0) failures.push('no request recorded');

if (failures.length) {
  for (const f of failures) console.error(`FAIL: ${f}`);
  process.exit(1);
}
console.log(`OK: ${pageUrl} loaded its schema, signed in as ${email}, ran a query and subscriptions (also on ${agencyOrigin}); ${requests.length} requests, all to these two origins`);
