// The playground's credentials for this browser tab: a signed-in session
// (`login`, renewed with `refreshSession` before the access token expires)
// or an API key. They live in sessionStorage, so they end with the tab and
// are never written to disk by the page.
//
// On the API host (the page is not on an agency's own address) every request
// also names the agency in `X-Tenant`: access tokens and API keys belong to
// one agency, and the API host needs to be told which.

const ENDPOINT = window.location.origin + '/graphql';
const STORAGE_KEY = 'aggios.playground.credentials';

// A refresh is due this long before the access token expires (at most a
// quarter of what is left, for short lifetimes).
const REFRESH_MARGIN_MS = 60_000;
// After a refresh that could not reach the server, try again this soon.
const RETRY_MS = 15_000;

const AUTH_FIELDS = `accessToken accessTokenExpiresAt refreshToken refreshTokenExpiresAt
  user { email firstName lastName role } tenant { name subdomain }`;
const LOGIN = `mutation PlaygroundLogin($input: LoginInput!) { login(input: $input) { ${AUTH_FIELDS} } }`;
const REFRESH = `mutation PlaygroundRefresh($token: String!) { refreshSession(refreshToken: $token) { ${AUTH_FIELDS} } }`;
const LOGOUT = 'mutation PlaygroundLogout { logout }';
const TENANT = 'query PlaygroundTenant { tenant { name subdomain } }';

/** A refusal from the API: its stable `code` and the message for a person. */
export class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// { kind: 'session', accessToken, accessTokenExpiresAt, refreshToken,
//   refreshTokenExpiresAt, user, tenant, tenantHeader }
// | { kind: 'apiKey', apiKey, tenant, tenantHeader } | null
let credentials = load();
// Something the person should read after the panel changed on its own
// (a session that could not be renewed).
let notice = null;
const listeners = new Set();
let timer = null;
let refreshing = null;

function load() {
  try {
    const saved = JSON.parse(window.sessionStorage.getItem(STORAGE_KEY));
    if (saved?.kind === 'session' && Date.parse(saved.refreshTokenExpiresAt) > Date.now()) return saved;
    if (saved?.kind === 'apiKey' && saved.apiKey) return saved;
  } catch {
    // Nothing usable saved.
  }
  return null;
}

function set(next, message = null) {
  credentials = next;
  notice = message;
  if (next) window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(next));
  else window.sessionStorage.removeItem(STORAGE_KEY);
  schedule();
  for (const listener of listeners) listener();
}

export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** What the panel shows: the credentials and any notice. */
export function snapshot() {
  return { credentials, notice };
}

/** POSTs one operation; answers its data or throws an `ApiError`. */
async function request(query, variables, headers) {
  let response;
  try {
    response = await window.fetch(ENDPOINT, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
      body: JSON.stringify({ query, variables }),
    });
  } catch (e) {
    throw new ApiError(null, `The server could not be reached: ${e.message}`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: reported below.
  }
  const error = body?.errors?.[0];
  if (error) throw new ApiError(error.extensions?.code ?? null, error.message);
  if (!response.ok || !body?.data) {
    throw new ApiError(null, `The server answered ${response.status} ${response.statusText}`.trim());
  }
  return body.data;
}

/**
 * Where the page is: `{ tenant }` on an agency's own address, `{ apiHost:
 * true }` on the API host; throws when the address names no usable agency.
 */
export async function whereAmI() {
  try {
    const data = await request(TENANT, {}, {});
    return { tenant: data.tenant, apiHost: false };
  } catch (e) {
    if (e.code === 'TENANT_REQUIRED') return { tenant: null, apiHost: true };
    throw e;
  }
}

function sessionFrom(payload, tenantHeader) {
  return {
    kind: 'session',
    accessToken: payload.accessToken,
    accessTokenExpiresAt: payload.accessTokenExpiresAt,
    refreshToken: payload.refreshToken,
    refreshTokenExpiresAt: payload.refreshTokenExpiresAt,
    user: payload.user,
    tenant: payload.tenant,
    tenantHeader,
  };
}

/** Signs in; on the API host `agency` (optional) names the agency. */
export async function signIn({ agency, email, password }, apiHost) {
  const input = { email, password };
  const headers = {};
  if (apiHost && agency) {
    input.agency = agency;
    headers['X-Tenant'] = agency;
  }
  const data = await request(LOGIN, { input }, headers);
  // On the API host the agency that signed in is named from now on, even
  // when the person left the field empty and the email alone found it.
  set(sessionFrom(data.login, apiHost ? data.login.tenant.subdomain : null));
}

/** Checks the key against the server before using it. */
export async function signInWithApiKey({ agency, apiKey }, apiHost) {
  const tenantHeader = apiHost && agency ? agency : null;
  const headers = { 'X-API-Key': apiKey };
  if (tenantHeader) headers['X-Tenant'] = tenantHeader;
  const data = await request(TENANT, {}, headers);
  set({ kind: 'apiKey', apiKey, tenant: data.tenant, tenantHeader });
}

