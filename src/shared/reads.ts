/**
 * Cache-aside reads. A hit answers from Redis; a miss reads PostgreSQL and fills
 * the cache set-if-newer (also for missing keys, as a short negative entry). When
 * Redis is unreachable, reads are served from PostgreSQL and nothing is filled.
 */
import { ABSENT_VERSION, cacheGet, cacheSetIfNewer, type CacheClient, type CacheEntry, type CacheOptions } from './cache.js'
import { ServiceUnavailableError } from './errors.js'
import type { Queryable } from './postgres.js'
import { isExpired, readKey } from './store.js'

export interface ReadDeps { db: () => Promise<Queryable>, redis: CacheClient, cache: CacheOptions }

/**
 * A read's answer; `version` of a missing key is its tombstone's (or its
 * expired row's), or undefined when it has no row. `expiresAt`: when a found
 * key expires (epoch seconds), null when never.
 */
export type ReadResult =
  | { found: true, value: string, version: string, expiresAt: number | null, source: 'redis' | 'postgres' }
  | { found: false, version?: string, source: 'redis' | 'postgres' }

/** An entry as a read answers it: an expired key is missing, at its version. */
function resultOf(entry: CacheEntry, source: 'redis' | 'postgres'): ReadResult {
  if (entry.deleted || isExpired(entry.expiresAt)) return entry.version === ABSENT_VERSION ? { found: false, source } : { found: false, version: entry.version, source }
  return { found: true, value: entry.value ?? '', version: entry.version, expiresAt: entry.expiresAt ?? null, source }
}

/**
 * Reads a key. With `minVersion`, a cached entry older than it is passed over
 * for the record, and a record older than it gives undefined (the write the
 * client waits for has not been applied yet).
 */
export async function readThrough(deps: ReadDeps, key: string): Promise<ReadResult>
export async function readThrough(deps: ReadDeps, key: string, minVersion: bigint): Promise<ReadResult | undefined>
export async function readThrough(deps: ReadDeps, key: string, minVersion?: bigint): Promise<ReadResult | undefined> {
  let redisUp = true
  try {
    const hit = await cacheGet(deps.redis, deps.cache.prefix, key)
    if (hit && (minVersion === undefined || BigInt(hit.version) >= minVersion)) return resultOf(hit, 'redis')
  } catch {
    redisUp = false
  }
  let row: Awaited<ReturnType<typeof readKey>>
  try {
    row = await readKey(await deps.db(), key)
  } catch (error) {
    // A database that is down is transient: say so (503, Retry-After), not "internal error".
    throw new ServiceUnavailableError('the database is unavailable; retry shortly', { cause: error })
  }
  // An expired row is cached as what it is for readers: missing, at its version.
  const entry: CacheEntry = !row ? { value: null, version: ABSENT_VERSION, deleted: true } : isExpired(row.expiresAt) ? { value: null, version: row.version, deleted: true } : row
  if (redisUp) {
    // A failed fill only costs the next reader a miss.
    await cacheSetIfNewer(deps.redis, deps.cache, key, entry).catch(() => {})
  }
  if (minVersion !== undefined && BigInt(entry.version) < minVersion) return undefined
  return resultOf(entry, 'postgres')
}
