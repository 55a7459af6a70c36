/* Encore web UI: sign in, register, sign out against the public API.
 * The access token travels in the HttpOnly cookie login sets; this script
 * never sees tokens. */
'use strict';

const $ = (id) => document.getElementById(id);

function show(msg, isError) {
  const m = $('message');
  m.textContent = msg;
  m.className = isError ? 'error' : '';
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
    credentials: 'same-origin',
  });
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch (e) { data = null; }
  }
  return { status: res.status, data };
}

function problemText(data) {
  if (!data) return 'request failed';
  if (data.errors && data.errors.length) {
    return data.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  }
  return data.detail || data.title || 'request failed';
}

function signedIn(user) {
  $('who-name').textContent = user.username;
  $('who-role').textContent = user.role;
  $('who').hidden = false;
  $('forms').hidden = true;
}

function signedOut() {
  $('who').hidden = true;
  $('forms').hidden = false;
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const r = await api('POST', '/api/v1/auth/login',
    { login: f.get('login'), password: f.get('password') });
  if (r.status === 200) { signedIn(r.data.user); show('Welcome back.'); }
  else show(problemText(r.data), true);
});

$('register-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const r = await api('POST', '/api/v1/auth/register',
    { username: f.get('username'), email: f.get('email'), password: f.get('password') });
  if (r.status === 201) show(`Account ${r.data.username} created: sign in now.`);
  else show(problemText(r.data), true);
});

$('logout').addEventListener('click', async () => {
  await api('POST', '/api/v1/auth/logout', {});
  signedOut();
  show('Signed out.');
});

(async () => {
  const r = await api('GET', '/api/v1/auth/me');
  if (r.status === 200) signedIn(r.data);
})();
