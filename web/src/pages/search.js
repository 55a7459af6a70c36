// /search?q=&type=: every kind of result, or one kind; more by cursor
import { h, clear, plural } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { renderSnippet } from '../lib/markdown.js';
import { resultHref } from '../lib/typeahead.js';
import { loading } from './parts.js';

const TYPES = [['', 'Everything'], ['artist', 'Artists'], ['album', 'Albums'], ['track', 'Tracks'], ['post', 'Posts']];
const KIND = { artist: 'Artist', album: 'Album', track: 'Track', post: 'Post' };

function resultItem(item) {
  return h('li', { class: 'result' },
    h('p', { class: 'result-kind' }, KIND[item.type] || item.type),
    h('h2', { class: 'result-title' }, h('a', { href: resultHref(item) }, item.title)),
    item.snippet ? h('p', { class: 'result-snippet' }, renderSnippet(item.snippet)) : null);
}

export default {
  path: '/search',
  title: (ctx) => (ctx.query.get('q') ? `Search: ${ctx.query.get('q')}` : 'Search'),
  async render(main, ctx) {
    const q = (ctx.query.get('q') || '').trim();
    const type = TYPES.some(([t]) => t === ctx.query.get('type')) ? ctx.query.get('type') : '';
    const input = h('input', {
      id: 'search-q', type: 'search', name: 'q', value: q, maxlength: '200', autocomplete: 'off',
    });
    const select = h('select', { id: 'search-type', name: 'type' },
      TYPES.map(([t, label]) => h('option', { value: t, selected: t === type }, label)));
    const form = h('form', {
      class: 'search-form',
      role: 'search',
      onsubmit: (ev) => {
        ev.preventDefault();
        const params = new URLSearchParams();
        if (input.value.trim()) params.set('q', input.value.trim());
        if (select.value) params.set('type', select.value);
        const s = params.toString();
        ctx.navigate(`/search${s ? `?${s}` : ''}`);
      },
    },
    h('div', { class: 'field grow' }, h('label', { for: 'search-q' }, 'Search for'), input),
    h('div', { class: 'field' }, h('label', { for: 'search-type' }, 'Search in'), select),
    h('div', { class: 'field' }, h('span', { class: 'label', 'aria-hidden': 'true' }, '\u00a0'),
      h('button', { type: 'submit' }, 'Search')));
    select.addEventListener('change', () => form.requestSubmit());
    const results = h('div', { class: 'results', 'aria-live': 'polite' });
    main.append(h('h1', null, q ? `Results for “${q}”` : 'Search'), form, results);
    if (!q) {
      results.append(h('p', { class: 'muted' }, 'Find artists, albums, tracks and posts. Spelling need not be perfect.'));
      return;
    }
    results.append(loading('Searching…'));
    const query = { q, limit: 20, type: type || undefined };
    const first = await api.get('/api/v1/search', query, { signal: ctx.signal });
    clear(results);
    if (!first.items.length) {
      results.append(h('p', { class: 'empty' }, `Nothing found for “${q}”.`));
      return;
    }
    const list = h('ol', { class: 'plain-list result-list' }, first.items.map(resultItem));
    const count = h('p', { class: 'muted' }, first.next_cursor ? `Showing the best ${first.items.length} matches` : plural(first.items.length, 'match', 'matches'));
    results.append(count, list);
    let cursor = first.next_cursor;
    if (cursor) {
      const more = h('button', { type: 'button', class: 'secondary' }, 'Show more results');
      more.addEventListener('click', async () => {
        more.disabled = true;
        const page = await api.get('/api/v1/search', { ...query, cursor }, { signal: ctx.signal });
        const firstNew = list.children.length;
        list.append(...page.items.map(resultItem));
        cursor = page.next_cursor;
        count.textContent = `Showing ${list.children.length} matches`;
        const link = list.children[firstNew] && list.children[firstNew].querySelector('a');
        if (link) link.focus();
        if (cursor) more.disabled = false; else more.remove();
      });
      results.append(more);
    }
  },
};
