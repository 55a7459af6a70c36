// The chat page. Against the real chat worker (when the stack runs one):
// a reply streamed word by word appears in the page incrementally, then
// as the stored message with its sources. Against a stubbed API (always):
// the reply's Markdown, sources as links, a reply cut short said so, and
// the edge's 429 and the worker's 503 shown as messages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import {
  BASE, api, checkA11y, eventually, launch, newPage, registerUser, screenshots,
  settled, signIn, token,
} from './support.mjs';
import { assertNoErrors } from './pages_support.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

function sse(tokens, done) {
  return tokens.map((t) => `event: token\ndata: ${JSON.stringify({ content: t })}\n\n`).join('')
    + `event: done\ndata: ${JSON.stringify(done)}\n\n`;
}

// the chat API of one session, answered by the test
async function stubChat(page, answers) {
  const session = {
    id: randomUUID(), title: 'What albums by Iron Maiden are there?',
    created_at: '2026-12-02T10:00:00Z', updated_at: '2026-12-02T10:00:00Z',
  };
  const state = { created: 0, posts: [] };
  await page.route('**/api/v1/chat/sessions**', async (route) => {
    const req = route.request();
    const url = new URL(req.url());
    const json = (status, body, headers = {}) => route.fulfill({
      status, headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    if (url.pathname === '/api/v1/chat/sessions') {
      if (req.method() === 'POST') {
        state.created += 1;
        state.title = req.postDataJSON().title;
        return json(201, { ...session, title: state.title }, { Location: `/api/v1/chat/sessions/${session.id}` });
      }
      return json(200, { items: state.created ? [{ ...session, title: state.title }] : [], next_cursor: null });
    }
    if (url.pathname === `/api/v1/chat/sessions/${session.id}`) {
      return json(200, { ...session, title: state.title || session.title });
    }
    if (url.pathname === `/api/v1/chat/sessions/${session.id}/messages`) {
      if (req.method() === 'GET') return json(200, { items: [], next_cursor: null });
      state.posts.push({ body: req.postDataJSON(), accept: req.headers().accept });
      const a = answers.shift();
      return route.fulfill(a);
    }
    return route.fallback();
  });
  return { session, state };
}

test('chat: replies, sources, a cut reply and problems (stubbed API)', async () => {
  const user = await registerUser('chat');
  const page = await newPage(browser);
  const sources = [
    { type: 'album', id: randomUUID(), title: 'The Number of the Beast' },
    { type: 'artist', id: randomUUID(), title: 'Iron Maiden' },
    { type: 'track', id: randomUUID(), title: 'Run to the Hills' },
  ];
  const stored = (content, extra) => ({
    id: randomUUID(), session_id: 'x', role: 'assistant', content,
    created_at: '2026-12-02T10:00:01Z', ...extra,
  });
  const { session, state } = await stubChat(page, [
    { status: 200, headers: { 'Content-Type': 'text/event-stream' },
      body: sse(['Iron ', 'Maiden ', 'released ', '**The Number of the Beast**.'],
        stored('Iron Maiden released **The Number of the Beast**.', { sources })) },
    { status: 429, headers: { 'Content-Type': 'application/problem+json', 'Retry-After': '7' },
      body: JSON.stringify({ type: 'about:blank', title: 'Too Many Requests', status: 429, detail: 'slow down' }) },
    { status: 503, headers: { 'Content-Type': 'application/problem+json', 'Retry-After': '3' },
      body: JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'the model is busy' }) },
    { status: 200, headers: { 'Content-Type': 'text/event-stream' },
      body: sse(['It ', 'was '], stored('It was ', { incomplete: true })) },
  ]);
  await signIn(page, user);

  await page.getByRole('link', { name: 'Chat', exact: true }).click();
  await page.waitForURL(`${BASE}/chat`);
  await settled(page);
  assert.equal(await page.locator('h1').innerText(), 'Ask Encore');
  await checkA11y(page, '/chat');
  await screenshots(page, 'chat');

  // an example question fills the box; Enter sends it
  await page.getByRole('button', { name: 'What albums by Iron Maiden are there?' }).click();
  const box = page.getByRole('textbox', { name: 'Your message' });
  assert.equal(await box.inputValue(), 'What albums by Iron Maiden are there?');
  await box.press('Enter');
  await page.waitForURL(`${BASE}/chat/${session.id}`);
  assert.equal(state.title, 'What albums by Iron Maiden are there?');

  const reply = page.locator('.chat-assistant').last();
  await reply.locator('strong', { hasText: 'The Number of the Beast' }).waitFor();
  assert.equal(state.posts[0].accept, 'text/event-stream');
  assert.deepEqual(state.posts[0].body, { content: 'What albums by Iron Maiden are there?' });
  const links = reply.locator('.chat-sources a');
  assert.deepEqual(await links.allInnerTexts(), sources.map((s) => s.title));
  assert.deepEqual(await links.evaluateAll((as) => as.map((a) => a.getAttribute('href'))),
    [`/albums/${sources[0].id}`, `/artists/${sources[1].id}`, `/tracks/${sources[2].id}`]);
  // screen readers hear the reply once, whole
  await page.waitForFunction(() => /Encore replied: Iron Maiden released/
    .test(document.querySelector('.chat-convo [role="status"]').textContent));
  // the new chat is listed, marked as the one open
  await page.locator('.chat-sessions a[aria-current="page"]',
    { hasText: 'What albums by Iron Maiden are there?' }).waitFor();
  await checkA11y(page, '/chat/:id');
  await screenshots(page, 'chat-session');

  // the edge's limit: said, and the question given back to send again
  await box.fill('And their live albums?');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('.chat-error', { hasText: 'try again in 7 seconds' }).waitFor();
  assert.equal(await box.inputValue(), 'And their live albums?');

  // the model unavailable
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('.chat-error', { hasText: 'not available right now' }).waitFor();
  await page.locator('.chat-error', { hasText: 'try again in 3 seconds' }).waitFor();

  // a reply cut short says so
  await box.fill('When?');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('.chat-assistant', { hasText: 'It was' })
    .locator('.chat-incomplete').waitFor();
  await checkA11y(page, '/chat/:id with problems');
  await screenshots(page, 'chat-problems');
  assertNoErrors(page);
  await page.context().close();
});

