// GraphQL subscriptions with the graphql-ws client (the graphql-transport-ws
// protocol) against two replicas of one deployment (one database, one Redis
// prefix): everything is written through server A over HTTP and watched
// through server B over WebSocket, so each event goes from A's commit
// through Redis to B. Checks that each agency sees its own changes and
// nothing of another's, that filters filter, who may watch the audit
// trail, how a handshake is refused (close codes, raw `ws`), and that a
// socket ends when its access does: token expiry, logout, API key
// revocation.
// Access tokens live 2 s here (auth.access_token_ttl_secs): the server
// closes a socket when its token expires (4403), and the graphql-ws clients
// reconnect with a fresh token from `connectionParams`, as apps do. Changes
// are made only while the watching socket is steadily connected, so that
// none falls into a reconnect.
// Usage: node subscriptions.mjs http://127.0.0.1:PORT_A http://127.0.0.1:PORT_B
import { randomBytes } from 'node:crypto';

import { apiBase, checklist, short, signUp, sleep } from './lib.mjs';
import {
  Session,
  apiKeyCredential,
  describeEnd,
  describeErrors,
  endedWithin,
  liveClient,
  noteEarlyRefusals,
  rawSocket,
  subscriptionErrorCodes,
  until,
  uploadDocument,
  userCredential,
  within,
} from './realtime.mjs';

const usage = 'node subscriptions.mjs A_BASE_URL B_BASE_URL';
const A = apiBase(usage);
const B = apiBase(usage, 3);
const { check, finish } = checklist();

const DOCUMENT_CHANGED = `subscription DocumentChanged {
  documentChanged { kind documentId projectId clientId document { name project { name } } version at }
}`;
const DOCUMENT_CHANGED_IN = `subscription DocumentChangedIn($projectId: ID!) {
  documentChanged(projectId: $projectId) { kind documentId projectId document { name } at }
}`;
const PROJECT_CHANGED = `subscription ProjectChanged {
  projectChanged { kind projectId clientId project { name } at }
}`;
const CLIENT_CHANGED = `subscription ClientChanged {
  clientChanged { kind clientId client { name } at }
}`;
const AUDIT = `subscription Audit {
  auditEventRecorded { id action targetType targetId actorUserId actorApiKeyId createdAt }
}`;
const CREATE_CLIENT = `mutation CreateClient($input: CreateClientInput!) { createClient(input: $input) { id name } }`;
const CREATE_PROJECT = `mutation CreateProject($input: CreateProjectInput!) { createProject(input: $input) { id name } }`;
const CREATE_USER = `mutation CreateUser($input: CreateUserInput!) { createUser(input: $input) { id email role } }`;
const CREATE_API_KEY = `mutation CreateApiKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id prefix } secret } }`;
const REVOKE_API_KEY = `mutation RevokeApiKey($id: ID!) { revokeApiKey(id: $id) }`;
const LOGOUT = `mutation Logout { logout }`;

const PASSWORD = 'tundra velvet orbit 42 lantern';
/**
 * How soon a socket on B must close once its access ended on A. The
 * contract says "within ~2 s on every replica"; a logout gets 5 s (the
 * token has 2 s at most anyway, and the check tells the two closes apart).
 */
const CLOSES_WITHIN_MS = { apiKeyRevoked: 3000, logout: 5000 };
/** `at`: RFC 3339, UTC, with microseconds. */
const AT = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|\+00:00)$/;

const open = []; // everything to close at the end
const sessions = []; // every session, for the note on early refusals
const bearer = (token) => ({ authorization: `Bearer ${token}` });

/** A fresh agency signed up on A, with its owner's session. */
async function agency(label) {
  const owner = await signUp(A, 'subs');
  const session = new Session(A, owner.subdomain, owner);
  sessions.push(session);
  return { label, subdomain: owner.subdomain, owner, session };
}

let one;
let two;
try {
  [one, two] = await Promise.all([agency('agency one'), agency('agency two')]);
  console.log(`signed up ${one.subdomain} and ${two.subdomain} on A (${A}); watching on B (${B})`);
} catch (e) {
  console.log(`FAIL sign-up — ${e.message}`);
  process.exit(1);
}

/** Opens a raw socket (see realtime.mjs rawSocket) and remembers to close it. */
function raw(subdomain, options) {
  const r = rawSocket(B, subdomain, options);
  open.push(r);
  return r;
}

/** A graphql-ws client on B that is disposed at the end. */
function live(subdomain, credential, options) {
  const l = liveClient(B, subdomain, credential, options);
  open.push(l);
  return l;
}

