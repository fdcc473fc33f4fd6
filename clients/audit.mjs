// Every graphql-http server audit (GraphQL over HTTP conformance) against the
// running server, twice: (a) anonymously on the API host, (b) as a signed-in
// agency owner on the agency's own host (`<subdomain>.localhost:<port>`).
// Exits non-zero unless every audit, MUST, SHOULD and MAY alike, passes.
// Usage: node audit.mjs http://127.0.0.1:PORT
import { serverAudits } from 'graphql-http';
import { Headers } from 'undici';
import { apiBase, fetchLocal, gql, short, signUp, tenantUrl } from './lib.mjs';

const base = apiBase('node audit.mjs BASE_URL');

/**
 * A fetch for the audits that adds `headers` to every request.
 *
 * `apollo-require-preflight: true` goes on every request: the server prevents
 * CSRF the way Apollo Server does (a request a browser could send without a
 * CORS preflight — a GET, or a POST with a "simple" content type — must carry
 * a preflight-forcing header). The audits test GraphQL-over-HTTP semantics as
 * a non-browser client sends them, and such a client sends that header
 * (Apollo Client and the playground do too); without it some GET audits would
 * measure the CSRF refusal instead of the protocol.
 */
function fetchWith(headers) {
  return (input, init = {}) => {
    const h = new Headers(init.headers);
    h.set('apollo-require-preflight', 'true');
    for (const [k, v] of Object.entries(headers)) h.set(k, v);
    return fetchLocal(input, { ...init, headers: h });
  };
}

async function runAudits(label, url, headers) {
  console.log(`\n== ${label}: ${url}`);
  const audits = serverAudits({ url, fetchFn: fetchWith(headers) });
  const results = [];
  for (const audit of audits) {
    let result;
    try {
      result = await audit.fn();
    } catch (e) {
      result = { id: audit.id, name: audit.name, status: 'error', reason: `the audit threw: ${e.message}` };
    }
    results.push(result);
    let line = `${result.status.padEnd(6)} ${result.id} ${result.name}`;
    if (result.status !== 'ok') {
      line += `\n         reason: ${result.reason}`;
      if (result.response) {
        let body = '';
        try {
          body = await result.response.clone().text();
        } catch {
          /* body already read */
        }
        line += `\n         response: ${result.response.status} ${result.response.headers.get('content-type') ?? ''} ${short(body, 300)}`;
      }
    }
    console.log(line);
  }
  const levels = {};
  for (const r of results) {
    const level = r.name.split(' ')[0];
    levels[level] ??= { ok: 0, total: 0 };
    levels[level].total += 1;
    if (r.status === 'ok') levels[level].ok += 1;
  }
  for (const level of ['MUST', 'SHOULD', 'MAY']) {
    const l = levels[level] ?? { ok: 0, total: 0 };
    console.log(`${label}: ${level} ${l.ok} of ${l.total} ok`);
  }
  return results.filter((r) => r.status !== 'ok').map((r) => `${label} ${r.status} ${r.id} ${r.name}: ${r.reason}`);
}

const failures = [];

// (a) the API host, anonymous.
failures.push(...(await runAudits('API host', `${base}/graphql`, {})));

// (b) a tenant's own host with an access token.
let tenant;
try {
  tenant = await signUp(base, 'audit');
  console.log(`\nsigned up ${tenant.email} at ${tenant.subdomain}`);
} catch (e) {
  failures.push(`sign-up for the tenant audits failed: ${e.message}`);
}
if (tenant) {
  const url = tenantUrl(base, tenant.subdomain);
  const auth = { authorization: `Bearer ${tenant.accessToken}` };
  // Prove the requests really reach the tenant's host (no X-Tenant): the
  // public `tenant` field names the agency the host resolved to, and the
  // token (bound to that agency) signs the owner in.
  const probe = await gql(url, '{ tenant { subdomain } me { email } }', undefined, auth).catch((e) => ({
    status: 0,
    body: e.message,
  }));
  const data = probe.body && probe.body.data;
  if (probe.status === 200 && data && data.tenant?.subdomain === tenant.subdomain && data.me?.email === tenant.email) {
    console.log(`tenant host reached: ${url} resolved to ${data.tenant.subdomain}, me = ${data.me.email}`);
    failures.push(...(await runAudits(`tenant host ${tenant.subdomain}`, url, auth)));
  } else {
    failures.push(`the tenant host ${url} did not answer as the tenant (${probe.status}): ${short(probe.body)}`);
  }
}

console.log('');
if (failures.length) {
  console.log(`audit: ${failures.length} failing:`);
  for (const f of failures) console.log(`  ${f}`);
  process.exit(1);
}
console.log('audit: every graphql-http audit passed on the API host and the tenant host');
