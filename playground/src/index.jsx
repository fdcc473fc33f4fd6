// Entry of the Aggios GraphQL playground. Everything it needs is bundled by
// esbuild into dist/ and served by the API server itself under /playground/:
// no CDN, no web fonts from elsewhere, no telemetry.
import React from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import 'graphiql/graphiql.css';
import './page.css';
import { SessionBar } from './SessionBar.jsx';
import { playgroundFetch } from './session.js';

// Same origin as the page: the server that serves /playground also serves
// /graphql. Every request carries the sign-in bar's credentials.
const fetcher = createGraphiQLFetcher({
  url: window.location.origin + '/graphql',
  fetch: playgroundFetch,
});

const defaultQuery = `# Sign in above, then run this (Ctrl-Enter).
# Docs, on the left, lists every type.
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