/** Waits for a connection_ack; throws with how the socket ended otherwise. */
async function acked(r, what, ms = 5000) {
  const ok = await within(r.acked, ms, 'timeout');
  if (ok === true) return;
  const end = await endedWithin(r, 0);
  throw new Error(`${what}: no connection_ack within ${ms / 1000} s; ${describeEnd(end, r.startedAt)}`);
}

/** A socket the server must refuse at connection_init with one of `codes` (never acknowledging it). */
async function refused(r, codes, what) {
  const end = await endedWithin(r, 5000);
  r.close();
  if (!end) throw new Error(`${what}: the socket is still open after 5 s (${r.ackedAt ? 'and was acknowledged' : 'no connection_ack either'})`);
  if (r.ackedAt) throw new Error(`${what}: acknowledged (connection_ack), then ${describeEnd(end, r.startedAt)}`);
  if (!codes.includes(end.code)) throw new Error(`${what}: ${describeEnd(end, r.startedAt)}; expected a close with ${codes.join(' or ')}`);
  return `${what}: ${describeEnd(end, r.startedAt)}`;
}

// --- the handshake ----------------------------------------------------------------------

await check('a raw graphql-transport-ws socket on B with an access token from A is acknowledged', async () => {
  const r = raw(one.subdomain, { payload: bearer(await one.session.token(1000)) });
  await acked(r, 'a valid access token');
  r.close();
  return `connection_ack ${r.ackedAt - r.startedAt} ms after connecting${r.upgrade ? `; subprotocol ${r.upgrade.protocol}` : ''}`;
});

await check('no credential in connection_init is refused with 4403', async () => {
  const none = await refused(raw(one.subdomain, { payload: undefined }), [4403], 'connection_init without a payload');
  const empty = await refused(raw(one.subdomain, { payload: {} }), [4403], 'connection_init with {}');
  return `${none}; ${empty}`;
});

await check('a bad credential is refused with 4403', async () => {
  const token = await refused(raw(one.subdomain, { payload: bearer('garbage') }), [4403], '"Bearer garbage"');
  const key = await refused(raw(one.subdomain, { payload: { apiKey: `agk_${randomBytes(8).toString('hex')}_nope` } }), [4403], 'an unknown API key');
  return `${token}; ${key}`;
});

await check("agency one's access token on agency two's host is refused with 4403", async () =>
  refused(raw(two.subdomain, { payload: bearer(await one.session.token(1000)) }), [4403], `${one.subdomain}'s token at ${two.subdomain}`),
);

await check('a handshake with Origin: http://evil.example is refused with 4403', async () =>
  refused(
    raw(one.subdomain, { payload: bearer(await one.session.token(1000)), origin: 'http://evil.example' }),
    [4403],
    'a valid token from a page at http://evil.example',
  ),
);

/** A socket offering a subprotocol other than graphql-transport-ws: refused over HTTP, or closed with 4406. */
async function wrongProtocol(protocol, what) {
  const r = raw(one.subdomain, { protocol, payload: bearer(await one.session.token(1000)) });
  const end = await endedWithin(r, 5000);
  r.close();
  if (!end) throw new Error(`${what}: the socket is still open after 5 s${r.ackedAt ? ' and was acknowledged' : ''}`);
  if (r.ackedAt) throw new Error(`${what}: acknowledged (connection_ack), then ${describeEnd(end, r.startedAt)}`);
  if (end.status >= 400) return `${what}: ${describeEnd(end)}`;
  if (end.code === 4406) return `${what}: ${describeEnd(end, r.startedAt)}`;
  const chose = r.upgrade ? `; the 101 answer chose subprotocol ${r.upgrade.protocol ?? '(none)'}` : '';
  throw new Error(`${what}: ${describeEnd(end, r.startedAt)}${r.error ? ` (ws: ${r.error})` : ''}${chose}; expected a refusal or a close with 4406`);
}

await check('subprotocol graphql-ws (the old protocol) is refused or closed with 4406', async () => wrongProtocol('graphql-ws', 'graphql-ws'));

await check('no subprotocol at all is refused or closed with 4406', async () => wrongProtocol(null, 'no subprotocol'));

