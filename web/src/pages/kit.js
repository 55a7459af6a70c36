/*
 * kit.js — small pieces the chat, feedback, moderation and profile pages
 * share: problems raised before any request, a two-step delete, status
 * badges and "load more" lists (labelled fields and busy buttons are
 * lib/forms.js's).
 */

import { h, clear } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { busy, showProblem } from '../lib/forms.js';

let serial = 0;

/* a unique id for label/for and aria-describedby pairs */
export function uid(prefix) {
  serial += 1;
  return `${prefix}-${serial}`;
}

/*
 * A form with its alert region (where forms.js puts the problems that
 * name no field) and the usual attributes.
 */
export function form(props, ...children) {
  return h('form', { novalidate: '', ...props },
           h('div', { class: 'form-alert', role: 'alert' }),
           ...children);
}

/*
 * The API names an array's item "genres[2]"; the form has one control
 * for the array. Map each errors[].field to the name of a control the
 * form has, so the message lands next to it.
 */
export function problemFor(form, err) {
  const errors = err && err.problem && Array.isArray(err.problem.errors)
    ? err.problem.errors : null;
  if (!errors) {
    return err;
  }
  const mapped = errors.map((e) => {
    let name = typeof e.field === 'string' ? e.field : '';
    if (!form.elements.namedItem(name)) {
      name = name.replace(/\[\d+\]$/, '');
    }
    return { ...e, field: name };
  });
  /* what showProblem reads (an Error's message is not enumerable: not
     a copy of err) */
  return {
    status: err.status,
    message: err.message,
    problem: { ...err.problem, errors: mapped },
  };
}

export function showFormProblem(form, err) {
  showProblem(form, problemFor(form, err));
}

/*
 * A problem found before any request (a duration that does not parse):
 * the same shape as an ApiError, so showProblem places it.
 */
export function localProblem(errors, message) {
  return {
    status: 422,
    message: message || 'Please correct the highlighted fields.',
    problem: {
      type: 'about:blank', title: 'Unprocessable Content', status: 422,
      detail: message || 'Please correct the highlighted fields.',
      errors,
    },
  };
}

/* a sentence for a person from whatever was thrown */
export function messageOf(err) {
  if (err && err.message) {
    return err.message;
  }
  return 'Something went wrong. Please try again.';
}

/* a short error block for a page or a section that could not load */
export function failure(err, what) {
  return h('div', { class: 'notice notice-error', role: 'alert' },
           h('p', null, what ? `${what}: ${messageOf(err)}` : messageOf(err)));
}

export function isNotFound(err) {
  return err && err.status === 404;
}

/*
 * A delete button that asks once more in place (no window.confirm):
 * "Delete" -> "Delete X? [Yes, delete] [Cancel]", focus on Cancel.
 */
export function confirmDelete({ label, question, confirm, onConfirm }) {
  const box = h('div', { class: 'confirm' });
  const start = h('button', {
    type: 'button', class: 'button button-danger',
    onclick: () => ask(),
  }, label);

  function reset(focus) {
    clear(box);
    box.append(start);
    if (focus) {
      start.focus();
    }
  }

  function ask() {
    const msg = h('p', { class: 'form-alert', role: 'alert' });
    const yes = h('button', {
      type: 'button', class: 'button button-danger',
      onclick: async () => {
        clear(msg);
        try {
          await busy(yes, onConfirm);
        } catch (err) {
          msg.textContent = messageOf(err);
        }
      },
    }, confirm || 'Yes, delete');
    const no = h('button', {
      type: 'button', class: 'button button-secondary',
      onclick: () => reset(true),
      onkeydown: (e) => { if (e.key === 'Escape') reset(true); },
    }, 'Cancel');
    clear(box);
    box.append(h('div', { class: 'confirm-ask' },
                  h('p', null, question), msg,
                  h('div', { class: 'actions' }, yes, no)));
    no.focus();
  }

  reset(false);
  return box;
}

const STATUS_LABEL = {
  open: 'Open', in_progress: 'In progress', resolved: 'Resolved',
  closed: 'Closed',
};

export function statusLabel(status) {
  return STATUS_LABEL[status] || status;
}

export function statusBadge(status) {
  return h('span', { class: `badge badge-${status}` }, statusLabel(status));
}

const CATEGORY_LABEL = {
  bug: 'Something is broken', feature: 'An idea',
  content: 'About content', other: 'Something else',
};

export const CATEGORIES = ['bug', 'feature', 'content', 'other'];

export function categoryLabel(c) {
  return CATEGORY_LABEL[c] || c;
}

