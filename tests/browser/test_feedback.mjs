// Feedback in the browser: a person sends a ticket (the API's problems
// shown next to the fields), finds it under "My tickets" and opens it;
// a moderator works the ticket queue: status changes and a response the
// person then reads.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, api, checkA11y, launch, moderator, newPage, registerUser, screenshots,
  settled, signIn, token, unique,
} from './support.mjs';
import { assertFieldError, assertNoErrors } from './pages_support.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('feedback: send a ticket, see it under my tickets, open it', async () => {
  const user = await registerUser('fb');
  const page = await newPage(browser);
  await signIn(page, user);

  // someone else's ticket is not listed, nor can it be opened
  const other = await registerUser('fbo');
  const theirs = await api('POST', '/api/v1/feedback',
    { category: 'other', subject: `Not yours ${unique()}`, message: 'x' }, await token(other));
  assert.equal(theirs.status, 201, theirs.text);

  await page.goto(`${BASE}/feedback`);
  await settled(page);
  await page.getByText('You have not sent any feedback yet.').waitFor();
  await checkA11y(page, '/feedback');
  await screenshots(page, 'feedback');

  // blank fields: the API's 422 names them
  const f = page.getByRole('form', { name: 'Send feedback' });
  await f.getByLabel('Subject').fill('   ');
  await f.getByRole('button', { name: 'Send feedback' }).click();
  await assertFieldError(f.getByLabel('Subject'), /blank|empty|required|least|characters/i, 'a blank subject');
  await assertFieldError(f.getByLabel('Message'), /blank|empty|required|least|characters/i, 'no message');
  await checkA11y(page, '/feedback with problems shown');

  const subject = `The play button ${unique()}`;
  await f.getByLabel('What is it about?').selectOption('bug');
  await f.getByLabel('Subject').fill(subject);
  await f.getByLabel('Message').fill('It does nothing.\nOn every album page.');
  await f.getByRole('button', { name: 'Send feedback' }).click();
  await page.getByText('Thank you — your ticket is sent.').waitFor();
  const mine = page.getByRole('region', { name: 'My tickets' });
  await mine.getByRole('link', { name: subject }).waitFor();
  assert.equal(await mine.getByRole('link').count(), 1, 'only the own ticket is listed');
  // the field errors are gone
  assert.equal(await f.locator('[aria-invalid="true"]').count(), 0);

  // still there after a reload (it came from the API)
  await page.reload();
  await settled(page);
  await mine.getByRole('link', { name: subject }).click();
  await page.waitForURL(/\/feedback\/[0-9a-f-]{36}$/);
  await settled(page);
  assert.equal(await page.locator('h1').innerText(), subject);
  await page.getByText('It does nothing.').waitFor();
  await page.getByText('No response yet.').waitFor();
  assert.equal(await page.locator('.badge').first().innerText(), 'Open');
  // a person is not sent to the queue, and nothing absent is shown as "null"
  assert.equal(await page.getByRole('link', { name: 'Answer in the ticket queue' }).count(), 0);
  assert.doesNotMatch(await page.locator('#main').innerText(), /\bnull\b/);
  await checkA11y(page, '/feedback/:id');
  await screenshots(page, 'feedback-ticket');

  await page.goto(`${BASE}/feedback/${theirs.json.id}`);
  await settled(page);
  assert.equal(await page.locator('h1').innerText(), 'Ticket not found');
  await checkA11y(page, '/feedback/:id not found');
  assertNoErrors(page);
  await page.context().close();
});

