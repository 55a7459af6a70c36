/*
 * chat.js — /chat and /chat/:id: the caller's chats beside the open
 * one, its messages, and a reply streamed as it is written.
 *
 * The reply arrives as server-sent events on the POST's own response
 * (EventSource cannot POST): `event: token` data {"content": "..."} and
 * then `event: done` data = the stored assistant message (with sources
 * and incomplete). The tokens go into the message as plain text; at
 * done the stored message replaces them, rendered as Markdown (its
 * links off the site shown as text: a model can be talked into writing
 * one, by a post it read as a source). Screen readers are not read
 * every token: the conversation is not a live region; a separate
 * status says "replying" and then the whole reply.
 */

import { h, clear, fmtDate } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { clearProblems } from '../lib/forms.js';
import { renderMarkdown } from '../lib/markdown.js';
import { KIND, resultHref } from '../lib/typeahead.js';
import {
  confirmDelete, failure, form, getAll, isNotFound, messageOf,
  showFormProblem, uid,
} from './kit.js';

const SESSIONS = '/api/v1/chat/sessions';

/* a question asked on /chat before its session existed: the session
   page sends it once it has rendered (navigation replaces the page) */
let pending = null;

/* --- SSE ------------------------------------------------------------ */

/*
 * Read server-sent events from a fetch body: calls onEvent(name, data)
 * for each complete event (data lines joined by "\n"). Resolves when
 * the stream ends.
 */
export async function readEvents(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';

  function dispatch(block) {
    let name = 'message';
    const data = [];
    for (const raw of block.split('\n')) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (line === '' || line.startsWith(':')) {
        continue;
      }
      const colon = line.indexOf(':');
      const key = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) {
        value = value.slice(1);
      }
      if (key === 'event') {
        name = value;
      } else if (key === 'data') {
        data.push(value);
      }
    }
    if (data.length > 0) {
      onEvent(name, data.join('\n'));
    }
  }

  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      break;
    }
    buf += decoder.decode(value, { stream: true }).replace(/\r\n/g, '\n');
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      dispatch(buf.slice(0, end));
      buf = buf.slice(end + 2);
    }
  }
  buf += decoder.decode();
  if (buf.trim() !== '') {
    dispatch(buf);
  }
}

/* a problem+json (or any) error answer -> a sentence for a person */
async function problemSentence(res) {
  let p = null;
  try {
    p = await res.json();
  } catch (e) {
    p = null;
  }
  const after = Number(res.headers.get('Retry-After'));
  const wait = Number.isFinite(after) && after > 0
    ? ` Please try again in ${after} second${after === 1 ? '' : 's'}.` : '';
  if (res.status === 429) {
    return `You are sending messages faster than the chat allows.${wait || ' Please wait a moment.'}`;
  }
  if (res.status === 503 || res.status === 502) {
    return `The assistant is not available right now.${wait || ' Please try again shortly.'}`;
  }
  if (res.status === 504) {
    return `The assistant took too long to answer.${wait || ' Please try again.'}`;
  }
  if (p && Array.isArray(p.errors) && p.errors.length > 0) {
    return p.errors.map((e) => `${e.field ? `${e.field} ` : ''}${e.message}`)
      .join('; ');
  }
  if (p && (p.detail || p.title)) {
    return `${p.detail || p.title}${wait}`;
  }
  return `The reply failed (${res.status}).${wait}`;
}

/* an event's data, or null when it is not JSON */
function parseJson(data) {
  try {
    return JSON.parse(data);
  } catch (e) {
    return null;
  }
}

/* --- rendering ------------------------------------------------------- */

/* a source of a known type opens its page; anything else is searched */
function sourceHref(s) {
  return s.type in KIND ? resultHref(s)
    : `/search?q=${encodeURIComponent(s.title || '')}`;
}

function sourceItem(s) {
  return h('li', null,
           h('span', { class: 'source-type' }, KIND[s.type] || s.type),
           ' ', h('a', { href: sourceHref(s) }, s.title || s.type));
}

function sourcesList(sources) {
  if (!Array.isArray(sources) || sources.length === 0) {
    return null;
  }
  const id = uid('src');
  return h('div', { class: 'chat-sources' },
           h('p', { id, class: 'chat-sources-title' }, 'Sources'),
           h('ul', { 'aria-labelledby': id }, sources.map(sourceItem)));
}

function speaker(role) {
  return role === 'user' ? 'You' : 'Encore';
}

