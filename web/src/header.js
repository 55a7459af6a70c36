// The site header: brand, navigation, the search box with its type-ahead,
// and the account links (sign in / register, or the user and sign out).
import { h, clear } from './lib/dom.js';
import { session } from './lib/session.js';
import { navigate, announce } from './lib/router.js';
import { typeahead } from './lib/typeahead.js';

let searchBox = null;

export function renderHeader(el) {
  const user = session.user;
  const nav = [
    ['/', 'Home'],
    ['/search', 'Search'],
    ['/chat', 'Chat', 'user'],
    ['/feedback', 'Feedback', 'user'],
    ['/moderate', 'Moderate', 'moderator'],
    // on a phone "Write" moves here from the account links (layout.css)
    ['/posts/new', 'Write', 'user', 'phone-only'],
  ].filter(([, , role]) => !role || session.is(role));

  const account = user
    ? [
      h('li', { class: 'write-item' }, h('a', { href: '/posts/new', class: 'button button-small' }, 'Write')),
      h('li', null, h('a', { href: '/profile', class: 'account-name' }, user.username)),
      h('li', null, h('button', {
        type: 'button',
        class: 'linklike',
        onclick: async () => {
          await session.logout().catch(() => {});
          announce('Signed out');
          navigate('/');
        },
      }, 'Sign out')),
    ]
    : [
      h('li', null, h('a', {
        href: '/login',
        onclick: (ev) => {
          // come back here after signing in
          const here = location.pathname + location.search;
          if (!['/login', '/register'].includes(location.pathname)) {
            ev.currentTarget.href = `/login?next=${encodeURIComponent(here)}`;
          }
        },
      }, 'Sign in')),
      h('li', null, h('a', { href: '/register', class: 'button button-small' }, 'Join')),
    ];

  if (!searchBox) searchBox = typeahead();
  clear(el);
  el.append(
    h('div', { class: 'header-inner' },
      h('a', { href: '/', class: 'brand', 'aria-label': 'Encore home' },
        h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '♪'), 'Encore'),
      h('nav', { class: 'site-nav', 'aria-label': 'Main' },
        h('ul', null, nav.map(([href, text, , cls]) => h('li', { class: cls }, h('a', { href }, text))))),
      searchBox,
      h('nav', { class: 'account-nav', 'aria-label': 'Account' }, h('ul', null, account)),
    ),
  );
}