await check("an unknown agency's host is refused at the upgrade with HTTP 404 TENANT_NOT_FOUND", async () => {
  const r = raw(`nosuch-${randomBytes(4).toString('hex')}`, { payload: bearer('garbage') });
  const end = await endedWithin(r, 5000);
  r.close();
  if (end?.status !== 404 || !JSON.stringify(end.body).includes('TENANT_NOT_FOUND')) {
    throw new Error(`${describeEnd(end, r.startedAt)}; expected HTTP 404 with code TENANT_NOT_FOUND and no socket`);
  }
  return describeEnd(end);
});

// --- two agencies write on A at the same time, each watches on B -----------------------

const FEEDS = {
  clients: { query: CLIENT_CHANGED, id: (e) => e.clientId },
  projects: { query: PROJECT_CHANGED, id: (e) => e.projectId },
  documents: { query: DOCUMENT_CHANGED, id: (e) => e.documentId },
};
const FEED_ITEM = { clients: 'client', projects: 'project', documents: 'document' };

for (const ag of [one, two]) {
  ag.live = live(ag.subdomain, userCredential(ag.session));
  ag.subs = Object.fromEntries(Object.entries(FEEDS).map(([feed, { query }]) => [feed, ag.live.subscribe(query)]));
}

/**
 * The agency's writes on A, each made only while its watcher on B is
 * steadily connected: a client, two projects, then a document uploaded
 * into each project (agency one also watches the first project's
 * documents alone before uploading).
 */
async function writeThrough(ag) {
  const made = { clients: [], projects: [], documents: [] };
  await ag.live.steady();
  const c = (await ag.session.gql(CREATE_CLIENT, { input: { name: `Client of ${ag.subdomain}` } })).createClient;
  made.clients.push(c);
  await ag.live.steady();
  const projects = await Promise.all(
    ['Website', 'Brand book'].map(
      async (name) => (await ag.session.gql(CREATE_PROJECT, { input: { clientId: c.id, name: `${name} of ${ag.subdomain}` } })).createProject,
    ),
  );
  made.projects.push(...projects);
  if (ag === one) {
    ag.subs.filtered = ag.live.subscribe(DOCUMENT_CHANGED_IN, { projectId: projects[0].id });
    await sleep(300);
  }
  await ag.live.steady({ leftMs: 1000 });
  const docs = await Promise.all(
    projects.map((p, i) => uploadDocument(ag.session, { projectId: p.id, name: `brief-${ag.subdomain}-${i + 1}.txt` })),
  );
  made.documents.push(...docs);
  return made;
}

/** What the agency's feeds must have received: one CREATED per thing it made. */
function expectedOf(ag) {
  return Object.entries(ag.made).flatMap(([feed, things]) => things.map((t) => ({ feed, kind: 'CREATED', id: t.id, thing: t })));
}

function received(ag, feed, id) {
  return ag.subs[feed].events().filter((e) => FEEDS[feed].id(e) === id);
}

/** Why a feed may be silent: how its subscription ended, if it did. */
function subState(sub) {
  if (sub.error) return ` (the subscription failed: ${Array.isArray(sub.error) ? describeErrors(sub.error) : short(sub.error?.message ?? sub.error, 200)})`;
  if (sub.completed) return ' (the server completed the subscription)';
  return '';
}

let wrote = false;
await check('both agencies write on A at the same time: a client, two projects, two uploads each', async () => {
  const results = await Promise.allSettled([one, two].map(writeThrough));
  const failed = results.map((r, i) => [[one, two][i], r]).filter(([, r]) => r.status === 'rejected');
  if (failed.length) throw new Error(failed.map(([ag, r]) => `${ag.label}: ${r.reason.message}`).join('; '));
  one.made = results[0].value;
  two.made = results[1].value;
  wrote = true;
  return `${expectedOf(one).length + expectedOf(two).length} changes`;
});

if (wrote) {
  // Wait for every expected event (or 5 s), then a second more for strays.
  const all = () => [one, two].every((ag) => expectedOf(ag).every((x) => received(ag, x.feed, x.id).length > 0));
  await until(all, 5000, '').catch(() => {});
  await sleep(1000);
}

const needWrites = () => {
  if (!wrote) throw new Error('not checked: the writes failed');
};

await check("each agency's subscriber on B received each of its own changes exactly once", async () => {
  needWrites();
  const problems = [];
  for (const ag of [one, two]) {
    for (const x of expectedOf(ag)) {
      const got = received(ag, x.feed, x.id);
      const kinds = got.map((e) => e.kind);
      if (got.length === 0) problems.push(`${ag.label} got no ${FEED_ITEM[x.feed]} event for ${x.id}${subState(ag.subs[x.feed])}`);
      else if (got.length > 1) problems.push(`${ag.label} got ${got.length} ${FEED_ITEM[x.feed]} events for ${x.id}: ${kinds.join(', ')}`);
      else if (kinds[0] !== x.kind) problems.push(`${ag.label}'s ${FEED_ITEM[x.feed]} event for ${x.id} is ${kinds[0]}, not ${x.kind}`);
    }
  }
  if (problems.length) throw new Error(problems.join('; '));
  return [one, two].map((ag) => `${ag.label}: ${expectedOf(ag).length} events`).join(', ');
});

