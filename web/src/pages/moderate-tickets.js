/*
 * moderate-tickets.js — /moderate/tickets (everyone's tickets, by
 * status) and /moderate/tickets/:id (status change and response).
 *
 * The ticket's status machine is the schema's: open -> in_progress ->
 * resolved -> closed, resolved -> in_progress; closed is final. The
 * form offers only the moves the schema allows.
 */

import { h, clear, fmtDate } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { busy, clearProblems, field, formData } from '../lib/forms.js';
import {
  categoryLabel, failure, form, isNotFound, pageHeading, pagedList, section,
  showFormProblem, statusBadge, statusLabel,
} from './kit.js';
import { ticketDetail } from './feedback.js';

const FEEDBACK = '/api/v1/feedback';

export const NEXT_STATUS = {
  open: ['in_progress'],
  in_progress: ['resolved'],
  resolved: ['closed', 'in_progress'],
  closed: [],
};

const FILTERS = [
  ['', 'All'], ['open', 'Open'], ['in_progress', 'In progress'],
  ['resolved', 'Resolved'], ['closed', 'Closed'],
];

/* user ids -> usernames, looked up once per page view */
function authors() {
  const cache = new Map();
  return (userId, el) => {
    if (!userId) {
      el.textContent = '[deleted]';
      return;
    }
    if (!cache.has(userId)) {
      cache.set(userId, api.get(`/api/v1/users/${encodeURIComponent(userId)}`)
        .then((u) => u.username).catch(() => 'unknown'));
    }
    cache.get(userId).then((name) => { el.textContent = name; });
  };
}

async function renderQueue(main, ctx) {
  const status = ctx.query.get('status') || '';
  const who = authors();

  const rows = h('tbody');
  const table = h('table', { class: 'table ticket-table' },
                  h('caption', { class: 'visually-hidden' }, 'Tickets'),
                  h('thead', null, h('tr', null,
                    h('th', { scope: 'col' }, 'Subject'),
                    h('th', { scope: 'col' }, 'Status'),
                    h('th', { scope: 'col' }, 'Category'),
                    h('th', { scope: 'col' }, 'From'),
                    h('th', { scope: 'col' }, 'Sent'))),
                  rows);

  const list = pagedList({
    path: FEEDBACK,
    query: status ? { status } : {},
    list: rows,
    wrap: table,
    item: (t) => {
      const from = h('span', null, '…');
      who(t.user_id, from);
      /* data-label: the column's name where a phone shows rows as cards */
      return h('tr', { 'data-id': t.id },
               h('td', { class: 'cell-subject' },
                 h('a', { href: `/moderate/tickets/${encodeURIComponent(t.id)}` }, t.subject)),
               h('td', { 'data-label': 'Status' }, statusBadge(t.status)),
               h('td', { 'data-label': 'Category' }, categoryLabel(t.category)),
               h('td', { 'data-label': 'From' }, from),
               h('td', { 'data-label': 'Sent' },
                 h('time', { datetime: t.created_at }, fmtDate(t.created_at))));
    },
    empty: status ? `No ${statusLabel(status).toLowerCase()} tickets.` : 'No tickets.',
  });

  const filters = h('nav', { class: 'filters', 'aria-label': 'Filter by status' },
                    h('ul', null, FILTERS.map(([value, label]) => h('li', null,
                      h('a', {
                        href: value ? `/moderate/tickets?status=${value}` : '/moderate/tickets',
                        'aria-current': value === status ? 'page' : null,
                        class: value === status ? 'chip chip-current' : 'chip',
                      }, label)))));

  clear(main);
  main.append(pageHeading('Ticket queue'),
              h('p', null, h('a', { href: '/moderate' }, '← Moderation')),
              filters,
              h('div', { class: 'table-wrap' }, list.el));
  await list.load();
}

function statusForm(t, onSaved) {
  const next = NEXT_STATUS[t.status] || [];
  const select = h('select', { name: 'status' },
                   h('option', { value: t.status }, `${statusLabel(t.status)} (unchanged)`),
                   next.map((s) => h('option', { value: s }, statusLabel(s))));
  const response = h('textarea', { name: 'response', rows: '6', maxlength: '10000' });
  response.value = t.response || '';
  const save = h('button', { type: 'submit', class: 'button' },
                 'Save');
  const done = h('p', { class: 'form-done', role: 'status' });
  const f = form({ class: 'stack', 'aria-label': 'Answer the ticket' },
                 field('Status', select,
                       next.length ? `From ${statusLabel(t.status).toLowerCase()} a ticket may go to `
                         + `${next.map((s) => statusLabel(s).toLowerCase()).join(' or ')}.`
                         : null),
                 field('Response to the user', response,
                       'The user sees this on their ticket.'),
                 h('div', { class: 'actions' }, save), done);

  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearProblems(f);
    done.textContent = '';
    const d = formData(f);
    const body = {};
    if (d.status !== t.status) {
      body.status = d.status;
    }
    const resp = (d.response || '').trim() === '' ? null : d.response;
    if (resp !== (t.response || null)) {
      body.response = resp;
    }
    if (Object.keys(body).length === 0) {
      done.textContent = 'Nothing to save: no change.';
      return;
    }
    try {
      const saved = await busy(save, () => api.patch(
        `${FEEDBACK}/${encodeURIComponent(t.id)}`, body));
      onSaved(saved);
    } catch (err) {
      showFormProblem(f, err);
    }
  });
  return f;
}

async function renderTicket(main, ctx) {
  const id = ctx.params.id;
  const who = authors();

  async function show(t, message) {
    clear(main);
    ctx.setTitle(t.subject);
    const from = h('span', null, '…');
    who(t.user_id, from);
    /* drawn anew with the page: ctx.announce says it, not this */
    const saved = h('p', { class: 'form-done' });
    main.append(pageHeading(t.subject),
                h('p', null, h('a', { href: '/moderate/tickets' }, '← Ticket queue')),
                h('p', { class: 'muted' }, 'From ', from),
                saved,
                h('div', { class: 'two-col' },
                  ticketDetail(t),
                  section('Answer',
                          t.status === 'closed'
                            ? h('p', { class: 'muted' },
                                'This ticket is closed: its status and response no longer change.')
                            : statusForm(t, (s) => show(s, 'Saved.')))));
    if (message) {
      saved.textContent = message;
      ctx.announce(message);
      main.querySelector('h1').focus();
    }
  }

  clear(main);
  try {
    await show(await api.get(`${FEEDBACK}/${encodeURIComponent(id)}`));
  } catch (err) {
    clear(main);
    main.append(pageHeading(isNotFound(err) ? 'Ticket not found' : 'Ticket'),
                failure(err, 'The ticket could not be loaded'),
                h('p', null, h('a', { href: '/moderate/tickets' }, 'Back to the queue')));
  }
}

export const moderateTicket = {
  path: '/moderate/tickets/:id',
  title: 'Ticket',
  auth: 'moderator',
  render: renderTicket,
};

export default {
  path: '/moderate/tickets',
  title: 'Ticket queue',
  auth: 'moderator',
  render: renderQueue,
};
