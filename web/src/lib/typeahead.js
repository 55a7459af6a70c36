// The header's search box: an ARIA 1.2 combobox with a list popup.
// Typing asks GET /api/v1/search (debounced, the previous request
// aborted); ArrowDown/ArrowUp move through the suggestions, Enter opens
// the one chosen (or the search page for the text), Escape closes the
// list (and a second Escape clears the box).
import { h, clear } from './dom.js';
import { api } from './api.js';
import { navigate } from './router.js';

export const DEBOUNCE_MS = 200;
let uid = 0;

/* a search result's (or a chat source's) type, as a person reads it */
export const KIND = { artist: 'Artist', album: 'Album', track: 'Track', post: 'Post' };

export function resultHref(item) {
  const id = encodeURIComponent(item.id);
  switch (item.type) {
    case 'artist': return `/artists/${id}`;
    case 'album': return `/albums/${id}`;
    case 'track': return `/tracks/${id}`;
    case 'post': return `/posts/${id}`;
    default: return '/search';
  }
}

const SVG = 'http://www.w3.org/2000/svg';

function magnifier() {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '18');
  svg.setAttribute('height', '18');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const circle = document.createElementNS(SVG, 'circle');
  for (const [k, v] of [['cx', '10.5'], ['cy', '10.5'], ['r', '6.5']]) circle.setAttribute(k, v);
  const line = document.createElementNS(SVG, 'path');
  line.setAttribute('d', 'M15.5 15.5L21 21');
  for (const el of [circle, line]) {
    el.setAttribute('fill', 'none');
    el.setAttribute('stroke', 'currentColor');
    el.setAttribute('stroke-width', '2.5');
    el.setAttribute('stroke-linecap', 'round');
  }
  svg.append(circle, line);
  return svg;
}

export function typeahead() {
  const n = ++uid;
  const listId = `typeahead-list-${n}`;
  const inputId = `typeahead-input-${n}`;
  let items = [];
  let active = -1;
  let timer = null;
  let controller = null;
  let lastQuery = '';

  const status = h('div', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite' });
  const list = h('ul', {
    id: listId, role: 'listbox', class: 'typeahead-list', 'aria-label': 'Suggestions', hidden: true,
  });
  const input = h('input', {
    id: inputId,
    type: 'search',
    name: 'q',
    role: 'combobox',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'Artists, albums, tracks, posts',
    'aria-autocomplete': 'list',
    'aria-expanded': 'false',
    'aria-controls': listId,
    maxlength: '200',
  });

  function open(on) {
    list.hidden = !on;
    input.setAttribute('aria-expanded', on ? 'true' : 'false');
    if (!on) setActive(-1);
  }

  function setActive(i) {
    active = i;
    [...list.children].forEach((li, j) => li.setAttribute('aria-selected', j === i ? 'true' : 'false'));
    if (i >= 0 && list.children[i]) {
      input.setAttribute('aria-activedescendant', list.children[i].id);
      list.children[i].scrollIntoView({ block: 'nearest' });
    } else {
      input.removeAttribute('aria-activedescendant');
    }
  }

  function choose(i) {
    const item = items[i];
    if (!item) return;
    open(false);
    input.value = '';
    lastQuery = '';
    items = [];
    clear(list);
    navigate(resultHref(item));
  }

  function show(q, found) {
    items = found;
    clear(list);
    found.forEach((item, i) => {
      list.append(h('li', {
        id: `${listId}-${i}`,
        role: 'option',
        class: 'typeahead-option',
        'aria-selected': 'false',
        dataset: { type: item.type },
        // mousedown: before the input's blur closes the list
        onmousedown: (ev) => { ev.preventDefault(); choose(i); },
      },
      h('span', { class: 'kind' }, KIND[item.type] || item.type),
      h('span', { class: 'title' }, item.title)));
    });
    open(found.length > 0);
    setActive(-1);
    status.textContent = found.length
      ? `${found.length} suggestion${found.length === 1 ? '' : 's'}; use the arrow keys to choose`
      : `No suggestions for ${q}`;
  }

  async function lookup(q) {
    if (controller) controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    try {
      const answer = await api.get('/api/v1/search', { q, limit: 8 }, { signal });
      if (signal.aborted || input.value.trim() !== q) return;
      show(q, answer.items || []);
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (input.value.trim() === q) show(q, []);
    }
  }

  input.addEventListener('input', () => {
    const q = input.value.trim();
    clearTimeout(timer);
    if (q === lastQuery) return;
    lastQuery = q;
    if (!q) {
      if (controller) controller.abort();
      items = [];
      clear(list);
      open(false);
      return;
    }
    timer = setTimeout(() => lookup(q), DEBOUNCE_MS);
  });

  input.addEventListener('keydown', (ev) => {
    const count = items.length;
    switch (ev.key) {
      case 'ArrowDown':
        if (!count) return;
        ev.preventDefault();
        if (list.hidden) open(true);
        setActive(active + 1 >= count ? 0 : active + 1);
        break;
      case 'ArrowUp':
        if (!count) return;
        ev.preventDefault();
        if (list.hidden) open(true);
        setActive(active <= 0 ? count - 1 : active - 1);
        break;
      case 'Enter':
        if (!list.hidden && active >= 0) {
          ev.preventDefault();
          choose(active);
        }
        break;
      case 'Escape':
        if (!list.hidden) {
          ev.preventDefault();
          open(false);
        } else if (input.value) {
          ev.preventDefault();
          input.value = '';
          lastQuery = '';
          items = [];
          clear(list);
        }
        break;
      default:
    }
  });

  input.addEventListener('blur', () => open(false));
  input.addEventListener('focus', () => { if (items.length && input.value.trim()) open(true); });

  const form = h('form', {
    class: 'typeahead',
    role: 'search',
    action: '/search',
    onsubmit: (ev) => {
      ev.preventDefault();
      const q = input.value.trim();
      clearTimeout(timer);
      if (controller) controller.abort();
      open(false);
      navigate(q ? `/search?q=${encodeURIComponent(q)}` : '/search');
    },
  },
  h('label', { for: inputId, class: 'visually-hidden' }, 'Search Encore'),
  h('div', { class: 'typeahead-box' }, input, list),
  h('button', { type: 'submit', class: 'typeahead-submit' },
    magnifier(), h('span', { class: 'visually-hidden' }, 'Search')),
  status);
  return form;
}