/* one message as an <li>: who, when, content, sources, incomplete */
function messageItem(m) {
  const body = h('div', { class: 'chat-body' });
  if (m.role === 'assistant') {
    // a model's words: links off the site are shown, not linked
    body.append(renderMarkdown(m.content || '', { links: 'same-origin' }));
  } else {
    body.classList.add('plain-text');
    body.textContent = m.content || '';
  }
  return h('li', { class: `chat-msg chat-${m.role}`, 'data-id': m.id },
           h('p', { class: 'chat-meta' },
             h('span', { class: 'chat-who' }, speaker(m.role)),
             m.created_at ? h('time', { datetime: m.created_at },
                              fmtDate(m.created_at)) : null),
           body,
           m.incomplete ? incompleteNote() : null,
           sourcesList(m.sources));
}

function incompleteNote(text) {
  return h('p', { class: 'chat-note chat-incomplete' },
           text || 'This reply was cut short before it finished.');
}

function sessionTitle(s) {
  return s.title && s.title.trim() !== '' ? s.title : 'Untitled chat';
}

/* a first question -> a session title: up to 60 characters, whole words */
export function titleFrom(question) {
  const t = question.replace(/\s+/g, ' ').trim();
  if (t.length <= 60) {
    return t;
  }
  const cut = t.slice(0, 60);
  const sp = cut.lastIndexOf(' ');
  return `${(sp > 20 ? cut.slice(0, sp) : cut).trim()}…`;
}

/* --- the page -------------------------------------------------------- */

