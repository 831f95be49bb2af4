-- Movim needs pgcrypto (gen_random_uuid, digests); the database role must be allowed to create it.
create extension if not exists pgcrypto;
