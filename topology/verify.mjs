// Checks a load's ledger (load.mjs) against the primary database: every
// acknowledged write is a row, and no name is there twice (a POST sent to
// two servers). Prints one line; exits 1 when a write is lost.
// Usage: node verify.mjs LEDGER PG_URL TENANT_ID
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const [ledgerPath, pg, tenantId] = process.argv.slice(2);
const ledger = JSON.parse(readFileSync(ledgerPath, 'utf8'));
const rows = execFileSync('psql', [pg, '-qAtc', `SELECT name FROM clients WHERE tenant_id = '${tenantId}' AND name LIKE 'load-${ledger.label}-%'`], {
  encoding: 'utf8',
  maxBuffer: 64 << 20,
}).split('\n').filter(Boolean);
const count = new Map();
for (const n of rows) count.set(n, (count.get(n) ?? 0) + 1);
const lost = ledger.acked.filter((n) => !count.has(n));
const twice = [...count].filter(([, c]) => c > 1).map(([n]) => n);
const unackedStored = ledger.unacked.filter((n) => count.has(n)).length;
console.log(`verify ${ledger.label}: ${ledger.acked.length} acknowledged writes, ${ledger.acked.length - lost.length} found in the primary, ${lost.length} lost; ` +
  `${twice.length} stored twice; ${ledger.unacked.length} unacknowledged writes, of which ${unackedStored} were stored anyway`);
if (lost.length) console.log(`  lost: ${lost.slice(0, 20).join(', ')}`);
if (twice.length) console.log(`  stored twice: ${twice.slice(0, 20).join(', ')}`);
process.exitCode = lost.length || twice.length ? 1 : 0;
