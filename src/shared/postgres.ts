/**
 * PostgreSQL connection and schema. The database is created when missing and the
 * migration is idempotent, so any entry point (sandbox, the warm hosts, a Lambda
 * cold start) can prepare it safely, even several at once.
 */
import pg from 'pg'
import { CACHE_REPAIR_TABLE } from './cache-repair.js'
import { WRITER_LEASES_TABLE } from './writer-lease.js'

/** What the store needs of a client: a pool, a client or a transaction all fit. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>
  /** With a `name`, the statement is prepared once per connection: no parse and plan per call. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(config: { name?: string, text: string, values?: unknown[] }): Promise<pg.QueryResult<R>>
}

export function createPool(databaseUrl: string, max = 10): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max,
    // Fail fast when PostgreSQL is down, so callers answer 503 / retry instead of hanging.
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30000,
    keepAlive: true,
  })
  // An idle client losing its connection (a PostgreSQL restart) must not crash the process;
  // the pool drops it and the next query opens a new one.
  pool.on('error', () => {})
  return pool
}

/** Serialises concurrent migrations (two hosts starting together) on one advisory lock. */
const MIGRATION_LOCK = 0x6b76617263 // "kvarc"

/**
 * One row per key. `version` orders writes (newer wins), `deleted` marks a
 * tombstone, so an older PUT that arrives after a DELETE cannot resurrect the
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
CREATE INDEX IF NOT EXISTS kv_store_tombstones ON kv_store (version) WHERE deleted;
` + WRITER_LEASES_TABLE + CACHE_REPAIR_TABLE

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

/** Creates the database named in the URL when it does not exist (connecting to `postgres` to do it). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const probe = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3000 })
  try {
    await probe.connect()
    return
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000') throw error // 3D000: invalid_catalog_name
  } finally {
    await probe.end().catch(() => {})
  }
  const url = new URL(databaseUrl)
  const name = decodeURIComponent(url.pathname.slice(1))
  url.pathname = '/postgres'
  const admin = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 3000 })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`)
  } catch (error) {
    // 42P04: duplicate_database (another process won the race); 23505: the same race seen in pg_database.
    const code = (error as { code?: string }).code
    if (code !== '42P04' && code !== '23505') throw error
  } finally {
    await admin.end().catch(() => {})
  }
}

/** Database created if missing, schema migrated, then a pool on it. */
export async function openDatabase(databaseUrl: string, max?: number): Promise<pg.Pool> {
  await ensureDatabase(databaseUrl)
  const pool = createPool(databaseUrl, max)
  try {
    await migrate(pool)
  } catch (error) {
    await pool.end().catch(() => {})
    throw error
  }
  return pool
}