test('the ticket queue: a moderator moves a ticket along and answers it', async () => {
  const user = await registerUser('fbq');
  const bearer = await token(user);
  const subject = `Missing album ${unique()}`;
  const t = await api('POST', '/api/v1/feedback',
    { category: 'content', subject, message: 'The second album is missing.' }, bearer);
  assert.equal(t.status, 201, t.text);
  const id = t.json.id;

  const mod = await moderator();
  const page = await newPage(browser);
  await signIn(page, mod);
  await page.goto(`${BASE}/moderate`);
  await settled(page);
  await page.getByRole('link', { name: 'Ticket queue' }).click();
  await page.waitForURL(`${BASE}/moderate/tickets?status=open`);
  await settled(page);
  const row = page.locator(`tr[data-id="${id}"]`);
  await row.waitFor();
  // who sent it, by name
  await row.getByText(user.username).waitFor();
  await checkA11y(page, '/moderate/tickets');
  await screenshots(page, 'moderate-tickets');

  await row.getByRole('link', { name: subject }).click();
  await page.waitForURL(`${BASE}/moderate/tickets/${id}`);
  await settled(page);
  await checkA11y(page, '/moderate/tickets/:id');
  await screenshots(page, 'moderate-ticket');

  const answer = page.getByRole('form', { name: 'Answer the ticket' });
  // from open only "in progress" is offered
  assert.deepEqual(await answer.getByLabel('Status').locator('option').allInnerTexts(),
    ['Open (unchanged)', 'In progress']);
  await answer.getByLabel('Status').selectOption('in_progress');
  await answer.getByLabel('Response to the user').fill('Looking into it.');
  await answer.getByRole('button', { name: 'Save' }).click();
  await page.locator('#main').getByText('Saved.').waitFor();
  let seen = await api('GET', `/api/v1/feedback/${id}`, undefined, bearer);
  assert.equal(seen.json.status, 'in_progress');
  assert.equal(seen.json.response, 'Looking into it.');

  // a move made elsewhere meanwhile: the API's refusal is shown on Status
  const modBearer = await token(mod);
  for (const status of ['resolved', 'closed']) {
    const r = await api('PATCH', `/api/v1/feedback/${id}`, { status }, modBearer);
    assert.equal(r.status, 200, r.text);
  }
  await answer.getByLabel('Status').selectOption('resolved');
  await answer.getByRole('button', { name: 'Save' }).click();
  await assertFieldError(answer.getByLabel('Status'), /closed/, 'a ticket closed meanwhile');
  await checkA11y(page, '/moderate/tickets/:id with a problem');

  // reloaded, a closed ticket is read-only
  await page.reload();
  await settled(page);
  await page.getByText('This ticket is closed').waitFor();
  assert.equal(await page.getByRole('form', { name: 'Answer the ticket' }).count(), 0);

  // the person's own page of it offers a moderator the way to the queue
  await page.goto(`${BASE}/feedback/${id}`);
  await settled(page);
  await page.getByRole('link', { name: 'Answer in the ticket queue' }).click();
  await page.waitForURL(`${BASE}/moderate/tickets/${id}`);
  await settled(page);

  // a fresh ticket through every move with the UI
  const t2 = await api('POST', '/api/v1/feedback',
    { category: 'feature', subject: `Dark mode ${unique()}`, message: 'Please.' }, bearer);
  await page.goto(`${BASE}/moderate/tickets/${t2.json.id}`);
  await settled(page);
  for (const [status, label] of [['in_progress', 'In progress'], ['resolved', 'Resolved'],
    ['closed', 'Closed']]) {
    const form = page.getByRole('form', { name: 'Answer the ticket' });
    await form.getByLabel('Status').selectOption(status);
    if (status === 'resolved') {
      await form.getByLabel('Response to the user').fill('Done: it follows your system.');
    }
    await form.getByRole('button', { name: 'Save' }).click();
    await page.locator('.ticket .badge', { hasText: label }).waitFor();
  }
  await page.getByText('This ticket is closed').waitFor();

  // the filter shows it among the closed ones
  await page.goto(`${BASE}/moderate/tickets`);
  await settled(page);
  await page.getByRole('link', { name: 'Closed', exact: true }).click();
  await page.waitForURL(/status=closed/);
  await page.locator(`tr[data-id="${t2.json.id}"]`).waitFor();
  assert.equal(await page.locator(`tr[data-id="${t2.json.id}"] .badge`).innerText(), 'Closed');
  assertNoErrors(page);
  await page.context().close();

  // the person reads the answer on their ticket
  const mine = await newPage(browser, { phone: true });
  await signIn(mine, user);
  await mine.goto(`${BASE}/feedback/${t2.json.id}`);
  await settled(mine);
  await mine.getByText('Done: it follows your system.').waitFor();
  assert.equal(await mine.locator('.ticket .badge').innerText(), 'Closed');
  assert.doesNotMatch(await mine.locator('#main').innerText(), /\bnull\b/);
  await checkA11y(mine, '/feedback/:id answered (phone)');
  await screenshots(mine, 'feedback-ticket-answered');
  await mine.context().close();
});
