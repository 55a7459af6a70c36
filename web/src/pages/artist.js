// /artists/:id: the artist view (artist, albums, posts about the artist),
// each album with its tracks and their durations
import { h, link } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { session } from '../lib/session.js';
import {
  postList, trackList, totalDuration, albumKind, year, loading,
} from './parts.js';

let titleText = 'Artist';

function albumSection(album, tracks) {
  const id = `album-${album.id}`;
  return h('li', { class: 'card album-card' },
    h('section', { 'aria-labelledby': id },
      h('h3', { id }, link(`/albums/${encodeURIComponent(album.id)}`, album.title)),
      h('p', { class: 'meta' },
        h('span', null, albumKind(album.kind)),
        album.release_date ? h('span', null, year(album.release_date)) : null,
        tracks ? h('span', null, totalDuration(tracks)) : null),
      tracks ? trackList(tracks, { label: `Tracks of ${album.title}` })
        : h('p', { class: 'notice-error' }, 'The tracks could not be loaded.')));
}

export default {
  path: '/artists/:id',
  title: () => titleText,
  async render(main, ctx) {
    const { signal } = ctx;
    const id = encodeURIComponent(ctx.params.id);
    const view = await api.get(`/api/v1/views/artist/${id}`, null, { signal });
    const { artist } = view;
    titleText = artist.name;
    ctx.setTitle(artist.name);
    const albums = view.albums || [];
    const bits = [
      artist.country,
      artist.formed_year ? `formed ${artist.formed_year}` : null,
    ].filter(Boolean);
    const albumsBox = h('div', null, loading('Loading the albums…'));
    main.append(
      h('header', { class: 'page-head' },
        h('p', { class: 'eyebrow' }, 'Artist'),
        h('h1', null, artist.name),
        bits.length ? h('p', { class: 'meta' }, bits.map((b) => h('span', null, b))) : null,
        artist.genres && artist.genres.length
          ? h('ul', { class: 'tags', 'aria-label': 'Genres' }, artist.genres.map((g) => h('li', { class: 'tag' }, g)))
          : null,
        artist.bio ? h('p', { class: 'lede readable' }, artist.bio) : null,
        session.is('moderator')
          ? h('p', { class: 'actions' }, h('a', {
            href: `/moderate/artists/${id}`, class: 'button button-small button-secondary',
          }, 'Edit artist'))
          : null),
      h('div', { class: 'two-col' },
        h('section', { 'aria-labelledby': 'albums-h' },
          h('h2', { id: 'albums-h' }, 'Albums'),
          view.albums === null
            ? h('p', { class: 'notice-error' }, 'The albums could not be loaded just now.')
            : albumsBox),
        h('section', { 'aria-labelledby': 'posts-h' },
          h('h2', { id: 'posts-h' }, `Posts about ${artist.name}`),
          view.posts === null
            ? h('p', { class: 'notice-error' }, 'The posts could not be loaded just now.')
            : postList(view.posts, { empty: 'Nobody has written about this artist yet.' }),
          session.user
            ? h('p', null, h('a', {
              href: `/posts/new?artist=${encodeURIComponent(artist.id)}`,
              class: 'button button-secondary',
            }, `Write about ${artist.name}`))
            : null)));
    if (view.albums === null) return;
    if (!albums.length) {
      albumsBox.replaceChildren(h('p', { class: 'empty' }, 'No albums in the catalog yet.'));
      return;
    }
    const tracks = await Promise.all(albums.map((a) => api.get(
      `/api/v1/albums/${encodeURIComponent(a.id)}/tracks`, { limit: 100 }, { signal },
    ).then((r) => r.items, (e) => { if (e.name === 'AbortError') throw e; return null; })));
    albumsBox.replaceChildren(h('ul', { class: 'plain-list album-list' },
      albums.map((a, i) => albumSection(a, tracks[i]))));
  },
};
