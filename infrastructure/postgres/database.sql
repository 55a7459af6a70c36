-- Encore: the one database all worker schemas live in (idempotent).
\set ON_ERROR_STOP on
SELECT format('CREATE DATABASE %I', :'dbname')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'dbname') \gexec
\c :"dbname"
-- the search worker's trigram index; extensions need a superuser
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
-- Extensions every worker may call live in their own schema `ext`: each
-- role gets USAGE on it (roles.sql) and nothing else outside its schema.
-- unaccent folds accents for the catalog's name prefixes ("bjork" finds
-- "Björk").
CREATE SCHEMA IF NOT EXISTS ext;
REVOKE ALL ON SCHEMA ext FROM PUBLIC;
CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA ext;
