// Entry of the Aggios GraphQL playground. Everything it needs is bundled by
// esbuild into dist/ and served by the API server itself under /playground/:
// no CDN, no web fonts from elsewhere, no telemetry.
import React from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { createClient } from 'graphql-ws';
import 'graphiql/graphiql.css';
import './page.css';
import { SessionBar } from './SessionBar.jsx';
import {
  editorCredentials,
  identity,
  playgroundFetch,
  subscribe as onSessionChange,
  worthRetrying,
  wsConnectionParams,
} from './session.js';

// Same origin as the page: the server that serves /playground also serves
// /graphql, over HTTP and, for subscriptions, over a WebSocket
// (graphql-transport-ws). Every request carries the sign-in bar's credentials.
const url = window.location.origin + '/graphql';
const subscriptionUrl = `${window.location.protocol === 'https:' ? 'wss:' : 'ws:'}//${window.location.host}/graphql`;

// The WebSocket client, made when the first subscription runs. Its
// `connectionParams` is a function, read at every (re)connection, so a
// sign-in after the page loaded is used, and after the server closes a socket
// whose access token expired (4403) graphql-ws reconnects with the renewed
// token and resubscribes. (The toolkit's own `subscriptionUrl` +
// `wsConnectionParams` copy the params once per subscription, which would
// resend the expired token.) One client per credential source: the bar's, or
// the credentials the Headers editor sets.
let ws = null; // { client, key }
let sent = null; // { params, fromEditor }: the last connection_init payload
let soon = false; // the next retry needs no back-off

const closeLike = (e) => e !== null && typeof e === 'object' && 'code' in e && 'reason' in e;

function wsClient(editorHeaders) {
  const own = editorCredentials(editorHeaders);
  const key = JSON.stringify(own);
  if (ws && ws.key !== key) {
    ws.client.dispose();
    ws = null;
  }
  if (!ws) {
    const client = createClient({
      url: subscriptionUrl,
      lazy: true,
      connectionParams: async () => {
        const params = await wsConnectionParams(own);
        sent = { params, fromEditor: own !== null };
        return params;
      },
      retryAttempts: 5,
      // Dropped connections, a restarting server (1012), "try again later"
      // (1013) and a renewed token after 4403 are retried; other refusals
      // show in the result pane.
      shouldRetry: (e) => {
        const retry = closeLike(e) && (e.code !== 4403 || (!sent?.fromEditor && worthRetrying(sent?.params)));
        // A renewed token, or another sign-in (4499, see below): reconnect at
        // once, events published meanwhile are missed. Otherwise back off.
        soon = retry && (e.code === 4403 || e.code === 4499);
        return retry;
      },
      retryWait: async (retries) => {
        const ms = soon ? 50 : 2 ** retries * 1000 + 300 + Math.random() * 2700;
        await new Promise((resolve) => setTimeout(resolve, ms));
      },
    });
    ws = { client, key };
  }
  return ws.client;
}

// Signing in as someone else (or out) while a subscription runs: reconnect it
// with what the bar now holds (the close is retried, with the new params).
let barIdentity = identity();
onSessionChange(() => {
  const now = identity();
  if (now === barIdentity) return;
  barIdentity = now;
  if (ws && ws.key === 'null') ws.client.terminate();
});

// What a person can read in the result pane when the socket closes or fails,
// or the server refuses the subscription: shown as a result with `errors`
// that ends the run. (Passing errors on as errors makes the toolkit's
// iterator reject a promise nobody awaits: an uncaught error in the page.)
function readable(sink) {
  const fail = (message) => {
    sink.next({ errors: [{ message }] });
    sink.complete();
  };
  return {
    next: (value) => sink.next(value),
    complete: () => sink.complete(),
    error(err) {
      if (closeLike(err)) {
        fail(`The subscription's WebSocket closed: ${err.code} ${err.reason || ''}`.trim());
      } else if (typeof Event !== 'undefined' && err instanceof Event) {
        fail(`The WebSocket ${subscriptionUrl} could not be opened or failed (refused or unreachable)`);
      } else if (Array.isArray(err)) {
        // The server's `error` message: GraphQL errors.
        sink.next({ errors: err });
        sink.complete();
      } else {
        fail(err instanceof Error ? err.message : String(err));
      }
    },
  };
}

const fetcher = (params, opts) =>
  createGraphiQLFetcher({
    url,
    fetch: playgroundFetch,
    // Used only when the operation is a subscription.
    wsClient: { subscribe: (payload, sink) => wsClient(opts?.headers).subscribe(payload, readable(sink)) },
  })(params, opts);

const defaultQuery = `# Sign in above, then run this (Ctrl-Enter).
# Docs, on the left, lists every type. Subscriptions run too, e.g.
# subscription { clientChanged { kind client { name } } }
{
  me { email role }
  clients(first: 5) { edges { node { name status } } }
}
`;

function Playground() {
  return (
    <div className="pg-app">
      <SessionBar />
      <div className="pg-graphiql">
        <GraphiQL
          fetcher={fetcher}
          defaultQuery={defaultQuery}
          isHeadersEditorEnabled={true}
          shouldPersistHeaders={true}
        >
          {/* Replaces GraphiQL's default logo, a link to github.com. */}
          <GraphiQL.Logo>Aggios</GraphiQL.Logo>
        </GraphiQL>
      </div>
    </div>
  );
}

createRoot(document.getElementById('graphiql')).render(<Playground />);