/** Ends the session on the server too (best effort) and forgets it. */
export async function signOut() {
  const was = credentials;
  set(null);
  if (was?.kind === 'session') {
    try {
      await request(LOGOUT, {}, headersFor(was));
    } catch {
      // Already ended, or unreachable: the tokens are forgotten either way.
    }
  }
}

function headersFor(c) {
  const headers = {};
  if (c?.kind === 'session') headers.Authorization = `Bearer ${c.accessToken}`;
  if (c?.kind === 'apiKey') headers['X-API-Key'] = c.apiKey;
  if (c?.tenantHeader) headers['X-Tenant'] = c.tenantHeader;
  return headers;
}

function msUntilRefresh(c) {
  const left = Date.parse(c.accessTokenExpiresAt) - Date.now();
  return left - Math.min(REFRESH_MARGIN_MS, left / 4);
}

function schedule(delay) {
  window.clearTimeout(timer);
  timer = null;
  if (credentials?.kind !== 'session') return;
  const wait = delay ?? Math.max(0, msUntilRefresh(credentials));
  timer = window.setTimeout(() => refresh().catch(() => {}), wait);
}

/** Renews the session now; one refresh at a time (a refresh token works once). */
export function refresh() {
  if (!refreshing) refreshing = renew().finally(() => (refreshing = null));
  return refreshing;
}

async function renew() {
  const was = credentials;
  if (was?.kind !== 'session') return;
  try {
    const data = await request(REFRESH, { token: was.refreshToken }, was.tenantHeader ? { 'X-Tenant': was.tenantHeader } : {});
    if (credentials === was) set(sessionFrom(data.refreshSession, was.tenantHeader));
  } catch (e) {
    if (credentials !== was) return;
    if (e.code) {
      // Refused: the session was ended (signed out elsewhere, expired, revoked).
      set(null, `The session could not be renewed (${e.code}: ${e.message}). Sign in again.`);
    } else {
      schedule(RETRY_MS);
    }
  }
}

/**
 * The `fetch` GraphiQL uses: every request gets the panel's headers, unless
 * the Headers editor sends credentials of its own (`Authorization` or
 * `X-API-Key`): then the editor's headers go alone, never mixed with the
 * panel's. A header the editor sets wins over the panel's.
 */
export async function playgroundFetch(input, init = {}) {
  if (credentials?.kind === 'session' && msUntilRefresh(credentials) <= 0) {
    await refresh().catch(() => {});
  }
  const headers = { ...(init.headers ?? {}) };
  const present = new Set(Object.keys(headers).map((h) => h.toLowerCase()));
  if (!present.has('authorization') && !present.has('x-api-key')) {
    for (const [name, value] of Object.entries(headersFor(credentials))) {
      if (!present.has(name.toLowerCase())) headers[name] = value;
    }
  }
  return window.fetch(input, { ...init, headers });
}

/**
 * The Headers editor's credentials, if it sets any (`Authorization` or
 * `X-API-Key`), with lower-case names; `null` when it sets none. Like
 * `playgroundFetch`, a subscription then uses the editor's alone.
 */
export function editorCredentials(editorHeaders) {
  const lower = {};
  for (const [name, value] of Object.entries(editorHeaders ?? {})) lower[name.toLowerCase()] = value;
  if (!lower.authorization && !lower['x-api-key']) return null;
  const own = {};
  for (const name of ['authorization', 'x-api-key', 'x-tenant']) if (lower[name]) own[name] = String(lower[name]);
  return own;
}

/**
 * The `connection_init` payload of a subscription's WebSocket, read each time
 * the socket (re)connects, so it always carries the bar's current
 * credential: `{ authorization: 'Bearer …' }` or `{ apiKey }`, and on the API
 * host `x-tenant` (a browser cannot set headers on a WebSocket). An access
 * token that is due is renewed first. `own`: `editorCredentials(…)`.
 */
export async function wsConnectionParams(own) {
  if (!own && credentials?.kind === 'session' && msUntilRefresh(credentials) <= 0) {
    await refresh().catch(() => {});
  }
  const headers = own ?? {};
  if (!own) for (const [name, value] of Object.entries(headersFor(credentials))) headers[name.toLowerCase()] = value;
  const params = {};
  if (headers.authorization) params.authorization = headers.authorization;
  if (headers['x-api-key']) params.apiKey = headers['x-api-key'];
  if (headers['x-tenant']) params['x-tenant'] = headers['x-tenant'];
  return params;
}

/** Who the bar acts as: changes on signing in or out or another key, not when a token is renewed. */
export function identity() {
  const c = credentials;
  if (!c) return '';
  return JSON.stringify([c.kind, c.apiKey ?? c.user?.email, c.tenant?.subdomain, c.tenantHeader]);
}

/**
 * The server refused `sent` (a bar credential) with 4403: is connecting again
 * worth it? Only when the bar has a newer access token than the refused one,
 * or its token is due and `wsConnectionParams` will renew it (the server
 * closes a socket whose token expired). Otherwise the refusal is shown.
 */
export function worthRetrying(sent) {
  if (credentials?.kind !== 'session' || !sent?.authorization) return false;
  return sent.authorization !== `Bearer ${credentials.accessToken}` || msUntilRefresh(credentials) <= 0;
}

schedule();
