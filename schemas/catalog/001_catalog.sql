-- Catalog: artists, their albums, the albums' tracks (CONTRACT.md, Catalog).
--
-- The foreign keys are NO ACTION on purpose: deleting an artist or album is
-- done by the worker as one statement that deletes the children too and
-- returns every id it removed, so each removal publishes its own event
-- (a cascade inside PostgreSQL would delete rows no event ever names).

-- lower-case and accent-free, for name prefixes that ignore both ("bjork"
-- finds "Björk").  unaccent() with an explicit dictionary is immutable in
-- practice; the wrapper says so, which generated columns and indexes need.
CREATE FUNCTION fold(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN lower(ext.unaccent('ext.unaccent'::regdictionary, t));

-- the half-open range of C-collated strings that start with p: a prefix
-- search any btree on a "C" column answers, with parameters too (LIKE
-- needs a constant pattern to use an index)
CREATE FUNCTION prefix_end(p text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN p || chr(1114111);

CREATE TABLE artists (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    slug         text NOT NULL CONSTRAINT artists_slug_key UNIQUE
                      CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    bio          text NOT NULL DEFAULT '',
    country      text CHECK (country ~ '^[A-Z]{2}$'),
    formed_year  integer,
    genres       text[] NOT NULL DEFAULT '{}',
    -- the list's sort key: folded, cut to 64 characters so a cursor stays
    -- short (ties beyond that are ordered by id), bytewise
    sort_name    text COLLATE "C" GENERATED ALWAYS AS
                      (left(fold(name), 64)) STORED,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX artists_sort ON artists (sort_name, id);
CREATE INDEX artists_genres ON artists USING gin (genres);

CREATE TABLE albums (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    artist_id     uuid NOT NULL
                       CONSTRAINT albums_artist_id_fkey REFERENCES artists (id),
    title         text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    release_date  date,
    kind          text NOT NULL DEFAULT 'album'
                       CHECK (kind IN ('album', 'ep', 'single', 'compilation')),
    -- an artist's albums by release date, undated ones last
    sort_date     date GENERATED ALWAYS AS
                       (coalesce(release_date, 'infinity')) STORED,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX albums_by_artist ON albums (artist_id, sort_date, id);

CREATE TABLE tracks (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    album_id     uuid NOT NULL
                      CONSTRAINT tracks_album_id_fkey REFERENCES albums (id),
    title        text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    position     integer NOT NULL CHECK (position >= 1),
    duration_ms  integer NOT NULL CHECK (duration_ms >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- also the index of an album's track list, in position order
    CONSTRAINT tracks_album_position_key UNIQUE (album_id, position)
);
