// Entry of the Aggios GraphQL playground. Everything it needs is bundled by
// esbuild into dist/ and served by the API server itself under /playground/:
// no CDN, no web fonts from elsewhere, no telemetry.
import React from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import 'graphiql/graphiql.css';
import './page.css';

// Same origin as the page: the server that serves /playground also serves /graphql.
const fetcher = createGraphiQLFetcher({
  url: window.location.origin + '/graphql',
});

const defaultQuery = `# api host: an X-Tenant header selects the tenant
{ __typename }
`;

function Playground() {
  return (
    <GraphiQL
      fetcher={fetcher}
      defaultQuery={defaultQuery}
      headers=""
      isHeadersEditorEnabled={true}
      shouldPersistHeaders={false}
    >
      {/* Replaces GraphiQL's default logo, a link to github.com. */}
      <GraphiQL.Logo>Aggios</GraphiQL.Logo>
    </GraphiQL>
  );
}

createRoot(document.getElementById('graphiql')).render(<Playground />);
