// What the subscription programs share: WebSockets that reach an agency's
// host on this machine, a signed-in session that keeps its short-lived
// access token fresh, a graphql-ws client that reconnects when the server
// closes it for an expired token (and knows when it is safely connected),
// raw graphql-transport-ws connections for protocol-level checks, and
// uploading a document with the GraphQL multipart request spec.
import { createClient } from 'graphql-ws';
import { FormData } from 'undici';
import WebSocket from 'ws';
import { fetchLocal, gql, lookup, short, sleep, tenantUrl } from './lib.mjs';

export const PROTOCOL = 'graphql-transport-ws';

/** The agency's GraphQL WebSocket URL on the server at `base` (`ws://{subdomain}.localhost:PORT/graphql`). */
export function wsUrl(base, subdomain) {
  return tenantUrl(base, subdomain).replace(/^http/, 'ws');
}

/**
 * A WebSocket class, as graphql-ws's `webSocketImpl` takes it: the `ws`
 * package's, resolving `*.localhost` to 127.0.0.1 (the URL, so the Host
 * header, stays the agency's), adding `headers` to the upgrade request, and
 * pushing every message it sends onto `sent` when given.
 */
export function localWebSocket({ headers = {}, sent } = {}) {
  return class LocalWebSocket extends WebSocket {
    constructor(url, protocols, options = {}) {
      super(url, protocols, { ...options, lookup, headers: { ...headers, ...options.headers } });
    }

    send(data, ...rest) {
      sent?.push(String(data));
      return super.send(data, ...rest);
    }
  };
}

const REFRESH = `mutation RefreshSession($refreshToken: String!) {
  refreshSession(refreshToken: $refreshToken) { accessToken accessTokenExpiresAt refreshToken }
}`;
const LOGIN = `mutation Login($input: LoginInput!) {
  login(input: $input) { accessToken accessTokenExpiresAt refreshToken user { id email } }
}`;

/**
 * A signed-in user on the agency's host at `base`: its access token and
 * refresh token. The server's access tokens live 2 s here, so `token()`
 * trades the refresh token (one refresh at a time: refresh tokens are
 * single-use) whenever the token has less than `minLifeMs` left, and a
 * request refused as UNAUTHENTICATED while its token should still have
 * been good is refreshed and sent once more, as apps' error links do (each
 * such early refusal is noted in `earlyRefusals`: how many ms the token
 * still had by `accessTokenExpiresAt`).
 */
export class Session {
  constructor(base, subdomain, { accessToken, accessTokenExpiresAt, refreshToken }) {
    this.url = tenantUrl(base, subdomain);
    this.refreshes = 0;
    this.refreshing = null;
    this.earlyRefusals = [];
    this.set({ accessToken, accessTokenExpiresAt, refreshToken });
  }

  /** Signs in on the agency's host with email and password: a new session. */
  static async login(base, subdomain, email, password) {
    const r = await gql(tenantUrl(base, subdomain), LOGIN, { input: { email, password } });
    const p = r.body?.data?.login;
    if (r.status !== 200 || !p?.accessToken) throw new Error(`login as ${email} answered ${r.status}: ${short(r.body)}`);
    const s = new Session(base, subdomain, p);
    s.user = p.user;
    return s;
  }

  set({ accessToken, accessTokenExpiresAt, refreshToken }) {
    this.accessToken = accessToken;
    this.refreshToken = refreshToken;
    this.expiresAt = Date.parse(accessTokenExpiresAt);
    if (!Number.isFinite(this.expiresAt)) throw new Error(`accessTokenExpiresAt is not a date: ${accessTokenExpiresAt}`);
  }

  msLeft() {
    return this.expiresAt - Date.now();
  }

  /** An access token with at least `minLifeMs` left when the server's lifetime allows it. */
  async token(minLifeMs = 500) {
    if (this.msLeft() < minLifeMs) await this.refresh();
    return this.accessToken;
  }

