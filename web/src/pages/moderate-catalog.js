/*
 * moderate-catalog.js — catalog editing for moderators:
 *   /moderate/artists       find an artist, add one
 *   /moderate/artists/:id   edit or delete the artist; its albums, add one
 *   /moderate/albums/:id    edit or delete the album; its tracks: add,
 *                           edit, delete
 * Every write goes to the catalog API; its problems are shown next to
 * the field they name.
 */

import { h, clear, fmtDuration } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { busy, clearProblems, field, formData } from '../lib/forms.js';
import {
  confirmDelete, failure, form, getAll, isNotFound, localProblem, pageHeading,
  pagedList, parseDuration, section, showFormProblem, slugify, splitList,
} from './kit.js';

const KINDS = [
  ['album', 'Album'], ['ep', 'EP'], ['single', 'Single'],
  ['compilation', 'Compilation'],
];

const enc = encodeURIComponent;

/* --- artists --------------------------------------------------------- */

function artistControls(a) {
  const name = h('input', { name: 'name', required: '', maxlength: '200',
                            autocomplete: 'off' });
  const slug = h('input', { name: 'slug', required: '', maxlength: '100',
                            autocomplete: 'off', spellcheck: 'false' });
  const country = h('input', { name: 'country', maxlength: '2', size: '3',
                               autocomplete: 'off', class: 'input-short' });
  const year = h('input', { name: 'formed_year', inputmode: 'numeric',
                            maxlength: '4', size: '5', autocomplete: 'off',
                            class: 'input-short' });
  const genres = h('input', { name: 'genres', autocomplete: 'off' });
  const bio = h('textarea', { name: 'bio', rows: '6', maxlength: '10000' });
  if (a) {
    name.value = a.name;
    slug.value = a.slug;
    country.value = a.country || '';
    year.value = a.formed_year == null ? '' : String(a.formed_year);
    genres.value = (a.genres || []).join(', ');
    bio.value = a.bio || '';
  } else {
    /* a new artist's slug follows the name until edited by hand */
    let touched = false;
    slug.addEventListener('input', () => { touched = slug.value !== ''; });
    name.addEventListener('input', () => {
      if (!touched) {
        slug.value = slugify(name.value);
      }
    });
  }
  return [
    field('Name', name),
    field('Slug', slug, 'Lower-case letters and digits joined by hyphens; used in links.'),
    h('div', { class: 'field-row' },
      field('Country', country, 'Two-letter code, e.g. GB.'),
      field('Formed in', year, 'Year.')),
    field('Genres', genres, 'Separated by commas.'),
    field('Biography', bio),
  ];
}

/* the artist form's values -> an API body, or a problem to show */
function artistBody(f) {
  const d = formData(f);
  const errors = [];
  let year = null;
  if ((d.formed_year || '').trim() !== '') {
    if (!/^\d{1,4}$/.test(d.formed_year.trim())) {
      errors.push({ field: 'formed_year', message: 'must be a year, e.g. 1975' });
    } else {
      year = Number(d.formed_year.trim());
    }
  }
  if (errors.length) {
    return { problem: localProblem(errors) };
  }
  const country = (d.country || '').trim();
  return {
    body: {
      name: d.name,
      slug: (d.slug || '').trim(),
      country: country === '' ? null : country.toUpperCase(),
      formed_year: year,
      genres: splitList(d.genres),
      bio: d.bio || '',
    },
  };
}

async function renderArtists(main, ctx) {
  const q = ctx.query.get('q') || '';

  const search = h('input', { name: 'q', type: 'search', autocomplete: 'off' });
  search.value = q;
  const searchForm = h('form', { class: 'inline-form', role: 'search',
                                 'aria-label': 'Find an artist' },
                       field('Name starts with', search),
                       h('button', { type: 'submit', class: 'button button-secondary' }, 'Find'));
  searchForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = search.value.trim();
    ctx.navigate(v ? `/moderate/artists?q=${enc(v)}` : '/moderate/artists');
  });

  const list = pagedList({
    path: '/api/v1/artists',
    query: q ? { q } : {},
    list: h('ul', { class: 'entity-list' }),
    item: (a) => h('li', null,
                   h('a', { href: `/moderate/artists/${enc(a.id)}` }, a.name),
                   h('span', { class: 'muted' },
                     [a.country, a.formed_year, (a.genres || []).join(', ')]
                       .filter((x) => x != null && x !== '').join(' · '))),
    empty: q ? `No artist’s name starts with “${q}”.` : 'The catalog has no artists yet.',
  });

  const create = h('button', { type: 'submit', class: 'button' },
                   'Add artist');
  const createForm = form({ class: 'stack', 'aria-label': 'Add an artist' },
                          ...artistControls(null),
                          h('div', { class: 'actions' }, create));
  createForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearProblems(createForm);
    const { body, problem } = artistBody(createForm);
    if (problem) {
      showFormProblem(createForm, problem);
      return;
    }
    try {
      const a = await busy(create, () => api.post('/api/v1/artists', body));
      ctx.announce(`${a.name} added.`);
      ctx.navigate(`/moderate/artists/${enc(a.id)}`);
    } catch (err) {
      showFormProblem(createForm, err);
    }
  });

  clear(main);
  main.append(pageHeading('Catalog'),
              h('p', null, h('a', { href: '/moderate' }, '← Moderation')),
              h('div', { class: 'two-col' },
                section('Artists', searchForm, list.el),
                section('Add an artist', createForm)));
  await list.load();
}

