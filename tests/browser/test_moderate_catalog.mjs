// A moderator editing the catalog in the browser: an artist added
// (problems shown next to their fields), edited, given an album with
// tracks (added, edited, deleted), and deleted with all of it; a plain
// user is not let in.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, api, checkA11y, launch, moderator, newPage, registerUser, screenshots,
  settled, signIn, token, unique,
} from './support.mjs';
import { assertFieldError, assertNoErrors, focusedName } from './pages_support.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a moderator adds, edits and deletes an artist, an album and tracks', async () => {
  const mod = await moderator();
  const bearer = await token(mod);
  const page = await newPage(browser);
  await signIn(page, mod);

  await page.goto(`${BASE}/moderate`);
  await settled(page);
  assert.equal(await page.locator('h1').innerText(), 'Moderation');
  await checkA11y(page, '/moderate');
  await screenshots(page, 'moderate');

  await page.getByRole('link', { name: 'Catalog' }).click();
  await page.waitForURL(`${BASE}/moderate/artists`);
  await settled(page);
  await checkA11y(page, '/moderate/artists');
  await screenshots(page, 'moderate-artists');

  // a slug another artist has: the API's 409 lands on the slug field
  const taken = unique('taken').replace(/_/g, '-');
  const other = await api('POST', '/api/v1/artists', { name: `Other ${taken}`, slug: taken }, bearer);
  assert.equal(other.status, 201, other.text);

  const suffix = unique('x').slice(2);
  const name = `The Testers ${suffix}`;
  const add = page.getByRole('form', { name: 'Add an artist' });
  await add.getByLabel('Name').fill(name);
  // the slug follows the name until edited
  assert.equal(await add.getByLabel('Slug').inputValue(), `the-testers-${suffix}`);
  await add.getByLabel('Formed in').fill('19x5');
  await add.getByRole('button', { name: 'Add artist' }).click();
  await assertFieldError(add.getByLabel('Formed in'), /year/, 'a year that is no year');

  // the API's 422: its errors[] next to the fields they name
  await add.getByLabel('Formed in').fill('1975');
  await add.getByLabel('Country').fill('XX');
  await add.getByRole('button', { name: 'Add artist' }).click();
  await assertFieldError(add.getByLabel('Country'), /ISO 3166/, 'a country that is none');
  assert.equal(await add.getByLabel('Formed in').getAttribute('aria-invalid'), null);
  await add.getByLabel('Country').fill('gb');
  await add.getByLabel('Slug').fill(taken);
  await add.getByRole('button', { name: 'Add artist' }).click();
  await assertFieldError(add.getByLabel('Slug'), /taken/, 'a taken slug');
  await checkA11y(page, '/moderate/artists with problems shown');
  await screenshots(page, 'moderate-artists-problems');

  await add.getByLabel('Slug').fill(`the-testers-${suffix}`);
  await add.getByLabel('Genres').fill('rock, blues , ');
  await add.getByRole('button', { name: 'Add artist' }).click();
  await page.waitForURL(/\/moderate\/artists\/[0-9a-f-]{36}$/);
  await settled(page);
  const artistId = page.url().split('/').pop();
  assert.equal(await page.locator('h1').innerText(), name);
  let a = await api('GET', `/api/v1/artists/${artistId}`);
  assert.equal(a.status, 200);
  assert.equal(a.json.country, 'GB');
  assert.equal(a.json.formed_year, 1975);
  assert.deepEqual(a.json.genres, ['rock', 'blues']);
  await checkA11y(page, '/moderate/artists/:id');
  await screenshots(page, 'moderate-artist');

  // edit: bio and genres
  const details = page.getByRole('form', { name: 'Edit the artist' });
  await details.getByLabel('Biography').fill('Formed in a garage.\nStill there.');
  await details.getByLabel('Genres').fill('blues rock');
  await details.getByRole('button', { name: 'Save' }).click();
  await page.getByText(`Saved ${name}.`).waitFor();
  a = await api('GET', `/api/v1/artists/${artistId}`);
  assert.equal(a.json.bio, 'Formed in a garage.\nStill there.');
  assert.deepEqual(a.json.genres, ['blues rock']);

  // an album
  const addAlbum = page.getByRole('form', { name: 'Add an album' });
  await addAlbum.getByLabel('Title').fill('First Light');
  await addAlbum.getByLabel('Released').fill('1976-05-01');
  await addAlbum.getByLabel('Kind').selectOption('ep');
  await addAlbum.getByRole('button', { name: 'Add album' }).click();
  await page.waitForURL(/\/moderate\/albums\/[0-9a-f-]{36}$/);
  await settled(page);
  const albumId = page.url().split('/').pop();
  assert.equal(await page.locator('h1').innerText(), 'First Light');
  const al = await api('GET', `/api/v1/albums/${albumId}`);
  assert.equal(al.json.artist_id, artistId);
  assert.equal(al.json.kind, 'ep');
  assert.equal(al.json.release_date, '1976-05-01');

  // tracks: a length that does not parse, then two good ones
  const addTrack = page.getByRole('form', { name: 'Add a track' });
  assert.equal(await addTrack.getByLabel('No.').inputValue(), '1');
  await addTrack.getByLabel('Title').fill('Opening');
  await addTrack.getByLabel('Length').fill('4:5x');
  await addTrack.getByRole('button', { name: 'Add track' }).click();
  await assertFieldError(addTrack.getByLabel('Length'), /length like/, 'a length that is no length');
  await addTrack.getByLabel('Length').fill('4:05');
  await addTrack.getByRole('button', { name: 'Add track' }).click();
  await page.getByText('Added Opening.').waitFor();
  assert.equal(await addTrack.getByLabel('No.').inputValue(), '2');
  await addTrack.getByLabel('Title').fill('Closer');
  await addTrack.getByLabel('Length').fill('3:30');
  await addTrack.getByRole('button', { name: 'Add track' }).click();
  await page.getByText('Added Closer.').waitFor();

  // a position another track has: the 409 is shown on the position
  await addTrack.getByLabel('No.').fill('1');
  await addTrack.getByLabel('Title').fill('Intruder');
  await addTrack.getByLabel('Length').fill('1:00');
  await addTrack.getByRole('button', { name: 'Add track' }).click();
  await assertFieldError(addTrack.getByLabel('No.'), /taken/, 'a taken position');
  await checkA11y(page, '/moderate/albums/:id');
  await screenshots(page, 'moderate-album');

  // edit the first track with the keyboard only
  await page.getByRole('button', { name: 'Edit Opening' }).focus();
  await page.keyboard.press('Enter');
  const edit = page.getByRole('form', { name: 'Edit track Opening' });
  await edit.waitFor();
  assert.equal(await focusedName(page), 'Title');
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.type('Overture');
  await page.keyboard.press('Tab');          // to Length
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.type('1:02:03');
  await page.keyboard.press('Enter');
  await page.getByText('Saved Overture.').waitFor();
  // focus comes back to the track's Edit button
  assert.equal(await focusedName(page), 'Edit Overture');

  let tracks = await api('GET', `/api/v1/albums/${albumId}/tracks`);
  assert.deepEqual(tracks.json.items.map((t) => [t.position, t.title, t.duration_ms]),
    [[1, 'Overture', 3723000], [2, 'Closer', 210000]]);

  // delete the second: asked once more in place, confirmed by keyboard
  await page.getByRole('button', { name: 'Delete Closer' }).click();
  assert.equal(await focusedName(page), 'Cancel');
  await page.keyboard.press('Shift+Tab');
  assert.equal(await focusedName(page), 'Yes, delete');
  await page.keyboard.press('Enter');
  await page.getByText('Deleted Closer.').waitFor();
  tracks = await api('GET', `/api/v1/albums/${albumId}/tracks`);
  assert.deepEqual(tracks.json.items.map((t) => t.title), ['Overture']);

  // back to the artist: the album is listed; then delete the artist
  await page.getByRole('link', { name: `← ${name}` }).click();
  await page.waitForURL(`${BASE}/moderate/artists/${artistId}`);
  await settled(page);
  await page.getByRole('link', { name: 'First Light' }).waitFor();
  await page.getByRole('button', { name: 'Delete artist' }).click();
  await page.getByText(`Delete ${name}, with 1 album and their tracks?`).waitFor();
  await page.getByRole('button', { name: 'Yes, delete' }).click();
  await page.waitForURL(`${BASE}/moderate/artists`);
  assert.equal((await api('GET', `/api/v1/artists/${artistId}`)).status, 404);
  assert.equal((await api('GET', `/api/v1/albums/${albumId}`)).status, 404);

  // the list finds artists by the start of their name
  await page.getByLabel('Name starts with').fill(`Other ${taken}`);
  await page.getByRole('button', { name: 'Find' }).click();
  await page.waitForURL(/\?q=/);
  await page.getByRole('link', { name: `Other ${taken}` }).waitFor();
  assertNoErrors(page);
  await page.context().close();
});

