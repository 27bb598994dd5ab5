// The API client. Same origin, under /api. The access token lives only in this module's
// memory; the refresh token is an HttpOnly cookie scoped to /api/auth that the page never
// sees. A reload restores the session through POST /api/auth/refresh. Every request goes
// through `raw`, the one place that builds a request's headers.

// The page cannot see the HttpOnly cookie, so it remembers (not a secret: a flag) that a
// session was started here; without it a page load does not ask for a refresh that can
// only be refused (and would log an error in the console).
const HINT = 'jukebox.session';
const hint = {
  get: () => localStorage.getItem(HINT) === '1',
  set: (on) => (on ? localStorage.setItem(HINT, '1') : localStorage.removeItem(HINT)),
};
/** Marks that a session may come back through the cookie (before leaving for Google). */
export function expectSession() { hint.set(true); }

let accessToken = null;
let refreshTimer = null;
let refreshing = null;
const listeners = new Set();
// The position of this page's latest write (`Jukebox-Position` of a command's answer).
// Every read sends it back, so the server answers once its read models show that write:
// no stale list after an import or a removal, no retrying to hide lag. Kept for the tab
// (sessionStorage), so a reload still reads its own writes (the saved play queue).
let position = sessionStorage.getItem('jukebox.position');

function later(a, b) {
  if (!a) return b;
  if (!b) return a;
  const [ax, ag] = a.split('.').map(BigInt);
  const [bx, bg] = b.split('.').map(BigInt);
  return ax > bx || (ax === bx && ag > bg) ? a : b;
}

// Requests on their way, so that signing out lets them finish first: a read that waits
// for this page's last write would otherwise meet the session it ran under revoked.
const inflight = new Set();

/** Remembers a position the server gave (a write's answer, a finished job). */
export function notePosition(value) {
  if (typeof value === 'string' && /^[0-9]+\.[0-9]+$/.test(value)) {
    position = later(position, value);
    sessionStorage.setItem('jukebox.position', position);
  }
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls `fn(user|null)` when the session starts or ends. */
export function onSession(fn) { listeners.add(fn); }

function setSession(body) {
  clearTimeout(refreshTimer);
  if (!body) {
    accessToken = null;
    hint.set(false);
    listeners.forEach((fn) => fn(null));
    return;
  }
  accessToken = body.access_token;
  hint.set(true);
  // Renew a little before the token expires.
  const seconds = Math.max(10, (body.expires_in ?? 900) * 0.8);
  refreshTimer = setTimeout(() => { refresh().catch(() => {}); }, seconds * 1000);
  listeners.forEach((fn) => fn(body.user));
}

/** A readable message from an error response (`{"error": {"code", "message"}}`). */
async function errorOf(response) {
  const body = await response.json().catch(() => null);
  const code = body?.error?.code ?? `http_${response.status}`;
  let message = body?.error?.message;
  if (!message) {
    message = {
      403: 'You are not allowed to do that.',
      404: 'Not found.',
      413: 'That is too large.',
      429: 'Too many attempts; wait a moment and try again.',
      502: 'A service behind Jukebox failed; try again.',
      503: 'A service Jukebox needs is unavailable right now; try again shortly.',
    }[response.status] ?? `The server answered ${response.status}.`;
  }
  if (response.status === 429) {
    const retry = response.headers.get('Retry-After');
    if (retry) message += ` (retry in ${retry} s)`;
  }
  return new ApiError(response.status, code, message);
}

/** 128 random bits as hex (crypto.randomUUID needs a secure context; plain-http dev has none). */
function randomId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * This tab's client nonce: anonymous requests' Idempotency-Keys are scoped to it, so two
 * people who pick the same key never share an answer.
 */
function clientNonce() {
  let nonce = sessionStorage.getItem('jukebox.nonce');
  if (!nonce) {
    nonce = randomId();
    sessionStorage.setItem('jukebox.nonce', nonce);
  }
  return nonce;
}

async function raw(path, {
  method = 'GET', body, json, headers = {}, auth = true, signal, idempotencyKey, keepalive = false,
} = {}) {
  const init = { method, headers: { ...headers }, credentials: 'same-origin', signal, keepalive };
  if (method !== 'GET' && method !== 'HEAD') {
    // Every mutating request carries a key: a retry of it (same key) is the same command,
    // so a retried import is one job.
    init.headers['Idempotency-Key'] = idempotencyKey ?? randomId();
    init.headers['X-Client-Nonce'] = clientNonce();
  }
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  if (auth && accessToken) init.headers.Authorization = `Bearer ${accessToken}`;
  if (method === 'GET' && position) init.headers['Jukebox-Position'] = position;
  const sent = fetch(`/api${path}`, init);
  inflight.add(sent);
  try {
    const response = await sent;
    if (response.ok && method !== 'GET') notePosition(response.headers.get('Jukebox-Position'));
    return response;
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network', 'Jukebox cannot be reached; check your connection.');
  } finally {
    inflight.delete(sent);
  }
}

/**
 * Calls the API and returns the parsed JSON (or null for an empty answer). An expired
 * access token is renewed once through the refresh cookie.
 */
export async function api(path, options = {}) {
  // One key per call: the retry below after a refresh is the same request.
  options = { ...options, idempotencyKey: options.idempotencyKey ?? randomId() };
  let response = await raw(path, options);
  // 503 `not_caught_up`: the server has not applied this page's last write yet (it
  // waited already); ask again after Retry-After, a few times, rather than show old data.
  for (let tries = 0; response.status === 503 && tries < 3; tries += 1) {
    const body = await response.clone().json().catch(() => null);
    if (body?.error?.code !== 'not_caught_up') break;
    const seconds = Number(response.headers.get('Retry-After')) || 1;
    await new Promise((resolve) => { setTimeout(resolve, seconds * 1000); });
    response = await raw(path, options);
  }
  if (response.status === 401 && options.auth !== false && accessToken) {
    const body = await response.clone().json().catch(() => null);
    if (body?.error?.code === 'invalid_token' && await refresh().catch(() => false)) {
      response = await raw(path, options);
    }
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && options.auth !== false
        && ['session_revoked', 'account_disabled', 'invalid_token'].includes(error.code)) {
      setSession(null);
    }
    throw error;
  }
  if (response.status === 204) return null;
  if (options.blob) return response.blob(); // a binary file (the data export)
  const text = await response.text();
  if (options.text) return text; // a file (an M3U8 export), not JSON
  return text ? JSON.parse(text) : null;
}

