// The functional checks of the topology (run by run.sh): everything by
// Host through Traefik (sign-up on the API host, the agency's data, a
// multipart upload and its download from S3, a graphql-ws subscription over
// Traefik's WebSocket proxying), both replicas answering behind it, a write
// through one replica read through the other, the row on the streaming
// replica, and the client address Traefik forwards believed by the servers.
// Writes the agency it made (subdomain, access token, tenant id) to
// TOPO_TENANT_FILE for the load phases.
// Environment: TOPO_TRAEFIK, TOPO_A, TOPO_B (http://127.0.0.1:PORT),
// TOPO_ACCESS_LOG (Traefik's JSON access log), TOPO_PG_URL, TOPO_REPLICA_URL,
// TOPO_TENANT_FILE; TOPO_REPLICA_READS=1 when the servers read from the
// replica (database.replica_urls).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createClient } from 'graphql-ws';
import { FormData } from 'undici';

import { LocalWebSocket, accessLog, checklist, dataOf, fetchLocal, gql, graphqlUrl, short, signUp, sleep } from './common.mjs';

const env = (k) => process.env[k] || (console.error(`functional.mjs: ${k} is not set`), process.exit(2));
const TRAEFIK = env('TOPO_TRAEFIK');
const A = env('TOPO_A');
const B = env('TOPO_B');
const ACCESS_LOG = env('TOPO_ACCESS_LOG');
const PG = env('TOPO_PG_URL');
const REPLICA = env('TOPO_REPLICA_URL');
const TENANT_FILE = env('TOPO_TENANT_FILE');
const { check, finish } = checklist('topology functional checks');

const serverOf = { [new URL(A).host]: 'A', [new URL(B).host]: 'B' };
const psql = (url, sql) => execFileSync('psql', [url, '-qAtc', sql], { encoding: 'utf8' }).trim();
const CLAIMED_ADDRESS = '203.0.113.7';

const CREATE_CLIENT = `mutation C($input: CreateClientInput!) { createClient(input: $input) { id name } }`;
const CREATE_PROJECT = `mutation P($input: CreateProjectInput!) { createProject(input: $input) { id name } }`;
const CLIENT = `query Q($id: ID!) { client(id: $id) { id name } }`;
const Q1 = '{ clients(first: 10) { edges { node { id name email } } } }';

let owner;
let tenantId;
const via = (base) => graphqlUrl(base, owner.subdomain);
const tag = (label) => `${label}-${randomBytes(4).toString('hex')}`;

// --- sign-up and the forwarded client address ---------------------------------------------
await check('sign-up on the API host (localhost) through Traefik', async () => {
  owner = await signUp(TRAEFIK, 'topo', { 'x-forwarded-for': CLAIMED_ADDRESS });
  tenantId = psql(PG, `SELECT id FROM tenants WHERE subdomain = '${owner.subdomain}'`);
  if (!tenantId) throw new Error(`no tenant row for ${owner.subdomain}`);
  return `agency ${owner.subdomain}, owner ${owner.email}`;
});
if (!owner) process.exit(finish() ? 1 : 0);
writeFileSync(TENANT_FILE, JSON.stringify({ subdomain: owner.subdomain, accessToken: owner.accessToken, tenantId }));

await check("the servers believe Traefik's X-Forwarded-For (server.trusted_proxies)", async () => {
  const d = dataOf(await gql(via(TRAEFIK), '{ mySessions { ipAddress current } }', undefined, { token: owner.accessToken }), 'mySessions');
  const current = d.mySessions.find((s) => s.current);
  if (current?.ipAddress !== CLAIMED_ADDRESS) {
    throw new Error(`the session of a sign-up sent with X-Forwarded-For: ${CLAIMED_ADDRESS} records ${current?.ipAddress} (Traefik appends 127.0.0.1, which is trusted)`);
  }
  return `the sign-up's session records ${current.ipAddress}`;
});

// --- the agency's data and a file, by Host through Traefik ---------------------------------
let client;
let project;
await check('queries and mutations by Host ({agency}.localhost) through Traefik', async () => {
  const me = dataOf(await gql(via(TRAEFIK), '{ me { email role } }', undefined, { token: owner.accessToken }), 'me');
  if (me.me.email !== owner.email || me.me.role !== 'OWNER') throw new Error(`me answered ${short(me)}`);
  client = dataOf(await gql(via(TRAEFIK), CREATE_CLIENT, { input: { name: tag('func-client') } }, { token: owner.accessToken }), 'createClient').createClient;
  project = dataOf(await gql(via(TRAEFIK), CREATE_PROJECT, { input: { clientId: client.id, name: 'Brief' } }, { token: owner.accessToken }), 'createProject').createProject;
  const list = dataOf(await gql(via(TRAEFIK), Q1, undefined, { token: owner.accessToken }), 'clients');
  if (!list.clients.edges.some((e) => e.node.id === client.id)) throw new Error(`clients does not list ${client.id}: ${short(list)}`);
  return `me is ${me.me.email} (${me.me.role}); client ${client.name} and its project created and listed`;
});

