-- Encore: the one database all worker schemas live in (idempotent).
\set ON_ERROR_STOP on
SELECT format('CREATE DATABASE %I', :'dbname')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'dbname') \gexec
\c :"dbname"
-- the search worker's trigram index; extensions need a superuser
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