test('chat: each streamed token is shown before the next is sent; Stop cancels (stubbed stream)', async () => {
  // a stream the test writes one token at a time: the next token goes
  // out only once the page shows the previous one (no clock involved)
  const waiting = [];
  const arrived = [];
  // the next streamed answer the page asked for: {res, closed}
  const nextStream = () => (arrived.length
    ? Promise.resolve(arrived.shift())
    : new Promise((resolve) => waiting.push(resolve)));
  const server = http.createServer((req, r) => {
    req.resume();
    r.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    r.flushHeaders();
    const stream = { res: r, closed: new Promise((resolve) => r.on('close', resolve)) };
    if (waiting.length) waiting.shift()(stream);
    else arrived.push(stream);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();

  const user = await registerUser('chats');
  const page = await newPage(browser);
  const { session } = await stubChat(page, []);
  // the messages POST goes to the test's server instead
  await page.route(`**/api/v1/chat/sessions/${session.id}/messages`, (route) => (
    route.request().method() === 'POST'
      ? route.continue({ url: `http://127.0.0.1:${port}/stream` })
      : route.fallback()));
  await signIn(page, user);
  await page.goto(`${BASE}/chat/${session.id}`);
  await settled(page);

  const box = page.getByRole('textbox', { name: 'Your message' });
  await box.fill('Tell me about Powerslave.');
  await page.getByRole('button', { name: 'Send' }).click();
  const { res } = await nextStream();
  const words = ['Powerslave ', 'is ', 'the ', 'fifth ', 'studio ', 'album ', 'by ', 'Iron ', 'Maiden.'];
  let shown = '';
  const streaming = page.locator('.chat-assistant .chat-streaming');
  for (const w of words) {
    res.write(`event: token\ndata: ${JSON.stringify({ content: w })}\n\n`);
    shown += w;
    await page.waitForFunction((text) => {
      const el = document.querySelector('.chat-assistant .chat-streaming');
      return el && el.textContent.startsWith(text);
    }, shown);
    // while it streams: Stop is offered, Send is not
    assert.equal(await page.getByRole('button', { name: 'Stop' }).isVisible(), true);
    assert.equal(await page.getByRole('button', { name: 'Send' }).isDisabled(), true);
  }
  assert.equal(await streaming.count(), 1);
  // the status region has not read the tokens: it says a reply is coming
  assert.equal(await page.locator('.chat-convo [role="status"]').innerText(), 'Encore is replying…');
  await screenshots(page, 'chat-streaming');
  res.end(`event: done\ndata: ${JSON.stringify({
    id: randomUUID(), session_id: session.id, role: 'assistant',
    content: shown.trim(), created_at: '2026-12-02T10:00:02Z', sources: [],
  })}\n\n`);
  await page.locator('.chat-assistant .chat-body:not(.chat-streaming)',
    { hasText: 'Powerslave is the fifth studio album by Iron Maiden.' }).waitFor();
  assert.equal(await streaming.count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Stop' }).isVisible(), false);

  // Stop: the request is cancelled (the server sees the client leave),
  // what arrived stays, marked as stopped
  await box.fill('And the one after?');
  await box.press('Enter');
  const second = await nextStream();
  second.res.write(`event: token\ndata: ${JSON.stringify({ content: 'Live After Death ' })}\n\n`);
  await page.locator('.chat-streaming', { hasText: 'Live After Death' }).waitFor();
  await page.getByRole('button', { name: 'Stop' }).click();
  await second.closed;
  await page.locator('.chat-assistant', { hasText: 'Live After Death' })
    .getByText('You stopped this reply.').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Send' }).isDisabled(), false);
  assert.equal(await page.getByRole('button', { name: 'Stop' }).isVisible(), false);
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')),
    'Your message');
  assertNoErrors(page);
  await page.context().close();
  server.close();
});

test('chat: a streamed reply appears incrementally (the chat worker)', async (t) => {
  const user = await registerUser('chatw');
  const bearer = await token(user);
  // older chats first: more than the list's first page of 50
  for (let i = 1; i <= 50; i++) {
    const r = await api('POST', '/api/v1/chat/sessions', { title: `Old chat ${i}` }, bearer);
    if (r.status !== 201) {
      // the stack runs no chat worker
      t.skip(`no chat worker in the stack: POST /api/v1/chat/sessions answered ${r.status}`);
      return;
    }
  }
  // untitled: the first question names it
  const probe = await api('POST', '/api/v1/chat/sessions', {}, bearer);
  assert.equal(probe.status, 201, probe.text);
  // the demo catalog reached search (fed by events): the reply's sources
  const found = await eventually(async () => {
    const r = await api('GET', '/api/v1/search?q=Iron%20Maiden&type=album');
    return r.status === 200 && r.json.items.length > 0;
  });
  assert.ok(found, 'search finds the demo catalog\'s Iron Maiden albums');
  const page = await newPage(browser);
  await signIn(page, user);
  await page.goto(`${BASE}/chat/${probe.json.id}`);
  await settled(page);

  // every length the reply had while it was being written
  await page.evaluate(() => {
    window.replyLengths = [];
    const log = document.querySelector('.chat-log');
    new MutationObserver(() => {
      // the streamed text (its first node), not the typing indicator
      const s = log.querySelector('.chat-streaming');
      if (s && s.firstChild) window.replyLengths.push(s.firstChild.textContent.length);
    }).observe(log, { childList: true, subtree: true, characterData: true });
  });
  const box = page.getByRole('textbox', { name: 'Your message' });
  await box.fill('What albums by Iron Maiden are there?');
  await box.press('Enter');
  const reply = page.locator('.chat-assistant').last();
  await reply.locator('.chat-body:not(.chat-streaming)').waitFor({ timeout: 60000 });
  const final = (await reply.locator('.chat-body').innerText()).length;
  const lengths = await page.evaluate(() => window.replyLengths);
  const partial = [...new Set(lengths.filter((n) => n > 0 && n < final))];
  console.log(`chat: the reply grew through ${partial.length} partial lengths to ${final} characters`);
  assert.ok(partial.length >= 3,
    `the reply appeared at once, not incrementally: lengths seen ${JSON.stringify(lengths)}`);
  assert.equal(await reply.locator('.chat-incomplete').count(), 0);
  // grounded: its sources are the catalog's albums, as links
  assert.ok(await reply.locator('.chat-sources a[href^="/albums/"]').count() > 0,
    'the reply links the albums it drew on');
  // and the session is named by the question
  await page.locator('h1', { hasText: 'What albums by Iron Maiden are there?' }).waitFor();
  // 51 chats: the first 50 listed, then the oldest on asking
  const chats = page.getByRole('navigation', { name: 'Your chats' }).getByRole('listitem');
  await page.getByRole('link', { name: 'Old chat 2', exact: true }).waitFor();
  assert.equal(await chats.count(), 50);
  await page.getByRole('button', { name: 'Older chats' }).click();
  await page.getByRole('link', { name: 'Old chat 1', exact: true }).waitFor();
  assert.equal(await chats.count(), 51);
  assert.equal(await page.getByRole('button', { name: 'Older chats' }).isVisible(), false);
  await checkA11y(page, '/chat/:id streamed');
  await screenshots(page, 'chat-streamed');
  assertNoErrors(page);
  await page.context().close();
});
