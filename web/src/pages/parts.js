// Pieces the UICORE pages share: post lists, artist cards, loading states.
import { h, timeEl, fmtDuration, plural } from '../lib/dom.js';

export function loading(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, text);
}

// Markdown to a short plain-text excerpt (for lists; no markup survives)
export function excerpt(markdown, max = 220) {
  const text = String(markdown || '')
    .replace(/```[\s\S]*?```/g, ' ')
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]*>/g, ' ')
    .replace(/[#>*_`~|-]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return text.length > max ? `${text.slice(0, max).replace(/\s+\S*$/, '')}…` : text;
}

export function authorName(post) {
  return post.author || '[deleted]';
}

export function postItem(post, opts = {}) {
  const Heading = opts.heading || 'h3';
  return h('li', { class: 'post-item' },
    h('article', null,
      h(Heading, null, h('a', { href: `/posts/${encodeURIComponent(post.id)}` }, post.title)),
      h('p', { class: 'meta' },
        h('span', null, 'by ', authorName(post)),
        timeEl(post.published_at || post.created_at),
        post.status === 'draft' ? h('span', { class: 'tag' }, 'draft') : null),
      opts.excerpt === false ? null : h('p', { class: 'excerpt' }, excerpt(post.body))));
}

export function postList(posts, opts = {}) {
  if (!posts || !posts.length) return h('p', { class: 'empty' }, opts.empty || 'No posts yet.');
  return h('ul', { class: 'plain-list post-list' }, posts.map((p) => postItem(p, opts)));
}

export function artistCard(artist, Heading = 'h3') {
  const bits = [artist.country, artist.formed_year ? `since ${artist.formed_year}` : null].filter(Boolean);
  return h('li', { class: 'card artist-card' },
    h(Heading, null, h('a', { href: `/artists/${encodeURIComponent(artist.id)}` }, artist.name)),
    bits.length ? h('p', { class: 'meta' }, bits.map((b) => h('span', null, b))) : null,
    artist.genres && artist.genres.length
      ? h('ul', { class: 'tags', 'aria-label': 'Genres' }, artist.genres.map((g) => h('li', { class: 'tag' }, g)))
      : null);
}

export function totalDuration(tracks) {
  const ms = tracks.reduce((t, x) => t + (x.duration_ms || 0), 0);
  return `${plural(tracks.length, 'track')}, ${fmtDuration(ms)}`;
}

const KIND = { album: 'Album', ep: 'EP', single: 'Single', compilation: 'Compilation' };
export function albumKind(kind) { return KIND[kind] || kind || 'Album'; }

export function year(date) { return date ? String(date).slice(0, 4) : ''; }

// the track list of an album: <ol> of position, title, duration
export function trackList(tracks, opts = {}) {
  if (!tracks.length) return h('p', { class: 'empty' }, 'No tracks listed yet.');
  return h('ol', { class: 'track-list', 'aria-label': opts.label || 'Tracks' },
    tracks.map((t) => h('li', { class: 'track', id: `track-${t.id}` },
      h('span', { class: 'track-pos', 'aria-hidden': 'true' }, t.position),
      h('span', { class: 'track-title' }, t.title),
      h('span', { class: 'track-duration' },
        h('span', { class: 'visually-hidden' }, 'duration '),
        h('time', { datetime: `PT${Math.round((t.duration_ms || 0) / 1000)}S` }, fmtDuration(t.duration_ms))))));
}
