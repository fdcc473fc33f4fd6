// CORS as a person's browser lives it. Two static pages on 127.0.0.1, origin A
// (in the server's cors_allowed_origins) and origin B (not in it), each fetch
// the agency's data from the API with a bearer token and X-Tenant and write
// the result into the page. In headless Chromium, page A must show the
// owner's email, the client's name and the answer's RateLimit field (which
// CORS must expose for a page to read it); page B must show that the browser
// blocked the fetch (TypeError) and no data. The preflights are also checked
// directly.
// Usage: node cors.mjs http://127.0.0.1:PORT PORT_A PORT_B [SCREENSHOT_DIR]
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { request } from 'undici';
import { apiBase, checklist, gql, short, signUp } from './lib.mjs';

const base = apiBase('node cors.mjs BASE_URL PORT_A PORT_B [SCREENSHOT_DIR]');
const portA = Number(process.argv[3]);
const portB = Number(process.argv[4]);
const shots = process.argv[5];
if (!portA || !portB) {
  console.error('usage: node cors.mjs BASE_URL PORT_A PORT_B [SCREENSHOT_DIR]');
  process.exit(2);
}
const originA = `http://127.0.0.1:${portA}`;
const originB = `http://127.0.0.1:${portB}`;
const api = `${base}/graphql`;
const timeout = 20_000;
const { check, finish } = checklist();

// --- seed: an agency and one client -------------------------------------------
let owner;
const clientName = `Client ${Math.random().toString(36).slice(2, 8)}`;
try {
  owner = await signUp(base, 'cors');
  const r = await gql(
    api,
    'mutation($input: CreateClientInput!) { createClient(input: $input) { id name } }',
    { input: { name: clientName, email: 'contact@client.test' } },
    { authorization: `Bearer ${owner.accessToken}`, 'x-tenant': owner.subdomain },
  );
  if (r.body?.data?.createClient?.name !== clientName) throw new Error(`createClient answered ${r.status}: ${short(r.body)}`);
  console.log(`seeded ${owner.email} at ${owner.subdomain} with client "${clientName}"`);
} catch (e) {
  console.log(`FAIL seeding — ${e.message}`);
  process.exit(1);
}

// --- preflights, as the browser would send them --------------------------------
async function preflight(origin) {
  const res = await request(api, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,content-type,x-tenant',
    },
  });
  await res.body.dump();
  return res;
}

await check(`preflight from ${originA} (allowed) is answered and allowed`, async () => {
  const res = await preflight(originA);
  const h = res.headers;
  const problems = [];
  if (res.statusCode < 200 || res.statusCode > 299) problems.push(`status ${res.statusCode}`);
  if (h['access-control-allow-origin'] !== originA) problems.push(`access-control-allow-origin ${JSON.stringify(h['access-control-allow-origin'])}`);
  const vary = [h.vary].flat().join(',').toLowerCase();
  if (!vary.split(',').map((s) => s.trim()).includes('origin')) problems.push(`vary ${JSON.stringify(h.vary)}`);
  const allowed = [h['access-control-allow-headers']].flat().join(',').toLowerCase();
  for (const name of ['authorization', 'content-type', 'x-tenant']) {
    if (!allowed.includes(name)) problems.push(`access-control-allow-headers lacks ${name} (${JSON.stringify(h['access-control-allow-headers'])})`);
  }
  if (problems.length) throw new Error(problems.join('; '));
  return `${res.statusCode}, allow-origin ${h['access-control-allow-origin']}, vary ${h.vary}`;
});

await check(`preflight from ${originB} (not allowed) carries no access-control-allow-origin`, async () => {
  const res = await preflight(originB);
  const acao = res.headers['access-control-allow-origin'];
  if (acao !== undefined) throw new Error(`status ${res.statusCode}, access-control-allow-origin ${JSON.stringify(acao)}`);
  return `status ${res.statusCode}, no access-control-allow-origin`;
});

// --- the two pages ----------------------------------------------------------------
// The server's access tokens live 2 s (for apollo-refresh.mjs), less than
// Chromium may take to start on a busy machine: each page gets one minted
// right before it is visited.
async function freshToken() {
  const r = await gql(
    api,
    'mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }',
    { t: owner.refreshToken },
    { 'x-tenant': owner.subdomain },
  );
  const p = r.body?.data?.refreshSession;
  if (!p?.accessToken) throw new Error(`refreshSession answered ${r.status}: ${short(r.body)}`);
  owner.accessToken = p.accessToken;
  owner.refreshToken = p.refreshToken;
}

