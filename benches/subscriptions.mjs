// The client side of benches/subscriptions.sh (issue 14): graphql-transport-ws
// spoken by hand over `ws` (benches/subscriptions/package.json), the sockets
// spread over worker threads so that receiving is not one event loop's work.
// The script starts the servers and passes everything through SUBS_*
// variables; this program prints progress on stderr and the Markdown tables
// on stdout. Every phase is bounded in count and time.
//
//   1. idle subscribers: N sockets on replica A (one `documentChanged` each),
//      in steps, A's VmRSS read from /proc after each step settles; then one
//      `updateDocument` that every socket must receive (they are live);
//   2. fan-out latency: F subscribers (`clientChanged`), half on A, half on B,
//      E `createClient`s through A at R a second; latency = receive time -
//      the event's `at`; every subscriber must get every event;
//   3. sustained: `createClient`s as fast as C loops make them, through A and
//      B alternately, for S seconds (at most M), the same F subscribers.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { performance, monitorEventLoopDelay } from 'node:perf_hooks';
import http from 'node:http';

const require = createRequire(new URL('./subscriptions/package.json', import.meta.url));
const WebSocket = require('ws');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const wallMs = () => performance.timeOrigin + performance.now();

// Latency histogram: 10 µs buckets below 2 s, then 1 ms buckets up to 120 s.
const FINE = 200_000;
const COARSE = 118_000;
const BUCKETS = FINE + COARSE;
function bucketOf(ms) {
  if (ms < 0) return 0;
  if (ms < 2000) return Math.floor(ms * 100);
  return FINE + Math.min(COARSE - 1, Math.floor(ms - 2000));
}
function valueOf(b) {
  return b < FINE ? (b + 0.5) / 100 : 2000 + (b - FINE) + 0.5;
}

/** `2026-11-24T10:00:00.123456Z` (or with an offset) -> milliseconds since the epoch, µs kept. */
function parseAt(at) {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)$/.exec(at);
  if (!m) return NaN;
  return Date.parse(m[1] + m[3]) + (m[2] ? Number(`0${m[2]}`) * 1000 : 0);
}

