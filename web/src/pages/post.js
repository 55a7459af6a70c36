// /posts/:id: a post (Markdown, sanitised) and its threaded comments:
// reply, edit, delete; threads deeper than COLLAPSE_DEPTH are folded
// behind a disclosure
import { h, clear, link, timeEl, plural } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { session } from '../lib/session.js';
import { renderMarkdown } from '../lib/markdown.js';
import { showProblem, clearProblems, busy } from '../lib/forms.js';
import { authorName, loading } from './parts.js';

export const COLLAPSE_DEPTH = 3;   // replies below this depth start folded
const MAX_DEPTH = 8;               // the comments worker's deepest
const PAGE = 100;

let titleText = 'Post';

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

// POST a comment.  The comments worker learns of a post from its events:
// for a moment after publishing, it answers 404 for the post.  A post
// this page shows exists, so a 404 is retried a few times before it is
// believed
async function postComment(pid, body) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await api.post(`/api/v1/posts/${pid}/comments`, body);
    } catch (err) {
      if (err.status !== 404 || attempt >= 6) throw err;
      await sleep(250 * attempt);
    }
  }
}

function canEdit(authorId) {
  return Boolean(session.user) && session.user.id === authorId;
}

function canDelete(authorId) {
  return canEdit(authorId) || session.is('moderator');
}

// "Delete" that asks again in place (no window.confirm)
function confirmButton(label, question, onConfirm) {
  const box = h('span', { class: 'confirm' });
  const ask = h('button', { type: 'button', class: 'linklike danger-link' }, label);
  const show = () => {
    const yes = h('button', { type: 'button', class: 'button-small danger' }, `Yes, ${label.toLowerCase()}`);
    const no = h('button', { type: 'button', class: 'button-small secondary' }, 'Cancel');
    const text = h('span', { class: 'confirm-question' }, question);
    box.replaceChildren(text, ' ', yes, ' ', no);
    no.addEventListener('click', () => { box.replaceChildren(ask); ask.focus(); });
    yes.addEventListener('click', async () => {
      yes.disabled = true; no.disabled = true;
      try {
        await onConfirm();
      } catch (err) {
        box.replaceChildren(ask, h('span', { class: 'field-error', role: 'alert' }, ` ${err.message}`));
        ask.focus();
      }
    });
    no.focus();
  };
  ask.addEventListener('click', show);
  box.append(ask);
  return box;
}

function commentForm({ label, submitText, initial = '', onSubmit, onCancel }) {
  const id = `c-${Math.random().toString(36).slice(2, 9)}`;
  const textarea = h('textarea', {
    id, name: 'body', required: true, maxlength: '10000', rows: '4',
  });
  textarea.value = initial;
  const form = h('form', { class: 'comment-form', novalidate: true },
    h('div', { class: 'form-alert', role: 'alert' }),
    h('label', { for: id, class: 'label' }, label),
    textarea,
    h('div', { class: 'actions' },
      h('button', { type: 'submit' }, submitText),
      onCancel ? h('button', { type: 'button', class: 'secondary', onclick: onCancel }, 'Cancel') : null));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearProblems(form);
    const body = textarea.value;
    if (!body.trim()) {
      showProblem(form, { message: 'Write something first.', problem: { errors: [{ field: 'body', message: 'the comment is empty' }] } });
      return;
    }
    const done = busy(form);
    try {
      await onSubmit(body);
    } catch (err) {
      done();
      showProblem(form, err);
    }
  });
  return form;
}

// a flat, thread-ordered list -> roots with children
function buildTree(items) {
  const nodes = new Map();
  const roots = [];
  for (const c of items) nodes.set(c.id, { c, children: [] });
  for (const c of items) {
    const node = nodes.get(c.id);
    const parent = c.parent_id && nodes.get(c.parent_id);
    if (parent) parent.children.push(node); else roots.push(node);
  }
  return roots;
}

function countAll(nodes) {
  return nodes.reduce((n, x) => n + 1 + countAll(x.children), 0);
}