await check("no subscriber received another agency's change, nor one it did not cause", async () => {
  needWrites();
  const problems = [];
  for (const [ag, other] of [
    [one, two],
    [two, one],
  ]) {
    for (const feed of Object.keys(FEEDS)) {
      const own = new Set(ag.made[feed].map((t) => t.id));
      const theirs = new Set(other.made[feed].map((t) => t.id));
      for (const e of ag.subs[feed].events()) {
        const id = FEEDS[feed].id(e);
        if (theirs.has(id)) problems.push(`${ag.label} received ${other.label}'s ${FEED_ITEM[feed]} ${id} (${e.kind})`);
        else if (!own.has(id)) problems.push(`${ag.label} received a ${FEED_ITEM[feed]} event it did not cause: ${short(e, 200)}`);
      }
    }
  }
  if (problems.length) throw new Error(problems.join('; '));
});

await check("an upload's CREATED event carries the document's name and its project's name", async () => {
  needWrites();
  const problems = [];
  for (const ag of [one, two]) {
    for (const d of ag.made.documents) {
      const e = received(ag, 'documents', d.id)[0];
      if (!e) continue; // reported above
      const want = { name: d.name, project: d.project?.name, projectId: d.project?.id };
      const got = { name: e.document?.name, project: e.document?.project?.name, projectId: e.projectId };
      if (got.name !== want.name || got.project !== want.project || got.projectId !== want.projectId) {
        problems.push(`${ag.label}'s event for ${d.id} has ${short(got)}, the upload answered ${short(want)}`);
      }
    }
  }
  if (problems.length) throw new Error(problems.join('; '));
  const e = received(one, 'documents', one.made.documents[0].id)[0];
  if (!e) throw new Error(`${one.label} received no event for its first upload`);
  return `${e.kind} ${e.document.name} in ${e.document.project.name}`;
});

await check('documentChanged(projectId: X) received X\'s documents only', async () => {
  needWrites();
  const [inX, elsewhere] = one.made.documents;
  const events = one.subs.filtered.events();
  const ids = events.map((e) => e.documentId);
  if (ids.includes(elsewhere.id)) throw new Error(`it received ${elsewhere.id}, uploaded into the other project`);
  const stray = events.filter((e) => e.documentId !== inX.id);
  if (stray.length) throw new Error(`it received documents it should not have: ${short(stray)}`);
  if (!ids.includes(inX.id)) throw new Error(`it did not receive ${inX.id}, uploaded into X${subState(one.subs.filtered)}`);
  return `${events.length} event(s), all for ${inX.name}`;
});

await check('every event says when it was published (at: RFC 3339 UTC with microseconds)', async () => {
  needWrites();
  const events = [one, two].flatMap((ag) => Object.values(ag.subs).flatMap((s) => s.events()));
  if (!events.length) throw new Error('no events were received');
  const bad = events.filter((e) => !AT.test(e.at ?? '') || !Number.isFinite(Date.parse(e.at)));
  if (bad.length) throw new Error(`${bad.length} of ${events.length} have a malformed at, e.g. ${short(bad[0].at)}`);
  const latencies = events.map((e) => e.receivedAt - Date.parse(e.at)).sort((a, b) => a - b);
  const ahead = latencies.filter((l) => l < -50);
  if (ahead.length) throw new Error(`${ahead.length} events were received before their at (by up to ${-latencies[0]} ms)`);
  return `${events.length} events; latency from at to receipt: median ${latencies[Math.floor(latencies.length / 2)]} ms, max ${latencies.at(-1)} ms`;
});

await check('the watching sockets were closed only for their expired tokens (4403) and reconnected by themselves', async () => {
  const problems = [];
  const seen = [];
  for (const ag of [one, two]) {
    const { closes, connects } = ag.live.state;
    const odd = closes.filter((c) => c.code !== 4403 || !/expire/i.test(c.reason));
    if (odd.length) problems.push(`${ag.label}: ${odd.map((c) => `${c.code} "${c.reason}"`).join(', ')}`);
    seen.push(`${ag.label}: ${connects} connections, ${ag.live.describeCloses()}`);
  }
  if (problems.length) throw new Error(`closes other than 4403 for an expired token — ${problems.join('; ')} (${seen.join('; ')})`);
  return seen.join('; ');
});
for (const ag of [one, two]) await ag.live.dispose();

