// Forms: problem+json errors shown where they belong, values read as a
// plain object.
import { h } from './dom.js';

let uid = 0;

function alertRegion(form) {
  let region = form.querySelector('.form-alert');
  if (!region) {
    region = h('div', { class: 'form-alert', role: 'alert' });
    form.prepend(region);
  }
  return region;
}

export function clearProblems(form) {
  for (const el of form.querySelectorAll('.field-error')) el.remove();
  for (const el of form.querySelectorAll('[aria-invalid="true"]')) {
    el.removeAttribute('aria-invalid');
    const ids = (el.getAttribute('aria-describedby') || '').split(' ')
      .filter((id) => id && !id.startsWith('err-'));
    if (ids.length) el.setAttribute('aria-describedby', ids.join(' '));
    else el.removeAttribute('aria-describedby');
  }
  const region = form.querySelector('.form-alert');
  if (region) region.textContent = '';
}

function sentence(message) {
  const m = String(message || 'is not valid');
  return m[0].toUpperCase() + m.slice(1);
}

// err: an ApiError (or any Error); each errors[].field message beside the
// input of that name, the rest in the form's alert region
export function showProblem(form, err) {
  clearProblems(form);
  const errors = (err && err.problem && Array.isArray(err.problem.errors)) ? err.problem.errors : [];
  const rest = [];
  let first = null;
  for (const e of errors) {
    const input = e.field ? form.elements.namedItem(e.field) : null;
    if (!input || !(input instanceof HTMLElement)) {
      rest.push(e.field ? `${e.field}: ${e.message}` : e.message);
      continue;
    }
    const id = `err-${++uid}`;
    const msg = h('p', { class: 'field-error', id }, sentence(e.message));
    input.setAttribute('aria-invalid', 'true');
    const described = input.getAttribute('aria-describedby');
    input.setAttribute('aria-describedby', described ? `${described} ${id}` : id);
    input.insertAdjacentElement('afterend', msg);
    if (!first) first = input;
  }
  alertRegion(form).textContent =
    [err && err.message ? err.message : 'Something went wrong.', ...rest].join(' ');
  if (first) first.focus();
}

// every named control's value (checkboxes: booleans; multiple: arrays)
export function formData(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    if (el.type === 'checkbox') out[el.name] = el.checked;
    else if (el.type === 'radio') { if (el.checked) out[el.name] = el.value; }
    else if (el.type === 'submit' || el.type === 'button') continue;
    else if (el.multiple && el.options) out[el.name] = [...el.selectedOptions].map((o) => o.value);
    else out[el.name] = el.value;
  }
  return out;
}

// disable a form's controls (or one button) while it is sent: with fn,
// for as long as fn's promise runs (its result returned, its error
// thrown, the controls enabled again first); without, until the returned
// undo is called
export function busy(target, fn) {
  const controls = (target.matches('button, input, textarea, select')
    ? [target] : [...target.querySelectorAll('button, input, textarea, select')])
    .filter((el) => !el.disabled);
  for (const el of controls) el.disabled = true;
  target.setAttribute('aria-busy', 'true');
  const undo = () => {
    for (const el of controls) el.disabled = false;
    target.removeAttribute('aria-busy');
  };
  if (!fn) return undo;
  return (async () => {
    try {
      return await fn();
    } finally {
      undo();
    }
  })();
}

// a labelled control, <div class="field"><label for>text</label> hint
// control</div>: the control gets a unique id (unless it has one) and the
// hint, if any, is added to its description
export function field(label, input, hint) {
  const id = input.id || `f-${input.name || 'x'}-${++uid}`;
  input.id = id;
  let hintEl = null;
  if (hint) {
    hintEl = h('p', { class: 'hint', id: `${id}-hint` }, hint);
    const was = input.getAttribute('aria-describedby');
    input.setAttribute('aria-describedby', was ? `${was} ${hintEl.id}` : hintEl.id);
  }
  return h('div', { class: 'field' }, h('label', { for: id }, label), hintEl, input);
}
