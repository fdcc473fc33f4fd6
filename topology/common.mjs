// What the topology programs share: reaching `localhost` and `*.localhost`
// hosts on 127.0.0.1 (through Traefik, or straight to one replica) with the
// Host header of the agency, GraphQL over HTTP and WebSocket, signing up,
// and Traefik's access log.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';
import WebSocket from 'ws';

export const BASE_DOMAIN = 'localhost';
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves `localhost` and `*.localhost` to 127.0.0.1, nothing else. */
export function lookup(hostname, options, callback) {
  if (typeof options === 'function') [options, callback] = [{}, options];
  if (hostname === BASE_DOMAIN || hostname.endsWith(`.${BASE_DOMAIN}`)) {
    if (options && options.all) return callback(null, [{ address: '127.0.0.1', family: 4 }]);
    return callback(null, '127.0.0.1', 4);
  }
  return callback(new Error(`refusing to resolve ${hostname}: the topology test talks to 127.0.0.1 only`));
}

export const dispatcher = new Agent({ connect: { lookup }, connections: 256, keepAliveTimeout: 10_000 });

/** fetch that reaches `*.localhost`. */
export function fetchLocal(url, init = {}) {
  return undiciFetch(url, { ...init, dispatcher });
}

/** `http://127.0.0.1:PORT` → the GraphQL URL of `host` (`acme` → acme.localhost, `` → localhost, the API host) on that port. */
export function graphqlUrl(base, subdomain = '') {
  const u = new URL(base);
  return `${u.protocol}//${subdomain ? `${subdomain}.` : ''}${BASE_DOMAIN}:${u.port}/graphql`;
}

export function short(v, n = 300) {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s && s.length > n ? `${s.slice(0, n)}…` : s;
}

/**
 * One GraphQL POST; never throws. Returns { status, body, error, ms }:
 * `error` is a network error or timeout (status 0 then).
 */
export async function gql(url, query, variables, { token, headers = {}, timeoutMs = 15_000 } = {}) {
  const t0 = performance.now();
  try {
    const res = await fetchLocal(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: JSON.stringify(variables ? { query, variables } : { query }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return { status: res.status, body, ms: performance.now() - t0 };
  } catch (e) {
    return { status: 0, body: null, error: `${e.name}: ${e.cause?.code ?? e.cause?.message ?? e.message}`, ms: performance.now() - t0 };
  }
}

/** The data of a successful answer (200, data, no errors), or throws with what came. */
export function dataOf(r, what) {
  if (r.status === 200 && r.body && typeof r.body === 'object' && r.body.data && !r.body.errors) return r.body.data;
  throw new Error(`${what}: ${r.status ? `HTTP ${r.status}` : r.error} ${short(r.body)}`);
}

const SIGN_UP = `mutation SignUp($input: SignUpInput!) {
  signUp(input: $input) { accessToken refreshToken user { email } tenant { subdomain } }
}`;

/** Signs up a fresh agency on the API host at `base`; { subdomain, email, accessToken, … }. */
export async function signUp(base, label, headers = {}) {
  const id = randomBytes(4).toString('hex');
  const subdomain = `${label}-${id}`;
  const email = `owner-${id}@${label}.test`;
  const input = { agencyName: `Topology ${id}`, subdomain, email, password: 'tundra velvet orbit 42 lantern', firstName: 'Ana', lastName: 'Silva' };
  const data = dataOf(await gql(graphqlUrl(base), SIGN_UP, { input }, { headers }), `signUp on ${graphqlUrl(base)}`);
  return { subdomain, email, ...data.signUp };
}

/** A `ws` WebSocket class for graphql-ws that resolves `*.localhost` to 127.0.0.1. */
export class LocalWebSocket extends WebSocket {
  constructor(url, protocols, options = {}) {
    super(url, protocols, { ...options, lookup });
  }
}

/**
 * Traefik's JSON access log lines whose X-Request-Id matches `pred`:
 * [{ id, status, server (host:port), retries, ms }].
 */
export function accessLog(path, pred = () => true) {
  const out = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue;
    let j;
    try {
      j = JSON.parse(line);
    } catch {
      continue;
    }
    const id = j['request_X-Request-Id'];
    if (!id || !pred(id)) continue;
    out.push({ id, status: j.DownstreamStatus, server: j.ServiceAddr ?? null, retries: j.RetryAttempts ?? 0, ms: (j.Duration ?? 0) / 1e6 });
  }
  return out;
}

/** Runs named checks; each an async function that throws on failure. */
export function checklist(program) {
  const results = [];
  return {
    async check(name, fn) {
      try {
        const detail = await fn();
        results.push({ name, ok: true });
        console.log(`PASS ${name}${detail ? ` — ${detail}` : ''}`);
      } catch (e) {
        results.push({ name, ok: false });
        console.log(`FAIL ${name} — ${e.message}`);
      }
    },
    finish() {
      const failed = results.filter((r) => !r.ok).length;
      console.log(`${program}: ${results.length - failed} of ${results.length} checks passed`);
      return failed;
    },
  };
}