test('a moderator goes from the public artist and album pages to their editors', async () => {
  const mod = await moderator();
  const bearer = await token(mod);
  const slug = unique('edit').replace(/_/g, '-');
  const ar = await api('POST', '/api/v1/artists', { name: `Artist ${slug}`, slug }, bearer);
  assert.equal(ar.status, 201, ar.text);
  const al = await api('POST', '/api/v1/albums',
    { artist_id: ar.json.id, title: `Record ${slug}`, kind: 'album' }, bearer);
  assert.equal(al.status, 201, al.text);
  const page = await newPage(browser);
  await signIn(page, mod);
  await page.goto(`${BASE}/artists/${ar.json.id}`);
  await settled(page);
  await page.getByRole('link', { name: 'Edit artist' }).click();
  await page.waitForURL(`${BASE}/moderate/artists/${ar.json.id}`);
  await settled(page);
  assert.equal(await page.getByLabel('Name').inputValue(), `Artist ${slug}`);
  await page.goto(`${BASE}/albums/${al.json.id}`);
  await settled(page);
  await page.getByRole('link', { name: 'Edit album' }).click();
  await page.waitForURL(`${BASE}/moderate/albums/${al.json.id}`);
  await settled(page);
  assert.equal(await page.locator('h1').innerText(), `Record ${slug}`);
  assertNoErrors(page);
  await page.context().close();

  // a plain user, and a visitor, are offered no such link
  const user = await registerUser('noedit');
  const other = await newPage(browser);
  for (const signedIn of [false, true]) {
    if (signedIn) await signIn(other, user);
    for (const p of [`/artists/${ar.json.id}`, `/albums/${al.json.id}`]) {
      await other.goto(BASE + p);
      await settled(other);
      assert.equal(await other.getByRole('link', { name: /^Edit (artist|album)$/ }).count(), 0, p);
    }
  }
  await other.context().close();
});

test('a plain user cannot open the moderation pages', async () => {
  const user = await registerUser('plain');
  const page = await newPage(browser);
  await signIn(page, user);
  for (const p of ['/moderate', '/moderate/artists', '/moderate/tickets']) {
    await page.goto(BASE + p);
    await settled(page);
    assert.equal(await page.locator('h1').innerText(), 'Not allowed', p);
  }
  // and the header offers no link to them
  assert.equal(await page.getByRole('link', { name: 'Moderate' }).count(), 0);
  await page.context().close();
});
