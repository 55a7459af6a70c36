// Who is signed in.  The access token lives in an HttpOnly cookie this
// script never sees; GET /api/v1/auth/me says whose it is.
import { api, onSessionLost } from './api.js';

const RANK = { user: 1, moderator: 2, admin: 3 };
const listeners = new Set();
// a hint, not a secret: '0' once this browser was found signed out, so an
// anonymous visitor's later pages cost no refresh attempt (a session made
// elsewhere still shows: /auth/me is asked every time)
const HINT = 'encore.signed-in';

function hint(on) {
  try {
    localStorage.setItem(HINT, on ? '1' : '0');
  } catch (e) { /* storage disabled */ }
}

function hinted() {
  try { return localStorage.getItem(HINT) !== '0'; } catch (e) { return true; }
}

let loading = null;

export const session = {
  user: null,
  loaded: false,

  onChange(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },

  set(user) {
    const changed = (this.user && this.user.id) !== (user && user.id)
      || (this.user && this.user.role) !== (user && user.role);
    this.user = user || null;
    this.loaded = true;
    hint(Boolean(user));
    if (changed) for (const fn of [...listeners]) fn(this.user);
  },

  // GET /auth/me; 401 -> anonymous.  Concurrent calls share one request
  load() {
    if (!loading) {
      loading = (async () => {
        try {
          this.set(await api.get('/api/v1/auth/me', null, { refresh: hinted() }));
        } catch (e) {
          if (e.status === 401 || e.status === 403 || e.status === 404) this.set(null);
          else { this.loaded = true; throw e; }
        } finally {
          loading = null;
        }
        return this.user;
      })();
    }
    return loading;
  },

  async login(login, password) {
    const answer = await api.post('/api/v1/auth/login', { login, password });
    this.set(answer.user);
    return answer.user;
  },

  async register(username, email, password) {
    return api.post('/api/v1/auth/register', { username, email, password });
  },

  async logout() {
    try {
      await api.post('/api/v1/auth/logout', {});
    } finally {
      this.set(null);
    }
  },

  // at least this role: 'user' < 'moderator' < 'admin'
  is(role) {
    return Boolean(this.user) && (RANK[this.user.role] || 0) >= (RANK[role] || 99);
  },
};

onSessionLost(() => session.set(null));

export default session;
