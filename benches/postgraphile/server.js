// PostGraphile 4 as a library, so the tenant can be set per request through
// pgSettings under the same RLS policies and runtime role Aggios uses.
const http = require("http");
const { postgraphile } = require("postgraphile");

const handler = postgraphile(process.env.DATABASE_URL, "public", {
  pgSettings: (req) => ({
    role: "aggios_app",
    "aggios.tenant_id": String(req.headers["x-tenant-id"] || ""),
  }),
  graphiql: false,
  disableQueryLog: true,
  watchPg: false,
  retryOnInitFail: false,
  disableDefaultMutations: true,
  legacyRelations: "omit",
  setofFunctionsContainNulls: false,
  dynamicJson: true,
});

http.createServer(handler).listen(Number(process.env.PORT), "127.0.0.1", () => {
  console.log(`postgraphile listening on ${process.env.PORT}`);
});
