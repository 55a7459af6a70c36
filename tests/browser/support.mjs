// Encore's browser suite: what every test_*.mjs shares.  The stack is the
// one auto/test started (ENCORE_TEST_EDGE_PORT, the run directory in
// ENCORE_RUN_DIR); the browser is Debian's chromium driven by
// playwright-core, accessibility is checked by axe-core.
import { chromium } from 'playwright-core';
import AxeBuilder from '@axe-core/playwright';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..', '..');
export const BASE = `http://127.0.0.1:${process.env.ENCORE_TEST_EDGE_PORT || '18080'}`;
// the test stack's directory (auto/test exports it; var/test otherwise)
export const TEST_DIR = process.env.ENCORE_RUN_DIR || path.join(ROOT, 'var', 'test');
export const SCREENSHOTS = path.join(TEST_DIR, 'screenshots');
export const ADMIN_PASSWORD = process.env.ENCORE_ADMIN_PASSWORD || 'encore-admin';

export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };

export async function launch() {
  return chromium.launch({
    executablePath: process.env.ENCORE_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
      '--disable-dev-shm-usage'],
  });
}

// a page in a context of its own (its own cookies: a fresh profile);
// page.errors collects uncaught exceptions, page.dialogs any dialog,
// page.csp what the Content-Security-Policy refused
// (opts: {phone: true} a phone's viewport, {dark: true} a dark scheme)
export async function newPage(browser, opts = {}) {
  const context = await browser.newContext({
    viewport: opts.phone ? PHONE : DESKTOP,
    isMobile: Boolean(opts.phone),
    hasTouch: Boolean(opts.phone),
    colorScheme: opts.dark ? 'dark' : 'light',
    locale: 'en-GB',
    timezoneId: 'UTC',
  });
  const page = await context.newPage();
  page.errors = [];
  page.dialogs = [];
  page.csp = [];        // Content-Security-Policy refusals the console reported
  page.on('pageerror', (e) => page.errors.push(e));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) page.csp.push(m.text());
  });
  page.on('dialog', (d) => { page.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.setDefaultTimeout(15000);
  return page;
}

// the public API from the test itself (Node's fetch); bearer optional
export async function api(method, p, body, token) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(BASE + p, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
  return { status: res.status, headers: res.headers, json, text };
}

export function unique(prefix = 'b') {
  const p = String(prefix).toLowerCase().replace(/[^a-z0-9_]/g, '').slice(0, 16) || 'b';
  return `${p}_${randomBytes(5).toString('hex')}`;
}

// a new account through the API: {id, username, email, password}
export async function registerUser(prefix = 'b') {
  const username = unique(prefix);
  const email = `${username}@example.test`;
  const password = `pw-${randomBytes(6).toString('hex')}`;
  const r = await api('POST', '/api/v1/auth/register', { username, email, password });
  assert.equal(r.status, 201, `register ${username}: ${r.status} ${r.text}`);
  return { id: r.json.id, username, email, password };
}

// a bearer token for user (through the API, not the browser)
export async function token(user) {
  const r = await api('POST', '/api/v1/auth/login', { login: user.username, password: user.password });
  assert.equal(r.status, 200, `login ${user.username}: ${r.status} ${r.text}`);
  return r.json.access_token;
}

// sign in through the UI's /login page (of the stack's edge, or of
// base); resolves once the header shows the account
export async function signIn(page, user, base = BASE) {
  await page.goto(`${base}/login`);
  await page.getByLabel('Username or email').fill(user.username);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.account-nav').getByRole('link', { name: user.username }).waitFor();
}

let moderatorAccount = null;

// a moderator's credentials, {id, username, email, password}: an account
// promoted by the admin (`make run`'s bootstrap account), as the
// integration tests make them
export async function moderator() {
  if (moderatorAccount) return moderatorAccount;
  const user = await registerUser('mod');
  const admin = await api('POST', '/api/v1/auth/login', { login: 'admin', password: ADMIN_PASSWORD });
  assert.equal(admin.status, 200, `admin login: ${admin.status} ${admin.text}`);
  const r = await api('PATCH', `/api/v1/users/${user.id}`, { role: 'moderator' }, admin.json.access_token);
  assert.equal(r.status, 200, `promote ${user.username}: ${r.status} ${r.text}`);
  moderatorAccount = { ...user, role: 'moderator' };
  return moderatorAccount;
}

// axe-core on the page as it is: fails on serious or critical violations,
// printing each with the elements concerned
export async function checkA11y(page, label) {
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length) {
    const lines = bad.map((v) => `  [${v.impact}] ${v.id}: ${v.help}\n${
      v.nodes.slice(0, 5).map((n) => `      ${n.target.join(' ')}: ${n.failureSummary.replace(/\n/g, ' ')}`).join('\n')}`);
    console.log(`axe: ${label}: ${bad.length} serious or critical violation(s)\n${lines.join('\n')}`);
  }
  assert.equal(bad.length, 0, `axe found serious or critical violations on ${label}: ${bad.map((v) => v.id).join(', ')}`);
  return result;
}

// full-page screenshots at desktop and phone width:
// <test dir>/screenshots/<name>-desktop.png and -phone.png
export async function screenshots(page, name) {
  await mkdir(SCREENSHOTS, { recursive: true });
  const before = page.viewportSize();
  const files = [];
  for (const [kind, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(size);
    // from the top: the sticky header is drawn where the scroll left it
    await page.evaluate(() => window.scrollTo(0, 0));
    const file = path.join(SCREENSHOTS, `${name}-${kind}.png`);
    await page.screenshot({ path: file, fullPage: true });
    files.push(file);
  }
  if (before) await page.setViewportSize(before);
  return files;
}

// wait until the router finished showing the page (main not busy)
export async function settled(page) {
  await page.waitForFunction(() => {
    const m = document.getElementById('main');
    return m && !m.hasAttribute('aria-busy') && m.querySelector('h1');
  });
}

// poll fn until it returns a truthy value (eventually consistent reads:
// search is fed by events); the limit is a count of tries, not a time budget
export async function eventually(fn, tries = 60, pauseMs = 250) {
  let last;
  for (let i = 0; i < tries; i++) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  return last;
}
