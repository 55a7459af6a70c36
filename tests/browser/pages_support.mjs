// Helpers of the chat, feedback, moderation and profile tests: reading
// what the page says about a form's fields, the way a screen reader
// would find it (aria-invalid and aria-describedby).
import assert from 'node:assert/strict';

// the error message described for a control (a locator), '' if none
export async function fieldError(control) {
  return control.evaluate((el) => {
    if (el.getAttribute('aria-invalid') !== 'true') return '';
    const ids = (el.getAttribute('aria-describedby') || '').split(/\s+/);
    return ids.map((id) => document.getElementById(id))
      .filter((n) => n && n.classList.contains('field-error'))
      .map((n) => n.textContent).join(' ');
  });
}

// asserts the control is marked invalid with a message matching re
export async function assertFieldError(control, re, what) {
  await control.and(control.page().locator('[aria-invalid="true"]')).waitFor();
  const msg = await fieldError(control);
  assert.match(msg, re, `${what}: the error next to the field: ${JSON.stringify(msg)}`);
  // the form's alert says what happened in a sentence, not a shrug
  const alert = await control.evaluate((el) => {
    const region = el.form && el.form.querySelector('.form-alert');
    return region ? region.textContent : '';
  });
  assert.ok(alert && !/something went wrong/i.test(alert),
    `${what}: the form's alert: ${JSON.stringify(alert)}`);
  return msg;
}

// the focused element's accessible-ish name: label, aria-label or text
export async function focusedName(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el) return '';
    if (el.labels && el.labels.length) return el.labels[0].textContent.trim();
    return (el.getAttribute('aria-label') || el.textContent || '').trim();
  });
}

// no uncaught exception happened in the page
export function assertNoErrors(page) {
  assert.deepEqual(page.errors.map(String), [], 'uncaught errors in the page');
}