export default {
  path: '/posts/:id',
  title: () => titleText,
  async render(main, ctx) {
    const { signal } = ctx;
    const postId = ctx.params.id;
    const pid = encodeURIComponent(postId);
    const view = await api.get(`/api/v1/views/post/${pid}`, null, { signal });
    const { post } = view;
    titleText = post.title;
    ctx.setTitle(post.title);

    let comments = view.comments ? view.comments.items : null;
    let cursor = view.comments ? view.comments.next_cursor : null;
    const commentsBox = h('div', { class: 'comments-box' });
    const moreBox = h('div');
    const newCommentBox = h('div');

    // ---- the post itself
    const artists = view.artists || [];
    const actions = [];
    if (canEdit(post.author_id) || session.is('moderator')) {
      actions.push(h('a', { href: `/posts/${pid}/edit`, class: 'button button-small button-secondary' }, 'Edit post'));
    }
    if (canDelete(post.author_id)) {
      actions.push(confirmButton('Delete post', 'Delete this post and its comments?', async () => {
        await api.del(`/api/v1/posts/${pid}`);
        ctx.announce('Post deleted');
        ctx.navigate('/', { replace: true });
      }));
    }
    main.append(h('article', { class: 'post readable', 'aria-labelledby': 'post-title' },
      h('header', { class: 'page-head' },
        h('h1', { id: 'post-title' }, post.title),
        h('p', { class: 'meta' },
          h('span', null, 'by ', authorName(post)),
          timeEl(post.published_at || post.created_at),
          post.status === 'draft' ? h('span', { class: 'tag' }, 'draft') : null),
        artists.length
          ? h('p', { class: 'post-artists' }, 'About ',
            artists.map((a, i) => [i ? ', ' : '', link(`/artists/${encodeURIComponent(a.id)}`, a.name)]))
          : null,
        post.tags && post.tags.length
          ? h('ul', { class: 'tags', 'aria-label': 'Tags' }, post.tags.map((t) => h('li', { class: 'tag' }, `#${t}`)))
          : null,
        actions.length ? h('div', { class: 'actions' }, actions) : null),
      h('div', { class: 'prose post-body' }, renderMarkdown(post.body))));

    const section = h('section', { class: 'comments readable', 'aria-labelledby': 'comments-h' },
      h('h2', { id: 'comments-h' }, 'Comments'),
      newCommentBox, commentsBox, moreBox);
    main.append(section);

    // ---- comments
    async function reload(focusId) {
      const all = [];
      let next = null;
      let pages = 0;
      do {
        const page = await api.get(`/api/v1/posts/${pid}/comments`, { limit: PAGE, cursor: next }, { signal });
        all.push(...page.items);
        next = page.next_cursor;
        pages += 1;
      } while (next && pages < 20);
      comments = all;
      cursor = next;
      draw();
      if (focusId) {
        const el = document.getElementById(`comment-${focusId}`);
        if (el) {
          for (let d = el.closest('details'); d; d = d.parentElement.closest('details')) d.open = true;
          const target = el.querySelector('.comment-body') || el;
          target.setAttribute('tabindex', '-1');
          target.focus();
        }
      }
    }

    function commentNode(node) {
      const { c } = node;
      const cid = `comment-${c.id}`;
      const bodyBox = h('div', { class: 'comment-body prose' },
        c.deleted ? h('p', { class: 'empty' }, 'This comment was deleted.') : renderMarkdown(c.body));
      const slot = h('div', { class: 'comment-slot' });
      const buttons = [];
      if (!c.deleted && session.user && c.depth < MAX_DEPTH) {
        buttons.push(h('button', {
          type: 'button',
          class: 'linklike',
          'aria-label': `Reply to ${authorName(c)}`,
          onclick: (ev) => {
            const opener = ev.currentTarget;
            const form = commentForm({
              label: `Reply to ${authorName(c)}`,
              submitText: 'Post reply',
              onSubmit: async (body) => {
                const created = await postComment(pid, { body, parent_id: c.id });
                ctx.announce('Reply posted');
                await reload(created.id);
              },
              onCancel: () => { clear(slot); opener.focus(); },
            });
            slot.replaceChildren(form);
            form.querySelector('textarea').focus();
          },
        }, 'Reply'));
      }
      if (!c.deleted && canEdit(c.author_id)) {
        buttons.push(h('button', {
          type: 'button',
          class: 'linklike',
          'aria-label': 'Edit your comment',
          onclick: (ev) => {
            const opener = ev.currentTarget;
            const form = commentForm({
              label: 'Edit your comment',
              submitText: 'Save',
              initial: c.body,
              onSubmit: async (body) => {
                await api.patch(`/api/v1/comments/${encodeURIComponent(c.id)}`, { body });
                ctx.announce('Comment saved');
                await reload(c.id);
              },
              onCancel: () => { clear(slot); bodyBox.hidden = false; opener.focus(); },
            });
            bodyBox.hidden = true;
            slot.replaceChildren(form);
            form.querySelector('textarea').focus();
          },
        }, 'Edit'));
      }
      if (!c.deleted && canDelete(c.author_id)) {
        buttons.push(confirmButton('Delete', 'Delete this comment?', async () => {
          await api.del(`/api/v1/comments/${encodeURIComponent(c.id)}`);
          ctx.announce('Comment deleted');
          await reload(c.id);
        }));
      }
      let children = null;
      if (node.children.length) {
        const list = h('ol', { class: 'comment-list' }, node.children.map(commentNode));
        if (c.depth + 1 >= COLLAPSE_DEPTH) {
          const n = countAll(node.children);
          children = h('details', { class: 'thread-more' },
            h('summary', null, `Show ${plural(n, 'more reply', 'more replies')}`), list);
        } else {
          children = list;
        }
      }
      return h('li', { class: 'comment', id: cid, dataset: { depth: String(c.depth) } },
        h('article', { 'aria-label': `Comment by ${authorName(c)}` },
          h('p', { class: 'meta comment-meta' },
            h('span', { class: 'comment-author' }, c.deleted ? '[deleted]' : authorName(c)),
            timeEl(c.created_at, { time: true }),
            c.updated_at && c.updated_at !== c.created_at && !c.deleted ? h('span', null, 'edited') : null),
          bodyBox,
          buttons.length ? h('div', { class: 'comment-actions' }, buttons) : null,
          slot),
        children);
    }

    function draw() {
      if (comments === null) {
        commentsBox.replaceChildren(h('p', { class: 'notice-error' }, 'The comments could not be loaded just now.'));
        return;
      }
      const roots = buildTree(comments);
      const live = comments.filter((c) => !c.deleted).length;
      section.querySelector('#comments-h').textContent = live ? `Comments (${live})` : 'Comments';
      commentsBox.replaceChildren(roots.length
        ? h('ol', { class: 'comment-list comment-root' }, roots.map(commentNode))
        : h('p', { class: 'empty' }, 'No comments yet.'));
      if (cursor) {
        moreBox.replaceChildren(h('button', {
          type: 'button',
          class: 'secondary',
          onclick: async (ev) => {
            ev.currentTarget.disabled = true;
            const page = await api.get(`/api/v1/posts/${pid}/comments`, { limit: PAGE, cursor }, { signal });
            comments = comments.concat(page.items);
            cursor = page.next_cursor;
            draw();
          },
        }, 'Show more comments'));
      } else {
        clear(moreBox);
      }
    }

    if (session.user) {
      newCommentBox.replaceChildren(commentForm({
        label: 'Add a comment',
        submitText: 'Post comment',
        onSubmit: async (body) => {
          const created = await postComment(pid, { body });
          newCommentBox.querySelector('textarea').value = '';
          newCommentBox.querySelector('form').removeAttribute('aria-busy');
          for (const el of newCommentBox.querySelectorAll('button, textarea')) el.disabled = false;
          ctx.announce('Comment posted');
          await reload(created.id);
        },
      }));
    } else {
      newCommentBox.replaceChildren(h('p', { class: 'notice' },
        link(`/login?next=${encodeURIComponent(`/posts/${postId}`)}`, 'Sign in'), ' to join the conversation.'));
    }
    commentsBox.append(loading('Loading the comments…'));
    draw();
  },
};
