// The bar above GraphiQL: sign in (agency, email, password) or use an API
// key, see who is signed in, sign out. Requests made in GraphiQL carry what
// is chosen here (see session.js).
import React, { useEffect, useState } from 'react';
import { signIn, signInWithApiKey, signOut, snapshot, subscribe, whereAmI } from './session.js';

function useCredentials() {
  // snapshot() returns a new object each call: keep one per change.
  const [state, setState] = useState(snapshot);
  useEffect(() => subscribe(() => setState(snapshot())), []);
  return state;
}

function time(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function Problem({ error }) {
  if (!error) return null;
  return (
    <p className="pg-session-error" role="alert">
      {error.code ? <code>{error.code}</code> : null}
      {error.message}
    </p>
  );
}

function Agency({ place }) {
  return (
    <span className="pg-session-agency">
      {place.tenant.name} <span className="pg-session-muted">({place.tenant.subdomain})</span>
    </span>
  );
}

function SignedIn({ credentials }) {
  const [busy, setBusy] = useState(false);
  const out = async () => {
    setBusy(true);
    await signOut();
  };
  if (credentials.kind === 'apiKey') {
    return (
      <div className="pg-session-state" data-testid="signed-in">
        <span className="pg-session-dot" aria-hidden="true" />
        <span>
          Using API key <code>{credentials.apiKey.slice(0, 12)}…</code> of <strong>{credentials.tenant.name}</strong>{' '}
          <span className="pg-session-muted">({credentials.tenant.subdomain})</span>
        </span>
        <button type="button" className="pg-button pg-button-quiet" onClick={out} disabled={busy}>
          Forget key
        </button>
      </div>
    );
  }
  const { user, tenant } = credentials;
  return (
    <div className="pg-session-state" data-testid="signed-in">
      <span className="pg-session-dot" aria-hidden="true" />
      <span>
        Signed in as <strong>{user.firstName} {user.lastName}</strong> ({user.email}) · {user.role} at{' '}
        <strong>{tenant.name}</strong> <span className="pg-session-muted">({tenant.subdomain})</span>
      </span>
      <span className="pg-session-muted" title="The access token is renewed automatically before it expires">
        token until {time(credentials.accessTokenExpiresAt)}
      </span>
      <button type="button" className="pg-button pg-button-quiet" onClick={out} disabled={busy}>
        Sign out
      </button>
    </div>
  );
}

function SignInForm({ place, notice }) {
  const [mode, setMode] = useState('password');
  const [agency, setAgency] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [apiKey, setApiKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  const choose = (next) => {
    setMode(next);
    setError(null);
  };

  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const who = place.apiHost ? agency.trim().toLowerCase() : '';
      if (mode === 'password') await signIn({ agency: who, email: email.trim(), password }, place.apiHost);
      else await signInWithApiKey({ agency: who, apiKey: apiKey.trim() }, place.apiHost);
    } catch (e) {
      setError({ code: e.code, message: e.message });
      setBusy(false);
    }
  };

  return (
    <form className="pg-session-form" onSubmit={submit} aria-label="Sign in to the API">
      <div className="pg-session-modes" role="group" aria-label="How to authenticate">
        <button type="button" className={mode === 'password' ? 'active' : ''} aria-pressed={mode === 'password'} onClick={() => choose('password')}>
          Password
        </button>
        <button type="button" className={mode === 'apiKey' ? 'active' : ''} aria-pressed={mode === 'apiKey'} onClick={() => choose('apiKey')}>
          API key
        </button>
      </div>
      {place.apiHost ? (
        <label className="pg-field">
          <span>Agency</span>
          <input
            name="agency"
            value={agency}
            onChange={(e) => setAgency(e.target.value)}
            placeholder="subdomain"
            title="The agency's subdomain, sent as the X-Tenant header"
            autoComplete="organization"
            spellCheck={false}
            required={mode === 'apiKey'}
          />
        </label>
      ) : (
        <span className="pg-field pg-field-fixed">
          <span>Agency</span>
          <Agency place={place} />
        </span>
      )}
      {mode === 'password' ? (
        <>
          <label className="pg-field">
            <span>Email</span>
            <input name="email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} autoComplete="username" required />
          </label>
          <label className="pg-field">
            <span>Password</span>
            <input name="password" type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="current-password" required />
          </label>
          <button type="submit" className="pg-button" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </>
      ) : (
        <>
          <label className="pg-field pg-field-wide">
            <span>API key</span>
            <input name="apiKey" type="password" value={apiKey} onChange={(e) => setApiKey(e.target.value)} placeholder="agk_…" autoComplete="off" spellCheck={false} required />
          </label>
          <button type="submit" className="pg-button" disabled={busy}>
            {busy ? 'Checking…' : 'Use key'}
          </button>
        </>
      )}
      <Problem error={error ?? (notice ? { code: null, message: notice } : null)} />
    </form>
  );
}

export function SessionBar() {
  const { credentials, notice } = useCredentials();
  const [place, setPlace] = useState(null);
  const [placeError, setPlaceError] = useState(null);

  useEffect(() => {
    whereAmI().then(setPlace, (e) => setPlaceError({ code: e.code, message: e.message }));
  }, []);

  let body;
  if (credentials) body = <SignedIn credentials={credentials} />;
  else if (placeError) body = <Problem error={placeError} />;
  else if (!place) body = <span className="pg-session-muted">Finding the agency of this address…</span>;
  else body = <SignInForm place={place} notice={notice} />;

  return (
    <header className="pg-session">
      <span className="pg-brand">Aggios</span>
      <span className="pg-brand-sub">GraphQL playground</span>
      <div className="pg-session-body">{body}</div>
    </header>
  );
}
