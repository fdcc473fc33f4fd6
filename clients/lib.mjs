// What the client programs share: the API address, a fetch that reaches a
// tenant's own host (`<subdomain>.localhost:<port>`) on this machine, and
// signing up a fresh agency.
import { randomBytes } from 'node:crypto';
import { Agent, fetch as undiciFetch } from 'undici';

/** The server's base URL (`http://127.0.0.1:PORT`) from argv[2] (or argv[position]). */
export function apiBase(usage, position = 2) {
  const base = process.argv[position];
  if (!base || !/^https?:\/\//.test(base)) {
    console.error(`usage: ${usage}`);
    process.exit(2);
  }
  return base.replace(/\/+$/, '');
}

export const BASE_DOMAIN = 'localhost';

/**
 * The tenant's own GraphQL URL. `*.localhost` does not resolve through this
 * machine's resolver, so requests to it go through `tenantDispatcher`, which
 * connects to the API's address while the URL (and so the Host header and
 * the server's tenant resolution) stays the tenant's.
 */
export function tenantUrl(base, subdomain) {
  const u = new URL(base);
  return `${u.protocol}//${subdomain}.${BASE_DOMAIN}:${u.port}/graphql`;
}

/** A `net.connect` lookup that resolves `localhost` and `*.localhost` to 127.0.0.1 and nothing else. */
export function lookup(hostname, options, callback) {
  if (typeof options === 'function') [options, callback] = [{}, options];
  if (hostname === BASE_DOMAIN || hostname.endsWith(`.${BASE_DOMAIN}`)) {
    if (options && options.all) return callback(null, [{ address: '127.0.0.1', family: 4 }]);
    return callback(null, '127.0.0.1', 4);
  }
  return callback(new Error(`refusing to resolve ${hostname}: these tests talk to 127.0.0.1 only`));
}

/** An undici dispatcher that resolves `localhost` and `*.localhost` to 127.0.0.1. */
export const tenantDispatcher = new Agent({ connect: { lookup } });

/** fetch (undici's, WHATWG) that reaches `*.localhost` hosts. */
export function fetchLocal(input, init = {}) {
  return undiciFetch(input, { ...init, dispatcher: tenantDispatcher });
}

/** One GraphQL POST: returns { status, headers, body } (body parsed when JSON). */
export async function gql(url, query, variables = undefined, headers = {}) {
  const res = await fetchLocal(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      ...headers,
    },
    body: JSON.stringify(variables ? { query, variables } : { query }),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, body };
}

export function short(v, n = 400) {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

const SIGN_UP = `mutation SignUp($input: SignUpInput!) {
  signUp(input: $input) {
    accessToken accessTokenExpiresAt refreshToken refreshTokenExpiresAt
    user { email } tenant { subdomain }
  }
}`;

/**
 * Signs up a new agency on the API host with a random subdomain. Returns
 * { subdomain, email, password, accessToken, refreshToken, accessTokenExpiresAt }
 * or throws with what the server answered.
 */
export async function signUp(base, label = 'client') {
  const id = randomBytes(5).toString('hex');
  const subdomain = `${label}-${id}`;
  const email = `owner-${id}@${label}-agency.test`;
  const password = 'tundra velvet orbit 42 lantern';
  const input = { agencyName: `Agency ${id}`, subdomain, email, password, firstName: 'Ana', lastName: 'Silva' };
  const r = await gql(`${base}/graphql`, SIGN_UP, { input });
  const p = r.body && r.body.data && r.body.data.signUp;
  if (r.status !== 200 || !p || !p.accessToken) {
    throw new Error(`signUp on the API host answered ${r.status}: ${short(r.body)}`);
  }
  return { subdomain, email, password, ...p };
}

/** Runs named checks; each is an async function that throws on failure. */
export function checklist() {
  const results = [];
  return {
    results,
    async check(name, fn) {
      try {
        const detail = await fn();
        results.push({ name, ok: true });
        console.log(`PASS ${name}${detail ? ` — ${detail}` : ''}`);
      } catch (e) {
        results.push({ name, ok: false, reason: e.message });
        console.log(`FAIL ${name} — ${e.message}`);
      }
    },
    finish(program) {
      const failed = results.filter((r) => !r.ok);
      console.log(`${program}: ${results.length - failed.length} of ${results.length} checks passed`);
      process.exitCode = failed.length ? 1 : 0;
      return failed.length;
    },
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
