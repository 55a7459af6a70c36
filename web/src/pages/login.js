// /login: username or email and password; then back to ?next=
import { h, link } from '../lib/dom.js';
import { showProblem, clearProblems, formData, busy, field } from '../lib/forms.js';
import { session } from '../lib/session.js';

// only a path of this site: never //host or a scheme
export function safeNext(next) {
  return next && /^\/(?!\/)[^\\]*$/.test(next) && !next.startsWith('/login') ? next : '/';
}

export default {
  path: '/login',
  title: 'Sign in',
  async render(main, ctx) {
    const next = safeNext(ctx.query.get('next'));
    if (session.user) {
      ctx.navigate(next, { replace: true });
      return;
    }
    const form = h('form', { class: 'stack', novalidate: true },
      h('div', { class: 'form-alert', role: 'alert' }),
      field('Username or email', h('input', {
        name: 'login', autocomplete: 'username', required: true, autocapitalize: 'none',
      })),
      field('Password', h('input', {
        name: 'password', type: 'password', autocomplete: 'current-password', required: true,
      })),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign in')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearProblems(form);
      const { login, password } = formData(form);
      const missing = [];
      if (!login.trim()) missing.push({ field: 'login', message: 'enter your username or email' });
      if (!password) missing.push({ field: 'password', message: 'enter your password' });
      if (missing.length) {
        showProblem(form, { message: 'Please fill in both fields.', problem: { errors: missing } });
        return;
      }
      const done = busy(form);
      try {
        await session.login(login.trim(), password);
        ctx.announce('Signed in');
        ctx.navigate(next, { replace: true });
      } catch (err) {
        done();
        if (err.status === 401) {
          err.message = 'That username or email and password do not match.';
        }
        showProblem(form, err);
        if (!err.fieldErrors.length) form.elements.namedItem('password').focus();
      }
    });
    main.append(h('div', { class: 'narrow auth-page' },
      h('h1', null, 'Sign in'),
      h('p', { class: 'muted' }, 'Welcome back to Encore.'),
      form,
      h('p', null, 'New here? ', link(`/register${next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}`, 'Create an account'), '.')));
  },
};
