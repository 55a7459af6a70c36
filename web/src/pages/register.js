// /register: username, email, password; then signed in and on to ?next=
import { h, link } from '../lib/dom.js';
import { showProblem, clearProblems, formData, busy, field } from '../lib/forms.js';
import { session } from '../lib/session.js';
import { safeNext } from './login.js';

function check(v) {
  const errors = [];
  if (!/^[a-z0-9_]{3,32}$/.test(v.username)) {
    errors.push({ field: 'username', message: '3 to 32 characters: lowercase letters, digits or _' });
  }
  if (!/^[^@\s]+@[^@\s]+$/.test(v.email)) errors.push({ field: 'email', message: 'enter an email address' });
  if (v.password.length < 8 || v.password.length > 128) {
    errors.push({ field: 'password', message: '8 to 128 characters' });
  }
  return errors;
}

export default {
  path: '/register',
  title: 'Create an account',
  async render(main, ctx) {
    const next = safeNext(ctx.query.get('next'));
    const form = h('form', { class: 'stack', novalidate: true },
      h('div', { class: 'form-alert', role: 'alert' }),
      field('Username', h('input', {
        name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none',
        maxlength: '32',
      }), 'Lowercase letters, digits and _, 3 to 32 characters.'),
      field('Email', h('input', { name: 'email', type: 'email', autocomplete: 'email', required: true })),
      field('Password', h('input', {
        name: 'password', type: 'password', autocomplete: 'new-password', required: true, maxlength: '128',
      }), 'At least 8 characters.'),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create account')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearProblems(form);
      const v = formData(form);
      v.username = v.username.trim();
      v.email = v.email.trim();
      const errors = check(v);
      if (errors.length) {
        showProblem(form, { message: 'Please check the highlighted fields.', problem: { errors } });
        return;
      }
      const done = busy(form);
      try {
        await session.register(v.username, v.email, v.password);
        await session.login(v.username, v.password);
        ctx.announce(`Welcome to Encore, ${v.username}`);
        ctx.navigate(next, { replace: true });
      } catch (err) {
        done();
        if (err.status === 409) {
          err.message = 'That username or email is already taken.';
          err.problem = { errors: [{ field: 'username', message: 'this username or email is already registered' }] };
        }
        showProblem(form, err);
      }
    });
    main.append(h('div', { class: 'narrow auth-page' },
      h('h1', null, 'Create an account'),
      h('p', { class: 'muted' }, 'Join Encore to write about the music you love and talk about it.'),
      form,
      h('p', null, 'Already have an account? ', link('/login', 'Sign in'), '.')));
  },
};
