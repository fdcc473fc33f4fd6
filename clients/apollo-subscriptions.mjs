// Apollo Client (v4) in Node with subscriptions, wired the way Apollo apps
// are: `split` sends subscriptions to a `GraphQLWsLink` (graphql-ws over
// WebSocket, here to server B) and everything else to an `HttpLink` (here
// to server A); both replicas share the database and Redis. The
// connection's `connectionParams` and the HTTP auth link both take the
// current access token, refreshing it first when it is about to expire
// (tokens live 2 s here; the server closes the socket with 4403 when its
// token expires, and graphql-ws reconnects and resubscribes).
// Usage: node apollo-subscriptions.mjs http://127.0.0.1:PORT_A http://127.0.0.1:PORT_B
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql, split } from '@apollo/client';
import { SetContextLink } from '@apollo/client/link/context';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import WebSocket from 'ws';
import { apiBase, checklist, fetchLocal, short, signUp, sleep } from './lib.mjs';
import { Session, liveClient, noteEarlyRefusals, until, uploadDocument, userCredential } from './realtime.mjs';

// GraphQLWsLink tells socket errors from GraphQL errors by comparing with
// the global `WebSocket.CLOSED`, which Node 20 does not define (Node 22
// does); Node apps give it the `ws` package's, as here.
globalThis.WebSocket ??= WebSocket;

const usage = 'node apollo-subscriptions.mjs A_BASE_URL B_BASE_URL';
const A = apiBase(usage);
const B = apiBase(usage, 3);
const { check, finish } = checklist();

const DOCUMENT_CHANGED = gql`
  subscription DocumentChanged {
    documentChanged {
      kind
      documentId
      document {
        id
        name
        project {
          id
          name
        }
      }
      at
    }
  }
`;
const ME = gql`
  query Me {
    me {
      id
      email
    }
  }
`;
const CREATE_CLIENT = gql`
  mutation CreateClient($input: CreateClientInput!) {
    createClient(input: $input) {
      id
    }
  }
`;
const CREATE_PROJECT = gql`
  mutation CreateProject($input: CreateProjectInput!) {
    createProject(input: $input) {
      id
      name
    }
  }
`;

let owner;
try {
  owner = await signUp(A, 'apollo-subs');
  console.log(`signed up ${owner.email} at ${owner.subdomain} on A (${A}); subscriptions go to B (${B})`);
} catch (e) {
  console.log(`FAIL sign-up — ${e.message}`);
  process.exit(1);
}
const session = new Session(A, owner.subdomain, owner);

/** What went over HTTP (operation names) and over the WebSocket (messages sent). */
const http = [];
const sent = [];
function recordingFetch(input, init = {}) {
  let operationName = '?';
  try {
    operationName = JSON.parse(init.body).operationName;
  } catch {}
  http.push(operationName);
  return fetchLocal(input, init);
}

// The graphql-ws client (its reconnects and closes recorded) and the app's links.
const live = liveClient(B, owner.subdomain, userCredential(session), { sent });
const wsLink = new GraphQLWsLink(live.client);
// (1.2 s: the server may refuse a token up to a second before its
// accessTokenExpiresAt; this app has no error link to retry with.)
const authLink = new SetContextLink(async (prevContext) => ({
  headers: { ...prevContext.headers, authorization: `Bearer ${await session.token(1200)}` },
}));
const httpLink = ApolloLink.from([authLink, new HttpLink({ uri: session.url, fetch: recordingFetch })]);
const isSubscription = ({ query }) => {
  const def = getMainDefinition(query);
  return def.kind === 'OperationDefinition' && def.operation === 'subscription';
};
const client = new ApolloClient({
  link: split(isSubscription, wsLink, httpLink),
  cache: new InMemoryCache(),
  defaultOptions: { query: { fetchPolicy: 'network-only' } },
});

// The subscription, through the split, as an app's would be.
const seen = { results: [], error: null, completed: false };
const subscription = client.subscribe({ query: DOCUMENT_CHANGED }).subscribe({
  next: (r) => seen.results.push({ ...r, receivedAt: Date.now() }),
  error: (e) => {
    seen.error = e;
  },
  complete: () => {
    seen.completed = true;
  },
});
const subState = () =>
  seen.error ? ` (the observable failed: ${seen.error.message ?? short(seen.error)})` : seen.completed ? ' (the observable completed)' : '';

