// The flows, through the UI: register -> sign in -> write a post
// -> comment -> reply -> edit -> delete; an expired access token renewed
// without the person noticing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, api, launch, newPage, checkA11y, screenshots, settled, unique, signIn, registerUser, token, moderator, eventually,
} from './support.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser.close(); });

test('register, sign in, write a post, comment, reply, edit, delete', async () => {
  const page = await newPage(browser);
  const username = unique('flow');
  const password = 'a good long password';

  // register (which signs in), then sign out and in again
  await page.goto(`${BASE}/register`);
  await settled(page);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Email').fill(`${username}@example.test`);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('.account-nav').getByRole('link', { name: username }).waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('.account-nav').getByRole('link', { name: 'Sign in' }).waitFor();
  await signIn(page, { username, password });

  // write a post, with its preview
  await page.locator('.account-nav').getByRole('link', { name: 'Write' }).click();
  await page.waitForURL(/\/posts\/new$/);
  await settled(page);
  const title = `Liner notes ${username}`;
  await page.getByLabel('Title').fill(title);
  await page.getByLabel('Post (Markdown)').fill('A *great* record.\n\n- side one\n- side two');
  await page.locator('.preview-body em', { hasText: 'great' }).waitFor();
  assert.equal(await page.locator('.preview-body li').count(), 2);
  await page.getByLabel('Find an artist by name').fill('Aerosm');
  await page.getByRole('button', { name: 'Add Aerosmith' }).first().click();
  await page.locator('.chip', { hasText: 'Aerosmith' }).first().waitFor();
  await page.getByLabel('Tags').fill('rock, vinyl');
  await checkA11y(page, 'editor filled in');
  await screenshots(page, 'flow-editor');
  await page.getByRole('button', { name: 'Publish' }).click();
  await page.waitForURL(/\/posts\/[0-9a-f-]{36}$/);
  await settled(page);
  assert.equal(await page.locator('h1').textContent(), title);
  assert.equal(await page.locator('.post-body em').textContent(), 'great');
  await page.locator('.post-artists a', { hasText: 'Aerosmith' }).first().waitFor();
  const postUrl = page.url();

  // comment
  await page.getByLabel('Add a comment').fill('First!');
  await page.getByRole('button', { name: 'Post comment' }).click();
  const first = page.locator('.comment', { hasText: 'First!' });
  await first.waitFor();
  assert.equal(await page.getByLabel('Add a comment').inputValue(), '');

  // reply to it
  await first.getByRole('button', { name: `Reply to ${username}` }).click();
  await page.getByRole('textbox', { name: `Reply to ${username}` }).fill('Replying to myself');
  await page.getByRole('button', { name: 'Post reply' }).click();
  const reply = page.locator('.comment .comment .comment-body', { hasText: 'Replying to myself' });
  await reply.waitFor();

  // edit the reply
  const replyItem = page.locator('.comment .comment').filter({ hasText: 'Replying to myself' });
  await replyItem.getByRole('button', { name: 'Edit your comment' }).click();
  const editBox = page.getByRole('textbox', { name: 'Edit your comment' });
  await editBox.fill('Replying to myself, edited');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('.comment .comment .comment-body', { hasText: 'Replying to myself, edited' }).waitFor();
  await checkA11y(page, 'post with a thread');
  await screenshots(page, 'flow-thread');

  // delete the reply: it keeps its place, marked deleted
  const edited = page.locator('.comment .comment').filter({ hasText: 'Replying to myself, edited' });
  await edited.getByRole('button', { name: 'Delete', exact: true }).click();
  await edited.getByRole('button', { name: 'Yes, delete' }).click();
  await page.locator('.comment .comment', { hasText: 'This comment was deleted.' }).waitFor();
  assert.equal(await page.locator('.comment-body', { hasText: 'Replying to myself' }).count(), 0);

  // after a reload, all of it is still there
  await page.goto(postUrl);
  await settled(page);
  await page.locator('.comment', { hasText: 'First!' }).waitFor();
  await page.locator('.comment .comment', { hasText: 'This comment was deleted.' }).waitFor();

  // delete the post
  await page.getByRole('button', { name: 'Delete post' }).click();
  await page.getByRole('button', { name: 'Yes, delete post' }).click();
  await page.waitForURL(`${BASE}/`);
  const gone = await api('GET', new URL(postUrl).pathname.replace('/posts/', '/api/v1/posts/'));
  assert.equal(gone.status, 404);
  assert.deepEqual(page.errors.map(String), []);
  assert.deepEqual(page.dialogs, []);
  await page.context().close();
});

