/**
 * The schema: every table kvarc keeps, and the one idempotent migration that
 * creates or upgrades them under an advisory lock.
 */
import pg from 'pg'
import { MAX_WRITER_ID } from './version.js'

/** One row per writer id (writer-lease.ts); `expires_at` in the past means free. */
const WRITER_LEASES_TABLE = `
CREATE TABLE IF NOT EXISTS kv_writer_leases (
  id         integer PRIMARY KEY,
  holder     text,
  expires_at timestamptz NOT NULL
);
INSERT INTO kv_writer_leases (id, expires_at)
SELECT g, '-infinity' FROM generate_series(0, ${MAX_WRITER_ID}) AS g
ON CONFLICT (id) DO NOTHING;
`

/** Keys whose cache entry may be older than the record, until repaired (cache-repair.ts). */
const CACHE_REPAIR_TABLE = `
CREATE TABLE IF NOT EXISTS kv_cache_repair (
  key      text COLLATE "C" PRIMARY KEY,
  version  bigint NOT NULL,
  noted_at timestamptz NOT NULL DEFAULT now()
);
`

/**
 * What became of conditional writes (applied or rejected, decided under the row
 * lock: conditional.ts) and of dead-lettered writes, for receipts. Plain writes
 * store nothing: the record's version tells their outcome. Kept as long as
 * tombstones and purged with them (by version).
 */
const WRITE_OUTCOMES_TABLE = `
CREATE TABLE IF NOT EXISTS kv_write_outcomes (
  key        text COLLATE "C" NOT NULL,
  version    bigint NOT NULL,
  status     text NOT NULL CHECK (status IN ('applied', 'rejected', 'dead-lettered')),
  reason     text,
  current    bigint,
  decided_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (key, version)
);
CREATE INDEX IF NOT EXISTS kv_write_outcomes_version ON kv_write_outcomes (version);
ALTER TABLE kv_write_outcomes ADD COLUMN IF NOT EXISTS detail jsonb;
`

/**
 * API tokens (auth.ts): the secret is stored only as its SHA-256. A revoked
 * token keeps its row (who had access, and until when); its name may be reused.
 */
const TOKENS_TABLE = `
CREATE TABLE IF NOT EXISTS kv_tokens (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  secret_hash bytea NOT NULL,
  rules       jsonb NOT NULL,
  admin       boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS kv_tokens_live_name ON kv_tokens (name) WHERE revoked_at IS NULL;
`

/** Serialises concurrent migrations (two hosts starting together) on one advisory lock. */
const MIGRATION_LOCK = 0x6b76617263 // "kvarc"

/**
 * One row per key. `version` orders writes (newer wins), `deleted` marks a
 * tombstone, `expires_at` (epoch seconds, NULL: never) ends a key's life, so an older PUT that arrives after a DELETE cannot resurrect the
 * key. Keys use the "C" collation: byte order, the same order `/api/all`'s
 * cursor walks, independent of the server's locale. The ALTERs upgrade a table
 * left by the original system (key, value only).
 */
export const MIGRATION = `
CREATE TABLE IF NOT EXISTS kv_store (
  key        text COLLATE "C" PRIMARY KEY,
  value      text,
  version    bigint NOT NULL DEFAULT 0,
  deleted    boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE kv_store ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0;
ALTER TABLE kv_store ADD COLUMN IF NOT EXISTS deleted boolean NOT NULL DEFAULT false;
ALTER TABLE kv_store ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE kv_store ADD COLUMN IF NOT EXISTS expires_at bigint;
CREATE INDEX IF NOT EXISTS kv_store_tombstones ON kv_store (version) WHERE deleted;
CREATE INDEX IF NOT EXISTS kv_store_expiring ON kv_store (expires_at) WHERE expires_at IS NOT NULL AND NOT deleted;
` + WRITER_LEASES_TABLE + CACHE_REPAIR_TABLE + WRITE_OUTCOMES_TABLE + TOKENS_TABLE

export async function migrate(db: pg.Pool | pg.Client): Promise<void> {
  const client = db instanceof pg.Pool ? await db.connect() : db
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
    await client.query(MIGRATION)
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  } finally {
    if (db instanceof pg.Pool) (client as pg.PoolClient).release()
  }
}

