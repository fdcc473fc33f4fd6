// Apollo Client (v4) in Node with its PersistedQueryLink (SHA-256 from
// node:crypto), as apps use automatic persisted queries against Aggios:
// the first request sends the hash alone and misses, the link retries with
// the text (registering it), and later requests send the hash alone and
// hit. Checked on the wire: what each request carried (method, text or
// not, hash), and what the server answered. Then the same with
// `useGETForHashedQueries: true`: hash-only requests go by GET.
// Usage: node apollo-persisted.mjs http://127.0.0.1:PORT
import { createHash } from 'node:crypto';

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { apiBase, checklist, fetchLocal, short, signUp, tenantUrl } from './lib.mjs';

const base = apiBase('node apollo-persisted.mjs BASE_URL');
const { check, finish } = checklist();

const sha256 = (text) => createHash('sha256').update(text).digest('hex');

/** Every request and its answer, as they crossed the wire. */
const wire = [];
async function recordingFetch(input, init = {}) {
  const url = new URL(typeof input === 'string' ? input : input.url);
  const method = (init.method ?? 'GET').toUpperCase();
  let sent;
  if (method === 'GET') {
    sent = Object.fromEntries(url.searchParams);
    if (sent.extensions) sent.extensions = JSON.parse(sent.extensions);
  } else {
    sent = JSON.parse(init.body);
  }
  const res = await fetchLocal(input, init);
  const text = await res.clone().text();
  let answered;
  try {
    answered = JSON.parse(text);
  } catch {
    answered = text;
  }
  wire.push({ method, url: url.toString(), sent, status: res.status, answered });
  return res;
}

/** Apps that send GET need the header that forces a CORS preflight (CSRF prevention). */
function client(uri, options = {}) {
  const persisted = new PersistedQueryLink({ sha256, ...options });
  const http = new HttpLink({ uri, fetch: recordingFetch, headers: { 'apollo-require-preflight': 'true' } });
  return new ApolloClient({
    link: ApolloLink.from([persisted, http]),
    cache: new InMemoryCache(),
    defaultOptions: { query: { fetchPolicy: 'network-only' } },
  });
}

const describeWire = (from) =>
  wire
    .slice(from)
    .map((w) => `${w.method} ${w.status} ${w.sent.query ? 'text+hash' : 'hash only'} → ${short(w.answered, 120)}`)
    .join(' | ');

let owner;
try {
  owner = await signUp(base, 'apq');
} catch (e) {
  console.log(`FAIL sign-up — ${e.message}`);
  process.exit(1);
}
const uri = tenantUrl(base, owner.subdomain);

const AGENCY = gql`
  query Agency {
    tenant {
      subdomain
      name
    }
  }
`;
const AGENCY_AGAIN = gql`
  query AgencyByGet {
    tenant {
      subdomain
      isActive
    }
  }
`;

const post = client(uri);

await check('a first request sends the hash alone and misses with PERSISTED_QUERY_NOT_FOUND', async () => {
  const from = wire.length;
  const { data } = await post.query({ query: AGENCY });
  if (data?.tenant?.subdomain !== owner.subdomain) throw new Error(`answered ${short(data)}`);
  const [miss, register] = wire.slice(from);
  if (!miss || miss.sent.query !== undefined || !miss.sent.extensions?.persistedQuery?.sha256Hash) {
    throw new Error(`the first request was not hash-only: ${describeWire(from)}`);
  }
  const err = miss.answered?.errors?.[0];
  if (miss.status !== 200 || err?.extensions?.code !== 'PERSISTED_QUERY_NOT_FOUND' || err?.message !== 'PersistedQueryNotFound') {
    throw new Error(`the miss was answered ${miss.status} ${short(miss.answered)}`);
  }
  if (!register || typeof register.sent.query !== 'string' || register.sent.extensions?.persistedQuery?.sha256Hash !== miss.sent.extensions.persistedQuery.sha256Hash) {
    throw new Error(`the link did not retry with the text and the hash: ${describeWire(from)}`);
  }
  if (sha256(register.sent.query) !== register.sent.extensions.persistedQuery.sha256Hash) throw new Error('the hash is not the text\'s SHA-256');
  return describeWire(from);
});

await check('the next request sends the hash alone, no text, and runs the registered document', async () => {
  const from = wire.length;
  const { data } = await post.query({ query: AGENCY });
  if (data?.tenant?.subdomain !== owner.subdomain) throw new Error(`answered ${short(data)}`);
  const sent = wire.slice(from);
  if (sent.length !== 1) throw new Error(`${sent.length} requests: ${describeWire(from)}`);
  if (sent[0].sent.query !== undefined) throw new Error(`the text went on the wire: ${short(sent[0].sent)}`);
  if (sent[0].method !== 'POST') throw new Error(`sent by ${sent[0].method}`);
  return describeWire(from);
});

const byGet = client(uri, { useGETForHashedQueries: true });

await check('with useGETForHashedQueries, a miss by GET, the text by POST, then a hit by GET with no text in the URL', async () => {
  let from = wire.length;
  const first = await byGet.query({ query: AGENCY_AGAIN });
  if (first.data?.tenant?.subdomain !== owner.subdomain) throw new Error(`answered ${short(first.data)}`);
  const [miss, register] = wire.slice(from);
  if (miss?.method !== 'GET' || miss.answered?.errors?.[0]?.extensions?.code !== 'PERSISTED_QUERY_NOT_FOUND') {
    throw new Error(`the first request: ${describeWire(from)}`);
  }
  if (register?.method !== 'POST' || typeof register.sent.query !== 'string') throw new Error(`the retry: ${describeWire(from)}`);
  from = wire.length;
  const second = await byGet.query({ query: AGENCY_AGAIN });
  if (second.data?.tenant?.subdomain !== owner.subdomain) throw new Error(`answered ${short(second.data)}`);
  const hit = wire.slice(from);
  if (hit.length !== 1 || hit[0].method !== 'GET') throw new Error(`the hit: ${describeWire(from)}`);
  if (new URL(hit[0].url).searchParams.has('query')) throw new Error(`the text went in the URL: ${hit[0].url}`);
  if (hit[0].status !== 200) throw new Error(`status ${hit[0].status}`);
  return `${describeWire(from)} (${new URL(hit[0].url).search.length} characters of query string)`;
});

await check('the hash registered by one client is a hit for a fresh one (no miss)', async () => {
  const from = wire.length;
  const fresh = client(uri, { useGETForHashedQueries: true });
  const { data } = await fresh.query({ query: AGENCY });
  if (data?.tenant?.subdomain !== owner.subdomain) throw new Error(`answered ${short(data)}`);
  const sent = wire.slice(from);
  if (sent.length !== 1 || sent[0].method !== 'GET' || sent[0].sent.query !== undefined) throw new Error(describeWire(from));
  return describeWire(from);
});

finish('apollo-persisted');
