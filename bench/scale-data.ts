/**
 * The scale bench's data: the record grown to each size, the cached keys, and
 * what they cost in PostgreSQL and Redis. The set-up writes straight into
 * PostgreSQL (server-side generate_series, the fastest way to lay down 10⁷
 * rows); everything measured goes through the front door.
 *
 *   miss-<i>  the rows that make up the size: never cached before a GET-miss run
 *   hit-<i>   rows that are also in the cache, for GET hit
 * Every other family (put-, drain-, lagload-, …) is written by a measurement
 * and removed after it (removeWritten), so each size measures its own table.
 */
import { Redis } from 'ioredis'
import type pg from 'pg'
import { cacheSetIfNewer, createRedis } from '../src/shared/cache.js'
import type { Config } from '../src/shared/config.js'
import { versionAtMillis } from '../src/shared/version.js'
import { scanCached } from './data.js'

/** An hour old: every write the bench makes is newer. */
const SEED_VERSION = () => versionAtMillis(Date.now() - 3_600_000)

/** Rows per INSERT: about a second of work each, so progress moves and one statement never holds minutes of WAL. */
const CHUNK = 500_000

/** Adds rows `${family}<i>` for from ≤ i < to, each with a value of `valueBytes`. */
export async function growTable(db: pg.Pool, family: string, from: number, to: number, valueBytes: number, onProgress?: (done: number) => void): Promise<void> {
  const version = SEED_VERSION()
  const value = 'v'.repeat(valueBytes)
  for (let start = from; start < to; start += CHUNK) {
    const end = Math.min(to, start + CHUNK)
    await db.query(
      `INSERT INTO kv_store (key, value, version, deleted)
       SELECT $1 || i, $2, $3::bigint + i, false FROM generate_series($4::bigint, $5::bigint - 1) AS i
       ON CONFLICT (key) DO NOTHING`,
      [family, value, version.toString(), start, end])
    onProgress?.(end)
  }
  // Fresh statistics and a visibility map: the planner and index-only scans see the table as it now is.
  await db.query('VACUUM ANALYZE kv_store')
  // The load's dirty pages written out now, not by a checkpoint in the middle of the next measurement
  // (seen: PUT p99 over a second at 10⁷ keys, RabbitMQ's fsyncs queued behind PostgreSQL's).
  await db.query('CHECKPOINT')
}

export interface RecordSize { rows: number, tableBytes: number, indexBytes: number }

/** Rows, and the table's (with TOAST) and its indexes' bytes on disk. */
export async function recordSize(db: pg.Pool): Promise<RecordSize> {
  const { rows } = await db.query<{ rows: string, table: string, index: string }>(
    `SELECT (SELECT count(*) FROM kv_store) AS rows, pg_table_size('kv_store') AS table, pg_indexes_size('kv_store') AS index`)
  const row = rows[0]!
  return { rows: Number(row.rows), tableBytes: Number(row.table), indexBytes: Number(row.index) }
}

/**
 * Deletes every row outside the families the sizes are made of, then VACUUMs:
 * the next measurement sees the same table as the last one, not one grown by
 * the writes measured in between.
 */
export async function removeWritten(db: pg.Pool, keep: readonly string[]): Promise<number> {
  const conditions = keep.map((_, i) => `key NOT LIKE $${i + 1}`).join(' AND ')
  const { rowCount } = await db.query(`DELETE FROM kv_store WHERE ${conditions}`, keep.map(family => `${family}%`))
  await db.query('VACUUM ANALYZE kv_store')
  return rowCount ?? 0
}

/** Deletes every cache entry under the prefix: afterwards each GET of a miss- key reads PostgreSQL. */
export function clearCache(config: Pick<Config, 'redisUrl' | 'cachePrefix'>): Promise<number> {
  return scanCached(config, '', (redis, keys) => redis.unlink(...keys))
}

/**
 * Writes `hit-<i>` (i < count) as rows and as cache entries in kvarc's own
 * layout, and returns Redis's used_memory growth per entry. Redis is shared
 * with the rest of the machine, so the figure carries whatever else changed
 * meanwhile; with 10⁴ entries that is noise of a few bytes per key.
 */
export async function cacheHitKeys(db: pg.Pool, config: Pick<Config, 'redisUrl' | 'cachePrefix'>, count: number, valueBytes: number): Promise<{ bytesPerKey: number }> {
  await growTable(db, 'hit-', 0, count, valueBytes)
  const { rows } = await db.query<{ key: string, value: string, version: string }>(`SELECT key, value, version::text AS version FROM kv_store WHERE key >= 'hit-' AND key < 'hit.'`)
  const redis = createRedis(config.redisUrl)
  try {
    const before = await usedMemory(redis)
    const options = { prefix: config.cachePrefix, ttlSeconds: 3600, negativeTtlSeconds: 60 }
    for (let start = 0; start < rows.length; start += 1000) {
      await Promise.all(rows.slice(start, start + 1000).map(row => cacheSetIfNewer(redis, options, row.key, { value: row.value, version: row.version, deleted: false })))
    }
    const after = await usedMemory(redis)
    return { bytesPerKey: rows.length ? (after - before) / rows.length : 0 }
  } finally {
    redis.disconnect()
  }
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory')
  const match = /^used_memory:(\d+)/m.exec(info)
  if (!match) throw new Error('Redis INFO memory has no used_memory')
  return Number(match[1])
}

/** A stride coprime with `span` close to its golden-ratio point: consecutive reads land far apart in the key range. */
export function spreadingStride(span: number): number {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b))
  for (let stride = Math.max(1, Math.floor(span * 0.618)); stride > 1; stride--) if (gcd(stride, span) === 1) return stride
  return 1
}