let doc;
await check('an upload on A reaches the Apollo observable (GraphQLWsLink to B) as CREATED with its name', async () => {
  const c = (await client.mutate({ mutation: CREATE_CLIENT, variables: { input: { name: 'Apollo client' } } })).data.createClient;
  const { data } = await client.mutate({ mutation: CREATE_PROJECT, variables: { input: { clientId: c.id, name: 'Apollo project' } } });
  const project = data.createProject;
  await live.steady({ leftMs: 1000 });
  doc = await uploadDocument(session, { projectId: project.id, name: 'apollo-brief.txt' });
  const r = await until(
    () => seen.results.find((x) => x.data?.documentChanged?.documentId === doc.id),
    5000,
    () => `no event for ${doc.id} within 5 s; the observable delivered ${short(seen.results)}${subState()}; socket: ${live.describeCloses()}`,
  );
  const e = r.data.documentChanged;
  if (e.kind !== 'CREATED') throw new Error(`the event is ${e.kind}, not CREATED`);
  if (e.document?.name !== doc.name) throw new Error(`the event names ${short(e.document)}, the upload answered ${doc.name}`);
  if (e.document?.project?.name !== project.name) throw new Error(`the event's project is ${short(e.document?.project)}, not ${project.name}`);
  if (r.error) throw new Error(`the result also carries an error: ${r.error.message}`);
  return `${e.kind} ${e.document.name} in ${e.document.project.name}, ${r.receivedAt - Date.parse(e.at)} ms after it was published`;
});

await check('the subscription went over the WebSocket, the mutations through the split over HTTP to A', async () => {
  const subscribes = sent.map((s) => JSON.parse(s)).filter((m) => m.type === 'subscribe');
  if (!subscribes.length) throw new Error('no subscribe message was sent on the WebSocket');
  const names = subscribes.map((m) => m.payload?.operationName ?? '(unnamed)');
  if (names.some((n) => n !== 'DocumentChanged')) throw new Error(`the WebSocket carried ${names.join(', ')}`);
  if (http.includes('DocumentChanged')) throw new Error('the subscription was also sent over HTTP');
  for (const m of ['CreateClient', 'CreateProject']) if (!http.includes(m)) throw new Error(`${m} did not go over HTTP (HTTP carried ${http.join(', ') || 'nothing'})`);
  return `WebSocket: ${subscribes.length} subscribe(s) of DocumentChanged (one per connection); HTTP: ${http.join(', ')}`;
});

await check('a query through the split goes over HTTP to A, not over the WebSocket', async () => {
  const before = sent.length;
  const { data } = await client.query({ query: ME });
  if (data?.me?.email !== owner.email) throw new Error(`me answered ${short(data)}`);
  if (http.at(-1) !== 'Me') throw new Error(`the last HTTP request was ${http.at(-1)}, not Me`);
  const onWs = sent.slice(before).map((s) => JSON.parse(s)).filter((m) => m.type === 'subscribe' && m.payload?.operationName === 'Me');
  if (onWs.length) throw new Error('Me was sent on the WebSocket');
  return `me: ${data.me.email} over HTTP`;
});

await check('after the server closed the socket for its expired token, the same observable delivers the next upload', async () => {
  if (!doc) throw new Error('not checked: the first upload did not arrive');
  const first = live.state.connects;
  await until(
    () => live.state.connects > first,
    8000,
    () => `graphql-ws did not reconnect within 8 s (${live.state.connects} connections; closes: ${live.describeCloses()})`,
  );
  await live.steady({ leftMs: 1000 });
  const again = await uploadDocument(session, { projectId: doc.project.id, name: 'apollo-brief-2.txt' });
  const r = await until(
    () => seen.results.find((x) => x.data?.documentChanged?.documentId === again.id),
    5000,
    () => `no event for ${again.id} within 5 s${subState()}; socket: ${live.describeCloses()}`,
  );
  return `${r.data.documentChanged.kind} ${r.data.documentChanged.document?.name} on connection ${live.state.connects}, after ${live.describeCloses()}`;
});

await check('the socket was closed only for expired tokens (4403), and the subscription lived on', async () => {
  const odd = live.state.closes.filter((c) => c.code !== 4403 || !/expire/i.test(c.reason));
  if (odd.length) throw new Error(`closes: ${live.describeCloses()}`);
  if (seen.error || seen.completed) throw new Error(`the subscription ended${subState()}`);
  return `${live.state.connects} connections; ${live.describeCloses()}`;
});

subscription.unsubscribe();
await sleep(50);
await live.dispose();
noteEarlyRefusals([session]);
finish('apollo-subscriptions');
setTimeout(() => {
  console.log(`apollo-subscriptions: something kept the process alive after the checks (${process.getActiveResourcesInfo().join(', ')}); exiting`);
  process.exit(process.exitCode);
}, 3000).unref();