function page(label) {
  const config = JSON.stringify({
    api,
    token: owner.accessToken,
    tenant: owner.subdomain,
    query: '{ me { email } clients(first: 1) { edges { node { name } } } }',
  });
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${label}</title></head>
<body>
<h1>${label}</h1>
<p>State: <span id="state">loading</span></p>
<p>Signed in as: <span id="email"></span></p>
<p>First client: <span id="client"></span></p>
<p>RateLimit: <span id="ratelimit"></span></p>
<p>Error: <span id="error"></span></p>
<script>
const c = ${config};
fetch(c.api, {
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: 'Bearer ' + c.token, 'x-tenant': c.tenant },
  body: JSON.stringify({ query: c.query }),
})
  .then((r) => {
    document.getElementById('ratelimit').textContent = r.headers.get('ratelimit') || '';
    return r.json();
  })
  .then((body) => {
    if (body.errors) document.getElementById('error').textContent = body.errors.map((e) => e.message).join('; ');
    const d = body.data || {};
    document.getElementById('email').textContent = d.me ? d.me.email : '';
    const edge = d.clients && d.clients.edges[0];
    document.getElementById('client').textContent = edge ? edge.node.name : '';
    document.getElementById('state').textContent = body.errors ? 'answered with errors' : 'loaded';
  })
  .catch((e) => {
    document.getElementById('error').textContent = e.name + ': ' + e.message;
    document.getElementById('state').textContent = 'failed';
  });
</script>
</body></html>`;
}

function serve(port, label) {
  const server = createServer((req, res) => {
    if (req.url === '/' || req.url === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(page(label));
    } else if (req.url === '/favicon.ico') {
      res.writeHead(204);
      res.end();
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

const servers = [];
const userDataDir = mkdtempSync(join(tmpdir(), 'aggios-cors-'));
let context;
try {
  servers.push(await serve(portA, 'Origin A (allowed)'), await serve(portB, 'Origin B (not allowed)'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 900, height: 400 },
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

  async function visit(origin, name) {
    await freshToken();
    const p = await context.newPage();
    const consoleErrors = [];
    p.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    await p.goto(`${origin}/`, { waitUntil: 'load', timeout });
    await p.locator('#state').filter({ hasNotText: 'loading' }).waitFor({ timeout });
    const seen = {};
    for (const id of ['state', 'email', 'client', 'ratelimit', 'error']) seen[id] = (await p.locator(`#${id}`).innerText()).trim();
    if (shots) await p.screenshot({ path: join(shots, `cors-${name}.png`) });
    console.log(`page ${name} (${origin}) shows ${JSON.stringify(seen)}`);
    for (const e of consoleErrors) console.log(`  console: ${short(e, 300)}`);
    await p.close();
    return seen;
  }

  const a = await visit(originA, 'A');
  await check(`page A (${originA}) shows the owner's email and the client's name`, async () => {
    if (a.state !== 'loaded' || a.email !== owner.email || a.client !== clientName) {
      throw new Error(`it shows state "${a.state}", email "${a.email}", client "${a.client}", error "${a.error}"`);
    }
    return `${a.email}, ${a.client}`;
  });

  await check(`page A (${originA}) reads the answer's RateLimit field`, async () => {
    if (!/^"[a-z-]+";r=\d+;t=\d+$/.test(a.ratelimit)) throw new Error(`it reads ${JSON.stringify(a.ratelimit)}`);
    return a.ratelimit;
  });

  const b = await visit(originB, 'B');
  await check(`page B (${originB}) shows the fetch was blocked and no data`, async () => {
    if (b.state !== 'failed' || !b.error.startsWith('TypeError') || b.email || b.client) {
      throw new Error(`it shows state "${b.state}", email "${b.email}", client "${b.client}", error "${b.error}"`);
    }
    return b.error;
  });
} catch (e) {
  await check('the browser run', async () => {
    throw e;
  });
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
  for (const s of servers) s.close();
}

finish('cors');
