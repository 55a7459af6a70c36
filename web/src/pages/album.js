// /albums/:id: an album, its artist and its tracks with durations
import { h, link } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { session } from '../lib/session.js';
import { trackList, totalDuration, albumKind, year } from './parts.js';

let titleText = 'Album';

export default {
  path: '/albums/:id',
  title: () => titleText,
  async render(main, ctx) {
    const { signal } = ctx;
    const id = encodeURIComponent(ctx.params.id);
    const album = await api.get(`/api/v1/albums/${id}`, null, { signal });
    const [artist, tracks] = await Promise.all([
      api.get(`/api/v1/artists/${encodeURIComponent(album.artist_id)}`, null, { signal })
        .catch((e) => { if (e.name === 'AbortError') throw e; return null; }),
      api.get(`/api/v1/albums/${id}/tracks`, { limit: 100 }, { signal }).then((r) => r.items),
    ]);
    titleText = artist ? `${album.title} by ${artist.name}` : album.title;
    ctx.setTitle(titleText);
    main.append(
      h('header', { class: 'page-head' },
        h('p', { class: 'eyebrow' }, albumKind(album.kind)),
        h('h1', null, album.title),
        h('p', { class: 'meta' },
          artist ? h('span', null, 'by ', link(`/artists/${encodeURIComponent(artist.id)}`, artist.name)) : null,
          album.release_date ? h('span', null, h('time', { datetime: album.release_date }, year(album.release_date))) : null,
          h('span', null, totalDuration(tracks))),
        session.is('moderator')
          ? h('p', { class: 'actions' }, h('a', {
            href: `/moderate/albums/${id}`, class: 'button button-small button-secondary',
          }, 'Edit album'))
          : null),
      h('section', { 'aria-labelledby': 'tracks-h', class: 'readable' },
        h('h2', { id: 'tracks-h' }, 'Tracks'),
        trackList(tracks, { label: `Tracks of ${album.title}` })));
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) {
        target.classList.add('highlight');
        target.scrollIntoView({ block: 'center' });
      }
    }
  },
};
