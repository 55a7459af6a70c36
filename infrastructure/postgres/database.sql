-- Encore: the one database all worker schemas live in (idempotent).
\set ON_ERROR_STOP on
SELECT format('CREATE DATABASE %I', :'dbname')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'dbname') \gexec
\c :"dbname"
-- Extensions every worker may call live in their own schema `ext`: each
-- role gets USAGE on it (roles.sql) and nothing else outside its schema.
-- unaccent folds accents for the catalog's name prefixes ("bjork" finds
-- "Björk").
CREATE SCHEMA IF NOT EXISTS ext;
REVOKE ALL ON SCHEMA ext FROM PUBLIC;
CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA ext;
-- the search worker's trigram similarity and index (pg_trgm; a cluster
-- made before it moved here had it in public, where no role may reach it)
-- and its typo budget (fuzzystrmatch's levenshtein_less_equal)
SELECT 'ALTER EXTENSION pg_trgm SET SCHEMA ext'
 WHERE EXISTS (SELECT 1 FROM pg_extension e JOIN pg_namespace n
                 ON n.oid = e.extnamespace
                WHERE e.extname = 'pg_trgm' AND n.nspname <> 'ext') \gexec
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA ext;
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch WITH SCHEMA ext;