test('a validation problem is shown beside its field', async () => {
  const page = await newPage(browser);
  const user = await registerUser('taken');
  await page.goto(`${BASE}/register`);
  await settled(page);
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Email').fill(`other-${user.email}`);
  await page.getByLabel('Password').fill('long enough password');
  await page.getByRole('button', { name: 'Create account' }).click();
  const input = page.getByLabel('Username');
  await page.waitForFunction(() => document.activeElement && document.activeElement.name === 'username');
  assert.equal(await input.getAttribute('aria-invalid'), 'true');
  const described = await input.getAttribute('aria-describedby');
  const message = await page.locator(`#${described.split(' ').pop()}`).textContent();
  assert.match(message, /already registered/);
  assert.match(await page.getByRole('alert').first().textContent(), /already taken/);
  await checkA11y(page, 'register with a problem');
  await screenshots(page, 'register-problem');
  await page.context().close();
});

test('an expired or missing access cookie is refreshed transparently', async () => {
  const page = await newPage(browser);
  const user = await registerUser('refresh');
  const home = await api('GET', '/api/v1/views/home');
  const [post] = home.json.latest_posts;
  await signIn(page, user);
  await page.goto(`${BASE}/posts/${post.id}`);
  await settled(page);

  const refreshes = [];
  page.on('response', (r) => { if (r.url().endsWith('/api/v1/auth/refresh')) refreshes.push(r.status()); });

  // the access cookie gone (its Max-Age ran out) ...
  await page.context().clearCookies({ name: 'encore_access' });
  await page.getByLabel('Add a comment').fill('Still signed in after the access cookie went');
  await page.getByRole('button', { name: 'Post comment' }).click();
  await page.locator('.comment-body', { hasText: 'Still signed in after the access cookie went' }).waitFor();
  assert.deepEqual(refreshes, [200]);

  // ... or holding a token that no longer verifies (an expired one)
  const cookies = await page.context().cookies();
  const access = cookies.find((c) => c.name === 'encore_access');
  assert.ok(access, 'the refresh set a new access cookie');
  await page.context().addCookies([{ ...access, value: `${access.value.slice(0, -4)}AAAA` }]);
  await page.getByLabel('Add a comment').fill('And after a stale token');
  await page.getByRole('button', { name: 'Post comment' }).click();
  await page.locator('.comment-body', { hasText: 'And after a stale token' }).waitFor();
  assert.deepEqual(refreshes, [200, 200]);

  // a reload with no access cookie still shows the account
  await page.context().clearCookies({ name: 'encore_access' });
  await page.reload();
  await page.locator('.account-nav').getByRole('link', { name: user.username }).waitFor();

  // both comments are the user's
  const list = await api('GET', `/api/v1/posts/${post.id}/comments?limit=100`);
  const mine = list.json.items.filter((c) => c.author_id === user.id).map((c) => c.body);
  assert.deepEqual(mine.sort(), ['And after a stale token', 'Still signed in after the access cookie went']);
  assert.deepEqual(page.errors.map(String), []);
  await page.context().close();
});

test('when the refresh fails too, the page says to sign in again', async () => {
  const page = await newPage(browser);
  const user = await registerUser('lost');
  const home = await api('GET', '/api/v1/views/home');
  const [post] = home.json.latest_posts;
  await signIn(page, user);
  await page.goto(`${BASE}/posts/${post.id}`);
  await settled(page);
  await page.context().clearCookies();
  await page.getByLabel('Add a comment').fill('nobody will see this');
  await page.getByRole('button', { name: 'Post comment' }).click();
  await page.locator('.comment-form .form-alert', { hasText: /sign in/i }).waitFor();
  await page.locator('.account-nav').getByRole('link', { name: 'Sign in' }).waitFor();
  await page.context().close();
});

test('a moderator may delete anyone\'s comment; a user sees no such button', async () => {
  const author = await registerUser('author');
  const other = await registerUser('other');
  const t = await token(author);
  const created = await api('POST', '/api/v1/posts', { title: 'Moderated thread', body: 'body', status: 'published' }, t);
  assert.equal(created.status, 201);
  // the comments worker learns of the post from its event
  const c = await eventually(async () => {
    const r = await api('POST', `/api/v1/posts/${created.json.id}/comments`, { body: 'a comment by the author' }, t);
    return r.status === 404 ? null : r;
  });
  assert.equal(c.status, 201);
  const page = await newPage(browser);
  await signIn(page, other);
  await page.goto(`${BASE}/posts/${created.json.id}`);
  await settled(page);
  const item = page.locator('.comment', { hasText: 'a comment by the author' });
  await item.waitFor();
  assert.equal(await item.getByRole('button', { name: 'Delete', exact: true }).count(), 0);
  assert.equal(await item.getByRole('button', { name: 'Edit your comment' }).count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Delete post' }).count(), 0);
  await page.context().close();

  const mod = await newPage(browser);
  await signIn(mod, await moderator());
  await mod.goto(`${BASE}/posts/${created.json.id}`);
  await settled(mod);
  const modItem = mod.locator('.comment', { hasText: 'a comment by the author' });
  await modItem.getByRole('button', { name: 'Delete', exact: true }).click();
  await modItem.getByRole('button', { name: 'Yes, delete' }).click();
  await mod.locator('.comment', { hasText: 'This comment was deleted.' }).waitFor();
  assert.equal(await mod.getByRole('button', { name: 'Delete post' }).count(), 1);
  await mod.context().close();
});
