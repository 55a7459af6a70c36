-- Encore: the database, and one schema and one login role per worker.
--
-- Run by auto/stack as the cluster superuser, once per worker, with psql
-- variables:  worker   the worker name, also the schema name ("auth")
--             verifier the role's pre-computed SCRAM-SHA-256 verifier, so
--                      the password itself never reaches the server
-- Idempotent: safe on every start.
\set ON_ERROR_STOP on
\set role encore_:worker

SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec

ALTER ROLE :"role" PASSWORD :'verifier';
ALTER ROLE :"role" CONNECTION LIMIT 64;
ALTER ROLE :"role" SET search_path = :"worker";

-- nothing in the database is open to everybody: each role connects and owns
-- its schema, and has no grant anywhere else
REVOKE ALL ON DATABASE :"dbname" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"dbname" TO :"role";
\c :"dbname"
REVOKE ALL ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA IF NOT EXISTS :"worker" AUTHORIZATION :"role";
REVOKE ALL ON SCHEMA :"worker" FROM PUBLIC;
-- shared extension functions (database.sql): call, never create
GRANT USAGE ON SCHEMA ext TO :"role";
-- the search worker's rebuild (encore-search rebuild) builds the fresh
-- index in temporary tables that shadow its own for that session: the
-- one worker that may create them
SELECT format('GRANT TEMPORARY ON DATABASE %I TO %I', :'dbname', :'role')
 WHERE :'worker' = 'search' \gexec