/*
 * A list that pages with a "Load more" button: items are appended to
 * list (an <ul>/<ol>/<tbody>), each made by item(x) (null skips it).
 * Returns {el, load(), reload(query), prepend(x)}; wrap, when given, is what
 * el shows in place of list (a <table> around a <tbody>).  */
export function pagedList({ path, query, list, wrap, item, empty, limit }) {
  const more = h('button', { type: 'button', class: 'button button-secondary' }, 'Load more');
  const status = h('p', { class: 'list-status', role: 'status' });
  const el = h('div', { class: 'paged' }, wrap || list, status,
               h('div', { class: 'actions' }, more));
  let cursor = null;
  let q = { ...(query || {}) };
  let count = 0;
  let gen = 0;

  more.hidden = true;
  more.addEventListener('click', () => page(false));

  async function page(first) {
    const mine = gen;
    more.disabled = true;
    try {
      const params = { ...q, limit: String(limit || 20) };
      if (!first && cursor) {
        params.cursor = cursor;
      }
      const res = await api.get(path, params);
      if (mine !== gen) {
        return;
      }
      const items = res && Array.isArray(res.items) ? res.items : [];
      const firstNew = list.children.length;
      for (const x of items) {
        const node = item(x);
        if (node) {
          list.append(node);
          count += 1;
        }
      }
      cursor = res ? res.next_cursor : null;
      more.hidden = !cursor;
      status.textContent = count === 0 ? (empty || 'Nothing here yet.') : '';
      if (!first) {
        /* keyboard users land on the first new item, not back at top */
        const next = list.children[firstNew];
        const focusable = next && next.querySelector('a, button');
        if (focusable) {
          focusable.focus();
        }
      }
    } catch (err) {
      if (mine === gen) {
        status.textContent = messageOf(err);
      }
    } finally {
      more.disabled = false;
    }
  }

  return {
    el,
    load: () => page(true),
    reload(query2) {
      gen += 1;
      q = { ...(query2 || {}) };
      cursor = null;
      count = 0;
      clear(list);
      status.textContent = 'Loading…';
      more.hidden = true;
      return page(true);
    },
    prepend(x) {
      const node = item(x);
      if (node) {
        list.prepend(node);
        count += 1;
        status.textContent = '';
      }
    },
  };
}

/* every page of a list (for small lists: an album's tracks, a chat) */
export async function getAll(path, query, max) {
  const out = [];
  let cursor = null;
  for (let i = 0; i < (max || 20); i++) {
    const params = { ...(query || {}), limit: '100' };
    if (cursor) {
      params.cursor = cursor;
    }
    const res = await api.get(path, params);
    out.push(...(res.items || []));
    cursor = res.next_cursor;
    if (!cursor) {
      break;
    }
  }
  return out;
}

/* a section with a heading, labelled by it */
export function section(title, ...children) {
  const id = uid('s');
  return h('section', { class: 'panel', 'aria-labelledby': id },
           h('h2', { id }, title), ...children);
}

/* the page's h1 (the router focuses it) */
export function pageHeading(text, ...extra) {
  return h('div', { class: 'page-head' },
           h('h1', { tabindex: '-1' }, text), ...extra);
}

/* plain text kept as written: paragraphs and line breaks, no markup */
export function plainText(text, cls) {
  return h('div', { class: `plain-text ${cls || ''}`.trim() }, text || '');
}

/* "4:05" or "1:02:03" -> milliseconds; null when it does not parse */
export function parseDuration(text) {
  const t = String(text || '').trim();
  const m = /^(?:(\d+):)?(\d{1,2}):(\d{2})$/.exec(t)
    || /^()(\d+):(\d{2})$/.exec(t);
  if (m) {
    const hours = m[1] ? Number(m[1]) : 0;
    const min = Number(m[2]);
    const sec = Number(m[3]);
    if (sec >= 60 || (m[1] && min >= 60)) {
      return null;
    }
    return ((hours * 60 + min) * 60 + sec) * 1000;
  }
  if (/^\d+$/.test(t)) {
    return Number(t) * 1000;          /* bare seconds */
  }
  return null;
}

/* a name -> a slug the catalog accepts: lower-case letters, digits, '-' */
export function slugify(name) {
  return String(name || '')
    .normalize('NFKD').replace(/[\u0300-\u036f]/g, '')
    .toLowerCase().replace(/&/g, ' and ')
    .replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '')
    .slice(0, 100).replace(/-+$/, '');
}

/* "rock, heavy metal" -> ["rock", "heavy metal"] (blank ones dropped) */
export function splitList(text) {
  return String(text || '').split(',').map((s) => s.trim())
    .filter((s) => s !== '');
}