// --- the audit trail: owners and admins only ------------------------------------------------

let member;
await check('an owner watching auditEventRecorded on B receives the audit event of createUser on A', async () => {
  const watcher = live(one.subdomain, userCredential(one.session));
  const sub = watcher.subscribe(AUDIT);
  await watcher.steady();
  const email = `member-${randomBytes(4).toString('hex')}@subs-agency.test`;
  const user = (await one.session.gql(CREATE_USER, { input: { email, password: PASSWORD, firstName: 'Mia', lastName: 'Lopes', role: 'MEMBER' } })).createUser;
  member = { ...user, password: PASSWORD };
  const e = await until(
    () => sub.events().find((x) => x.action === 'user.create' && x.targetId === user.id),
    5000,
    () => `no user.create event for ${user.id} within 5 s; received ${short(sub.events().map((x) => x.action))}${subState(sub)}`,
  );
  await watcher.dispose();
  return `${e.action} ${e.targetType} ${e.targetId} by ${e.actorUserId}`;
});

/** Waits for a subscription to fail or answer errors; returns how (or throws when it delivers data or nothing). */
async function forbidden(sub, who) {
  await until(() => sub.error || sub.results.length || sub.completed, 5000, `${who}: neither an error nor an event within 5 s`);
  await sleep(100);
  const codes = subscriptionErrorCodes(sub);
  const form = sub.error ? 'an error message' : 'a next message with errors';
  if (sub.events().length) throw new Error(`${who} received audit events: ${short(sub.events())}`);
  if (!codes.includes('FORBIDDEN')) {
    throw new Error(`${who} got ${sub.error ? (Array.isArray(sub.error) ? describeErrors(sub.error) : short(sub.error?.message ?? sub.error)) : short(sub.results)}; expected code FORBIDDEN`);
  }
  return `${form}: ${describeErrors(Array.isArray(sub.error) ? sub.error : sub.results.flatMap((r) => r.errors ?? []))}`;
}

await check('a member subscribing to auditEventRecorded gets an error with code FORBIDDEN', async () => {
  if (!member) throw new Error('not checked: createUser failed');
  const session = await Session.login(A, one.subdomain, member.email, member.password);
  sessions.push(session);
  const watcher = live(one.subdomain, userCredential(session));
  const detail = await forbidden(watcher.subscribe(AUDIT), 'the member');
  await watcher.dispose();
  return detail;
});

// --- API keys ----------------------------------------------------------------------------

let key;
await check('an API key subscribes to documentChanged on B and receives an upload made on A', async () => {
  key = (await one.session.gql(CREATE_API_KEY, { input: { name: 'subscriptions watcher', scope: 'READ' } })).createApiKey;
  const watcher = live(one.subdomain, apiKeyCredential(key.secret));
  const sub = watcher.subscribe(DOCUMENT_CHANGED);
  await watcher.steady();
  const projectId = one.made?.projects[0].id ?? (await makeProject(one)).id;
  const doc = await uploadDocument(one.session, { projectId, name: `for-the-key-${randomBytes(3).toString('hex')}.txt` });
  const e = await until(
    () => sub.events().find((x) => x.documentId === doc.id),
    5000,
    () => `no event for ${doc.id} within 5 s; received ${short(sub.events())}${subState(sub)}; ${watcher.describeCloses()}`,
  );
  key.watcher = watcher;
  return `${e.kind} ${e.document?.name}`;
});

async function makeProject(ag) {
  const c = (await ag.session.gql(CREATE_CLIENT, { input: { name: `Client of ${ag.subdomain}` } })).createClient;
  return (await ag.session.gql(CREATE_PROJECT, { input: { clientId: c.id, name: `Project of ${ag.subdomain}` } })).createProject;
}

await check('an API key subscribing to auditEventRecorded gets an error with code FORBIDDEN', async () => {
  if (!key?.watcher) throw new Error('not checked: the API key did not subscribe');
  return forbidden(key.watcher.subscribe(AUDIT), 'the API key');
});
await key?.watcher?.dispose();

