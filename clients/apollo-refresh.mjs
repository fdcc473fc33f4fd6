// Apollo Client (v4) in Node, wired the way Apollo apps are: an auth link
// that adds `Authorization: Bearer <current access token>`, and an error link
// that, on a GraphQL error UNAUTHENTICATED, calls `refreshSession` through the
// same client (so the stale Authorization header goes along, as it does in
// every such app), stores the new tokens and retries the operation.
// The server runs with a short access-token lifetime (auth.access_token_ttl_secs).
// Usage: node apollo-refresh.mjs http://127.0.0.1:PORT
import { ApolloClient, ApolloLink, CombinedGraphQLErrors, HttpLink, InMemoryCache, ServerError, gql } from '@apollo/client';
import { SetContextLink } from '@apollo/client/link/context';
import { ErrorLink } from '@apollo/client/link/error';
import { from, switchMap } from 'rxjs';
import { apiBase, checklist, fetchLocal, short, signUp, sleep, tenantUrl } from './lib.mjs';

const base = apiBase('node apollo-refresh.mjs BASE_URL');
const { check, finish } = checklist();

const ME = gql`
  query Me {
    me {
      id
      email
    }
  }
`;
const REFRESH = gql`
  mutation RefreshSession($refreshToken: String!) {
    refreshSession(refreshToken: $refreshToken) {
      accessToken
      accessTokenExpiresAt
      refreshToken
    }
  }
`;
const LOGIN = gql`
  mutation Login($input: LoginInput!) {
    login(input: $input) {
      accessToken
      user {
        email
      }
    }
  }
`;

/** How an error reached the client, for the report. */
function describe(error) {
  if (CombinedGraphQLErrors.is(error)) {
    return `CombinedGraphQLErrors [${error.errors.map((e) => `${e.extensions?.code ?? 'no code'}: ${e.message}`).join('; ')}]`;
  }
  if (ServerError.is(error)) return `ServerError ${error.statusCode}: ${short(error.bodyText, 200)}`;
  return `${error?.name ?? 'error'}: ${error?.message ?? error}`;
}

/** What went over the wire: operation name and Authorization of each request. */
const wire = [];
function recordingFetch(input, init = {}) {
  let operationName;
  try {
    operationName = JSON.parse(init.body).operationName;
  } catch {
    operationName = '?';
  }
  const headers = new Headers(init.headers);
  wire.push({ operationName, authorization: headers.get('authorization') });
  return fetchLocal(input, init);
}

/** The app's token store and its Apollo Client. */
function appClient(uri, session) {
  const log = { errorsSeen: [], refreshes: [] };
  let refreshing = null;

  const authLink = new SetContextLink((prevContext) => ({
    headers: {
      ...prevContext.headers,
      ...(session.accessToken ? { authorization: `Bearer ${session.accessToken}` } : {}),
    },
  }));

  async function refresh() {
    // One refresh at a time; concurrent failures wait for the same one.
    refreshing ??= (async () => {
      const old = { ...session };
      const entry = { staleAccessToken: old.accessToken, oldRefreshToken: old.refreshToken };
      log.refreshes.push(entry);
      try {
        const { data } = await client.mutate({ mutation: REFRESH, variables: { refreshToken: old.refreshToken } });
        const p = data.refreshSession;
        Object.assign(session, {
          accessToken: p.accessToken,
          refreshToken: p.refreshToken,
          accessTokenExpiresAt: p.accessTokenExpiresAt,
        });
        entry.newRefreshToken = p.refreshToken;
      } catch (e) {
        entry.error = describe(e);
        throw e;
      }
    })().finally(() => {
      refreshing = null;
    });
    return refreshing;
  }

  const errorLink = new ErrorLink(({ error, operation, forward }) => {
    log.errorsSeen.push({ operationName: operation.operationName, error: describe(error), graphql: CombinedGraphQLErrors.is(error) });
    if (operation.operationName === 'RefreshSession') return; // never refresh a refresh
    if (!CombinedGraphQLErrors.is(error)) return;
    if (!error.errors.some((e) => e.extensions?.code === 'UNAUTHENTICATED')) return;
    if (operation.getContext().retriedAfterRefresh) return; // one retry per operation
    return from(refresh()).pipe(
      switchMap(() => {
        operation.setContext({ retriedAfterRefresh: true });
        return forward(operation);
      }),
    );
  });

  const client = new ApolloClient({
    link: ApolloLink.from([errorLink, authLink, new HttpLink({ uri, fetch: recordingFetch })]),
    cache: new InMemoryCache(),
    defaultOptions: { query: { fetchPolicy: 'network-only' } },
  });
  return { client, log };
}

