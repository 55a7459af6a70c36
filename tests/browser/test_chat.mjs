// The chat page against the real stack: the edge, the chat worker and
// search. As the stack runs it (no model configured), the worker answers
// from retrieval alone, word by word. Then, for the rest of the file, the
// worker is pointed at the fake model provider (tests/fakes/fake_llm.py:
// the provider is outside the project), whose scenario each question
// picks with a marker ("[[fake:slow]]"): a reply shown as it streams, the
// first words on screen before the provider sent its last; links the
// model wrote to other sites shown as text, not links; Stop cancelling
// the provider's request; a reply cut short said so; the provider's 429
// as the worker's 503 with its Retry-After; the edge's own per-user limit
// (on a private edge with a limit of the test's own); sources as links
// once the reply is done.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, api, checkA11y, eventually, launch, newPage, registerUser, screenshots,
  settled, signIn, token,
} from './support.mjs';
import { assertNoErrors } from './pages_support.mjs';
import { privateEdge, restartChat, startFake } from './chat_support.mjs';

const SLOW_TOKENS = 40;      // fake_llm.py's "slow": 40 tokens

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// the href of a source as the page links it
function sourceHref(s) {
  const kind = { artist: 'artists', album: 'albums', track: 'tracks', post: 'posts' }[s.type];
  return `/${kind}/${s.id}`;
}

// the stored messages of a session (the API, as its owner)
async function stored(bearer, sid) {
  const r = await api('GET', `/api/v1/chat/sessions/${sid}/messages?limit=100`, undefined, bearer);
  assert.equal(r.status, 200, r.text);
  return r.json.items;
}

// the demo catalog reached search (fed by events): the replies' sources
async function catalogSearchable() {
  const found = await eventually(async () => {
    const r = await api('GET', '/api/v1/search?q=Iron%20Maiden&type=album');
    return r.status === 200 && r.json.items.length > 0;
  });
  assert.ok(found, 'search finds the demo catalog\'s Iron Maiden albums');
}

// the page records every length the reply being written had, with the
// time it had it (the browser's clock: the same machine as the fake's)
async function watchReply(page) {
  await page.evaluate(() => {
    window.replySeen = [];
    const log = document.querySelector('.chat-log');
    new MutationObserver(() => {
      // the streamed text (its first node), not the typing indicator
      const s = log.querySelector('.chat-streaming');
      if (s && s.firstChild) window.replySeen.push([s.firstChild.textContent.length, Date.now()]);
    }).observe(log, { childList: true, subtree: true, characterData: true });
  });
}