  refresh() {
    this.refreshing ??= (async () => {
      const r = await gql(this.url, REFRESH, { refreshToken: this.refreshToken });
      const p = r.body?.data?.refreshSession;
      if (r.status !== 200 || !p?.accessToken) throw new Error(`refreshSession answered ${r.status}: ${short(r.body)}`);
      this.set(p);
      this.refreshes += 1;
    })().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /**
   * `send(accessToken)` (resolving to { status, body }) with a current
   * token; sent once more after a refresh when the server refuses a token
   * that `accessTokenExpiresAt` says is still good.
   */
  async authorized(send) {
    const token = await this.token();
    const r = await send(token);
    const refused = r.body?.errors?.some((e) => e?.extensions?.code === 'UNAUTHENTICATED');
    const left = this.expiresAt - Date.now();
    if (!refused || left <= 0) return r;
    this.earlyRefusals.push(left);
    if (this.accessToken === token) await this.refresh();
    return send(await this.token());
  }

  /** One GraphQL request on the agency's host as this user; returns `data` or throws with what the server answered. */
  async gql(query, variables = undefined) {
    const r = await this.authorized((token) => gql(this.url, query, variables, { authorization: `Bearer ${token}` }));
    if (r.status !== 200 || !r.body?.data || r.body.errors) throw new Error(`the server answered ${r.status}: ${short(r.body)}`);
    return r.body.data;
  }
}

/** Says (without failing) when the server refused tokens before their `accessTokenExpiresAt`. */
export function noteEarlyRefusals(sessions) {
  const early = sessions.filter(Boolean).flatMap((s) => s.earlyRefusals);
  if (!early.length) return;
  console.log(
    `note: ${early.length} request(s) were refused as UNAUTHENTICATED while accessTokenExpiresAt still gave the token ` +
      `${early.map((ms) => `${ms} ms`).join(', ')}; each was refreshed and sent again`,
  );
}

/** graphql-ws `connectionParams` for a user: a token with at least 1.5 s left (a socket lives only as long as its token). */
export function userCredential(session) {
  return async () => {
    const token = await session.token(1500);
    return { payload: { authorization: `Bearer ${token}` }, expiresAt: session.expiresAt };
  };
}

/** graphql-ws `connectionParams` for an API key (it does not expire). */
export function apiKeyCredential(secret) {
  return async () => ({ payload: { apiKey: secret }, expiresAt: Infinity });
}

/** Polls `pred` every 20 ms until it returns something truthy (returned) or `ms` pass (then throws `message()`). */
export async function until(pred, ms, message) {
  const end = Date.now() + ms;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() >= end) throw new Error(typeof message === 'function' ? message() : message);
    await sleep(20);
  }
}

/**
 * A graphql-ws client on the agency's host at `base`, the way an app runs
 * it: `credential()` gives the connection_init payload (called again on
 * every reconnect), and a close for an expired token (4403) reconnects at
 * once and resubscribes. `subscribe()` records what each subscription
 * receives; `steady()` waits until the socket has been acknowledged for a
 * moment (its subscriptions registered) and will stay open a while longer,
 * so an event caused now cannot fall into a reconnect.
 */
