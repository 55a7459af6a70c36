// A post and a comment whose Markdown carries <script>, javascript: links
// and onerror attributes render inert: no dialog, no handler attribute, no
// javascript: URL, no script element, and the CSP reports nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, api, launch, newPage, checkA11y, screenshots, settled, registerUser, token, eventually,
} from './support.mjs';

const EVIL = [
  '# Totally normal review',
  '',
  '<script>window.__xss = "script"; alert("script")</script>',
  '',
  '<img src="x" onerror="window.__xss = \'img\'; alert(\'img\')">',
  '',
  '[click me](javascript:window.__xss=\'link\';alert(\'link\'))',
  '[shout](JAVASCRIPT:alert(1)) and [tab](java\tscript:alert(1)) and [enc](&#106;avascript:alert(1))',
  '',
  '<a href="javascript:alert(\'raw\')" onclick="alert(\'raw\')">raw link</a>',
  '<svg onload="alert(\'svg\')"></svg><iframe src="javascript:alert(\'frame\')"></iframe>',
  '<div style="background:url(javascript:alert(1))" onmouseover="alert(1)">hover</div>',
  '![pic](x" onerror="alert(\'img2\'))',
  '[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
  '',
  'A [fine link](https://example.org/ok) and [mail](mailto:a@example.org) and [here](/artists).',
].join('\n');

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser.close(); });

async function inert(page) {
  return page.evaluate(() => {
    const main = document.getElementById('main');
    const withHandlers = [...main.querySelectorAll('*')]
      .filter((el) => [...el.attributes].some((a) => a.name.toLowerCase().startsWith('on')))
      .map((el) => el.outerHTML.slice(0, 80));
    const badLinks = [...document.querySelectorAll('[href], [src], [action], [formaction]')]
      .map((el) => el.getAttribute('href') || el.getAttribute('src') || el.getAttribute('action') || el.getAttribute('formaction'))
      .filter((u) => /^\s*(javascript|data|vbscript):/i.test(u.replace(/[\s\u0000-\u001f]/g, '')));
    return {
      xss: window.__xss || null,
      withHandlers,
      badLinks,
      scripts: main.querySelectorAll('script, iframe, svg, object, embed').length,
      styles: main.querySelectorAll('[style]').length,
    };
  });
}

test('a post and a comment of hostile Markdown render inert', async () => {
  const user = await registerUser('xss');
  const t = await token(user);
  const post = await api('POST', '/api/v1/posts', {
    title: '<img src=x onerror=alert("title")>', body: EVIL, status: 'published',
  }, t);
  assert.equal(post.status, 201, post.text);
  const c = await eventually(async () => {
    const r = await api('POST', `/api/v1/posts/${post.json.id}/comments`, { body: EVIL }, t);
    return r.status === 404 ? null : r;     // until comments saw the post
  });
  assert.equal(c.status, 201, c.text);

  const page = await newPage(browser);
  const cspErrors = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });
  await page.goto(`${BASE}/posts/${post.json.id}`);
  await settled(page);
  await page.locator('.comment .comment-body').first().waitFor();
  // the title is text
  assert.equal(await page.locator('h1').textContent(), '<img src=x onerror=alert("title")>');
  // hover and click everything that might carry a handler
  for (const text of ['raw link', 'hover', 'click me']) {
    const el = page.getByText(text, { exact: true }).first();
    if (await el.count()) { await el.hover(); await el.click({ force: true }).catch(() => {}); }
  }
  await page.waitForTimeout(300);
  if (!page.url().startsWith(`${BASE}/posts/`)) await page.goBack();
  const state = await inert(page);
  assert.deepEqual(state, { xss: null, withHandlers: [], badLinks: [], scripts: 0, styles: 0 });
  assert.deepEqual(page.dialogs, [], 'no dialog fired');
  assert.deepEqual(cspErrors, [], 'nothing even tried to run against the CSP');
  // the safe links survive, with rel
  const fine = page.locator('.post-body a', { hasText: 'fine link' });
  assert.equal(await fine.getAttribute('href'), 'https://example.org/ok');
  assert.equal(await fine.getAttribute('rel'), 'noopener nofollow ugc');
  assert.equal(await page.locator('.post-body a', { hasText: 'mail' }).getAttribute('href'), 'mailto:a@example.org');
  assert.equal(await page.locator('.post-body a', { hasText: 'here' }).getAttribute('href'), '/artists');
  // the raw HTML is shown as text, not dropped silently
  assert.match(await page.locator('.post-body').textContent(), /<script>window.__xss/);
  await checkA11y(page, 'hostile post');
  await screenshots(page, 'post-hostile');

  // the editor's preview is as inert
  await page.goto(`${BASE}/login`);
  await settled(page);
  await page.getByLabel('Username or email').fill(user.username);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.account-nav').getByRole('link', { name: user.username }).waitFor();
  await page.goto(`${BASE}/posts/${post.json.id}/edit`);
  await settled(page);
  await page.locator('.preview-body a', { hasText: 'fine link' }).waitFor();
  const preview = await inert(page);
  assert.deepEqual(preview, { xss: null, withHandlers: [], badLinks: [], scripts: 0, styles: 0 });
  assert.deepEqual(page.dialogs, []);
  assert.deepEqual(page.errors.map(String), []);
  await page.context().close();
});

test('search snippets keep their <mark> and nothing else', async () => {
  const page = await newPage(browser);
  await page.goto(`${BASE}/search?q=${encodeURIComponent('<img src=x onerror=alert(1)> rock')}`);
  await settled(page);
  await page.locator('.results .result, .results .empty').first().waitFor();
  const state = await inert(page);
  assert.deepEqual(state, { xss: null, withHandlers: [], badLinks: [], scripts: 0, styles: 0 });
  const tags = await page.evaluate(() => [...new Set([...document.querySelectorAll('.result-snippet *')].map((e) => e.tagName))]);
  assert.ok(tags.every((t) => t === 'MARK'), `only <mark> in snippets: ${tags}`);
  assert.deepEqual(page.dialogs, []);
  await page.context().close();
});
