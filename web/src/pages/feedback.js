/*
 * feedback.js — /feedback (send a ticket, and the caller's tickets) and
 * /feedback/:id (one ticket with the staff's response).
 */

import { h, clear, fmtDate } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { busy, clearProblems, field, formData } from '../lib/forms.js';
import {
  CATEGORIES, categoryLabel, failure, form, isNotFound, pageHeading,
  pagedList, plainText, section, showFormProblem, statusBadge,
} from './kit.js';

const FEEDBACK = '/api/v1/feedback';

function isStaff(user) {
  return !!user && (user.role === 'moderator' || user.role === 'admin');
}

/* a ticket in a list: subject (link), status, category, date */
export function ticketRow(t, href) {
  return h('li', { class: 'ticket-row', 'data-id': t.id },
           h('a', { href: href || `/feedback/${encodeURIComponent(t.id)}`,
                    class: 'ticket-subject' }, t.subject),
           h('span', { class: 'ticket-meta' },
             statusBadge(t.status), ' ',
             h('span', { class: 'ticket-category' }, categoryLabel(t.category)),
             ' · ',
             h('time', { datetime: t.created_at }, fmtDate(t.created_at))));
}

/* a ticket in full: what was written and what staff answered */
export function ticketDetail(t) {
  return h('article', { class: 'ticket' },
           h('dl', { class: 'facts' },
             h('div', null, h('dt', null, 'Status'), h('dd', null, statusBadge(t.status))),
             h('div', null, h('dt', null, 'Category'), h('dd', null, categoryLabel(t.category))),
             h('div', null, h('dt', null, 'Sent'),
               h('dd', null, h('time', { datetime: t.created_at }, fmtDate(t.created_at)))),
             h('div', null, h('dt', null, 'Updated'),
               h('dd', null, h('time', { datetime: t.updated_at }, fmtDate(t.updated_at))))),
           h('h2', null, 'Message'),
           plainText(t.message, 'ticket-message'),
           h('h2', null, 'Response'),
           t.response
             ? plainText(t.response, 'ticket-response')
             : h('p', { class: 'muted' }, 'No response yet.'));
}

async function renderFeedback(main, ctx) {
  const user = ctx.user;
  const category = h('select', { name: 'category', required: '' },
                     CATEGORIES.map((c) => h('option', { value: c }, categoryLabel(c))));
  const subject = h('input', { name: 'subject', required: '', maxlength: '200',
                               autocomplete: 'off' });
  const message = h('textarea', { name: 'message', required: '', rows: '6',
                                  maxlength: '10000' });
  const submit = h('button', { type: 'submit', class: 'button' },
                   'Send feedback');
  const done = h('p', { class: 'form-done', role: 'status' });
  const f = form({ class: 'stack', 'aria-label': 'Send feedback' },
                 field('What is it about?', category),
                 field('Subject', subject, 'A short summary, up to 200 characters.'),
                 field('Message', message, 'What happened, or what you would like.'),
                 h('div', { class: 'actions' }, submit), done);

  const mine = pagedList({
    path: FEEDBACK,
    list: h('ul', { class: 'ticket-list' }),
    /* staff are answered everyone's tickets here: keep their own */
    item: (t) => (!isStaff(user) || t.user_id === user.id ? ticketRow(t) : null),
    empty: 'You have not sent any feedback yet.',
  });

  clear(main);
  main.append(pageHeading('Feedback'),
              h('p', { class: 'lead' },
                'Found something broken, or have an idea? Tell the team. '
                + 'You can follow each ticket here.'),
              h('div', { class: 'two-col' },
                section('Send feedback', f),
                section('My tickets',
                        isStaff(user)
                          ? h('p', { class: 'muted' }, 'Everyone’s tickets are in the ',
                              h('a', { href: '/moderate/tickets' }, 'ticket queue'), '.')
                          : null,
                        mine.el)));

  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearProblems(f);
    done.textContent = '';
    const body = formData(f);
    try {
      const t = await busy(submit, () => api.post(FEEDBACK, {
        category: body.category, subject: body.subject, message: body.message,
      }));
      f.reset();
      mine.prepend(t);
      done.textContent = 'Thank you — your ticket is sent.';
      ctx.announce('Thank you — your ticket is sent.');
      const link = document.querySelector(`.ticket-row[data-id="${t.id}"] a`);
      if (link) {
        link.focus();
      }
    } catch (err) {
      showFormProblem(f, err);
    }
  });

  await mine.load();
}

async function renderTicket(main, ctx) {
  const id = ctx.params.id;
  clear(main);
  try {
    const t = await api.get(`${FEEDBACK}/${encodeURIComponent(id)}`);
    ctx.setTitle(t.subject);
    main.append(pageHeading(t.subject),
                h('p', null, h('a', { href: '/feedback' }, '← My tickets')),
                ticketDetail(t));
    if (isStaff(ctx.user)) {
      main.append(h('p', null, h('a', { href: `/moderate/tickets/${encodeURIComponent(t.id)}` },
                                 'Answer in the ticket queue')));
    }
  } catch (err) {
    main.append(pageHeading(isNotFound(err) ? 'Ticket not found' : 'Ticket'),
                failure(err, isNotFound(err) ? 'There is no such ticket of yours'
                                             : 'The ticket could not be loaded'),
                h('p', null, h('a', { href: '/feedback' }, 'Back to feedback')));
  }
  return undefined;
}


export const feedbackTicket = {
  path: '/feedback/:id',
  title: 'Ticket',
  auth: 'user',
  render: renderTicket,
};

export default {
  path: '/feedback',
  title: 'Feedback',
  auth: 'user',
  render: renderFeedback,
};