// ---------------------------------------------------------------- worker --
if (!isMainThread) {
  const sockets = [];
  let stats;
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  function reset() {
    loop.reset();
    stats = {
      deliveries: 0,
      byGroup: {},
      events: new Map(), // `group|id` -> deliveries
      first: new Map(), // id -> the smallest latency of its deliveries here
      lastRecv: 0,
      closes: {}, // close code -> sockets closed by the server (or the network) since reset
      errors: {}, // `error` messages and `next`s without data, by first message
      negative: 0,
      minLatency: Infinity,
    };
  }
  reset();
  function group(g) {
    if (!stats.byGroup[g]) stats.byGroup[g] = { count: 0, max: 0, hist: new Uint32Array(BUCKETS) };
    return stats.byGroup[g];
  }
  const bump = (o, k) => { o[k] = (o[k] || 0) + 1; };

  // `at` strings repeat (one event, many sockets): parse each once.
  const atCache = new Map();
  function atMs(at) {
    let v = atCache.get(at);
    if (v === undefined) {
      if (atCache.size > 50_000) atCache.clear();
      v = parseAt(at);
      atCache.set(at, v);
    }
    return v;
  }
  function record(s, t, id, at) {
    const key = `${s.group}|${id}`;
    stats.events.set(key, (stats.events.get(key) || 0) + 1);
    stats.deliveries += 1;
    stats.lastRecv = t;
    const lat = t - atMs(at);
    const f = stats.first.get(id);
    if (f === undefined || lat < f) stats.first.set(id, lat);
    const g = group(s.group);
    g.count += 1;
    if (lat > g.max) g.max = lat;
    if (lat < stats.minLatency) stats.minLatency = lat;
    if (lat < 0) stats.negative += 1;
    g.hist[bucketOf(lat)] += 1;
  }
  function onNext(s, t, msg) {
    const data = msg.payload && msg.payload.data;
    const obj = data && data[s.field];
    if (!obj || (msg.payload.errors && msg.payload.errors.length)) {
      bump(stats.errors, `next: ${JSON.stringify(msg.payload).slice(0, 200)}`);
      return;
    }
    record(s, t, obj[s.keyField], obj.at);
  }
  // A plain `next` (no errors) is read without JSON.parse: the receiving
  // side must cost less than the server's sending, or it measures itself.
  const NEXT = Buffer.from('"type":"next"');
  const ERRORS = Buffer.from('"errors"');
  const AT = Buffer.from('"at":"');
  function fastNext(s, t, raw) {
    if (!Buffer.isBuffer(raw) || raw.indexOf(NEXT) < 0 || raw.indexOf(ERRORS) >= 0) return false;
    const a = raw.indexOf(AT);
    const k = raw.indexOf(s.keyNeedle);
    if (a < 0 || k < 0) return false;
    const aEnd = raw.indexOf(34, a + AT.length);
    const kEnd = raw.indexOf(34, k + s.keyNeedle.length);
    if (aEnd < 0 || kEnd < 0) return false;
    record(s, t, raw.toString('latin1', k + s.keyNeedle.length, kEnd), raw.toString('latin1', a + AT.length, aEnd));
    return true;
  }

  function openOne(spec) {
    return new Promise((resolve) => {
      const ws = new WebSocket(spec.url, 'graphql-transport-ws', {
        headers: { host: spec.host },
        perMessageDeflate: false,
        handshakeTimeout: 30_000,
      });
      const s = { ws, group: spec.group, field: spec.field, keyField: spec.keyField, keyNeedle: Buffer.from(`"${spec.keyField}":"`), ours: false, open: false };
      let settled = false;
      const done = (ok, why) => {
        if (settled) return;
        settled = true;
        if (ok) { s.open = true; sockets.push(s); }
        resolve({ ok, why });
      };
      ws.on('open', () => {
        ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${spec.token}` } }));
      });
      ws.on('message', (raw) => {
        const t = wallMs();
        if (fastNext(s, t, raw)) return;
        let msg;
        try { msg = JSON.parse(raw); } catch { bump(stats.errors, 'unparseable message'); return; }
        switch (msg.type) {
          case 'next': onNext(s, t, msg); break;
          case 'ping': ws.send('{"type":"pong"}'); break;
          case 'pong': break;
          case 'connection_ack':
            if (spec.query) {
              // SUBS_UNSHARED=1: each subscriber's own text (a comment), so the
              // server runs each one's operation per event (no shared runs).
              const query = spec.unshared ? `${spec.query}\n# ${Math.random()}` : spec.query;
              ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query } }));
            }
            done(true);
            break;
          case 'error': {
            const why = `error: ${JSON.stringify(msg.payload).slice(0, 200)}`;
            bump(stats.errors, why);
            break;
          }
          case 'complete': bump(stats.errors, 'complete from the server'); break;
          default: bump(stats.errors, `message ${msg.type}`);
        }
      });
      ws.on('close', (code, reason) => {
        const was = s.open;
        s.open = false;
        if (!s.ours && was) bump(stats.closes, `${code} ${String(reason).slice(0, 60)}`.trim());
        done(false, `closed ${code} ${String(reason).slice(0, 80)}`.trim());
      });
      ws.on('error', (e) => done(false, `error ${e.message.slice(0, 80)}`));
    });
  }

  async function open({ count, concurrency, ...spec }) {
    const started = performance.now();
    const failures = {};
    let ok = 0;
    let next = 0;
    async function lane() {
      while (next < count) {
        next += 1;
        const r = await openOne(spec);
        if (r.ok) ok += 1; else bump(failures, r.why);
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
    return { ok, failed: count - ok, failures, ms: performance.now() - started };
  }

  async function closeAll() {
    const live = sockets.splice(0);
    await Promise.all(live.map((s) => new Promise((resolve) => {
      s.ours = true;
      if (s.ws.readyState === WebSocket.CLOSED) return resolve();
      const t = setTimeout(() => { s.ws.terminate(); resolve(); }, 5000);
      s.ws.once('close', () => { clearTimeout(t); resolve(); });
      s.ws.close(1000, 'bench done');
    })));
    return { closed: live.length };
  }

  function openByGroup() {
    const o = {};
    for (const s of sockets) if (s.open) o[s.group] = (o[s.group] || 0) + 1;
    return o;
  }

  parentPort.on('message', async (m) => {
    let reply;
    switch (m.op) {
      case 'open': reply = await open(m); break;
      case 'reset': reset(); reply = {}; break;
      case 'stats':
        reply = { deliveries: stats.deliveries, lastRecv: stats.lastRecv, closes: stats.closes, open: openByGroup() };
        break;
      case 'collect': {
        const groups = {};
        const transfer = [];
        for (const [g, v] of Object.entries(stats.byGroup)) {
          groups[g] = { count: v.count, max: v.max, hist: v.hist };
          transfer.push(v.hist.buffer);
        }
        reply = {
          deliveries: stats.deliveries, lastRecv: stats.lastRecv, closes: stats.closes, errors: stats.errors,
          negative: stats.negative, minLatency: stats.minLatency, events: [...stats.events], first: [...stats.first], groups, open: openByGroup(),
          loopP99: loop.percentile(99) / 1e6, loopMax: loop.max / 1e6,
        };
        parentPort.postMessage({ id: m.id, reply }, transfer);
        reset();
        return;
      }
      case 'closeAll': reply = await closeAll(); break;
      case 'exit': process.exit(0);
    }
    parentPort.postMessage({ id: m.id, reply });
  });
} else {
  await main();
}

// ------------------------------------------------------------------ main --
async function main() {
  const env = (k, d) => {
    const v = process.env[k];
    if (v === undefined || v === '') {
      if (d === undefined) throw new Error(`${k} is not set`);
      return d;
    }
    return v;
  };
  const num = (k, d) => Number(env(k, String(d)));
  const cfg = {
    a: env('SUBS_A_URL'), b: env('SUBS_B_URL'), pidA: env('SUBS_A_PID'), pidB: env('SUBS_B_PID', ''), host: env('SUBS_HOST'),
    clk: num('SUBS_CLK_TCK', 100),
    token: env('SUBS_TOKEN'), doc: env('SUBS_DOCUMENT_ID'),
    steps: env('SUBS_STEPS', '1000,5000,10000').split(',').map(Number),
    workers: num('SUBS_WORKERS', 2), openConcurrency: num('SUBS_OPEN_CONCURRENCY', 64),
    fanout: num('SUBS_FANOUT_SUBSCRIBERS', 1000), events: num('SUBS_FANOUT_EVENTS', 200), rate: num('SUBS_FANOUT_RATE', 20),
    sustainedSecs: num('SUBS_SUSTAINED_SECS', 10), sustainedMax: num('SUBS_SUSTAINED_MAX', 20000),
    loops: num('SUBS_SUSTAINED_LOOPS', 16), drainSecs: num('SUBS_DRAIN_SECS', 30),
    // Diagnostics: sockets that only say connection_init (no subscription), and stopping after the idle phase.
    idleNoSubscribe: env('SUBS_IDLE_NO_SUBSCRIBE', '') !== '', idleOnly: env('SUBS_IDLE_ONLY', '') !== '',
    unshared: env('SUBS_UNSHARED', '') !== '',
  };
  const log = (...a) => console.error('subscriptions:', ...a);

  // Workers and a request/reply over postMessage.
  const workers = Array.from({ length: cfg.workers }, () => new Worker(new URL(import.meta.url)));
  let seq = 0;
  const pending = new Map();
  for (const w of workers) {
    w.on('message', ({ id, reply }) => { pending.get(id)(reply); pending.delete(id); });
    w.on('error', (e) => { console.error('subscriptions: worker failed:', e); process.exit(1); });
  }
  const rpc = (w, m) => new Promise((resolve) => { const id = ++seq; pending.set(id, resolve); w.postMessage({ ...m, id }); });
  const all = (m) => Promise.all(workers.map((w) => rpc(w, m)));
  const share = (n) => workers.map((_, i) => Math.floor(n / workers.length) + (i < n % workers.length ? 1 : 0));

  // Opens `n` sockets on `url`, spread over the workers.
  async function openSockets(n, url, group, field, keyField, query) {
    const parts = share(n);
    const rs = await Promise.all(workers.map((w, i) => parts[i] ? rpc(w, {
      op: 'open', count: parts[i], concurrency: cfg.openConcurrency, url: `${url.replace(/^http/, 'ws')}/graphql`,
      host: cfg.host, token: cfg.token, group, field, keyField, query, unshared: field === 'clientChanged' && cfg.unshared,
    }) : { ok: 0, failed: 0, failures: {}, ms: 0 }));
    const failures = {};
    for (const r of rs) for (const [k, v] of Object.entries(r.failures)) failures[k] = (failures[k] || 0) + v;
    return { ok: rs.reduce((s, r) => s + r.ok, 0), failed: rs.reduce((s, r) => s + r.failed, 0), failures, ms: Math.max(...rs.map((r) => r.ms)) };
  }
  const sumStats = async () => {
    const rs = await all({ op: 'stats' });
    const closes = {};
    for (const r of rs) for (const [k, v] of Object.entries(r.closes)) closes[k] = (closes[k] || 0) + v;
    return { deliveries: rs.reduce((s, r) => s + r.deliveries, 0), lastRecv: Math.max(...rs.map((r) => r.lastRecv)), closes };
  };
  // Waits until `expected` deliveries arrived, nothing arrived for `stallMs`, or `maxMs` passed.
  async function drain(expected, maxMs, stallMs = 3000) {
    const until = Date.now() + maxMs;
    let last = -1;
    let lastChange = Date.now();
    for (;;) {
      const s = await sumStats();
      if (s.deliveries >= expected) return s;
      if (s.deliveries !== last) { last = s.deliveries; lastChange = Date.now(); }
      if (Date.now() - lastChange > stallMs || Date.now() > until) return s;
      await sleep(100);
    }
  }
  async function collect() {
    const rs = await all({ op: 'collect' });
    const out = { deliveries: 0, lastRecv: 0, closes: {}, errors: {}, negative: 0, minLatency: Infinity, events: new Map(), first: new Map(), groups: {}, open: {}, loopP99: 0, loopMax: 0 };
    for (const r of rs) {
      out.loopP99 = Math.max(out.loopP99, r.loopP99);
      out.loopMax = Math.max(out.loopMax, r.loopMax);
      out.deliveries += r.deliveries;
      out.lastRecv = Math.max(out.lastRecv, r.lastRecv);
      out.negative += r.negative;
      out.minLatency = Math.min(out.minLatency, r.minLatency);
      for (const [k, v] of Object.entries(r.closes)) out.closes[k] = (out.closes[k] || 0) + v;
      for (const [k, v] of Object.entries(r.errors)) out.errors[k] = (out.errors[k] || 0) + v;
      for (const [k, v] of Object.entries(r.open)) out.open[k] = (out.open[k] || 0) + v;
      for (const [k, v] of r.events) out.events.set(k, (out.events.get(k) || 0) + v);
      for (const [k, v] of r.first) if (!(out.first.get(k) <= v)) out.first.set(k, v);
      for (const [g, v] of Object.entries(r.groups)) {
        const o = out.groups[g] || (out.groups[g] = { count: 0, max: 0, hist: new Uint32Array(BUCKETS) });
        o.count += v.count;
        o.max = Math.max(o.max, v.max);
        for (let i = 0; i < BUCKETS; i++) if (v.hist[i]) o.hist[i] += v.hist[i];
      }
    }
    const total = { count: 0, max: 0, hist: new Uint32Array(BUCKETS) };
    for (const v of Object.values(out.groups)) {
      total.count += v.count;
      total.max = Math.max(total.max, v.max);
      for (let i = 0; i < BUCKETS; i++) if (v.hist[i]) total.hist[i] += v.hist[i];
    }
    out.groups.all = total;
    return out;
  }
  const pct = (g, p) => {
    if (!g || !g.count) return NaN;
    const want = Math.ceil(g.count * p);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) { seen += g.hist[i]; if (seen >= want) return valueOf(i); }
    return g.max;
  };

  // HTTP GraphQL through one replica, keep-alive.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  function gql(base, query, variables) {
    const body = JSON.stringify({ query, variables });
    const u = new URL(base);
    return new Promise((resolve, reject) => {
      const req = http.request({
        hostname: u.hostname, port: u.port, path: '/graphql', method: 'POST', agent,
        headers: { host: cfg.host, 'content-type': 'application/json', authorization: `Bearer ${cfg.token}`, 'content-length': Buffer.byteLength(body) },
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          try { resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(chunks)) }); } catch (e) { reject(e); }
        });
      });
      req.setTimeout(30_000, () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end(body);
    });
  }
  const CREATE = 'mutation($i: CreateClientInput!) { createClient(input: $i) { id } }';
  async function createClient(base, name) {
    const r = await gql(base, CREATE, { i: { name } });
    const id = r.body && r.body.data && r.body.data.createClient && r.body.data.createClient.id;
    if (!id) throw new Error(`createClient answered ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);
    return id;
  }

  const rssKiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${cfg.pidA}/status`, 'utf8'))[1]);
  // RSS once it stops moving: 2 s, then samples every 500 ms until three agree within 1 MiB (10 s at most).
  async function settledRss() {
    await sleep(2000);
    const samples = [];
    const until = Date.now() + 10_000;
    for (;;) {
      samples.push(rssKiB());
      const last = samples.slice(-3);
      if ((last.length === 3 && Math.max(...last) - Math.min(...last) < 1024) || Date.now() > until) return samples.at(-1);
      await sleep(500);
    }
  }
  // CPU seconds (user + system) of a process so far, from /proc/PID/stat.
  const cpuSecs = (pid) => {
    if (!pid) return NaN;
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / cfg.clk;
  };
  // The whole machine's busy time (all processes, every core), from /proc/stat.
  const machine = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: (total - f[3] - f[4]) / cfg.clk, total: total / cfg.clk };
  };
  const selfCpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
  const mb = (kib) => kib / 1024;
  const fmt = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '—');
  const int = (v) => v.toLocaleString('en-US');
  const describe = (o) => Object.entries(o).map(([k, v]) => `${v}× ${k}`).join('; ');

  const notes = [];

  // ---- 1. idle subscribers on A ----------------------------------------
  const DOC_QUERY = cfg.idleNoSubscribe ? '' : 'subscription { documentChanged { kind documentId at } }';
  const rows1 = [];
  const base0 = await settledRss();
  rows1.push({ n: 0, rss: base0, secs: NaN });
  log(`A idle: ${fmt(mb(base0))} MB`);
  let have = 0;
  for (const step of cfg.steps) {
    const r = await openSockets(step - have, cfg.a, 'A', 'documentChanged', 'documentId', DOC_QUERY);
    have += r.ok;
    if (r.failed) notes.push(`step ${int(step)}: ${r.failed} sockets not opened (${describe(r.failures)})`);
    const rss = await settledRss();
    rows1.push({ n: step, opened: have, rss, secs: r.ms / 1000 });
    log(`${int(have)} subscribers on A (${fmt(r.ms / 1000)} s to open ${int(r.ok)}): ${fmt(mb(rss))} MB`);
  }
  // One event that every idle subscriber must receive: they were live all along.
  await all({ op: 'reset' });
  const liveStarted = Date.now();
  const upd = await gql(cfg.a, 'mutation($id: ID!, $i: UpdateDocumentInput!) { updateDocument(id: $id, input: $i) { id } }',
    { id: cfg.doc, i: { name: 'live check' } });
  if (!(upd.body && upd.body.data && upd.body.data.updateDocument)) notes.push(`live check: updateDocument answered ${upd.status} ${JSON.stringify(upd.body).slice(0, 200)}`);
  await drain(have, 20_000);
  const live = await collect();
  const liveSecs = (live.lastRecv - liveStarted) / 1000;
  log(`live check: ${int(live.deliveries)} of ${int(have)} received the update (last after ${fmt(liveSecs, 2)} s)`);
  if (Object.keys(live.closes).length) notes.push(`idle phase: sockets closed by the server: ${describe(live.closes)}`);
  if (Object.keys(live.errors).length) notes.push(`idle phase: unexpected messages: ${describe(live.errors)}`);
  const rssAfterLive = rssKiB();
  await all({ op: 'closeAll' });
  await sleep(2000);
  const rssAfterClose = rssKiB();

  const out = [];
  out.push('### Idle subscribers (one replica, `documentChanged`, one subscription per socket)', '');
  out.push('| subscribers | VmRSS MB | growth MB | MB per 1,000 (this step) | seconds to open the step |');
  out.push('|---|---|---|---|---|');
  for (let i = 0; i < rows1.length; i++) {
    const r = rows1[i];
    const prev = rows1[i - 1];
    const growth = i ? fmt(mb(r.rss - base0)) : '—';
    const per = i ? fmt(mb(r.rss - prev.rss) / ((r.opened - (prev.opened || 0)) / 1000), 2) : '—';
    out.push(`| ${int(r.opened ?? r.n)} | ${fmt(mb(r.rss))} | ${growth} | ${per} | ${fmt(r.secs)} |`);
  }
  const lastRow = rows1.at(-1);
  const total = mb(lastRow.rss - base0);
  out.push('');
  out.push(`Growth at ${int(lastRow.opened)} ${cfg.idleNoSubscribe ? 'sockets (connection_init only, no subscription)' : 'subscribers'}: **${fmt(total)} MB** (${fmt(total / (lastRow.opened / 1000), 2)} MB per 1,000; target: under 100 MB for 10,000). ` +
    (cfg.idleNoSubscribe ? '' : `Live check: ${int(live.deliveries)} of ${int(have)} sockets received one \`updateDocument\` (the last ${fmt(liveSecs, 2)} s after it was sent); `) +
    `RSS ${fmt(mb(rssAfterLive))} MB after it, ${fmt(mb(rssAfterClose))} MB 2 s after every socket closed.`);
  out.push('');
  if (cfg.idleOnly) {
    for (const n of notes) out.push(`- ${n}`);
    console.log(out.join('\n'));
    for (const w of workers) w.postMessage({ op: 'exit' });
    agent.destroy();
    return;
  }

  // ---- 2. fan-out latency, A and B -------------------------------------
  const CLIENT_QUERY = 'subscription { clientChanged { kind clientId at } }';
  const half = Math.floor(cfg.fanout / 2);
  const [oa, ob] = await Promise.all([
    openSockets(half, cfg.a, 'A', 'clientChanged', 'clientId', CLIENT_QUERY),
    openSockets(cfg.fanout - half, cfg.b, 'B', 'clientChanged', 'clientId', CLIENT_QUERY),
  ]);
  const subs = oa.ok + ob.ok;
  for (const [n, o] of [['A', oa], ['B', ob]]) if (o.failed) notes.push(`fan-out: ${o.failed} sockets on ${n} not opened (${describe(o.failures)})`);
  log(`fan-out: ${oa.ok} subscribers on A, ${ob.ok} on B`);
  // Warm-up: one event every subscriber must see before anything is timed.
  await sleep(1000);
  await all({ op: 'reset' });
  await createClient(cfg.a, 'warm-up');
  const warm = await drain(subs, 15_000);
  if (warm.deliveries < subs) notes.push(`fan-out warm-up: ${warm.deliveries} of ${subs} subscribers received the first event`);
  await collect();

  async function paced(n, rate, deadlineMs) {
    const ids = [];
    const failures = {};
    const wall = wallMs();
    const started = performance.now();
    const inflight = [];
    for (let i = 0; i < n; i++) {
      const wait = started + (i * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
      if (performance.now() - started > deadlineMs) break;
      inflight.push(createClient(cfg.a, `fan-out ${i}`).then((id) => ids.push(id), (e) => { failures[e.message.slice(0, 120)] = (failures[e.message.slice(0, 120)] || 0) + 1; }));
    }
    await Promise.all(inflight);
    return { ids, failures, wall, secs: (performance.now() - started) / 1000 };
  }
  const p2 = await paced(cfg.events, cfg.rate, (cfg.events / cfg.rate) * 1000 + 30_000);
  await drain(p2.ids.length * subs, cfg.drainSecs * 1000);
  const r2 = await collect();
  log(`fan-out: ${p2.ids.length} events, ${int(r2.deliveries)} deliveries (${int(p2.ids.length * subs)} expected)`);

  // ---- 3. sustained, through A and B -----------------------------------
  await all({ op: 'reset' });
  const ids3 = [];
  const fail3 = {};
  let issued = 0;
  const cpu3 = [cpuSecs(cfg.pidA), cpuSecs(cfg.pidB), selfCpu(), machine()];
  const t3 = wallMs();
  const deadline3 = performance.now() + cfg.sustainedSecs * 1000;
  let lastAck = t3;
  await Promise.all(Array.from({ length: cfg.loops }, async (_, k) => {
    const base = k % 2 ? cfg.b : cfg.a;
    while (performance.now() < deadline3 && issued < cfg.sustainedMax) {
      issued += 1;
      try { ids3.push(await createClient(base, `sustained ${issued}`)); lastAck = wallMs(); } catch (e) {
        const k2 = e.message.slice(0, 120);
        fail3[k2] = (fail3[k2] || 0) + 1;
      }
    }
  }));
  const pubSecs = (lastAck - t3) / 1000;
  log(`sustained: ${ids3.length} events in ${fmt(pubSecs)} s; waiting for deliveries`);
  await drain(ids3.length * subs, cfg.drainSecs * 1000);
  const r3 = await collect();
  const delSecs = (r3.lastRecv - t3) / 1000;
  const m3 = machine();
  const used3 = [cpuSecs(cfg.pidA) - cpu3[0], cpuSecs(cfg.pidB) - cpu3[1], selfCpu() - cpu3[2], (m3.busy - cpu3[3].busy) / (m3.total - cpu3[3].total)];
  const wall3 = (wallMs() - t3) / 1000;

  // ---- the probe: does the server negotiate permessage-deflate? --------
  const deflate = await new Promise((resolve) => {
    const ws = new WebSocket(`${cfg.a.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws', { headers: { host: cfg.host } });
    const t = setTimeout(() => { ws.terminate(); resolve('no answer'); }, 5000);
    ws.on('open', () => { clearTimeout(t); const e = ws.extensions || 'none'; ws.close(1000); resolve(e); });
    ws.on('error', (e) => { clearTimeout(t); resolve(`error ${e.message}`); });
  });
  await all({ op: 'closeAll' });
  for (const w of workers) w.postMessage({ op: 'exit' });
  agent.destroy();

  // ---- the tables --------------------------------------------------------
  out.push(`### Fan-out and sustained events (two replicas, same PostgreSQL and Redis; ${oa.ok} \`clientChanged\` subscribers on A, ${ob.ok} on B)`, '');
  out.push('| run | events | events/s | deliveries received / expected | missing | deliveries/s | p50 ms | p99 ms | max ms | closed by the server |');
  out.push('|---|---|---|---|---|---|---|---|---|---|');
  const perGroup = { A: oa.ok, B: ob.ok };
  // Deliveries that did not come, by replica, and events no subscriber at all received.
  const missingOf = (ids, r) => {
    const m = { A: 0, B: 0, total: 0, lost: 0 };
    for (const id of ids) {
      let got = 0;
      for (const g of ['A', 'B']) {
        const c = r.events.get(`${g}|${id}`) || 0;
        got += c;
        m[g] += Math.max(0, perGroup[g] - c);
      }
      if (!got) m.lost += 1;
    }
    m.total = m.A + m.B;
    return m;
  };
  const missing = (ids, r) => missingOf(ids, r).total;
  const closes = (r) => (Object.keys(r.closes).length ? describe(r.closes) : 'none');
  const row = (name, ids, r, evSecs, dSecs, g) => {
    const gg = r.groups[g];
    out.push(`| ${name} | ${int(ids.length)} | ${fmt(ids.length / evSecs)} | ${int(r.deliveries)} / ${int(ids.length * subs)} | ${int(missing(ids, r))} | ${int(Math.round(r.deliveries / dSecs))} | ${fmt(pct(gg, 0.5), 2)} | ${fmt(pct(gg, 0.99), 2)} | ${fmt(gg && gg.count ? gg.max : NaN, 2)} | ${closes(r)} |`);
  };
  row(`fan-out: ${cfg.events} \`createClient\` via A at ${cfg.rate}/s`, p2.ids, r2, p2.secs, (r2.lastRecv - p2.wall) / 1000, 'all');
  for (const g of ['A', 'B']) {
    const gg = r2.groups[g];
    out.push(`| … subscribers on ${g} only | | | ${int(gg ? gg.count : 0)} | | | ${fmt(pct(gg, 0.5), 2)} | ${fmt(pct(gg, 0.99), 2)} | ${fmt(gg && gg.count ? gg.max : NaN, 2)} | |`);
  }
  row(`sustained: ${cfg.loops} loops via A and B, ${cfg.sustainedSecs} s`, ids3, r3, pubSecs, delSecs, 'all');
  out.push('');
  out.push(`Sustained: ${int(ids3.length)} events published in ${fmt(pubSecs, 2)} s (${fmt(ids3.length / pubSecs)}/s); ` +
    `${int(r3.deliveries)} deliveries, the last ${fmt(delSecs, 2)} s after the first mutation (${int(Math.round(r3.deliveries / delSecs))}/s); ` +
    `subscribers that fell behind (closed 1013): ${Object.entries(r3.closes).filter(([k]) => k.startsWith('1013')).reduce((s, [, v]) => s + v, 0)}. ` +
    `CPU over those ${fmt(wall3)} s (cores busy on average): A ${fmt(used3[0] / wall3, 2)}, B ${fmt(used3[1] / wall3, 2)}, ` +
    `this client ${fmt(used3[2] / wall3, 2)}; the whole machine was ${fmt(used3[3] * 100, 0)}% busy.`);
  const extra = [];
  if (Object.keys(p2.failures).length) extra.push(`fan-out mutations failed: ${describe(p2.failures)}`);
  if (Object.keys(fail3).length) extra.push(`sustained mutations failed: ${describe(fail3)}`);
  for (const [n, ids, r] of [['fan-out', p2.ids, r2], ['sustained', ids3, r3]]) {
    const m = missingOf(ids, r);
    if (m.total) extra.push(`${n}: missing deliveries: ${int(m.A)} on A's subscribers, ${int(m.B)} on B's; ${int(m.lost)} of ${int(ids.length)} events reached no subscriber at all`);
    if (Object.keys(r.errors).length) extra.push(`${n}: unexpected messages: ${describe(r.errors)}`);
    if (r.negative) extra.push(`${n}: ${r.negative} deliveries before their \`at\` (min ${fmt(r.minLatency, 3)} ms): clock skew between the two processes`);
  }
  const firsts = (ids, r) => {
    const v = ids.map((id) => r.first.get(id)).filter((x) => x !== undefined).sort((a, b) => a - b);
    return v.length ? `p50 ${fmt(v[Math.floor(v.length * 0.5)], 2)} / p99 ${fmt(v[Math.min(v.length - 1, Math.ceil(v.length * 0.99) - 1)], 2)} ms` : '—';
  };
  extra.push(`each event's first delivery (its \`at\` to the quickest subscriber): fan-out ${firsts(p2.ids, r2)}, sustained ${firsts(ids3, r3)}`);
  extra.push(`the client's own lag (event-loop delay of its busiest worker, p99 / max): fan-out ${fmt(r2.loopP99, 1)} / ${fmt(r2.loopMax, 1)} ms, sustained ${fmt(r3.loopP99, 1)} / ${fmt(r3.loopMax, 1)} ms`);
  extra.push(`permessage-deflate offered by a client (as browsers do): the server negotiated ${JSON.stringify(deflate)}; the measured sockets offered none.`);
  for (const n of [...notes, ...extra]) out.push(`- ${n}`);
  console.log(out.join('\n'));
}
