// Every UICORE page visited, checked by axe-core and photographed at
// desktop and phone width: home, artist, album, track (to its album),
// post, write and edit a post, search, sign in, register.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, api, launch, newPage, checkA11y, screenshots, settled, registerUser, signIn, token,
} from './support.mjs';

let browser;
let artist;
let album;
let post;
before(async () => {
  browser = await launch();
  // the demo catalog (auto/demo-data): an artist with albums
  const found = await api('GET', '/api/v1/artists?q=AC&limit=10');
  assert.equal(found.status, 200);
  for (const a of found.json.items) {
    const albums = await api('GET', `/api/v1/artists/${a.id}/albums`);
    if (albums.json.items.length) { artist = a; [album] = albums.json.items; break; }
  }
  assert.ok(artist, 'the demo catalog has an artist with albums (auto/demo-data)');
  const home = await api('GET', '/api/v1/views/home');
  [post] = home.json.latest_posts;
  assert.ok(post, 'the demo data has posts');
});
after(async () => { await browser.close(); });

async function visit(page, path, name, h1) {
  await page.goto(BASE + path);
  await settled(page);
  if (h1) assert.equal((await page.locator('h1').first().textContent()).trim(), h1);
  await checkA11y(page, name);
  await screenshots(page, name);
  assert.deepEqual(page.errors.map(String), [], `no uncaught error on ${name}`);
  assert.deepEqual(page.csp, [], `nothing on ${name} needs more than the CSP allows`);
}

test('home: the latest posts and artists', async () => {
  const page = await newPage(browser);
  await visit(page, '/', 'home');
  assert.ok(await page.locator('.latest-posts .post-item').count() > 0);
  assert.ok(await page.locator('.home-artists .artist-card').count() > 0);
  await page.context().close();
});

test('home and a post in the dark colour scheme', async () => {
  const page = await newPage(browser, { dark: true });
  await visit(page, '/', 'home-dark');
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.notEqual(bg, 'rgb(251, 250, 247)', 'the dark scheme has its own background');
  await visit(page, `/posts/${post.id}`, 'post-dark', post.title);
  await page.context().close();
});

test('artist: albums with tracks and durations, posts about the artist', async () => {
  const page = await newPage(browser);
  await visit(page, `/artists/${artist.id}`, 'artist', artist.name);
  await page.locator('.album-card .track').first().waitFor();
  const duration = await page.locator('.album-card .track-duration time').first().textContent();
  assert.match(duration, /^\d+:\d\d$/);
  assert.match(await page.title(), new RegExp(artist.name.replace(/[^\w ]/g, '.')));
  await checkA11y(page, 'artist with tracks');
  await screenshots(page, 'artist');
  await page.context().close();
});

test('album: tracks in order with durations and the total', async () => {
  const page = await newPage(browser);
  await visit(page, `/albums/${album.id}`, 'album', album.title);
  const tracks = await api('GET', `/api/v1/albums/${album.id}/tracks?limit=100`);
  assert.equal(await page.locator('.track').count(), tracks.json.items.length);
  assert.equal((await page.locator('.track-title').first().textContent()), tracks.json.items[0].title);
  await page.context().close();
});

test('track: opens its album with the track highlighted', async () => {
  const page = await newPage(browser);
  const tracks = await api('GET', `/api/v1/albums/${album.id}/tracks?limit=1`);
  const [t] = tracks.json.items;
  await page.goto(`${BASE}/tracks/${t.id}`);
  await page.waitForURL(new RegExp(`/albums/${album.id}#track-${t.id}$`));
  await settled(page);
  await page.locator(`#track-${t.id}.highlight`).waitFor();
  await page.context().close();
});

test('post: the body, its artists and the comment threads', async () => {
  const page = await newPage(browser);
  await visit(page, `/posts/${post.id}`, 'post', post.title);
  await page.context().close();
});

test('search: results for a word, filtered by kind', async () => {
  const page = await newPage(browser);
  await visit(page, `/search?q=${encodeURIComponent(artist.name)}`, 'search');
  await page.locator('.result').first().waitFor();
  await page.getByLabel('Search in').selectOption('album');
  await page.waitForURL(/type=album/);
  await settled(page);
  await page.context().close();
});

test('sign in, register, write and edit: forms with their labels', async () => {
  const page = await newPage(browser);
  await visit(page, '/login', 'login', 'Sign in');
  await visit(page, '/register', 'register', 'Create an account');
  const user = await registerUser('pages');
  await signIn(page, user);
  await visit(page, '/posts/new', 'post-new', 'Write a post');
  const created = await api('POST', '/api/v1/posts', {
    title: 'A draft to edit', body: 'Some **words**.', status: 'draft', artist_ids: [artist.id],
  }, await token(user));
  assert.equal(created.status, 201);
  await visit(page, `/posts/${created.json.id}/edit`, 'post-edit', 'Edit post');
  await page.locator('.chip', { hasText: artist.name }).waitFor();
  await page.context().close();
});

test('not found: an unknown post is the not-found page', async () => {
  const page = await newPage(browser);
  await visit(page, '/posts/00000000-0000-4000-8000-000000000000', 'post-not-found', 'Page not found');
  await page.context().close();
});
