/**
 * Cache-aside reads. A hit answers from Redis; a miss reads PostgreSQL and fills
 * the cache set-if-newer (also for missing keys, as a short negative entry). When
 * Redis is unreachable, reads are served from PostgreSQL and nothing is filled.
 */
import { ABSENT_VERSION, cacheGet, cacheSetIfNewer, type CacheClient, type CacheOptions } from './cache.js'
import { ServiceUnavailableError } from './errors.js'
import type { Queryable } from './postgres.js'
import { readKey } from './store.js'

export interface ReadDeps { db: () => Promise<Queryable>, redis: CacheClient, cache: CacheOptions }

export type ReadResult =
  | { found: true, value: string, version: string, source: 'redis' | 'postgres' }
  | { found: false, source: 'redis' | 'postgres' }

export async function readThrough(deps: ReadDeps, key: string): Promise<ReadResult> {
  let redisUp = true
  try {
    const hit = await cacheGet(deps.redis, deps.cache.prefix, key)
    if (hit) return hit.deleted ? { found: false, source: 'redis' } : { found: true, value: hit.value ?? '', version: hit.version, source: 'redis' }
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
  const entry = row ?? { value: null, version: ABSENT_VERSION, deleted: true }
  if (redisUp) {
    // A failed fill only costs the next reader a miss.
    await cacheSetIfNewer(deps.redis, deps.cache, key, entry).catch(() => {})
  }
  return entry.deleted ? { found: false, source: 'postgres' } : { found: true, value: entry.value ?? '', version: entry.version, source: 'postgres' }
}
