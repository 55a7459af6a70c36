// /posts/new and /posts/:id/edit: title, Markdown body with a live
// preview (rendered and sanitised as the post page does), the artists it
// is about, tags, and draft or published
import { h, clear } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { session } from '../lib/session.js';
import { renderMarkdown } from '../lib/markdown.js';
import { showProblem, clearProblems, busy, field } from '../lib/forms.js';

const PREVIEW_MS = 250;

function artistPicker(initial) {
  const chosen = new Map(initial.map((a) => [a.id, a.name]));
  const chips = h('ul', { class: 'chips', 'aria-label': 'Chosen artists' });
  const results = h('ul', { class: 'plain-list picker-results' });
  const status = h('p', { class: 'visually-hidden', role: 'status' });
  const input = h('input', {
    id: 'artist-find', type: 'search', autocomplete: 'off', name: 'artist_search',
    'aria-describedby': 'artist-find-hint',
  });
  let timer = null;
  let controller = null;

  function drawChips() {
    clear(chips);
    for (const [id, name] of chosen) {
      chips.append(h('li', { class: 'chip' }, name, h('button', {
        type: 'button',
        class: 'chip-remove',
        'aria-label': `Remove ${name}`,
        onclick: () => { chosen.delete(id); drawChips(); status.textContent = `${name} removed`; input.focus(); },
      }, '×')));
    }
    chips.hidden = chosen.size === 0;
  }

  async function find(q) {
    if (controller) controller.abort();
    controller = new AbortController();
    try {
      const page = await api.get('/api/v1/artists', { q, limit: 6 }, { signal: controller.signal });
      clear(results);
      const items = page.items.filter((a) => !chosen.has(a.id));
      for (const a of items) {
        results.append(h('li', null, h('button', {
          type: 'button',
          class: 'button-small secondary',
          onclick: () => {
            chosen.set(a.id, a.name);
            drawChips();
            clear(results);
            input.value = '';
            status.textContent = `${a.name} added`;
            input.focus();
          },
        }, `Add ${a.name}`)));
      }
      status.textContent = items.length ? `${items.length} artists found` : 'No artist found';
    } catch (e) {
      if (e.name !== 'AbortError') status.textContent = e.message;
    }
  }

  input.addEventListener('input', () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (!q) { clear(results); return; }
    timer = setTimeout(() => find(q), 200);
  });
  // Enter in the finder adds the first match, never submits the post
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      ev.preventDefault();
      const first = results.querySelector('button');
      if (first) first.click();
    }
  });
  drawChips();
  const el = h('fieldset', { class: 'field artist-picker' },
    h('legend', { class: 'label' }, 'Artists this post is about'),
    h('label', { for: 'artist-find', class: 'hint' }, 'Find an artist by name'),
    h('p', { id: 'artist-find-hint', class: 'visually-hidden' }, 'Matching artists appear below as buttons to add'),
    input, results, chips, status);
  return { el, ids: () => [...chosen.keys()] };
}