function albumRow(al) {
  return h('li', null,
           h('a', { href: `/moderate/albums/${enc(al.id)}` }, al.title),
           h('span', { class: 'muted' },
             [kindLabel(al.kind), al.release_date].filter(Boolean).join(' · ')));
}

function kindLabel(kind) {
  const k = KINDS.find(([v]) => v === kind);
  return k ? k[1] : kind;
}

function albumControls(al) {
  const title = h('input', { name: 'title', required: '', maxlength: '200',
                             autocomplete: 'off' });
  const date = h('input', { name: 'release_date', type: 'date' });
  const kind = h('select', { name: 'kind', required: '' },
                 KINDS.map(([v, label]) => h('option', { value: v }, label)));
  if (al) {
    title.value = al.title;
    date.value = al.release_date || '';
    kind.value = al.kind;
  }
  return [
    field('Title', title),
    h('div', { class: 'field-row' },
      field('Released', date), field('Kind', kind)),
  ];
}

function albumBody(f) {
  const d = formData(f);
  return {
    title: d.title,
    release_date: (d.release_date || '') === '' ? null : d.release_date,
    kind: d.kind,
  };
}

async function renderArtist(main, ctx) {
  const id = ctx.params.id;
  let artist;
  let albums;
  clear(main);
  try {
    [artist, albums] = await Promise.all([
      api.get(`/api/v1/artists/${enc(id)}`),
      getAll(`/api/v1/artists/${enc(id)}/albums`),
    ]);
  } catch (err) {
    main.append(pageHeading(isNotFound(err) ? 'Artist not found' : 'Artist'),
                failure(err, 'The artist could not be loaded'),
                h('p', null, h('a', { href: '/moderate/artists' }, 'Back to the catalog')));
    return;
  }
  ctx.setTitle(`Edit ${artist.name}`);

  const heading = pageHeading(artist.name);
  const save = h('button', { type: 'submit', class: 'button' }, 'Save');
  const saved = h('p', { class: 'form-done', role: 'status' });
  const editForm = form({ class: 'stack', 'aria-label': 'Edit the artist' },
                        ...artistControls(artist),
                        h('div', { class: 'actions' }, save), saved);
  editForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearProblems(editForm);
    saved.textContent = '';
    const { body, problem } = artistBody(editForm);
    if (problem) {
      showFormProblem(editForm, problem);
      return;
    }
    try {
      artist = await busy(save, () => api.patch(`/api/v1/artists/${enc(id)}`, body));
      heading.querySelector('h1').textContent = artist.name;
      ctx.setTitle(`Edit ${artist.name}`);
      saved.textContent = `Saved ${artist.name}.`;
    } catch (err) {
      showFormProblem(editForm, err);
    }
  });

  const albumList = h('ul', { class: 'entity-list' }, albums.map(albumRow));
  const albumsEmpty = h('p', { class: 'muted' }, albums.length ? '' : 'No albums yet.');
  const add = h('button', { type: 'submit', class: 'button' }, 'Add album');
  const addForm = form({ class: 'stack', 'aria-label': 'Add an album' },
                       ...albumControls(null),
                       h('div', { class: 'actions' }, add));
  addForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearProblems(addForm);
    try {
      const al = await busy(add, () => api.post('/api/v1/albums',
                                                { artist_id: id, ...albumBody(addForm) }));
      ctx.announce(`${al.title} added.`);
      ctx.navigate(`/moderate/albums/${enc(al.id)}`);
    } catch (err) {
      showFormProblem(addForm, err);
    }
  });

  main.append(heading,
              h('p', { class: 'crumbs' },
                h('a', { href: '/moderate/artists' }, '← Catalog'), ' · ',
                h('a', { href: `/artists/${enc(id)}` }, 'Public page')),
              h('div', { class: 'two-col' },
                section('Details', editForm,
                        h('div', { class: 'danger-zone' },
                          h('h3', null, 'Delete'),
                          h('p', null, 'Deleting an artist deletes its albums and tracks too.'),
                          confirmDelete({
                            label: 'Delete artist',
                            question: `Delete ${artist.name}, with ${albums.length} album${
                              albums.length === 1 ? '' : 's'} and their tracks?`,
                            onConfirm: async () => {
                              await api.del(`/api/v1/artists/${enc(id)}`);
                              ctx.announce(`${artist.name} deleted.`);
                              ctx.navigate('/moderate/artists');
                            },
                          }))),
                h('div', null,
                  section('Albums', albumList, albumsEmpty),
                  section('Add an album', addForm))));
}