export function liveClient(base, subdomain, credential, { headers, sent } = {}) {
  const state = { connection: null, pendingExp: Infinity, connects: 0, closes: [], errors: [] };
  const client = createClient({
    url: wsUrl(base, subdomain),
    webSocketImpl: localWebSocket({ headers, sent }),
    connectionParams: async () => {
      const { payload, expiresAt } = await credential();
      state.pendingExp = expiresAt ?? Infinity;
      return payload;
    },
    retryAttempts: 10,
    shouldRetry: () => true,
    retryWait: () => sleep(100),
    on: {
      connected: () => {
        state.connects += 1;
        state.connection = { at: Date.now(), exp: state.pendingExp };
      },
      closed: (e) => {
        state.connection = null;
        state.closes.push({ code: e?.code, reason: e?.reason ?? '', at: Date.now() });
      },
      error: (e) => state.errors.push(e?.message ?? String(e)),
    },
  });

  function subscribe(query, variables = undefined) {
    const sub = { results: [], error: null, completed: false };
    sub.stop = client.subscribe(variables ? { query, variables } : { query }, {
      next: (r) => sub.results.push({ ...r, receivedAt: Date.now() }),
      error: (e) => {
        sub.error = e;
      },
      complete: () => {
        sub.completed = true;
      },
    });
    /** The payloads received so far (data of the subscription's one root field). */
    sub.events = () => sub.results.filter((r) => r.data).map((r) => ({ ...Object.values(r.data)[0], receivedAt: r.receivedAt }));
    return sub;
  }

  function describeCloses() {
    if (!state.closes.length) return 'no closes';
    const counts = new Map();
    for (const c of state.closes) {
      const key = `${c.code} "${c.reason}"`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].map(([k, n]) => `${n}× ${k}`).join(', ');
  }

  async function steady({ settleMs = 300, leftMs = 800, timeoutMs = 15000 } = {}) {
    await until(
      () => {
        const c = state.connection;
        const now = Date.now();
        return c && now - c.at >= settleMs && c.exp - now >= leftMs;
      },
      timeoutMs,
      () =>
        `the subscription socket was not connected and steady within ${timeoutMs / 1000} s ` +
        `(${state.connects} connections; closes: ${describeCloses()}${state.errors.length ? `; errors: ${state.errors.join('; ')}` : ''})`,
    );
  }

  return { client, state, subscribe, steady, describeCloses, dispose: () => client.dispose() };
}

/**
 * One raw graphql-transport-ws connection to the agency's host at `base`
 * (the `ws` package, no graphql-ws client), for checks of the protocol
 * itself. `protocol` is the subprotocol offered (default
 * graphql-transport-ws; `null` offers none); `payload` is the
 * connection_init payload (`undefined`: an init without one; `false`: no
 * init at all); `origin` sets an Origin header. Pings are answered.
 * Returns { socket, acked (promise: true on connection_ack, false if the
 * socket ended first), ended (promise: how it ended), messages, sent, openedAt }.
 * `ended` resolves to { code, reason, at } on a close, or { status, body, at }
 * when the upgrade was refused over HTTP, or { error, at }.
 */
export function rawSocket(base, subdomain, { protocol = PROTOCOL, payload, origin, headers = {} } = {}) {
  const url = wsUrl(base, subdomain);
  const extra = { ...headers };
  let offered = [];
  if (protocol === PROTOCOL) offered = [PROTOCOL];
  // Any other subprotocol goes as a plain header, so that `ws` does not
  // itself abort when the server (rightly) does not select it: the test
  // then sees what the server does.
  else if (protocol) extra['Sec-WebSocket-Protocol'] = protocol;
  const socket = new WebSocket(url, offered, { lookup, headers: extra, ...(origin ? { origin } : {}) });
  const r = { socket, messages: [], sent: [], startedAt: Date.now(), openedAt: null, ackedAt: null, upgrade: null };
  let settleAck;
  r.acked = new Promise((resolve) => {
    settleAck = resolve;
  });
  let settleEnd;
  r.ended = new Promise((resolve) => {
    settleEnd = (v) => {
      settleAck(false);
      resolve({ ...v, at: Date.now() });
    };
  });
  const send = (msg) => {
    r.sent.push(msg);
    socket.send(JSON.stringify(msg));
  };
  r.send = send;
  socket.on('upgrade', (res) => {
    r.upgrade = { status: res.statusCode, protocol: res.headers['sec-websocket-protocol'] ?? null };
  });
  socket.on('unexpected-response', (req, res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => {
      body += d;
    });
    res.on('end', () => {
      let parsed = body;
      try {
        parsed = JSON.parse(body);
      } catch {}
      settleEnd({ status: res.statusCode, body: parsed });
      req.destroy();
    });
  });
  socket.on('open', () => {
    r.openedAt = Date.now();
    if (payload === false) return;
    send(payload === undefined ? { type: 'connection_init' } : { type: 'connection_init', payload });
  });
  socket.on('message', (data) => {
    let msg;
    try {
      msg = JSON.parse(String(data));
    } catch {
      msg = { unparsed: String(data) };
    }
    r.messages.push(msg);
    if (msg.type === 'ping') send({ type: 'pong' });
    if (msg.type === 'connection_ack') {
      r.ackedAt = Date.now();
      settleAck(true);
    }
  });
  socket.on('error', (e) => {
    r.error = e.message;
  });
  socket.on('close', (code, reason) => settleEnd({ code, reason: String(reason) }));
  r.close = () => {
    if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) socket.terminate();
  };
  return r;
}

