// The shell: the header, routing (History API, nginx's fallback), the
// not-found page, focus after navigation, and the caching headers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, newPage, checkA11y, screenshots, settled } from './support.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser.close(); });

test('an unknown path shows the not-found page, served by the SPA fallback', async () => {
  const page = await newPage(browser);
  const res = await page.goto(`${BASE}/no/such/page`);
  assert.equal(res.status(), 200);
  assert.equal(res.headers()['cache-control'], 'no-cache');
  await settled(page);
  assert.equal(await page.locator('h1').textContent(), 'Page not found');
  assert.match(await page.title(), /Not found/);
  await checkA11y(page, 'not found');
  await screenshots(page, 'not-found');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('assets are hashed, immutable and gzipped; a missing one is a 404', async () => {
  const page = await newPage(browser);
  const assets = [];
  page.on('response', (r) => { if (r.url().includes('/assets/')) assets.push(r); });
  await page.goto(`${BASE}/`);
  await settled(page);
  assert.ok(assets.length >= 2, 'the page loaded its js and css');
  for (const r of assets) {
    assert.match(r.url(), /\/assets\/app-[A-Z0-9]+\.(js|css)$/);
    assert.equal(r.headers()['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(r.headers()['content-encoding'], 'gzip');
    assert.ok(r.headers()['content-security-policy'], 'security headers on assets too');
  }
  const missing = await page.request.get(`${BASE}/assets/app-NOSUCHFILE.js`);
  assert.equal(missing.status(), 404);
  await page.context().close();
});

test('links navigate without reloading; focus moves to the new h1; Back works', async () => {
  const page = await newPage(browser);
  await page.goto(`${BASE}/`);
  await settled(page);
  await page.evaluate(() => { window.__sameDocument = true; });
  await page.locator('.site-header').getByRole('link', { name: 'Sign in' }).click();
  await page.waitForURL(/\/login/);
  await settled(page);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no full reload');
  assert.equal(await page.evaluate(() => document.activeElement.tagName), 'H1');
  assert.match(await page.title(), /^Sign in/);
  await page.goBack();
  await page.waitForURL(`${BASE}/`);
  await settled(page);
  assert.equal(await page.evaluate(() => window.__sameDocument), true);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('keyboard: the skip link is the first stop and leads to main', async () => {
  const page = await newPage(browser);
  await page.goto(`${BASE}/`);
  await settled(page);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => location.hash), '#main');
  await page.context().close();
});

test('a page that needs an account sends an anonymous visitor to sign in', async () => {
  const page = await newPage(browser);
  await page.goto(`${BASE}/posts/new`);
  await page.waitForURL(/\/login\?next=%2Fposts%2Fnew$/);
  await settled(page);
  assert.equal(await page.locator('h1').textContent(), 'Sign in');
  await page.context().close();
});