/* --- albums and tracks ----------------------------------------------- */

function trackControls(t, nextPosition) {
  const position = h('input', { name: 'position', type: 'number', min: '1',
                                required: '', class: 'input-short' });
  const title = h('input', { name: 'title', required: '', maxlength: '200',
                             autocomplete: 'off' });
  const duration = h('input', { name: 'duration_ms', required: '',
                                inputmode: 'numeric', placeholder: 'm:ss',
                                autocomplete: 'off', class: 'input-short' });
  position.value = String(t ? t.position : nextPosition);
  if (t) {
    title.value = t.title;
    duration.value = fmtDuration(t.duration_ms);
  }
  return [
    field('No.', position),
    field('Title', title),
    field('Length', duration, 'Minutes:seconds, e.g. 4:05.'),
  ];
}

function trackBody(f) {
  const d = formData(f);
  const errors = [];
  const ms = parseDuration(d.duration_ms);
  if (ms == null) {
    errors.push({ field: 'duration_ms', message: 'must be a length like 4:05' });
  }
  const pos = Number(d.position);
  if (!Number.isInteger(pos) || pos < 1) {
    errors.push({ field: 'position', message: 'must be a whole number from 1' });
  }
  if (errors.length) {
    return { problem: localProblem(errors) };
  }
  return { body: { position: pos, title: d.title, duration_ms: ms } };
}

