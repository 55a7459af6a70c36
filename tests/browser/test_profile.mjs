// The profile page: a bio saved, a password changed (the wrong current
// one refused next to its field; the person stays signed in with the new
// one, the old one stops working), and the account deleted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, api, checkA11y, launch, newPage, registerUser, screenshots, settled,
  signIn, token,
} from './support.mjs';
import { assertFieldError, assertNoErrors } from './pages_support.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function loginStatus(username, password) {
  return (await api('POST', '/api/v1/auth/login', { login: username, password })).status;
}

test('profile: bio, password change and account deletion', async () => {
  const user = await registerUser('prof');
  const page = await newPage(browser);
  await signIn(page, user);

  await page.getByRole('link', { name: user.username }).click();
  await page.waitForURL(`${BASE}/profile`);
  await settled(page);
  await checkA11y(page, '/profile');
  await screenshots(page, 'profile');

  // bio
  const about = page.getByRole('form', { name: 'Your profile' });
  assert.equal(await about.getByLabel('Email').inputValue(), user.email);
  await about.getByLabel('Bio').fill('Vinyl first.\nThen everything else.');
  await about.getByRole('button', { name: 'Save profile' }).click();
  await page.getByText('Profile saved.').waitFor();
  const pub = await api('GET', `/api/v1/users/${user.id}`);
  assert.equal(pub.json.bio, 'Vinyl first.\nThen everything else.');

  // an email that is none: the API's 422 on the field
  await about.getByLabel('Email').fill('not-an-address');
  await about.getByRole('button', { name: 'Save profile' }).click();
  await assertFieldError(about.getByLabel('Email'), /email/i, 'a bad email');
  await about.getByLabel('Email').fill(user.email);

  // password: a mismatch caught here, a wrong current one by the API
  const pw = page.getByRole('form', { name: 'Change your password' });
  const next = `${user.password}-new`;
  await pw.getByLabel('Current password').fill(user.password);
  await pw.getByLabel('New password', { exact: true }).fill(next);
  await pw.getByLabel('New password again').fill(`${next}x`);
  await pw.getByRole('button', { name: 'Change password' }).click();
  await assertFieldError(pw.getByLabel('New password again'), /match/, 'a mismatch');

  await pw.getByLabel('Current password').fill('wrong-password');
  await pw.getByLabel('New password again').fill(next);
  await pw.getByRole('button', { name: 'Change password' }).click();
  await assertFieldError(pw.getByLabel('Current password'), /./, 'a wrong current password');
  assert.equal(await loginStatus(user.username, user.password), 200, 'not changed yet');
  await checkA11y(page, '/profile with problems shown');
  await screenshots(page, 'profile-problems');

  await pw.getByLabel('Current password').fill(user.password);
  await pw.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('Password changed.').waitFor();
  assert.equal(await loginStatus(user.username, user.password), 401, 'the old password');
  assert.equal(await loginStatus(user.username, next), 200, 'the new password');
  // still signed in, after a reload too (the page signed in again)
  await page.reload();
  await settled(page);
  assert.equal(await page.locator('h1').innerText(), 'Your profile');
  await page.locator('.account-nav').getByRole('link', { name: user.username }).waitFor();
  user.password = next;

  // delete: the wrong password refused, then the account is gone
  const zone = page.getByRole('region', { name: 'Delete account' });
  await zone.getByText('I want to delete my account').click();
  const del = page.getByRole('form', { name: 'Delete your account' });
  await del.getByLabel('Your password').fill('wrong-password');
  await del.getByRole('button', { name: 'Delete my account' }).click();
  await assertFieldError(del.getByLabel('Your password'), /./, 'a wrong password');
  assert.equal(await loginStatus(user.username, next), 200, 'not deleted yet');
  await checkA11y(page, '/profile delete refused');

  await del.getByLabel('Your password').fill(next);
  await del.getByRole('button', { name: 'Delete my account' }).click();
  await page.waitForURL(`${BASE}/`);
  await page.locator('.account-nav').getByRole('link', { name: 'Sign in' }).waitFor();
  assert.equal(await loginStatus(user.username, next), 401, 'the account is gone');
  assert.equal((await api('GET', `/api/v1/users/${user.id}`)).status, 404);
  // the profile now asks to sign in
  await page.goto(`${BASE}/profile`);
  await page.waitForURL(/\/login\?next=%2Fprofile/);
  assertNoErrors(page);
  await page.context().close();
});

test('profile: keyboard only, on a phone', async () => {
  const user = await registerUser('profk');
  const bearer = await token(user);
  const page = await newPage(browser, { phone: true });
  await signIn(page, user);
  await page.goto(`${BASE}/profile`);
  await settled(page);
  await page.getByLabel('Bio').focus();
  await page.keyboard.type('Typed, never clicked.');
  await page.keyboard.press('Tab');            // to "Save profile"
  await page.keyboard.press('Enter');
  await page.getByText('Profile saved.').waitFor();
  const me = await api('GET', '/api/v1/auth/me', undefined, bearer);
  assert.equal(me.json.bio, 'Typed, never clicked.');
  await checkA11y(page, '/profile (phone)');
  await page.context().close();
});
