// /: the home view (latest posts, artists) in one request
import { h } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { session } from '../lib/session.js';
import { postList, artistCard } from './parts.js';

export default {
  path: '/',
  title: '',
  async render(main, ctx) {
    const view = await api.get('/api/v1/views/home', null, { signal: ctx.signal });
    const posts = view.latest_posts;
    const artists = view.artists;
    main.append(
      h('section', { class: 'hero' },
        h('h1', null, 'Music, talked about'),
        h('p', { class: 'lede' }, 'Encore is where listeners write about the artists and albums they love.'),
        session.user
          ? h('p', null, h('a', { href: '/posts/new', class: 'button' }, 'Write a post'))
          : h('p', { class: 'actions' },
            h('a', { href: '/register', class: 'button' }, 'Join Encore'),
            h('a', { href: '/login', class: 'button button-secondary' }, 'Sign in'))),
      h('div', { class: 'two-col' },
        h('section', { 'aria-labelledby': 'latest-h', class: 'latest-posts' },
          h('h2', { id: 'latest-h' }, 'Latest posts'),
          posts ? postList(posts, { empty: 'No posts yet: be the first to write one.' })
            : h('p', { class: 'notice-error' }, 'The latest posts could not be loaded just now.')),
        h('section', { 'aria-labelledby': 'artists-h', class: 'home-artists' },
          h('h2', { id: 'artists-h' }, 'Artists'),
          artists
            ? (artists.length
              ? h('ul', { class: 'plain-list artist-stack' }, artists.map((a) => artistCard(a)))
              : h('p', { class: 'empty' }, 'No artists in the catalog yet.'))
            : h('p', { class: 'notice-error' }, 'The artists could not be loaded just now.'))));
    // the browser suite measures navigation start to this (the README's
    // speed budget)
    if (performance.mark) performance.mark('encore:home-rendered');
  },
};