async function renderAlbum(main, ctx) {
  const id = ctx.params.id;
  let album;
  let tracks;
  let artist = null;
  clear(main);
  try {
    [album, tracks] = await Promise.all([
      api.get(`/api/v1/albums/${enc(id)}`),
      getAll(`/api/v1/albums/${enc(id)}/tracks`),
    ]);
    artist = await api.get(`/api/v1/artists/${enc(album.artist_id)}`).catch(() => null);
  } catch (err) {
    main.append(pageHeading(isNotFound(err) ? 'Album not found' : 'Album'),
                failure(err, 'The album could not be loaded'),
                h('p', null, h('a', { href: '/moderate/artists' }, 'Back to the catalog')));
    return;
  }
  ctx.setTitle(`Edit ${album.title}`);

  const heading = pageHeading(album.title);
  const save = h('button', { type: 'submit', class: 'button' }, 'Save');
  const saved = h('p', { class: 'form-done', role: 'status' });
  const editForm = form({ class: 'stack', 'aria-label': 'Edit the album' },
                        ...albumControls(album),
                        h('div', { class: 'actions' }, save), saved);
  editForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearProblems(editForm);
    saved.textContent = '';
    try {
      album = await busy(save, () => api.patch(`/api/v1/albums/${enc(id)}`,
                                               albumBody(editForm)));
      heading.querySelector('h1').textContent = album.title;
      saved.textContent = `Saved ${album.title}.`;
    } catch (err) {
      showFormProblem(editForm, err);
    }
  });

  const trackList = h('ol', { class: 'track-edit-list' });
  const tracksStatus = h('p', { class: 'form-done', role: 'status' });

  function sortTracks() {
    tracks.sort((a, b) => a.position - b.position);
  }

  function nextPosition() {
    return tracks.reduce((m, t) => Math.max(m, t.position), 0) + 1;
  }

  function trackItem(t) {
    const li = h('li', { class: 'track-edit', 'data-id': t.id });

    function view(focusEdit) {
      clear(li);
      const edit = h('button', {
        type: 'button', class: 'button button-small button-secondary',
        'aria-label': `Edit ${t.title}`, onclick: () => editing(),
      }, 'Edit');
      li.append(h('span', { class: 'track-pos' }, String(t.position)),
                h('span', { class: 'track-title' }, t.title),
                h('span', { class: 'track-dur' }, fmtDuration(t.duration_ms)),
                h('div', { class: 'actions' }, edit,
                  confirmDelete({
                    label: 'Delete',
                    question: `Delete track ${t.position}, ${t.title}?`,
                    onConfirm: async () => {
                      await api.del(`/api/v1/tracks/${enc(t.id)}`);
                      tracks = tracks.filter((x) => x.id !== t.id);
                      const next = li.nextElementSibling || li.previousElementSibling;
                      li.remove();
                      tracksStatus.textContent = `Deleted ${t.title}.`;
                      const target = next ? next.querySelector('button') : addForm.elements.namedItem('title');
                      if (target) {
                        target.focus();
                      }
                      addForm.elements.namedItem('position').value = String(nextPosition());
                    },
                  })));
      const del = li.querySelector('.confirm > button');
      if (del) {
        del.setAttribute('aria-label', `Delete ${t.title}`);
      }
      if (focusEdit) {
        edit.focus();
      }
    }

    function editing() {
      clear(li);
      const ok = h('button', { type: 'submit', class: 'button' }, 'Save');
      const cancel = h('button', { type: 'button', class: 'button button-secondary',
                                   onclick: () => view(true) }, 'Cancel');
      const f = form({ class: 'track-form', 'aria-label': `Edit track ${t.title}` },
                     h('div', { class: 'field-row' }, ...trackControls(t)),
                     h('div', { class: 'actions' }, ok, cancel));
      f.addEventListener('keydown', (e) => {
        if (e.key === 'Escape') {
          view(true);
        }
      });
      f.addEventListener('submit', async (e) => {
        e.preventDefault();
        clearProblems(f);
        const { body, problem } = trackBody(f);
        if (problem) {
          showFormProblem(f, problem);
          return;
        }
        try {
          const saved2 = await busy(ok, () => api.patch(`/api/v1/tracks/${enc(t.id)}`, body));
          Object.assign(t, saved2);
          tracksStatus.textContent = `Saved ${t.title}.`;
          sortTracks();
          redraw(t.id);
        } catch (err) {
          showFormProblem(f, err);
        }
      });
      li.append(f);
      f.elements.namedItem('title').focus();
    }

    view(false);
    li.view = view;
    return li;
  }

  function redraw(focusId) {
    clear(trackList);
    for (const t of tracks) {
      const li = trackItem(t);
      trackList.append(li);
      if (t.id === focusId) {
        li.view(true);
      }
    }
  }

  const add = h('button', { type: 'submit', class: 'button' }, 'Add track');
  const addForm = form({ class: 'track-form', 'aria-label': 'Add a track' },
                       h('div', { class: 'field-row' }, ...trackControls(null, 1)),
                       h('div', { class: 'actions' }, add));
  addForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearProblems(addForm);
    const { body, problem } = trackBody(addForm);
    if (problem) {
      showFormProblem(addForm, problem);
      return;
    }
    try {
      const t = await busy(add, () => api.post('/api/v1/tracks', { album_id: id, ...body }));
      tracks.push(t);
      sortTracks();
      redraw(null);
      addForm.reset();
      addForm.elements.namedItem('position').value = String(nextPosition());
      tracksStatus.textContent = `Added ${t.title}.`;
      addForm.elements.namedItem('title').focus();
    } catch (err) {
      showFormProblem(addForm, err);
    }
  });

  sortTracks();
  redraw(null);
  addForm.elements.namedItem('position').value = String(nextPosition());

  main.append(heading,
              h('p', { class: 'crumbs' },
                artist
                  ? h('a', { href: `/moderate/artists/${enc(artist.id)}` }, `← ${artist.name}`)
                  : h('a', { href: '/moderate/artists' }, '← Catalog'),
                ' · ', h('a', { href: `/albums/${enc(id)}` }, 'Public page')),
              h('div', { class: 'two-col' },
                section('Tracks', trackList, tracksStatus,
                        h('h3', null, 'Add a track'), addForm),
                section('Details', editForm,
                        h('div', { class: 'danger-zone' },
                          h('h3', null, 'Delete'),
                          h('p', null, 'Deleting an album deletes its tracks too.'),
                          confirmDelete({
                            label: 'Delete album',
                            question: `Delete ${album.title} and its ${tracks.length} track${
                              tracks.length === 1 ? '' : 's'}?`,
                            onConfirm: async () => {
                              await api.del(`/api/v1/albums/${enc(id)}`);
                              ctx.announce(`${album.title} deleted.`);
                              ctx.navigate(artist ? `/moderate/artists/${enc(artist.id)}`
                                                  : '/moderate/artists');
                            },
                          })))));
}

export const moderateArtist = {
  path: '/moderate/artists/:id',
  title: 'Edit artist',
  auth: 'moderator',
  render: renderArtist,
};

export const moderateAlbum = {
  path: '/moderate/albums/:id',
  title: 'Edit album',
  auth: 'moderator',
  render: renderAlbum,
};

export default {
  path: '/moderate/artists',
  title: 'Catalog',
  auth: 'moderator',
  render: renderArtists,
};
