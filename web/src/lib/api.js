// The public API (CONTRACT.md) from the browser: same-origin cookies, JSON
// in and out, problem+json answers thrown as ApiError.  An expired access
// cookie is renewed once through POST /api/v1/auth/refresh (the refresh
// cookie), single-flight, and the call is retried once.

const AUTH = '/api/v1/auth/';
// calls whose 401 is the answer itself, never a reason to refresh
const NO_REFRESH = ['login', 'register', 'refresh', 'logout'].map((p) => AUTH + p);

export class ApiError extends Error {
  constructor(status, problem, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;          // 0: the server was not reached
    this.problem = problem;        // the problem+json object, or null
  }

  // errors[] of a validation problem, [] otherwise
  get fieldErrors() {
    return (this.problem && Array.isArray(this.problem.errors)) ? this.problem.errors : [];
  }
}

let anonymousHandler = () => {};
// session.js: told when a refresh fails (the session is over)
export function onSessionLost(fn) { anonymousHandler = fn; }

let refreshing = null;

// one refresh for every call that met a 401 meanwhile
function refresh() {
  if (!refreshing) {
    refreshing = fetch(AUTH + 'refresh', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: '{}',
    }).then((r) => r.ok, () => false)
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

function statusSentence(status, res) {
  switch (status) {
    case 0: return 'Encore could not be reached. Check your connection and try again.';
    case 401: return 'Please sign in to do that.';
    case 403: return 'You are not allowed to do that.';
    case 404: return 'That page or item does not exist.';
    case 409: return 'That conflicts with something that already exists.';
    case 413: return 'That is too long to send.';
    case 429: {
      const after = res && res.headers.get('Retry-After');
      return after ? `Too many requests: try again in ${after} seconds.`
                   : 'Too many requests: try again in a moment.';
    }
    case 502: case 503: case 504:
      return 'Encore is having trouble right now. Please try again shortly.';
    default: return `Something went wrong (${status}).`;
  }
}

function sentence(text) {
  const t = String(text).trim();
  if (!t) return t;
  const s = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(s) ? s : s + '.';
}

// a person's sentence for a problem answer
function problemMessage(status, problem, res) {
  if (problem) {
    if (status === 422 && Array.isArray(problem.errors) && problem.errors.length) {
      return 'Please check the highlighted fields.';
    }
    if (status === 401 || status === 429 || status >= 502) return statusSentence(status, res);
    if (problem.detail) return sentence(problem.detail);
    if (problem.title && status !== 404 && status !== 401) return sentence(problem.title);
  }
  return statusSentence(status, res);
}

async function send(path, init, retry) {
  let res;
  try {
    res = await fetch(path, { credentials: 'same-origin', ...init });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, null, statusSentence(0));
  }
  if (res.status === 401 && retry && !NO_REFRESH.includes(path.split('?')[0])) {
    if (await refresh()) return send(path, init, false);
    anonymousHandler();
  }
  return res;
}

export async function errorFrom(res) {
  let problem = null;
  const type = res.headers.get('Content-Type') || '';
  if (type.includes('json')) {
    try { problem = await res.json(); } catch (e) { problem = null; }
  }
  return new ApiError(res.status, problem, problemMessage(res.status, problem, res));
}

function withQuery(path, query) {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue;
    q.set(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  const s = q.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

async function call(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, signal: opts.signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await send(path, init, opts.refresh !== false);
  if (!res.ok) throw await errorFrom(res);
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const api = {
  get: (path, query, opts) => call('GET', withQuery(path, query), undefined, opts),
  post: (path, body, opts) => call('POST', path, body === undefined ? {} : body, opts),
  patch: (path, body, opts) => call('PATCH', path, body, opts),
  del: (path, body, opts) => call('DELETE', path, body, opts),
  // the raw Response (streaming), with the same refresh logic; an answer
  // of 400 or more is returned too (errorFrom(res) makes it an ApiError)
  fetch: (path, init = {}) => send(path, init, true),
};

export default api;
