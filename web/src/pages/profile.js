/*
 * profile.js — /profile: the caller's account. Bio and email, a new
 * password (which ends every session: the page signs in again with it),
 * and deleting the account.
 */

import { h, clear, fmtDate } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { session } from '../lib/session.js';
import { busy, clearProblems, field, formData } from '../lib/forms.js';
import {
  form, localProblem, pageHeading, section, showFormProblem,
} from './kit.js';

const ME = '/api/v1/users/me';

async function render(main, ctx) {
  clear(main);
  let me;
  try {
    me = await api.get('/api/v1/auth/me');
  } catch (err) {
    main.append(pageHeading('Your profile'),
                h('p', { role: 'alert', class: 'notice notice-error' },
                  err.message || 'Your profile could not be loaded.'));
    return;
  }

  /* whose password a form asks for (password managers look for it) */
  function accountName() {
    return h('input', {
      type: 'text', name: 'username', autocomplete: 'username', hidden: '',
      ref: (el) => { el.defaultValue = me.username; },
    });
  }

  /* --- about you ----------------------------------------------------- */
  const facts = h('dl', { class: 'facts' });
  function drawFacts() {
    clear(facts);
    facts.append(
      h('div', null, h('dt', null, 'Username'), h('dd', null, me.username)),
      h('div', null, h('dt', null, 'Role'), h('dd', null, me.role)),
      h('div', null, h('dt', null, 'Member since'),
        h('dd', null, h('time', { datetime: me.created_at }, fmtDate(me.created_at)))));
  }
  drawFacts();

  const email = h('input', { name: 'email', type: 'email', required: '',
                             autocomplete: 'email', maxlength: '254' });
  email.value = me.email || '';
  const bio = h('textarea', { name: 'bio', rows: '5', maxlength: '2000' });
  bio.value = me.bio || '';
  const save = h('button', { type: 'submit', class: 'button' },
                 'Save profile');
  const saved = h('p', { class: 'form-done', role: 'status' });
  const aboutForm = form({ class: 'stack', 'aria-label': 'Your profile' },
                         field('Email', email, 'Only you and the admins see it.'),
                         field('Bio', bio, 'Shown on your public profile; up to 2000 characters.'),
                         h('div', { class: 'actions' }, save), saved);
  aboutForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearProblems(aboutForm);
    saved.textContent = '';
    const d = formData(aboutForm);
    const body = {};
    if (d.bio !== (me.bio || '')) {
      body.bio = d.bio;
    }
    if (d.email !== (me.email || '')) {
      body.email = d.email;
    }
    if (Object.keys(body).length === 0) {
      saved.textContent = 'Nothing changed.';
      return;
    }
    try {
      me = await busy(save, () => api.patch(ME, body));
      drawFacts();
      saved.textContent = 'Profile saved.';
    } catch (err) {
      showFormProblem(aboutForm, err);
    }
  });

  /* --- password ------------------------------------------------------ */
  const current = h('input', { name: 'current_password', type: 'password',
                               required: '', autocomplete: 'current-password' });
  const next = h('input', { name: 'password', type: 'password', required: '',
                            minlength: '8', maxlength: '128',
                            autocomplete: 'new-password' });
  const again = h('input', { name: 'password_again', type: 'password',
                             required: '', autocomplete: 'new-password' });
  const change = h('button', { type: 'submit', class: 'button' },
                   'Change password');
  const changed = h('p', { class: 'form-done', role: 'status' });
  const pwForm = form({ class: 'stack', 'aria-label': 'Change your password' },
                      accountName(),
                      field('Current password', current),
                      field('New password', next, '8 to 128 characters.'),
                      field('New password again', again),
                      h('div', { class: 'actions' }, change), changed);
  pwForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearProblems(pwForm);
    changed.textContent = '';
    const d = formData(pwForm);
    const errors = [];
    if (!d.current_password) {
      errors.push({ field: 'current_password', message: 'is required' });
    }
    if ((d.password || '').length < 8) {
      errors.push({ field: 'password', message: 'must be at least 8 characters' });
    } else if (d.password !== d.password_again) {
      errors.push({ field: 'password_again', message: 'does not match the new password' });
    }
    if (errors.length) {
      showFormProblem(pwForm, localProblem(errors));
      return;
    }
    try {
      await busy(change, () => api.patch(ME, {
        current_password: d.current_password, password: d.password,
      }));
    } catch (err) {
      showFormProblem(pwForm, err);
      return;
    }
    pwForm.reset();
    /* a new password ends every session, this one too: sign in again
       with it so the person carries on where they were */
    try {
      await session.login(me.username, d.password);
      changed.textContent = 'Password changed. Your other sessions were signed out.';
    } catch (err) {
      ctx.announce('Password changed. Please sign in again.');
      ctx.navigate(`/login?next=${encodeURIComponent('/profile')}`);
    }
  });

  /* --- delete -------------------------------------------------------- */
  const delPassword = h('input', { name: 'password', type: 'password',
                                   required: '', autocomplete: 'current-password' });
  const del = h('button', { type: 'submit', class: 'button button-danger' },
                'Delete my account');
  const delForm = form({ class: 'stack', 'aria-label': 'Delete your account' },
                       accountName(),
                       h('p', null, 'This removes your account for good. Your posts and '
                         + 'comments stay, shown as written by “[deleted]”.'),
                       field('Your password', delPassword, 'To confirm it is you.'),
                       h('div', { class: 'actions' }, del));
  delForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearProblems(delForm);
    const d = formData(delForm);
    if (!d.password) {
      showFormProblem(delForm, localProblem([{ field: 'password', message: 'is required' }]));
      return;
    }
    try {
      await busy(del, () => api.del(ME, { password: d.password }));
    } catch (err) {
      showFormProblem(delForm, err);
      return;
    }
    /* the server cleared the cookies: leave this page first, then let
       the session find itself anonymous (else the router would send
       this page to /login) */
    await ctx.navigate('/', { replace: true });
    await session.load().catch(() => {});
    ctx.announce('Your account is deleted. Goodbye.');
  });

  main.append(pageHeading('Your profile'),
              h('div', { class: 'two-col' },
                h('div', null,
                  section('About you', facts, aboutForm)),
                h('div', null,
                  section('Password', pwForm),
                  h('section', { class: 'panel danger-zone', 'aria-labelledby': 'delete-h' },
                    h('h2', { id: 'delete-h' }, 'Delete account'),
                    h('details', null,
                      h('summary', null, 'I want to delete my account'),
                      delForm)))));
}

export default {
  path: '/profile',
  title: 'Your profile',
  auth: 'user',
  render,
};