await check('an API key as { "x-api-key" } and as { authorization: "Bearer agk_…" } is acknowledged too', async () => {
  if (!key) throw new Error('not checked: createApiKey failed');
  const forms = [{ 'x-api-key': key.secret }, { authorization: `Bearer ${key.secret}` }];
  for (const payload of forms) {
    const r = raw(one.subdomain, { payload });
    await acked(r, `connection_init ${Object.keys(payload)[0]}`);
    r.close();
  }
});

await check(`revoking the API key on A closes its socket on B with 4403 within ${CLOSES_WITHIN_MS.apiKeyRevoked / 1000} s`, async () => {
  if (!key) throw new Error('not checked: createApiKey failed');
  const r = raw(one.subdomain, { payload: { apiKey: key.secret } });
  await acked(r, 'the API key');
  const revokedAt = Date.now();
  const revoked = (await one.session.gql(REVOKE_API_KEY, { id: key.apiKey.id })).revokeApiKey;
  if (revoked !== true) throw new Error(`revokeApiKey answered ${revoked}`);
  const limit = CLOSES_WITHIN_MS.apiKeyRevoked;
  const end = await endedWithin(r, Math.max(0, revokedAt + limit - Date.now()));
  if (!end) {
    const late = await endedWithin(r, 6000);
    r.close();
    const then = late ? `; it was ${describeEnd(late)} ${late.at - revokedAt} ms after it` : '; nor 6 s later';
    throw new Error(`the socket was still open ${limit / 1000} s after revokeApiKey was sent${then} (the contract: ~2 s on every replica)`);
  }
  r.close();
  if (end.code !== 4403) throw new Error(`${describeEnd(end)}; expected 4403`);
  return `${describeEnd(end)} ${end.at - revokedAt} ms after revokeApiKey was sent`;
});

// --- access ends: expiry, logout ------------------------------------------------------------

await check('a socket authenticated with a 2-second token is closed with 4403 when it expires', async () => {
  await one.session.refresh();
  const exp = one.session.expiresAt;
  const r = raw(one.subdomain, { payload: bearer(one.session.accessToken) });
  await acked(r, 'a fresh token');
  const end = await endedWithin(r, 6000);
  r.close();
  if (!end) throw new Error(`the socket is still open 6 s after connecting (the token expired at ${new Date(exp).toISOString()})`);
  const after = end.at - r.startedAt;
  const vsExpiry = end.at - exp;
  const when = `${after} ms after connecting, ${vsExpiry >= 0 ? `${vsExpiry} ms after` : `${-vsExpiry} ms before`} the token's expiry`;
  if (end.code !== 4403 || !/expire/i.test(end.reason)) throw new Error(`${describeEnd(end)} ${when}; expected 4403 with a reason about expiry`);
  if (after > 4000) throw new Error(`closed ${when}: later than 4 s`);
  if (vsExpiry < -1000) throw new Error(`closed ${when}: before the token expired`);
  return `${describeEnd(end)} ${when}`;
});

await check(`logout on A closes that session's socket on B with 4403 within ${CLOSES_WITHIN_MS.logout / 1000} s`, async () => {
  const s = await Session.login(A, one.subdomain, one.owner.email, one.owner.password);
  sessions.push(s);
  const r = raw(one.subdomain, { payload: bearer(s.accessToken) });
  await acked(r, 'a fresh session');
  const loggedOutAt = Date.now();
  const tokenLeft = s.msLeft();
  const out = await s.gql(LOGOUT);
  if (out.logout !== true) throw new Error(`logout answered ${short(out)}`);
  const end = await endedWithin(r, Math.max(0, loggedOutAt + CLOSES_WITHIN_MS.logout - Date.now()));
  r.close();
  if (!end) throw new Error(`the socket is still open ${CLOSES_WITHIN_MS.logout / 1000} s after logout was sent`);
  const when = `${end.at - loggedOutAt} ms after logout was sent`;
  if (end.code !== 4403) throw new Error(`${describeEnd(end)} ${when}; expected 4403`);
  if (/expire/i.test(end.reason)) {
    throw new Error(`${describeEnd(end)} ${when}: it was closed for its token's expiry, not for the logout (the token had ${tokenLeft} ms left at logout)`);
  }
  return `${describeEnd(end)} ${when}`;
});

for (const o of open) (o.dispose ?? o.close)();
noteEarlyRefusals(sessions);
finish('subscriptions');
// Nothing should keep the process alive now; if something does, say so and end.
setTimeout(() => {
  console.log(`subscriptions: something kept the process alive after the checks (${process.getActiveResourcesInfo().join(', ')}); exiting`);
  process.exit(process.exitCode);
}, 3000).unref();
