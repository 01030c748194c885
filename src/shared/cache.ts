/**
 * The Redis read cache. Each entry is a hash {ver, del, val} with a TTL. Every
 * write to it — a consumer's update or a reader's miss fill — goes through one
 * Lua script that sets only if the version is newer, so a slow reader can never
 * overwrite a newer entry with an older row.
 */
import { Redis } from 'ioredis'

export interface CacheEntry { value: string | null, version: string, deleted: boolean }

/**
 * KEYS[1] cache key; ARGV: version, deleted ('1'/'0'), value, ttl seconds.
 * Versions are 63-bit decimal strings, beyond a Lua number's exact range, so
 * they are compared as strings: longer is larger, equal length compares
 * lexically. Equal versions are a no-op. Returns 1 when it set the entry.
 */
export const SET_IF_NEWER = `
local current = redis.call('HGET', KEYS[1], 'ver')
if current then
  local a, b = string.len(current), string.len(ARGV[1])
  if a > b or (a == b and current >= ARGV[1]) then return 0 end
end
redis.call('HSET', KEYS[1], 'ver', ARGV[1], 'del', ARGV[2], 'val', ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
`

export interface CacheClient {
  hmget(key: string, ...fields: string[]): Promise<(string | null)[]>
  kvarcSetIfNewer(key: string, version: string, deleted: string, value: string, ttl: number): Promise<number>
}

export interface CacheOptions { prefix: string, ttlSeconds: number, negativeTtlSeconds: number }

/**
 * A Redis client for the cache: auto-pipelined (concurrent requests share round
 * trips), the Lua script registered (EVALSHA), bounded retries so a command
 * fails fast while Redis is down and reads fall back to PostgreSQL.
 */
export function createRedis(url: string): Redis & CacheClient {
  const redis = new Redis(url, {
    enableAutoPipelining: true,
    // A command waits for at most one reconnection attempt, then fails: reads fall back to PostgreSQL.
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy: times => Math.min(times * 100, 2000),
  })
  // Queue commands only until the first connection is up (a cold start's first request must not
  // fail); after that, a command on a dead link fails at once instead of waiting behind it.
  redis.once('ready', () => { redis.options.enableOfflineQueue = false })
  redis.on('error', () => {}) // reconnection is automatic; callers see the failed commands
  redis.defineCommand('kvarcSetIfNewer', { numberOfKeys: 1, lua: SET_IF_NEWER })
  return redis as Redis & CacheClient
}

/** Reads an entry; undefined on a miss. */
export async function cacheGet(redis: CacheClient, prefix: string, key: string): Promise<CacheEntry | undefined> {
  const [version, deleted, value] = await redis.hmget(prefix + key, 'ver', 'del', 'val')
  if (version === null || version === undefined) return undefined
  return { version, deleted: deleted === '1', value: deleted === '1' ? null : (value ?? '') }
}

/** Sets an entry if its version is newer than the cached one. Deleted/missing keys get the short TTL. */
export function cacheSetIfNewer(redis: CacheClient, options: CacheOptions, key: string, entry: CacheEntry): Promise<number> {
  return redis.kvarcSetIfNewer(
    options.prefix + key,
    entry.version,
    entry.deleted ? '1' : '0',
    entry.deleted ? '' : (entry.value ?? ''),
    entry.deleted ? options.negativeTtlSeconds : options.ttlSeconds,
  )
}

/** The version a reader caches for a key with no row: below every real version. */
export const ABSENT_VERSION = '0'
