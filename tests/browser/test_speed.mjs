// The issue's own budgets: the home page shows its content within one
// second of navigation start (measured in the browser: the home page's
// performance mark, set once the latest posts are in the document), and
// the JavaScript and CSS, gzipped as nginx sends them, within the numbers
// written in README.md.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { BASE, ROOT, launch, newPage } from './support.mjs';

const HOME_BUDGET_MS = 1000;     // issue 12: "renders its content in under one second"

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser.close(); });

async function homeRenderedAt(page) {
  await page.goto(`${BASE}/`);
  await page.locator('.latest-posts .post-item').first().waitFor();
  return page.evaluate(() => {
    const [mark] = performance.getEntriesByName('encore:home-rendered');
    return mark ? mark.startTime : null;     // ms since navigation start
  });
}

test('the home page shows its latest posts within one second', async () => {
  // a first visit warms the stack's caches (nginx, the workers' pools)
  const warm = await newPage(browser);
  await homeRenderedAt(warm);
  await warm.context().close();
  // three cold browsers (empty HTTP cache, no cookies): the median counts
  const times = [];
  for (let i = 0; i < 3; i++) {
    const page = await newPage(browser);
    const t = await homeRenderedAt(page);
    assert.ok(t !== null, 'the home page set its performance mark');
    const visible = await page.locator('.latest-posts .post-item').first().isVisible();
    assert.ok(visible, 'the latest posts are visible');
    times.push(Math.round(t));
    await page.context().close();
  }
  times.sort((a, b) => a - b);
  const median = times[1];
  console.log(`# home page: latest posts shown ${times.join(', ')} ms after navigation start (median ${median} ms; budget ${HOME_BUDGET_MS} ms)`);
  assert.ok(median < HOME_BUDGET_MS, `home page rendered in ${median} ms, over the ${HOME_BUDGET_MS} ms budget`);
});

// the bytes nginx sends for path with Accept-Encoding: gzip
function gzippedSize(p) {
  return new Promise((resolve, reject) => {
    http.get(BASE + p, { headers: { 'Accept-Encoding': 'gzip' } }, (res) => {
      let n = 0;
      res.on('data', (c) => { n += c.length; });
      res.on('end', () => resolve({ bytes: n, encoding: res.headers['content-encoding'], status: res.statusCode }));
    }).on('error', reject);
  });
}

test('the JavaScript and CSS stay within the README\'s budget', async () => {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const m = /budget: JavaScript (\d+) KiB and CSS (\d+) KiB, gzipped/.exec(readme.replace(/\s+/g, ' '));
  assert.ok(m, 'README.md states "budget: JavaScript N KiB and CSS M KiB, gzipped"');
  const budget = { js: Number(m[1]) * 1024, css: Number(m[2]) * 1024 };
  const files = await readdir(path.join(ROOT, 'build', 'web', 'assets'));
  const html = await (await fetch(`${BASE}/`)).text();
  const total = { js: 0, css: 0 };
  for (const f of files) {
    const kind = path.extname(f).slice(1);
    if (!(kind in total)) continue;
    assert.ok(html.includes(`/assets/${f}`), `index.html loads ${f} (no stray asset is shipped)`);
    const got = await gzippedSize(`/assets/${f}`);
    assert.equal(got.status, 200);
    assert.equal(got.encoding, 'gzip');
    total[kind] += got.bytes;
  }
  console.log(`# assets gzipped: JavaScript ${(total.js / 1024).toFixed(1)} KiB (budget ${budget.js / 1024}), CSS ${(total.css / 1024).toFixed(1)} KiB (budget ${budget.css / 1024})`);
  assert.ok(total.js > 0 && total.css > 0);
  assert.ok(total.js <= budget.js, `JavaScript ${total.js} B gzipped, over the budget of ${budget.js} B`);
  assert.ok(total.css <= budget.css, `CSS ${total.css} B gzipped, over the budget of ${budget.css} B`);
  // the sentence's "today about" sizes say what is built (within a tenth,
  // at least half a KiB: the rounding)
  const today = /\(today about (\d+) KiB and (\d+) KiB;/.exec(readme.replace(/\s+/g, ' '));
  assert.ok(today, 'README.md states "(today about N KiB and M KiB;" after the budget');
  for (const [kind, said] of [['js', Number(today[1])], ['css', Number(today[2])]]) {
    const built = total[kind] / 1024;
    assert.ok(Math.abs(built - said) <= Math.max(0.5, built / 10),
      `README.md says ${kind} is today about ${said} KiB gzipped; it is ${built.toFixed(1)} KiB`);
  }
});
