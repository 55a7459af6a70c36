/*
 * moderate.js — /moderate: where a moderator's work starts.
 */

import { h, clear } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { pageHeading } from './kit.js';

async function render(main) {
  const openCount = h('span', { class: 'count' });
  clear(main);
  main.append(
    pageHeading('Moderation'),
    h('p', { class: 'lead' }, 'Keep the catalog right and answer people’s feedback.'),
    h('ul', { class: 'cards' },
      h('li', { class: 'card' },
        h('h2', null, h('a', { href: '/moderate/artists' }, 'Catalog')),
        h('p', null, 'Add, correct and remove artists, their albums and tracks.')),
      h('li', { class: 'card' },
        h('h2', null, h('a', { href: '/moderate/tickets?status=open' }, 'Ticket queue')),
        h('p', null, 'Feedback waiting for an answer. ', openCount))));

  try {
    const res = await api.get('/api/v1/feedback', { status: 'open', limit: '100' });
    const n = (res.items || []).length;
    openCount.textContent = n === 0 ? 'Nothing is open.'
      : `${n}${res.next_cursor ? '+' : ''} open.`;
  } catch (e) {
    openCount.textContent = '';
  }
}

export default {
  path: '/moderate',
  title: 'Moderation',
  auth: 'moderator',
  render,
};