await check('a multipart upload through Traefik, downloaded back from S3', async () => {
  if (!project) throw new Error('no project (the previous check failed)');
  const bytes = `topology ${randomBytes(16).toString('hex')}\n`;
  const form = new FormData();
  const upload = 'mutation($i: UploadDocumentInput!) { uploadDocument(input: $i) { id name checksumSha256 } }';
  form.append('operations', JSON.stringify({ query: upload, variables: { i: { projectId: project.id, name: 'brief.txt', file: null } } }));
  form.append('map', JSON.stringify({ 0: ['variables.i.file'] }));
  form.append('0', new Blob([bytes], { type: 'text/plain' }), 'brief.txt');
  const res = await fetchLocal(via(TRAEFIK), {
    method: 'POST',
    headers: { authorization: `Bearer ${owner.accessToken}`, 'apollo-require-preflight': 'true' },
    body: form,
  });
  const body = await res.json().catch(() => null);
  const doc = body?.data?.uploadDocument;
  if (res.status !== 200 || !doc?.id || body.errors) throw new Error(`uploadDocument answered ${res.status}: ${short(body)}`);
  const q = 'query D($id: ID!) { document(id: $id) { name sizeBytes downloadUrl { url } } }';
  const d = dataOf(await gql(via(TRAEFIK), q, { id: doc.id }, { token: owner.accessToken }), 'document').document;
  const got = await fetch(d.downloadUrl.url);
  const text = await got.text();
  if (got.status !== 200 || text !== bytes) throw new Error(`GET ${d.downloadUrl.url} answered ${got.status}, ${text.length} bytes (expected ${bytes.length})`);
  return `${d.name}, ${d.sizeBytes} bytes, read back byte for byte from ${new URL(d.downloadUrl.url).host}`;
});

await check('Traefik spreads requests over both replicas (its access log)', async () => {
  const prefix = tag('func-spread');
  for (let i = 0; i < 20; i++) {
    dataOf(await gql(via(TRAEFIK), Q1, undefined, { token: owner.accessToken, headers: { 'x-request-id': `${prefix}-${i}` } }), `query ${i}`);
  }
  await sleep(200);
  const lines = accessLog(ACCESS_LOG, (id) => id.startsWith(prefix));
  const by = {};
  for (const l of lines) by[serverOf[l.server] ?? l.server] = (by[serverOf[l.server] ?? l.server] ?? 0) + 1;
  if (lines.length !== 20) throw new Error(`${lines.length} of 20 requests in the access log`);
  if (!by.A || !by.B) throw new Error(`served by ${short(by)}; expected both A and B`);
  return `20 queries: ${by.A} served by A, ${by.B} by B`;
});

// --- a write through one replica, read through the other, and on the read replica ---------
async function visibleAfter(base, id) {
  const t0 = performance.now();
  for (let reads = 1; ; reads++) {
    const r = await gql(via(base), CLIENT, { id }, { token: owner.accessToken });
    if (r.status === 200 && r.body?.data?.client?.id === id) return { reads, ms: performance.now() - t0 };
    if (performance.now() - t0 > 3000) throw new Error(`not visible within 3 s: last answer ${r.status} ${short(r.body)}`);
    await sleep(20);
  }
}
for (const [from, to, fromName, toName] of [[A, B, 'A', 'B'], [B, A, 'B', 'A']]) {
  await check(`a client created on ${fromName} is read on ${toName}`, async () => {
    const c = dataOf(await gql(via(from), CREATE_CLIENT, { input: { name: tag(`func-${fromName}`) } }, { token: owner.accessToken }), 'createClient').createClient;
    const { reads, ms } = await visibleAfter(to, c.id);
    return reads === 1 ? 'by the first read after the acknowledgement' : `by read ${reads}, ${ms.toFixed(0)} ms after the acknowledgement`;
  });
}

await check('the row is on the streaming replica', async () => {
  if (!client) throw new Error('no client (an earlier check failed)');
  const t0 = performance.now();
  for (;;) {
    const n = psql(REPLICA, `SELECT count(*) FROM clients WHERE id = '${client.id}'`);
    if (n === '1') break;
    if (performance.now() - t0 > 5000) throw new Error(`client ${client.id} is not on the replica after 5 s`);
    await sleep(50);
  }
  const lag = psql(PG, "SELECT coalesce(max(replay_lag)::text, 'none') FROM pg_stat_replication");
  return `found on the replica within ${(performance.now() - t0).toFixed(0)} ms (pg_stat_replication replay_lag ${lag})`;
});