/** Why the last refresh was refused (an ApiError), or null. */
export let refusal = null;

/** Restores or renews the session from the refresh cookie. Resolves to true if signed in. */
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const response = await raw('/auth/refresh', { method: 'POST', auth: false });
      if (!response.ok) {
        refusal = await errorOf(response);
        setSession(null);
        return false;
      }
      refusal = null;
      setSession(await response.json());
      return true;
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}

/** On page load: restores the session if one was started here. */
export async function restore() {
  if (!hint.get()) return false;
  return refresh();
}

export async function signIn(email, password) {
  setSession(await api('/auth/signin', { method: 'POST', json: { email, password }, auth: false }));
}

export async function signUp(email, password) {
  return api('/auth/signup', { method: 'POST', json: { email, password }, auth: false });
}

export async function verifyEmail(token) {
  return api('/auth/verify-email', { method: 'POST', json: { token }, auth: false });
}

export async function resendVerification(email) {
  return api('/auth/resend-verification', { method: 'POST', json: { email }, auth: false });
}

export async function forgotPassword(email) {
  return api('/auth/forgot-password', { method: 'POST', json: { email }, auth: false });
}

export async function resetPassword(token, password) {
  return api('/auth/reset-password', { method: 'POST', json: { token, password }, auth: false });
}

export async function confirmEmail(token) {
  return api('/auth/confirm-email', { method: 'POST', json: { token }, auth: false });
}

/**
 * A request that ends every session and answers this device's new one (a password
 * change, "sign out everywhere else"): the new session replaces the current one here.
 */
export async function renewSession(path, json) {
  setSession(await api(path, { method: 'POST', json }));
}

/**
 * Ends the session on the server, then here. A refusal (say, a page address the server
 * does not accept) throws and leaves you signed in: the server session would live on.
 */
export async function signOut() {
  await Promise.allSettled([...inflight]);
  const response = await raw('/auth/logout', { method: 'POST', auth: false });
  if (!response.ok && response.status !== 401) throw await errorOf(response);
  setSession(null);
}

/**
 * Reads a server-sent-events stream with the bearer header (EventSource cannot send
 * one): calls `onEvent(name, data)` per event until the stream ends or `signal` aborts.
 */
export async function events(path, onEvent, signal) {
  let response = await raw(path, { headers: { Accept: 'text/event-stream' }, signal });
  if (response.status === 401 && await refresh().catch(() => false)) {
    response = await raw(path, { headers: { Accept: 'text/event-stream' }, signal });
  }
  if (!response.ok) throw await errorOf(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') name = text;
        else if (field === 'data') data.push(text);
      }
      if (data.length) {
        let parsed = data.join('\n');
        try { parsed = JSON.parse(parsed); } catch { /* plain text */ }
        onEvent(name, parsed);
      }
    }
  }
}