function parseTags(text) {
  return [...new Set(text.split(/[,\s]+/).map((t) => t.replace(/^#/, '').trim().toLowerCase()).filter(Boolean))];
}

async function editor(main, ctx, post) {
  const isNew = !post;
  const initialArtists = [];
  const preset = isNew ? (ctx.query.get('artist') ? [ctx.query.get('artist')] : []) : post.artist_ids;
  for (const id of preset || []) {
    try {
      const a = await api.get(`/api/v1/artists/${encodeURIComponent(id)}`, null, { signal: ctx.signal });
      initialArtists.push({ id: a.id, name: a.name });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
    }
  }
  const picker = artistPicker(initialArtists);
  const title = h('input', { name: 'title', required: true, maxlength: '200', value: post ? post.title : '' });
  const body = h('textarea', {
    name: 'body', required: true, maxlength: '50000', rows: '14', class: 'editor-body',
  });
  body.value = post ? post.body : '';
  const tags = h('input', { name: 'tags', value: post ? post.tags.join(', ') : '', autocomplete: 'off' });
  const status = post ? post.status : 'published';
  const radios = h('fieldset', { class: 'field radios' },
    h('legend', { class: 'label' }, 'Visibility'),
    h('label', null, h('input', { type: 'radio', name: 'status', value: 'published', checked: status === 'published' }), ' Published: everyone can read it'),
    h('label', null, h('input', { type: 'radio', name: 'status', value: 'draft', checked: status === 'draft' }), ' Draft: only you (and moderators) can see it'));
  const preview = h('div', { class: 'prose preview-body' });
  const drawPreview = () => {
    preview.replaceChildren(body.value.trim()
      ? renderMarkdown(body.value)
      : h('p', { class: 'empty' }, 'Your post will appear here as you write.'));
  };
  let timer = null;
  body.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(drawPreview, PREVIEW_MS); });
  drawPreview();

  const form = h('form', { class: 'stack editor-form', novalidate: true },
    h('div', { class: 'form-alert', role: 'alert' }),
    field('Title', title),
    field('Post (Markdown)', body, 'Markdown: **bold**, _italic_, [links](https://example.org), lists and > quotes.'),
    picker.el,
    field('Tags', tags, 'Separated by commas, e.g. jazz, live'),
    radios,
    h('div', { class: 'actions' },
      h('button', { type: 'submit' }, isNew ? 'Publish' : 'Save changes'),
      h('a', { href: isNew ? '/' : `/posts/${encodeURIComponent(post.id)}`, class: 'button button-secondary' }, 'Cancel')));
  const submit = form.querySelector('button[type="submit"]');
  const syncLabel = () => {
    const s = form.querySelector('input[name="status"]:checked').value;
    submit.textContent = isNew ? (s === 'draft' ? 'Save draft' : 'Publish') : 'Save changes';
  };
  radios.addEventListener('change', syncLabel);
  syncLabel();

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearProblems(form);
    const data = {
      title: title.value.trim(),
      body: body.value,
      status: form.querySelector('input[name="status"]:checked').value,
      artist_ids: picker.ids(),
      tags: parseTags(tags.value),
    };
    const errors = [];
    if (!data.title) errors.push({ field: 'title', message: 'give your post a title' });
    if (!data.body.trim()) errors.push({ field: 'body', message: 'write something first' });
    if (errors.length) {
      showProblem(form, { message: 'Please check the highlighted fields.', problem: { errors } });
      return;
    }
    const done = busy(form);
    try {
      const saved = isNew
        ? await api.post('/api/v1/posts', data)
        : await api.patch(`/api/v1/posts/${encodeURIComponent(post.id)}`, data);
      ctx.announce(isNew ? 'Post saved' : 'Changes saved');
      ctx.navigate(`/posts/${encodeURIComponent(saved.id)}`, { replace: isNew });
    } catch (err) {
      done();
      showProblem(form, err);
    }
  });

  main.append(
    h('h1', null, isNew ? 'Write a post' : 'Edit post'),
    h('div', { class: 'editor' },
      form,
      h('section', { class: 'preview card', 'aria-labelledby': 'preview-h' },
        h('h2', { id: 'preview-h' }, 'Preview'),
        preview)));
}

export const newPost = {
  path: '/posts/new',
  title: 'Write a post',
  auth: 'user',
  render: (main, ctx) => editor(main, ctx, null),
};

export const editPost = {
  path: '/posts/:id/edit',
  title: 'Edit post',
  auth: 'user',
  async render(main, ctx) {
    const post = await api.get(`/api/v1/posts/${encodeURIComponent(ctx.params.id)}`, null, { signal: ctx.signal });
    if (post.author_id !== session.user.id && !session.is('moderator')) {
      main.append(h('h1', null, 'Not allowed'), h('p', null, 'Only the author or a moderator can edit this post.'));
      return;
    }
    return editor(main, ctx, post);
  },
};
