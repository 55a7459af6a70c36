// The header's type-ahead, typed letter by letter: an ARIA 1.2 combobox
// whose suggestions follow the text, chosen with the keyboard alone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, launch, newPage, checkA11y, screenshots, settled, api, eventually,
} from './support.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser.close(); });

test('typed letter by letter, chosen with the arrow keys and Enter', async () => {
  // the demo catalog is indexed (search is fed by events)
  const ready = await eventually(async () => {
    const r = await api('GET', '/api/v1/search?q=aerosmith&type=artist');
    return r.status === 200 && r.json.items.some((i) => i.title === 'Aerosmith');
  });
  assert.ok(ready, 'search knows Aerosmith (auto/demo-data)');

  const page = await newPage(browser);
  const asked = [];
  page.on('request', (r) => {
    if (r.url().includes('/api/v1/search?')) asked.push(new URL(r.url()).searchParams.get('q'));
  });
  await page.goto(`${BASE}/`);
  await settled(page);
  const box = page.getByRole('combobox', { name: 'Search Encore' });
  assert.equal(await box.getAttribute('aria-expanded'), 'false');
  assert.equal(await box.getAttribute('aria-autocomplete'), 'list');
  const listId = await box.getAttribute('aria-controls');

  // keyboard only: Tab until the box has focus
  for (let i = 0; i < 10 && !(await box.evaluate((el) => el === document.activeElement)); i++) {
    await page.keyboard.press('Tab');
  }
  assert.ok(await box.evaluate((el) => el === document.activeElement), 'the search box is reachable by Tab');

  // one letter at a time, each answered before the next: the suggestions
  // follow the text as it grows
  const word = 'aerosmi';
  for (const letter of word.slice(0, 4)) {
    const typed = (await box.inputValue()) + letter;
    const answer = page.waitForResponse((r) => r.url().includes('/api/v1/search?')
      && new URL(r.url()).searchParams.get('q') === typed);
    await page.keyboard.type(letter);
    const items = (await (await answer).json()).items.map((i) => i.title);
    await page.waitForFunction(([id, want]) => {
      const got = [...document.querySelectorAll(`#${id} [role="option"] .title`)].map((o) => o.textContent);
      return JSON.stringify(got) === JSON.stringify(want);
    }, [listId, items]);
    console.log(`# type-ahead: "${typed}" suggests ${items.slice(0, 3).join(' | ')}${items.length > 3 ? ' ...' : ''}`);
  }
  // the rest typed quickly: a request is sent once the typing pauses
  // (debounced), and only its answer is shown
  const whole = page.waitForResponse((r) => r.url().includes('/api/v1/search?')
    && new URL(r.url()).searchParams.get('q') === word);
  await page.keyboard.type(word.slice(4));
  const finalTitles = (await (await whole).json()).items.map((i) => i.title);
  await page.waitForFunction(([id, want]) => {
    const got = [...document.querySelectorAll(`#${id} [role="option"] .title`)].map((o) => o.textContent);
    return JSON.stringify(got) === JSON.stringify(want);
  }, [listId, finalTitles]);
  const option = page.locator(`#${listId} [role="option"]`, { hasText: 'Aerosmith' }).first();
  await option.waitFor();
  assert.equal(await box.getAttribute('aria-expanded'), 'true');
  console.log(`# type-ahead: ${word.length} letters typed, ${asked.length} search requests (${asked.join(', ')})`);
  assert.ok(asked.length >= 1 && asked[asked.length - 1] === word, 'the last request is for the whole word');
  assert.ok(asked.every((q) => word.startsWith(q)), 'requests only for prefixes typed');
  await checkA11y(page, 'type-ahead open');
  await screenshots(page, 'typeahead');

  // ArrowDown moves the active option (aria-activedescendant, aria-selected)
  const options = page.locator(`#${listId} [role="option"]`);
  const count = await options.count();
  let index = -1;
  for (let i = 0; i < count; i++) {
    await page.keyboard.press('ArrowDown');
    const active = await box.getAttribute('aria-activedescendant');
    const selected = page.locator(`#${active}`);
    assert.equal(await selected.getAttribute('aria-selected'), 'true');
    if ((await selected.textContent()).includes('Aerosmith')) { index = i; break; }
  }
  assert.ok(index >= 0, 'Aerosmith is reachable with ArrowDown');
  // Escape closes, ArrowDown opens again on the same suggestions
  await page.keyboard.press('Escape');
  assert.equal(await box.getAttribute('aria-expanded'), 'false');
  assert.equal(await box.getAttribute('aria-activedescendant'), null);
  for (let i = 0; i <= index; i++) await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/(artists|albums|tracks|posts)\//);
  await settled(page);
  assert.match(await page.locator('h1').textContent(), /Aerosmith/);
  assert.equal(await box.getAttribute('aria-expanded'), 'false');
  assert.equal(await box.inputValue(), '');

  // the same word again, pasted at once, suggests again
  const again = page.waitForResponse((r) => r.url().includes('/api/v1/search?')
    && new URL(r.url()).searchParams.get('q') === word);
  await box.fill(word);
  await again;
  await page.locator(`#${listId} [role="option"]`, { hasText: 'Aerosmith' }).first().waitFor();
  await page.context().close();
});

test('Enter without a suggestion chosen opens the search page', async () => {
  const page = await newPage(browser);
  await page.goto(`${BASE}/`);
  await settled(page);
  const box = page.getByRole('combobox', { name: 'Search Encore' });
  await box.click();
  await page.keyboard.type('rock');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/search\?q=rock$/);
  await settled(page);
  await page.locator('.result').first().waitFor();
  assert.equal(await page.locator('h1').textContent(), 'Results for “rock”');
  await page.context().close();
});

test('a typo still finds the artist', async () => {
  const page = await newPage(browser);
  await page.goto(`${BASE}/search?q=aerosmiht&type=artist`);
  await settled(page);
  await page.locator('.result', { hasText: 'Aerosmith' }).first().waitFor();
  await checkA11y(page, 'search results');
  await page.context().close();
});
