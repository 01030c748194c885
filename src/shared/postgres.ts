/**
 * PostgreSQL connections. The database is created when missing and migrated
 * (schema.ts) before the first pool is handed out, so any entry point (sandbox,
 * the warm hosts, a Lambda cold start) can prepare it safely, even several at once.
 */
import pg from 'pg'
import { migrate } from './schema.js'

/** What the store needs of a client: a pool, a client or a transaction all fit. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>
  /** With a `name`, the statement is prepared once per connection: no parse and plan per call. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(config: { name?: string, text: string, values?: unknown[] }): Promise<pg.QueryResult<R>>
}

/** A pool to take one session from: for a transaction, or a session lock. pg.Pool fits. */
export interface SessionPool extends Queryable {
  connect(): Promise<Queryable & { release(error?: Error | boolean): void }>
}

/**
 * Runs `work` in one transaction on one session of the pool: committed when it
 * resolves, rolled back when it throws (and the session destroyed, not pooled,
 * since its state is unknown).
 */
export async function inTransaction<T>(pool: SessionPool, work: (tx: Queryable) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    await client.query('BEGIN')
    const result = await work(client)
    await client.query('COMMIT')
    return result
  } catch (error) {
    broken = error as Error
    await client.query('ROLLBACK').catch(() => {})
    throw error
  } finally {
    client.release(broken)
  }
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