/** A bare client: no auth link, no error link; headers per call. */
function plainClient(uri) {
  return new ApolloClient({ link: new HttpLink({ uri, fetch: recordingFetch }), cache: new InMemoryCache() });
}

let owner;
try {
  owner = await signUp(base, 'apollo');
  console.log(`signed up ${owner.email} at ${owner.subdomain}; access token expires ${owner.accessTokenExpiresAt}`);
} catch (e) {
  console.log(`FAIL sign-up — ${e.message}`);
  process.exit(1);
}
const uri = tenantUrl(base, owner.subdomain);
const session = { accessToken: owner.accessToken, refreshToken: owner.refreshToken };
const { client, log } = appClient(uri, session);

await check('me with a fresh access token', async () => {
  const { data } = await client.query({ query: ME });
  if (data?.me?.email !== owner.email) throw new Error(`me answered ${short(data)}`);
  if (log.refreshes.length) throw new Error(`a refresh happened: ${short(log.refreshes)}`);
  return data.me.email;
});

const waitMs = Math.max(0, new Date(owner.accessTokenExpiresAt).getTime() - Date.now()) + 1200;
console.log(`waiting ${(waitMs / 1000).toFixed(1)} s for the access token to expire`);
await sleep(waitMs);

const originalRefresh = owner.refreshToken;
const originalAccess = owner.accessToken;
let second;
await check('me after expiry: refreshed, retried and answered', async () => {
  try {
    second = await client.query({ query: ME });
  } catch (e) {
    throw new Error(
      `the query failed: ${describe(e)}; error link saw ${short(log.errorsSeen)}; refreshes ${short(log.refreshes)}`,
    );
  }
  if (second.data?.me?.email !== owner.email) throw new Error(`me answered ${short(second.data)}`);
  return second.data.me.email;
});

await check('the expired token surfaced as a GraphQL error UNAUTHENTICATED (CombinedGraphQLErrors)', async () => {
  const first = log.errorsSeen.find((e) => e.operationName === 'Me');
  if (!first) throw new Error('the error link saw no error for Me');
  if (!first.graphql || !first.error.includes('UNAUTHENTICATED')) throw new Error(`the error link saw ${first.error}`);
  return first.error;
});

await check('exactly one refresh happened', async () => {
  if (log.refreshes.length !== 1) throw new Error(`${log.refreshes.length} refreshes: ${short(log.refreshes)}`);
  if (log.refreshes[0].error) throw new Error(`the refresh failed: ${log.refreshes[0].error}`);
});

await check('refreshSession was sent with the stale Authorization header and was not refused', async () => {
  const req = wire.find((w) => w.operationName === 'RefreshSession');
  if (!req) throw new Error('no RefreshSession request was sent');
  if (req.authorization !== `Bearer ${originalAccess}`) throw new Error(`it carried ${short(req.authorization, 60)}`);
  const refused = log.errorsSeen.find((e) => e.operationName === 'RefreshSession');
  if (refused) throw new Error(`the server refused it: ${refused.error}`);
});

await check('the new refresh token differs from the first', async () => {
  const r = log.refreshes[0];
  if (!r?.newRefreshToken) throw new Error('no new refresh token');
  if (r.newRefreshToken === originalRefresh) throw new Error('the same refresh token came back');
  if (session.accessToken === originalAccess) throw new Error('the access token was not replaced');
});

const plain = plainClient(uri);
const garbage = { headers: { authorization: 'Bearer garbage' } };

await check('login works with a garbage Authorization header', async () => {
  try {
    const { data } = await plain.mutate({
      mutation: LOGIN,
      variables: { input: { email: owner.email, password: owner.password } },
      context: garbage,
    });
    if (data?.login?.user?.email !== owner.email || !data.login.accessToken) throw new Error(`login answered ${short(data)}`);
    return `signed in as ${data.login.user.email}`;
  } catch (e) {
    throw new Error(`login failed: ${describe(e)}`);
  }
});

await check('a query with a garbage token is a GraphQL error UNAUTHENTICATED (CombinedGraphQLErrors)', async () => {
  let result;
  try {
    result = await plain.query({ query: ME, context: garbage, fetchPolicy: 'network-only' });
  } catch (e) {
    if (!CombinedGraphQLErrors.is(e)) throw new Error(`it failed as ${describe(e)}`);
    if (!e.errors.some((x) => x.extensions?.code === 'UNAUTHENTICATED')) throw new Error(`it failed as ${describe(e)}`);
    return describe(e);
  }
  throw new Error(`it answered ${short(result)}`);
});

console.log(`requests sent: ${wire.map((w) => `${w.operationName}(${w.authorization ? w.authorization.slice(0, 16) + '…' : 'no auth'})`).join(', ')}`);
finish('apollo-refresh');