// --- reads on the streaming replica (database.replica_urls), and reading one's own writes ------
const REPLICA_READS = process.env.TOPO_REPLICA_READS === '1';
if (REPLICA_READS) {
  // A rename made straight in the primary with psql raises no read-your-writes
  // mark: while the replica's replay is paused, an answer with the old name
  // came from the replica, one with the new name from the primary.
  await check('queries read from the streaming replica, and not once it lags (database.replica_max_lag_ms)', async () => {
    if (!client) throw new Error('no client (an earlier check failed)');
    const NAME = `query Q($id: ID!) { client(id: $id) { name } }`;
    const nameVia = async (base) => dataOf(await gql(via(base), NAME, { id: client.id }, { token: owner.accessToken }), 'client').client.name;
    const lsn = psql(PG, 'SELECT pg_current_wal_lsn()');
    for (let i = 0; psql(REPLICA, `SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn`) !== 't'; i++) {
      if (i > 100) throw new Error('the replica did not replay the latest writes within 5 s');
      await sleep(50);
    }
    await sleep(500); // the servers' monitors (every 100 ms) have seen it replayed
    const before = await nameVia(TRAEFIK);
    const renamed = tag('renamed-in-the-primary');
    psql(REPLICA, 'SELECT pg_wal_replay_pause()');
    try {
      const t0 = performance.now();
      psql(PG, `UPDATE clients SET name = '${renamed}' WHERE id = '${client.id}'`);
      const [a, b] = [await nameVia(A), await nameVia(B)];
      const fresh = performance.now() - t0;
      if (a !== before || b !== before) {
        throw new Error(`${fresh.toFixed(0)} ms after the rename, A answered "${a}" and B "${b}"; the replica (replay paused) still has "${before}": the queries ran on the primary`);
      }
      let now;
      do {
        await sleep(100);
        now = await nameVia(TRAEFIK);
        if (performance.now() - t0 > 5000) throw new Error(`still "${now}" 5 s after the rename with the replica's replay paused: a lagging replica is still read from`);
      } while (now !== renamed);
      return `A and B answered the replica's "${before}" ${fresh.toFixed(0)} ms after a rename in the primary (replay paused); the primary's name came back ${(performance.now() - t0).toFixed(0)} ms after it, once the replica lagged`;
    } finally {
      psql(REPLICA, 'SELECT pg_wal_replay_resume()');
    }
  });
}

await check('each write through Traefik is read back at once through Traefik (either replica)', async () => {
  const misses = [];
  for (let i = 0; i < 20; i++) {
    const c = dataOf(await gql(via(TRAEFIK), CREATE_CLIENT, { input: { name: tag('func-ryw') } }, { token: owner.accessToken }), 'createClient').createClient;
    const r = await gql(via(TRAEFIK), CLIENT, { id: c.id }, { token: owner.accessToken });
    if (!(r.status === 200 && r.body?.data?.client?.id === c.id)) misses.push(`${c.id}: ${r.status} ${short(r.body, 150)}`);
  }
  if (misses.length) throw new Error(`${misses.length} of 20 reads right after the write missed it: ${misses.slice(0, 2).join('; ')}`);
  return `20 of 20 writes read back by the next request${REPLICA_READS ? ' (reads on the replica once it has replayed them)' : ''}`;
});

// --- a subscription over Traefik's WebSocket proxying ---------------------------------------
await check('a graphql-ws subscription through Traefik sees writes made on A, on B and through Traefik', async () => {
  const url = via(TRAEFIK).replace(/^http/, 'ws');
  let acked = false;
  const ws = createClient({
    url,
    webSocketImpl: LocalWebSocket,
    connectionParams: { authorization: `Bearer ${owner.accessToken}` },
    lazy: false,
    retryAttempts: 0,
    on: { connected: () => { acked = true; } },
  });
  const events = [];
  let failure = null;
  const stop = ws.subscribe(
    { query: 'subscription { clientChanged { kind clientId client { name } at } }' },
    { next: (v) => events.push(v), error: (e) => { failure = e; }, complete: () => {} },
  );
  try {
    for (let i = 0; i < 100 && !acked && !failure; i++) await sleep(50);
    if (!acked) throw new Error(`no connection_ack through Traefik within 5 s${failure ? `: ${short(failure?.message ?? failure)}` : ''}`);
    await sleep(700); // the subscription is registered before the writes
    const names = [];
    for (const [base, where] of [[A, 'A'], [B, 'B'], [TRAEFIK, 'traefik']]) {
      const name = tag(`func-live-${where}`);
      names.push(name);
      dataOf(await gql(via(base), CREATE_CLIENT, { input: { name } }, { token: owner.accessToken }), `createClient on ${where}`);
    }
    const t0 = performance.now();
    const seen = () => names.filter((n) => events.some((e) => e.data?.clientChanged?.kind === 'CREATED' && e.data.clientChanged.client?.name === n));
    while (seen().length < names.length && performance.now() - t0 < 5000 && !failure) await sleep(20);
    if (failure) throw new Error(`the subscription failed: ${short(failure?.message ?? failure)}`);
    if (seen().length < names.length) {
      throw new Error(`received ${seen().length} of ${names.length} CREATED events within 5 s (missing ${names.filter((n) => !seen().includes(n)).join(', ')})`);
    }
    return `3 CREATED events (writes on A, on B, through Traefik) over ${url}`;
  } finally {
    stop();
    await ws.dispose();
  }
});

process.exitCode = finish() ? 1 : 0;
