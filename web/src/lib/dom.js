// Building DOM from data: text nodes only (never innerHTML), attributes
// set one by one, events as on<event> functions.

const BOOLEAN_ATTRS = new Set(['hidden', 'disabled', 'required', 'checked',
  'selected', 'readonly', 'multiple', 'open', 'autofocus', 'novalidate']);

function append(el, child) {
  if (child === null || child === undefined || child === false || child === true) return;
  if (Array.isArray(child)) { for (const c of child) append(el, c); return; }
  if (child instanceof Node) { el.appendChild(child); return; }
  el.appendChild(document.createTextNode(String(child)));
}

// h('a', {href: '/x', class: 'btn', onclick: fn}, 'text', [nodes], null)
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith('on') && typeof value === 'function') {
        el.addEventListener(key.slice(2).toLowerCase(), value);
      } else if (key === 'class' || key === 'className') {
        el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
      } else if (key === 'dataset') {
        Object.assign(el.dataset, value);
      } else if (key === 'value' && 'value' in el) {
        el.value = value;
      } else if (key === 'checked' || key === 'selected') {
        el[key] = Boolean(value);
      } else if (key === 'ref' && typeof value === 'function') {
        value(el);
      } else if (key.startsWith('on')) {
        // a string handler would be inline script: refused
        throw new Error(`h(): ${key} must be a function`);
      } else if (value === true && BOOLEAN_ATTRS.has(key)) {
        el.setAttribute(key, '');
      } else {
        el.setAttribute(key, String(value));
      }
    }
  }
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// 245000 -> "4:05"; an hour or more -> "1:02:03"
export function fmtDuration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '';
  const total = Math.round(ms / 1000);
  const s = total % 60;
  const m = Math.floor(total / 60) % 60;
  const hrs = Math.floor(total / 3600);
  const ss = String(s).padStart(2, '0');
  return hrs ? `${hrs}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

const dateFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit',
});

// "2 Dec 2026" (with {time: true}: and the time); '' for no date
export function fmtDate(iso, opts = {}) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return (opts.time ? dateTimeFmt : dateFmt).format(d);
}

// <time datetime=iso>2 Dec 2026</time>
export function timeEl(iso, opts) {
  return h('time', { datetime: iso }, fmtDate(iso, opts));
}

// an in-app link: the router intercepts its clicks
export function link(href, text, props = {}) {
  return h('a', { ...props, href }, text);
}

export function plural(n, one, many = one + 's') {
  return `${n} ${n === 1 ? one : many}`;
}
