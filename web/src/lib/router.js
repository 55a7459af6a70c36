// Client-side routing with the History API.  nginx answers every path
// outside /api/ with index.html, so a page's URL can be opened directly.
//
// A page module: { path: '/artists/:id', title: 'Artist' | (ctx) => string,
//   auth: null | 'user' | 'moderator', async render(main, ctx) -> cleanup? }
// ctx: { params, query, user, navigate, setTitle, announce, signal }
import { h, clear } from './dom.js';
import { session } from './session.js';

const SITE = 'Encore';
let routes = [];
let mainEl = null;
let current = null;        // { page, cleanup, controller, path }
let token = 0;             // the latest render: older ones stop writing
let firstRender = true;

function compile(path) {
  const names = [];
  const pattern = path.split('/').map((seg) => {
    if (seg.startsWith(':')) { names.push(seg.slice(1)); return '([^/]+)'; }
    return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }).join('/');
  return { re: new RegExp(`^${pattern}$`), names };
}

function match(pathname) {
  // literal routes first: /posts/new before /posts/:id
  for (const r of routes) {
    const m = r.compiled.re.exec(pathname);
    if (!m) continue;
    const params = {};
    r.compiled.names.forEach((n, i) => {
      try { params[n] = decodeURIComponent(m[i + 1]); } catch (e) { params[n] = m[i + 1]; }
    });
    return { page: r.page, params };
  }
  return null;
}

export function announce(text) {
  const el = document.getElementById('announcer');
  if (!el) return;
  el.textContent = '';
  // a change the live region notices even for the same text
  setTimeout(() => { el.textContent = text; }, 50);
}

export function setTitle(text) {
  document.title = text ? `${text} · ${SITE}` : SITE;
}

export function navigate(path, opts = {}) {
  const url = new URL(path, location.origin);
  const target = url.pathname + url.search + url.hash;
  if (opts.replace) history.replaceState(null, '', target);
  else history.pushState(null, '', target);
  return render({ scroll: !opts.keepScroll });
}

// the path of the page shown now (for ?next=)
export function currentPath() {
  return location.pathname + location.search;
}

export const notFoundPage = {
  title: 'Not found',
  async render(main) {
    main.append(
      h('h1', null, 'Page not found'),
      h('p', null, 'Nothing lives at this address. It may have moved, or never existed.'),
      h('p', null, h('a', { href: '/' }, 'Back to the home page')),
    );
  },
};

const notAllowedPage = {
  title: 'Not allowed',
  async render(main) {
    main.append(
      h('h1', null, 'Not allowed'),
      h('p', null, 'Your account cannot open this page.'),
      h('p', null, h('a', { href: '/' }, 'Back to the home page')),
    );
  },
};

function errorPage(err) {
  return {
    title: 'Something went wrong',
    async render(main) {
      main.append(
        h('h1', null, 'Something went wrong'),
        h('p', { role: 'alert' }, (err && err.message) || 'The page could not be shown.'),
        h('p', null, h('a', { href: location.pathname + location.search }, 'Try again')),
      );
    },
  };
}

function focusHeading() {
  const h1 = mainEl.querySelector('h1');
  const target = h1 || mainEl;
  if (!target.hasAttribute('tabindex')) target.setAttribute('tabindex', '-1');
  target.focus({ preventScroll: true });
}

async function show(page, params, my, controller) {
  const query = new URLSearchParams(location.search);
  const ctx = {
    params,
    query,
    user: session.user,
    navigate,
    setTitle,
    announce,
    signal: controller.signal,
  };
  const title = typeof page.title === 'function' ? page.title(ctx) : page.title;
  setTitle(title || '');
  clear(mainEl);
  mainEl.setAttribute('aria-busy', 'true');
  let cleanup = null;
  try {
    cleanup = await page.render(mainEl, ctx);
  } finally {
    if (my === token) mainEl.removeAttribute('aria-busy');
  }
  return cleanup;
}

export async function render(opts = {}) {
  const my = ++token;
  if (current) {
    if (current.controller) current.controller.abort();
    if (typeof current.cleanup === 'function') {
      try { current.cleanup(); } catch (e) { console.error(e); }
    }
    current = null;
  }
  const found = match(location.pathname);
  let page = found ? found.page : notFoundPage;
  const params = found ? found.params : {};
  // the first page waits for the session (GET /auth/me, started at boot
  // beside the page's own script): what it shows depends on who looks
  if (!session.loaded) {
    try { await session.load(); } catch (e) { /* shown as anonymous */ }
    if (my !== token) return;
  }
  if (page.auth) {
    if (!session.user) {
      const next = encodeURIComponent(location.pathname + location.search);
      history.replaceState(null, '', `/login?next=${next}`);
      return render(opts);
    }
    if (!session.is(page.auth)) page = notAllowedPage;
  }
  const controller = new AbortController();
  current = { page, controller, cleanup: null };
  let cleanup = null;
  try {
    cleanup = await show(page, params, my, controller);
  } catch (err) {
    if (my !== token || (err && err.name === 'AbortError')) return;
    console.error(err);
    const fallback = err && err.status === 404 ? notFoundPage : errorPage(err);
    try { await show(fallback, {}, my, controller); } catch (e) { console.error(e); }
  }
  if (my !== token) {
    if (typeof cleanup === 'function') cleanup();
    return;
  }
  current.cleanup = cleanup;
  if (opts.scroll !== false && !firstRender) window.scrollTo(0, 0);
  if (!firstRender) {
    focusHeading();
    announce(document.title);
  }
  firstRender = false;
  document.dispatchEvent(new CustomEvent('encore:rendered', { detail: { path: location.pathname } }));
}

function onClick(ev) {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey
      || ev.shiftKey || ev.altKey) return;
  const a = ev.target.closest && ev.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download') || a.dataset.external !== undefined) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/assets/')) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  ev.preventDefault();
  navigate(url.pathname + url.search + url.hash);
}

// pages: the route table (routes.js); main: the <main> element
export function start(pages, main) {
  mainEl = main;
  routes = pages.map((page) => ({ page, compiled: compile(page.path) }));
  // literal segments before parameters, longer paths first
  routes.sort((a, b) => {
    const score = (p) => p.split('/').map((s) => (s.startsWith(':') ? 1 : 2));
    const sa = score(a.page.path); const sb = score(b.page.path);
    for (let i = 0; i < Math.max(sa.length, sb.length); i++) {
      const d = (sb[i] || 0) - (sa[i] || 0);
      if (d) return d;
    }
    return 0;
  });
  document.addEventListener('click', onClick);
  window.addEventListener('popstate', () => render({ scroll: false }));
  // an auth page follows the session: signed out there -> to /login
  session.onChange(() => {
    if (current && current.page && current.page.auth) render({ scroll: false });
  });
  return render();
}
