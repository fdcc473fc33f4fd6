// A bounded mixed load through Traefik (run by run.sh): CONCURRENCY loops,
// each with at most one request in flight, three Q1 reads
// (`clients(first: 10)`) to one `createClient` with a unique name, until
// SECS have passed or STOP_FILE exists (MAX_SECS at most). Every request
// carries an X-Request-Id (`LABEL-loop-n`, in Traefik's access log). A write
// is acknowledged when it answered 200 with data and no errors; every
// acknowledged name goes into the ledger (OUT, JSON), with every failure
// (status, error, body, when) and the totals.
// Usage: node load.mjs URL SUBDOMAIN TOKEN CONCURRENCY SECS MAX_SECS LABEL OUT [STOP_FILE]
import { existsSync, writeFileSync } from 'node:fs';

import { gql, graphqlUrl, short } from './common.mjs';

const [url, subdomain, token, conc, secs, maxSecs, label, out, stopFile] = process.argv.slice(2);
if (!out) {
  console.error('usage: node load.mjs URL SUBDOMAIN TOKEN CONCURRENCY SECS MAX_SECS LABEL OUT [STOP_FILE]');
  process.exit(2);
}
const CONCURRENCY = Number(conc);
const target = graphqlUrl(url, subdomain);
const Q1 = '{ clients(first: 10) { edges { node { id name email } } } }';
const CREATE = 'mutation C($input: CreateClientInput!) { createClient(input: $input) { id name } }';

const start = performance.now();
const now = () => performance.now() - start;
const ledger = { label, url: target, concurrency: CONCURRENCY, requests: 0, reads: 0, writes: 0, failures: [], acked: [], unacked: [], latencies: [] };
let inFlight = 0;
let maxInFlight = 0;

function done() {
  const t = now() / 1000;
  if (t >= Number(maxSecs)) return true;
  if (stopFile) return existsSync(stopFile);
  return t >= Number(secs);
}

async function loop(w) {
  for (let i = 0; !done(); i++) {
    const write = i % 4 === 3;
    const id = `${label}-${w}-${i}`;
    const name = `load-${label}-${w}-${i}`;
    const at = now();
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const r = write
      ? await gql(target, CREATE, { input: { name } }, { token, headers: { 'x-request-id': id } })
      : await gql(target, Q1, undefined, { token, headers: { 'x-request-id': id } });
    inFlight--;
    ledger.requests++;
    ledger[write ? 'writes' : 'reads']++;
    ledger.latencies.push(r.ms);
    const ok = r.status === 200 && r.body && typeof r.body === 'object' && r.body.data && !r.body.errors
      && (write ? r.body.data.createClient?.name === name : Array.isArray(r.body.data.clients?.edges));
    if (ok) {
      if (write) ledger.acked.push(name);
      continue;
    }
    if (write) ledger.unacked.push(name);
    ledger.failures.push({
      id,
      kind: write ? 'write' : 'read',
      at_ms: Math.round(at),
      ms: Math.round(r.ms),
      status: r.status,
      error: r.error ?? null,
      body: r.body === null ? null : short(r.body, 300),
    });
  }
}

await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => loop(w)));
const lat = ledger.latencies.sort((a, b) => a - b);
const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] : NaN);
const summary = {
  label,
  secs: Number((now() / 1000).toFixed(1)),
  requests: ledger.requests,
  reads: ledger.reads,
  writes: ledger.writes,
  acked: ledger.acked.length,
  failures: ledger.failures.length,
  max_in_flight: maxInFlight,
  p50_ms: Number(pct(50).toFixed(1)),
  p99_ms: Number(pct(99).toFixed(1)),
};
delete ledger.latencies;
writeFileSync(out, JSON.stringify({ ...ledger, summary }, null, 1));
console.log(`load ${label}: ${summary.requests} requests (${summary.reads} reads, ${summary.writes} writes) in ${summary.secs} s by ${CONCURRENCY} loops; ` +
  `${summary.acked} writes acknowledged; ${summary.failures} failed; p50 ${summary.p50_ms} ms, p99 ${summary.p99_ms} ms`);
for (const f of ledger.failures.slice(0, 10)) {
  console.log(`  failed ${f.kind} ${f.id} at ${(f.at_ms / 1000).toFixed(2)} s after ${f.ms} ms: ${f.status ? `HTTP ${f.status}` : f.error} ${f.body ?? ''}`);
}
if (ledger.failures.length > 10) console.log(`  … and ${ledger.failures.length - 10} more (${out})`);