/** How a raw socket ended, for a message. */
export function describeEnd(end, since = undefined) {
  if (!end) return 'still open';
  const when = since ? ` ${end.at - since} ms after connecting` : '';
  if (end.status) return `the upgrade was refused with HTTP ${end.status} ${short(end.body, 200)}${when}`;
  if (end.code !== undefined) return `closed with ${end.code}${end.reason ? ` "${end.reason}"` : ' (no reason)'}${when}`;
  return `failed: ${end.error ?? 'unknown'}${when}`;
}

/** What `promise` resolves to, or `otherwise` when `ms` pass first (the timer is cleared either way). */
export function within(promise, ms, otherwise = null) {
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve(otherwise), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Waits at most `ms` for a raw socket to end; resolves to how it ended, or null when it is still open. */
export function endedWithin(raw, ms) {
  return within(raw.ended, ms);
}

const UPLOAD = `mutation Upload($i: UploadDocumentInput!) {
  uploadDocument(input: $i) { id name project { id name } }
}`;

/**
 * Uploads a text file as a new document of `projectId` on the agency's host
 * at `base` (GraphQL multipart request spec, as the README's curl does).
 * Returns the document { id name project { id name } } or throws with what
 * the server answered.
 */
export async function uploadDocument(session, { projectId, name, text = `${name}\n` }) {
  const { status, body } = await session.authorized(async (token) => {
    const form = new FormData();
    form.append('operations', JSON.stringify({ query: UPLOAD, variables: { i: { projectId, name, file: null } } }));
    form.append('map', JSON.stringify({ 0: ['variables.i.file'] }));
    form.append('0', new Blob([text], { type: 'text/plain' }), name);
    const res = await fetchLocal(session.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'apollo-require-preflight': 'true' },
      body: form,
    });
    const raw = await res.text();
    try {
      return { status: res.status, body: JSON.parse(raw) };
    } catch {
      return { status: res.status, body: raw };
    }
  });
  const doc = body?.data?.uploadDocument;
  if (status !== 200 || !doc?.id || body.errors) throw new Error(`uploadDocument (multipart) answered ${status}: ${short(body)}`);
  return doc;
}

/** GraphQL errors as `CODE: message; …`. */
export function describeErrors(errors) {
  const list = Array.isArray(errors) ? errors : [errors];
  return list.map((e) => `${e?.extensions?.code ?? 'no code'}: ${e?.message ?? short(e, 200)}`).join('; ');
}

/** The GraphQL error codes of a subscription that failed (an `error` message) or answered errors (a `next`). */
export function subscriptionErrorCodes(sub) {
  const fromError = Array.isArray(sub.error) ? sub.error : sub.error ? [sub.error] : [];
  const fromNext = sub.results.flatMap((r) => r.errors ?? []);
  return [...fromError, ...fromNext].map((e) => e?.extensions?.code).filter(Boolean);
}