async function render(main, ctx) {
  const id = ctx.params && ctx.params.id ? ctx.params.id : null;
  const abort = new AbortController();
  let left = false;

  const sessionsList = h('ul', { class: 'chat-sessions-list' });
  const sessionsStatus = h('p', { class: 'list-status', role: 'status' });
  const newChat = h('a', { href: '/chat', class: 'button button-small' },
                    'New chat');
  const olderChats = h('button', { type: 'button', hidden: '',
                                   class: 'button button-small button-secondary' },
                      'Older chats');
  const aside = h('nav', { class: 'chat-sessions', 'aria-label': 'Your chats' },
                  h('div', { class: 'chat-sessions-head' },
                    h('h2', null, 'Your chats'), newChat),
                  sessionsList, sessionsStatus, olderChats);

  const headingId = uid('chat-h');
  const heading = h('h1', { id: headingId, tabindex: '-1' },
                    id ? 'Chat' : 'Ask Encore');
  const log = h('ol', { class: 'chat-log', 'aria-label': 'Messages' });
  /* one polite status for "replying…" and the finished reply */
  const live = h('div', { class: 'visually-hidden', role: 'status',
                          'aria-live': 'polite' });
  const input = h('textarea', {
    name: 'content', rows: '3', required: '', maxlength: '10000',
    placeholder: 'Ask about an artist, an album, a song…',
    'aria-label': 'Your message',
  });
  const hintId = uid('chat-hint');
  input.setAttribute('aria-describedby', hintId);
  const send = h('button', { type: 'submit', class: 'button' },
                 'Send');
  const stop = h('button', { type: 'button', class: 'button button-secondary', hidden: '' },
                 'Stop');
  const composer = form({ class: 'chat-composer', 'aria-label': 'Send a message' },
                        input,
                        h('div', { class: 'chat-composer-row' },
                          h('p', { class: 'hint', id: hintId },
                            'Enter sends; Shift+Enter starts a new line.'),
                          h('div', { class: 'actions' }, stop, send)));
  const headActions = h('div', { class: 'actions' });
  const convo = h('section', { class: 'chat-convo', 'aria-labelledby': headingId },
                  h('div', { class: 'page-head' }, heading, headActions),
                  log, live, composer);

  clear(main);
  main.append(h('div', { class: 'chat-layout' }, aside, convo));

  let streaming = null;     /* AbortController of the reply in flight */

  function sessionLink(s) {
    const current = s.id === id;
    return h('li', { 'data-id': s.id },
             h('a', {
               href: `/chat/${encodeURIComponent(s.id)}`,
               'aria-current': current ? 'page' : null,
               class: current ? 'current' : null,
             }, sessionTitle(s)),
             s.updated_at ? h('time', { datetime: s.updated_at },
                              fmtDate(s.updated_at)) : null);
  }

  let olderCursor = null;

  /* the newest chats, or (more) the ones after olderCursor */
  async function loadSessions(more) {
    sessionsStatus.textContent = 'Loading…';
    try {
      const query = { limit: '50' };
      if (more && olderCursor) {
        query.cursor = olderCursor;
      }
      const res = await api.get(SESSIONS, query);
      if (left) {
        return;
      }
      const firstNew = more ? sessionsList.children.length : 0;
      if (!more) {
        clear(sessionsList);
      }
      olderCursor = res.next_cursor || null;
      olderChats.hidden = !olderCursor;
      if (more) {
        sessionsStatus.textContent = '';
        for (const s of res.items || []) {
          sessionsList.append(sessionLink(s));
        }
        const link = sessionsList.children[firstNew]
          && sessionsList.children[firstNew].querySelector('a');
        (link || newChat).focus();
        return;
      }
      for (const s of res.items || []) {
        sessionsList.append(sessionLink(s));
        /* a session without a title is named by its first question */
        if (s.id === id && heading.textContent !== sessionTitle(s)) {
          heading.textContent = sessionTitle(s);
          ctx.setTitle(sessionTitle(s));
        }
      }
      sessionsStatus.textContent = (res.items || []).length === 0
        ? 'No chats yet.' : '';
    } catch (err) {
      if (!left) {
        sessionsStatus.textContent = messageOf(err);
      }
    }
  }

  function scrollToEnd() {
    const last = log.lastElementChild;
    if (last && last.scrollIntoView) {
      last.scrollIntoView({ block: 'end' });
    }
  }

  function setStreaming(ctrl) {
    streaming = ctrl;
    send.disabled = !!ctrl;
    stop.hidden = !ctrl;
    log.setAttribute('aria-busy', ctrl ? 'true' : 'false');
  }

  /* one question -> the user's message, then the reply as it streams */
  async function ask(sessionId, content) {
    const ctrl = new AbortController();
    abort.signal.addEventListener('abort', () => ctrl.abort(), { once: true });
    setStreaming(ctrl);

    const mine = h('li', { class: 'chat-msg chat-user chat-pending' },
                   h('p', { class: 'chat-meta' },
                     h('span', { class: 'chat-who' }, 'You')),
                   h('div', { class: 'chat-body plain-text' }, content));
    const text = document.createTextNode('');
    const typing = h('span', { class: 'chat-typing' },
                     h('span', { class: 'visually-hidden' }, 'Encore is writing'));
    const body = h('div', { class: 'chat-body chat-streaming plain-text' },
                   text, typing);
    const reply = h('li', { class: 'chat-msg chat-assistant' },
                    h('p', { class: 'chat-meta' },
                      h('span', { class: 'chat-who' }, 'Encore')),
                    body);
    log.append(mine, reply);
    scrollToEnd();
    live.textContent = 'Encore is replying…';

    let done = null;
    let tokens = 0;
    try {
      const res = await api.fetch(
        `${SESSIONS}/${encodeURIComponent(sessionId)}/messages`, {
          method: 'POST',
          headers: {
            'Content-Type': 'application/json',
            Accept: 'text/event-stream',
          },
          body: JSON.stringify({ content }),
          signal: ctrl.signal,
        });

      if (!res.ok) {
        const sentence = await problemSentence(res);
        reply.replaceWith(errorItem(sentence));
        /* the question was not taken: give it back to edit or resend */
        if (res.status === 422 || res.status === 429) {
          mine.remove();
          if (input.value.trim() === '') {
            input.value = content;
          }
        }
        live.textContent = sentence;
        scrollToEnd();
        return false;
      }

      mine.classList.remove('chat-pending');
      const type = res.headers.get('Content-Type') || '';
      if (type.startsWith('text/event-stream') && res.body) {
        await readEvents(res.body, (name, data) => {
          if (name === 'token') {
            const t = parseJson(data);
            if (t && typeof t.content === 'string') {
              text.appendData(t.content);
              tokens += 1;
              if (tokens === 1 || tokens % 8 === 0) {
                scrollToEnd();
              }
            }
          } else if (name === 'done') {
            done = parseJson(data);
          } else if (name === 'error') {
            const p = parseJson(data);
            body.after(incompleteNote(p && (p.detail || p.title)
              ? `The reply stopped: ${p.detail || p.title}`
              : undefined));
          }
        });
      } else {
        /* a plain 201 {user_message, assistant_message} */
        const j = await res.json();
        done = j && j.assistant_message ? j.assistant_message : null;
      }
    } catch (err) {
      if (ctrl.signal.aborted) {
        typing.remove();
        if (!left) {
          reply.append(incompleteNote('You stopped this reply.'));
          live.textContent = 'Reply stopped.';
        }
        return false;
      }
      typing.remove();
      reply.append(incompleteNote(`The connection was lost: ${messageOf(err)}`));
      live.textContent = 'The reply was interrupted.';
      return false;
    } finally {
      setStreaming(null);
    }

    if (done) {
      const item = messageItem({ ...done, role: 'assistant' });
      reply.replaceWith(item);
      /* the words as shown, not their Markdown (escapes, link syntax) */
      const shown = item.querySelector('.chat-body');
      live.textContent = `Encore replied: ${shown ? shown.textContent : ''}${
        done.incomplete ? ' (the reply was cut short)' : ''}`;
    } else {
      typing.remove();
      body.classList.remove('chat-streaming');
      if (!reply.querySelector('.chat-incomplete')) {
        reply.append(incompleteNote());
      }
      live.textContent = 'The reply ended early.';
    }
    scrollToEnd();
    return true;
  }

  function errorItem(sentence) {
    /* the status region says it; an <li> may not be an alert */
    return h('li', { class: 'chat-msg chat-error' },
             h('p', { class: 'chat-meta' },
               h('span', { class: 'chat-who' }, 'Encore')),
             h('p', { class: 'chat-body' }, sentence));
  }

  olderChats.addEventListener('click', () => loadSessions(true));

  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      composer.requestSubmit();
    }
  });

  stop.addEventListener('click', () => {
    if (streaming) {
      streaming.abort();
      input.focus();
    }
  });

  composer.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearProblems(composer);
    const content = input.value;
    if (content.trim() === '') {
      showFormProblem(composer, {
        status: 422, message: 'Write a message first.',
        problem: { errors: [{ field: 'content', message: 'Write a message first.' }] },
      });
      return;
    }
    if (streaming) {
      return;
    }

    if (!id) {
      /* the first question opens a session named after it */
      send.disabled = true;
      try {
        const s = await api.post(SESSIONS, { title: titleFrom(content) });
        pending = { sessionId: s.id, content };
        ctx.navigate(`/chat/${encodeURIComponent(s.id)}`);
      } catch (err) {
        send.disabled = false;
        showFormProblem(composer, err);
      }
      return;
    }

    input.value = '';
    await ask(id, content);
    if (!left) {
      input.focus();
      loadSessions();
    }
  });

  loadSessions();

  if (!id) {
    log.append(h('li', { class: 'chat-msg chat-intro' },
                 h('div', { class: 'chat-body' },
                   h('p', null, 'Ask about the artists, albums and songs in the catalog. '
                     + 'Encore answers from what it finds and links its sources.'),
                   h('ul', { class: 'chat-examples' },
                     ['What albums by Iron Maiden are there?',
                      'Which bands play progressive rock?',
                      'Tell me about Kind of Blue.'].map((q) => h('li', null,
                       h('button', {
                         type: 'button', class: 'linklike',
                         onclick: () => { input.value = q; input.focus(); },
                       }, q)))))));
    return () => {
      left = true;
      abort.abort();
    };
  }

  /* an open session: its title and messages, then any pending question */
  try {
    const [s, msgs] = await Promise.all([
      api.get(`${SESSIONS}/${encodeURIComponent(id)}`),
      getAll(`${SESSIONS}/${encodeURIComponent(id)}/messages`),
    ]);
    if (left) {
      return undefined;
    }
    heading.textContent = sessionTitle(s);
    ctx.setTitle(sessionTitle(s));
    for (const m of msgs) {
      log.append(messageItem(m));
    }
    headActions.append(confirmDelete({
      label: 'Delete chat',
      question: `Delete “${sessionTitle(s)}” and all its messages?`,
      onConfirm: async () => {
        await api.del(`${SESSIONS}/${encodeURIComponent(id)}`);
        ctx.announce('Chat deleted.');
        ctx.navigate('/chat');
      },
    }));
    scrollToEnd();
  } catch (err) {
    clear(log);
    composer.remove();
    heading.textContent = isNotFound(err) ? 'Chat not found' : 'Chat';
    log.after(failure(err, isNotFound(err) ? 'This chat does not exist'
                                           : 'The chat could not be loaded'));
    return () => { left = true; abort.abort(); };
  }

  if (pending && pending.sessionId === id) {
    const p = pending;
    pending = null;
    ask(id, p.content).then(() => {
      if (!left) {
        loadSessions();
      }
    });
  }

  return () => {
    left = true;
    abort.abort();
  };
}

export const chatSession = {
  path: '/chat/:id',
  title: 'Chat',
  auth: 'user',
  render,
};

export default {
  path: '/chat',
  title: 'Chat',
  auth: 'user',
  render,
};
