// N consecutive Q1 reads through Traefik, each tagged `LABEL-i`; all must
// answer 200 with data, and Traefik's access log must show each served by
// EXPECT (host:port) at the first attempt (no retry: Traefik no longer
// routes to the other server at all).
// Usage: node probe.mjs URL SUBDOMAIN TOKEN N LABEL ACCESS_LOG EXPECT
import { accessLog, gql, graphqlUrl, short, sleep } from './common.mjs';

const [url, subdomain, token, n, label, log, expect] = process.argv.slice(2);
if (!expect) {
  console.error('usage: node probe.mjs URL SUBDOMAIN TOKEN N LABEL ACCESS_LOG EXPECT');
  process.exit(2);
}
const N = Number(n);
const target = graphqlUrl(url, subdomain);
const bad = [];
for (let i = 0; i < N; i++) {
  const r = await gql(target, '{ clients(first: 10) { edges { node { id name email } } } }', undefined, { token, headers: { 'x-request-id': `${label}-${i}` } });
  if (!(r.status === 200 && r.body?.data && !r.body.errors)) bad.push(`${label}-${i}: ${r.status ? `HTTP ${r.status}` : r.error} ${short(r.body, 200)}`);
}
await sleep(200);
const lines = accessLog(log, (id) => id.startsWith(`${label}-`));
const elsewhere = lines.filter((l) => l.server !== expect || l.retries > 0);
const problems = [];
if (bad.length) problems.push(`${bad.length} of ${N} failed: ${bad.slice(0, 3).join('; ')}`);
if (lines.length !== N) problems.push(`${lines.length} of ${N} in Traefik's access log`);
if (elsewhere.length) problems.push(`${elsewhere.length} not served by ${expect} at the first attempt: ${short(elsewhere.slice(0, 3))}`);
if (problems.length) {
  console.log(`probe ${label}: ${problems.join('; ')}`);
  process.exit(1);
}
console.log(`probe ${label}: ${N} consecutive requests succeeded, all served by ${expect} at the first attempt`);