test('chat: a retrieval-only reply appears incrementally (the stack\'s chat worker)', async () => {
  const user = await registerUser('chatw');
  const bearer = await token(user);
  // older chats first: more than the list's first page of 50
  for (let i = 1; i <= 50; i++) {
    const r = await api('POST', '/api/v1/chat/sessions', { title: `Old chat ${i}` }, bearer);
    assert.equal(r.status, 201, `the stack's chat worker: ${r.status} ${r.text}`);
  }
  // untitled: the first question names it
  const probe = await api('POST', '/api/v1/chat/sessions', {}, bearer);
  assert.equal(probe.status, 201, probe.text);
  await catalogSearchable();
  const page = await newPage(browser);
  await signIn(page, user);
  await page.goto(`${BASE}/chat/${probe.json.id}`);
  await settled(page);

  // every length the reply had while it was being written
  await watchReply(page);
  const box = page.getByRole('textbox', { name: 'Your message' });
  await box.fill('What albums by Iron Maiden are there?');
  await box.press('Enter');
  const reply = page.locator('.chat-assistant').last();
  await reply.locator('.chat-body:not(.chat-streaming)').waitFor({ timeout: 60000 });
  const final = (await reply.locator('.chat-body').innerText()).length;
  const lengths = (await page.evaluate(() => window.replySeen)).map(([n]) => n);
  const partial = [...new Set(lengths.filter((n) => n > 0 && n < final))];
  console.log(`chat: the reply grew through ${partial.length} partial lengths to ${final} characters`);
  assert.ok(partial.length >= 3,
    `the reply appeared at once, not incrementally: lengths seen ${JSON.stringify(lengths)}`);
  assert.equal(await reply.locator('.chat-incomplete').count(), 0);
  // grounded: its sources are the catalog's albums, as links
  assert.ok(await reply.locator('.chat-sources a[href^="/albums/"]').count() > 0,
    'the reply links the albums it drew on');
  // screen readers hear the words as shown: the retrieval-only text
  // escapes Markdown in titles ("Rock In Rio \\[CD1\\]"), the status not
  const said = await page.locator('.chat-convo [role="status"]').textContent();
  assert.match(said, /^Encore replied: /);
  assert.ok(!said.includes('\\'), `the status reads Markdown escapes: ${said}`);
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

describe('chat with a model (the fake provider)', () => {
  let fake;
  let user;
  let bearer;
  before(async () => {
    fake = await startFake();
    await restartChat({
      ENCORE_PROVIDER_URL: fake.base, ENCORE_PROVIDER_MODEL: 'fake-model',
      ENCORE_PROVIDER_FIRST_TOKEN_TIMEOUT_MS: '2000', ENCORE_PROVIDER_RETRIES: '0',
    });
    user = await registerUser('chatf');
    bearer = await token(user);
  });
  after(async () => {
    // the worker as the stack runs it, whatever happened
    try {
      await restartChat();
    } finally {
      await fake?.stop();
    }
  });

  test('a reply shown as it streams, then with its sources as links', async () => {
    await catalogSearchable();
    const page = await newPage(browser);
    await signIn(page, user);
    await page.getByRole('link', { name: 'Chat', exact: true }).click();
    await page.waitForURL(`${BASE}/chat`);
    await settled(page);
    assert.equal(await page.locator('h1').innerText(), 'Ask Encore');
    await checkA11y(page, '/chat');
    await screenshots(page, 'chat');

    // an example question fills the box; Enter sends it (with the
    // fake's marker: slow, 40 tokens)
    await page.getByRole('button', { name: 'What albums by Iron Maiden are there?' }).click();
    const box = page.getByRole('textbox', { name: 'Your message' });
    assert.equal(await box.inputValue(), 'What albums by Iron Maiden are there?');
    const question = 'What albums by Iron Maiden are there? [[fake:slow]]';
    await box.fill(question);
    await box.press('Enter');
    await page.waitForURL(/\/chat\/[0-9a-f-]{36}$/);
    const sid = page.url().split('/').pop();
    await watchReply(page);

    // the first words are on screen while the provider is still sending
    const streaming = page.locator('.chat-assistant .chat-streaming');
    await page.waitForFunction(() => {
      const s = document.querySelector('.chat-assistant .chat-streaming');
      return s && s.firstChild && s.firstChild.textContent.length > 0;
    });
    const early = await fake.request(question);
    assert.ok(early.tokens_sent < SLOW_TOKENS && !early.finished,
      `the page shows the reply before the provider sent its last token: ${JSON.stringify(
        { tokens_sent: early.tokens_sent, finished: early.finished })}`);
    // while it streams: Stop is offered, Send is not; no sources yet; the
    // status region does not read the tokens, it says a reply is coming
    assert.equal(await page.getByRole('button', { name: 'Stop' }).isVisible(), true);
    assert.equal(await page.getByRole('button', { name: 'Send' }).isDisabled(), true);
    assert.equal(await page.locator('.chat-assistant .chat-sources a').count(), 0);
    assert.equal(await page.locator('.chat-convo [role="status"]').innerText(), 'Encore is replying…');
    await screenshots(page, 'chat-streaming');

    const reply = page.locator('.chat-assistant').last();
    await reply.locator('.chat-body:not(.chat-streaming)').waitFor({ timeout: 60000 });
    assert.equal(await streaming.count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Stop' }).isVisible(), false);
    const req = await fake.request(question);
    assert.ok(req.finished && req.tokens_sent === SLOW_TOKENS, JSON.stringify(req));
    // it grew on screen, and its first words came before the provider's last
    const seen = await page.evaluate(() => window.replySeen);
    const final = (await reply.locator('.chat-body').innerText()).length;
    const partial = [...new Set(seen.map(([n]) => n).filter((n) => n > 0 && n < final))];
    console.log(`chat: the reply grew through ${partial.length} partial lengths to ${final} characters`);
    assert.ok(partial.length >= 3, `the reply appeared at once: lengths seen ${JSON.stringify(seen)}`);
    const firstShown = seen.find(([n]) => n > 0)[1] / 1000;
    assert.ok(firstShown < req.last_token_at,
      `first words shown at ${firstShown}, the provider's last token at ${req.last_token_at}`);

    // done: the stored reply, its sources as links to their pages
    const [, answer] = await stored(bearer, sid);
    assert.equal(answer.role, 'assistant');
    assert.equal(answer.incomplete, false);
    assert.ok(answer.sources.length > 0, `grounded: ${JSON.stringify(answer)}`);
    const links = reply.locator('.chat-sources a');
    assert.deepEqual(await links.allInnerTexts(), answer.sources.map((s) => s.title));
    assert.deepEqual(await links.evaluateAll((as) => as.map((a) => a.getAttribute('href'))),
      answer.sources.map(sourceHref));
    // the model was given them (the fake names them in its reply)
    assert.ok(answer.content.includes(answer.sources[0].title), answer.content);
    // screen readers hear the reply once, whole
    await page.waitForFunction(() => /^Encore replied: From the sources/
      .test(document.querySelector('.chat-convo [role="status"]').textContent));
    // the new chat is listed, named by the question, marked as the one open
    await page.locator('.chat-sessions a[aria-current="page"]', { hasText: question }).waitFor();
    await page.locator('h1', { hasText: question }).waitFor();
    // a source link leads to its page
    await checkA11y(page, '/chat/:id');
    await screenshots(page, 'chat-session');
    await links.first().click();
    await page.waitForURL(`${BASE}${sourceHref(answer.sources[0])}`);
    await settled(page);
    assertNoErrors(page);
    await page.context().close();
  });

  test('links a model wrote: off the site shown as text, not links; on the site, links', async () => {
    const s = await api('POST', '/api/v1/chat/sessions', { title: 'Links' }, bearer);
    assert.equal(s.status, 201, s.text);
    const page = await newPage(browser);
    await signIn(page, user);
    await page.goto(`${BASE}/chat/${s.json.id}`);
    await settled(page);
    const box = page.getByRole('textbox', { name: 'Your message' });
    await box.fill('How do I get my account back? [[fake:links]] links1');
    await box.press('Enter');
    const reply = page.locator('.chat-assistant').last();
    await reply.locator('.chat-body:not(.chat-streaming)').waitFor({ timeout: 60000 });
    assert.equal((await fake.request('links1')).scenario, 'links');

    // as shown when it is done, and as shown again from the store
    for (const when of ['done', 'reloaded']) {
      const body = reply.locator('.chat-body');
      await body.waitFor();
      // the one link left is the site's own
      const hrefs = await body.locator('a').evaluateAll((as) => as.map((a) => a.href));
      assert.deepEqual(hrefs, [`${BASE}/search?q=Powerslave`], `${when}: the reply's links`);
      assert.equal(await body.getByRole('link', { name: 'search for Powerslave' }).count(), 1);
      // no link and no image anywhere on the page leads off the site
      const offSite = await page.evaluate(() => [...document.querySelectorAll('a[href], img, [src]')]
        .map((e) => e.href || e.src || e.getAttribute('src'))
        .filter((u) => u && new URL(u, location.href).origin !== location.origin));
      assert.deepEqual(offSite, [], `${when}: nothing off the site`);
      assert.equal(await page.locator('.chat-log img').count(), 0);
      // and nothing is hidden: the words and their addresses are there
      const text = await body.innerText();
      for (const shown of [
        'Reset your Encore password here (https://evil.example/reset)',
        'the cover (https://evil.example/cover.png)',
        'https://evil.example/auto', 'https://evil.example/bare',
        'the help desk (//evil.example/help)', 'mail us (mailto:x@evil.example)',
      ]) {
        assert.ok(text.includes(shown), `${when}: ${JSON.stringify(shown)} in ${JSON.stringify(text)}`);
      }
      if (when === 'done') {
        await page.reload();
        await settled(page);
      }
    }
    await checkA11y(page, '/chat/:id with links');
    await screenshots(page, 'chat-links');
    // the site's own link works as any other
    await reply.getByRole('link', { name: 'search for Powerslave' }).click();
    await page.waitForURL(`${BASE}/search?q=Powerslave`);
    await settled(page);
    assertNoErrors(page);
    await page.context().close();
  });

  test('Stop cancels the reply at the provider; a cut reply and a refused one are said', async () => {
    const s = await api('POST', '/api/v1/chat/sessions', { title: 'Stop and problems' }, bearer);
    assert.equal(s.status, 201, s.text);
    const sid = s.json.id;
    const page = await newPage(browser);
    await signIn(page, user);
    await page.goto(`${BASE}/chat/${sid}`);
    await settled(page);
    const box = page.getByRole('textbox', { name: 'Your message' });
    const status = page.locator('.chat-convo [role="status"]');

    // Stop: what arrived stays, marked as stopped; the provider's request
    // is closed before it finished
    const long = 'Tell me a long story about Powerslave [[fake:slow]] stop1';
    await box.fill(long);
    await box.press('Enter');
    await page.locator('.chat-assistant .chat-streaming').waitFor();
    await page.waitForFunction(() => {
      const s = document.querySelector('.chat-assistant .chat-streaming');
      return s && s.firstChild && s.firstChild.textContent.length > 0;
    });
    await page.getByRole('button', { name: 'Stop' }).click();
    const stopped = page.locator('.chat-assistant').last();
    await stopped.getByText('You stopped this reply.').waitFor();
    assert.equal(await status.innerText(), 'Reply stopped.');
    assert.equal(await page.getByRole('button', { name: 'Send' }).isDisabled(), false);
    assert.equal(await page.getByRole('button', { name: 'Stop' }).isVisible(), false);
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')),
      'Your message');
    const closed = await eventually(async () => (await fake.request('stop1')).client_closed, 120);
    assert.ok(closed, 'the provider saw the request closed');
    const req = await fake.request('stop1');
    assert.ok(!req.finished && req.tokens_sent < SLOW_TOKENS, JSON.stringify(req));
    // stored as far as it came, marked incomplete: so the page shows it
    // after a reload
    const kept = await eventually(async () => {
      const items = await stored(bearer, sid);
      return items.length === 2 && items[1];
    }, 120);
    assert.ok(kept && kept.incomplete === true, JSON.stringify(kept));
    await page.reload();
    await settled(page);
    await page.locator('.chat-assistant').last().locator('.chat-incomplete',
      { hasText: 'This reply was cut short before it finished.' }).waitFor();

    // the provider's stream cut midway: what came, marked incomplete
    await box.fill('And the one after? [[fake:cut]] cut1');
    await box.press('Enter');
    const cut = page.locator('.chat-assistant').last();
    await cut.locator('.chat-body:not(.chat-streaming)').waitFor();
    await cut.locator('.chat-incomplete', { hasText: 'This reply was cut short before it finished.' }).waitFor();
    assert.ok((await cut.locator('.chat-body').innerText()).length > 0);
    await page.waitForFunction(() => /\(the reply was cut short\)$/
      .test(document.querySelector('.chat-convo [role="status"]').textContent));

    // the provider's 429: the worker's 503 with the provider's Retry-After
    await box.fill('Anything else? [[fake:r429]] rl1');
    await box.press('Enter');
    const refused = page.locator('.chat-error').last();
    await refused.waitFor();
    assert.equal(await refused.locator('.chat-body').innerText(),
      'The assistant is not available right now. Please try again in 7 seconds.');
    assert.equal(await status.innerText(),
      'The assistant is not available right now. Please try again in 7 seconds.');
    assert.equal((await fake.request('rl1')).scenario, 'r429');
    assert.equal(await page.getByRole('button', { name: 'Send' }).isDisabled(), false);
    await checkA11y(page, '/chat/:id with problems');
    await screenshots(page, 'chat-problems');
    assertNoErrors(page);
    await page.context().close();
  });

  test('the edge\'s per-user limit is said, and the question given back', async () => {
    // a private edge in front of the same workers, one question a minute
    // (the stack's own edge lifts the limit for the tests: auto/test)
    const edge = await privateEdge('1r/m');
    try {
      const page = await newPage(browser);
      await signIn(page, user, edge.base);
      const s = await api('POST', '/api/v1/chat/sessions', { title: 'Limited' }, bearer);
      assert.equal(s.status, 201, s.text);
      await page.goto(`${edge.base}/chat/${s.json.id}`);
      await settled(page);
      const box = page.getByRole('textbox', { name: 'Your message' });
      await box.fill('Who are Iron Maiden? lim1');
      await box.press('Enter');
      await page.locator('.chat-assistant .chat-body:not(.chat-streaming)').waitFor();
      // the second within the minute: the edge's 429
      await box.fill('And Deep Purple? lim2');
      await box.press('Enter');
      const refused = page.locator('.chat-error');
      await refused.waitFor();
      assert.equal(await refused.locator('.chat-body').innerText(),
        'You are sending messages faster than the chat allows. Please try again in 1 second.');
      // the question is given back to send again, and was never asked
      assert.equal(await box.inputValue(), 'And Deep Purple? lim2');
      assert.equal(await page.locator('.chat-user', { hasText: 'lim2' }).count(), 0);
      assert.equal((await fake.requests()).filter((r) => r.messages.some(
        (m) => m.role === 'user' && String(m.content).includes('lim2'))).length, 0);
      await checkA11y(page, '/chat/:id limited');
      assertNoErrors(page);
      await page.context().close();
    } finally {
      await edge.stop();
    }
  });
});
