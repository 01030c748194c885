/**
 * The Redis read cache. Each entry is a hash {ver, del, val, exp} with a TTL, where
 * `del` is '0' (a value), '1' (deleted or missing: a negative entry) or 'm' (a
 * version marker: the record holds version `ver`, the value is not cached).
 *
 * Write-around: a consumer refreshes entries that readers already cached and
 * otherwise leaves only a marker, so Redis holds what is read, not everything
 * written. Every cache write is one Lua script comparing versions, so a slow
 * reader can never overwrite a newer entry (or a newer marker) with an older row.
 * `exp` is the key's own expiry (epoch seconds, '' for none): an entry's TTL
 * never reaches past it, and a read checks it too, so the cache never outlives
 * the key.
 */

import { Redis } from 'ioredis'
import type { Config } from './config.js'

export interface CacheEntry { value: string | null, version: string, deleted: boolean, expiresAt?: number | null }

/**
 * Compares two 63-bit decimal version strings (beyond a Lua number's exact
 * range): longer is larger, equal lengths compare lexically.
 */
const AT_LEAST = `
local function at_least(a, b)
  if string.len(a) ~= string.len(b) then return string.len(a) > string.len(b) end
  return a >= b
end
`

/**
 * A reader's miss fill. KEYS[1]; ARGV: version, deleted ('1'/'0'), value, ttl, expiry ('' for none).
 * Rejected when the cached entry is as new or newer, or when a marker says the
 * record already holds a newer version than the row this reader saw. Returns 1
 * when it set the entry.
 */
export const FILL_IF_NEWER = AT_LEAST + `
local cur = redis.call('HMGET', KEYS[1], 'ver', 'del')
if cur[1] then
  if cur[2] == 'm' then
    if cur[1] ~= ARGV[1] and at_least(cur[1], ARGV[1]) then return 0 end
  elseif at_least(cur[1], ARGV[1]) then return 0 end
end
redis.call('HSET', KEYS[1], 'ver', ARGV[1], 'del', ARGV[2], 'val', ARGV[3], 'exp', ARGV[5])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
`

/**
 * A consumer's update after the record changed, for many keys in one call:
 * KEYS are the cache keys, ARGV[1] the marker TTL, then five values per key
 * (version, deleted, value, ttl, expiry). Per key: a cached value or negative entry
 * older than the write is refreshed in place (1); with no entry (or an older
 * marker) only a marker is left (2); an entry as new or newer is kept (0).
 * deleted 'm' asks for a marker in every case (a value too large to cache).
 * One script call per chunk of a batch instead of one per row (measured: ~2.5 µs
 * of Node CPU per row instead of ~11, and far less Redis time).
 */
export const APPLY_MANY_IF_NEWER = AT_LEAST + `
local marker_ttl = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local o = (i - 1) * 5 + 1
  local ver, del, val, ttl, exp = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], tonumber(ARGV[o + 4]), ARGV[o + 5]
  local cur = redis.call('HMGET', key, 'ver', 'del')
  local r = 2
  if cur[1] then
    if at_least(cur[1], ver) then
      r = 0
    elseif cur[2] ~= 'm' and del ~= 'm' then
      redis.call('HSET', key, 'ver', ver, 'del', del, 'val', val, 'exp', exp)
      redis.call('EXPIRE', key, ttl)
      r = 1
    end
  end
  if r == 2 then
    redis.call('HSET', key, 'ver', ver, 'del', 'm', 'val', '', 'exp', '')
    redis.call('EXPIRE', key, marker_ttl)
  end
  out[i] = r
end
return out
`

export interface CacheClient {
  hmget(key: string, ...fields: string[]): Promise<(string | null)[]>
  kvarcFill(key: string, version: string, deleted: string, value: string, ttl: number, expiresAt: string): Promise<number>
  kvarcApplyMany(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<number[]>
  del(...keys: string[]): Promise<number>
}

export interface CacheOptions { prefix: string, ttlSeconds: number, negativeTtlSeconds: number }

/** The cache settings of a config. */
export function cacheOptionsOf(config: Pick<Config, 'cachePrefix' | 'cacheTtlSeconds' | 'negativeTtlSeconds'>): CacheOptions {
  return { prefix: config.cachePrefix, ttlSeconds: config.cacheTtlSeconds, negativeTtlSeconds: config.negativeTtlSeconds }
}

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
    // A Redis that accepts but never answers (a black hole) must not hang reads: after this,
    // the command fails and the read is served from PostgreSQL. One timer per command is
    // the price (about a microsecond); the scripts finish in milliseconds even for a batch.
    commandTimeout: 1000,
    retryStrategy: times => Math.min(times * 100, 2000),
  })
  // Queue commands only until the first connection is up (a cold start's first request must not
  // fail); after that, a command on a dead link fails at once instead of waiting behind it.
  // The same once the first attempt has failed: otherwise a function cold-started while Redis is
  // down waits out every reconnect backoff on each read (seconds) instead of falling back at once.
  const failFast = () => { redis.options.enableOfflineQueue = false }
  redis.once('ready', failFast)
  redis.once('error', failFast)
  redis.on('error', () => {}) // reconnection is automatic; callers see the failed commands
  redis.defineCommand('kvarcFill', { numberOfKeys: 1, lua: FILL_IF_NEWER })
  redis.defineCommand('kvarcApplyMany', { lua: APPLY_MANY_IF_NEWER })
  return redis as Redis & CacheClient
}

/** Reads an entry; undefined on a miss (no entry, or only a version marker). */
export async function cacheGet(redis: CacheClient, prefix: string, key: string): Promise<CacheEntry | undefined> {
  const [version, deleted, value, exp] = await redis.hmget(prefix + key, 'ver', 'del', 'val', 'exp')
  if (version === null || version === undefined || deleted === 'm') return undefined
  return { version, deleted: deleted === '1', value: deleted === '1' ? null : (value ?? ''), expiresAt: exp ? Number(exp) : null }
}

/**
 * An entry's TTL: the cache's (positive or negative), cut to the key's own
 * expiry. At least 1 s: an entry for a key expiring sooner is checked on every
 * hit (cacheGet returns the expiry, the read compares it).
 */
export function entryTtl(options: CacheOptions, entry: CacheEntry, now = Date.now()): number {
  const ttl = entry.deleted ? options.negativeTtlSeconds : options.ttlSeconds
  if (entry.expiresAt === null || entry.expiresAt === undefined || entry.deleted) return ttl
  return Math.max(1, Math.min(ttl, entry.expiresAt - Math.floor(now / 1000)))
}

/**
 * The largest value the cache holds, in UTF-16 units. Measured through nginx
 * (npm run bench:scale, docs/performance.md): a cached 64 KiB value answered
 * 1.7 times as fast as one read from PostgreSQL, a cached 1 MiB value no
 * faster at all, while each took its full size in Redis's memory and in every
 * consumer's script call. Larger values are read from the record; the cache
 * keeps only a version marker for them, so a stale smaller value is never served.
 */
export const MAX_CACHED_VALUE_CHARS = 64 * 1024

function tooLargeToCache(entry: CacheEntry): boolean {
  return !entry.deleted && (entry.value?.length ?? 0) > MAX_CACHED_VALUE_CHARS
}

/**
 * A reader's fill: sets the entry unless the cache knows a newer version.
 * Deleted/missing keys get the short TTL; a value too large to cache is not
 * filled (resolves 0), and the next reader reads the record too.
 */
export async function cacheSetIfNewer(redis: CacheClient, options: CacheOptions, key: string, entry: CacheEntry): Promise<number> {
  if (tooLargeToCache(entry)) return 0
  return redis.kvarcFill(
    options.prefix + key,
    entry.version,
    entry.deleted ? '1' : '0',
    entry.deleted ? '' : (entry.value ?? ''),
    entryTtl(options, entry),
    entry.deleted || entry.expiresAt === null || entry.expiresAt === undefined ? '' : String(entry.expiresAt),
  )
}

/** Bounds of one kvarcApplyMany call: Redis runs a script alone, so no call may carry a huge batch of large values. */
const APPLY_MANY_KEYS = 1000
const APPLY_MANY_BYTES = 1024 * 1024

/**
 * A consumer's cache update for a whole batch (APPLY_MANY_IF_NEWER), in as few
 * script calls as its size allows; markers live `negativeTtlSeconds`, far longer
 * than any read takes. Resolves with each entry's outcome (0 kept, 1 refreshed, 2 marker).
 */
export async function cacheApplyMany(redis: Pick<CacheClient, 'kvarcApplyMany'>, options: CacheOptions, entries: readonly (CacheEntry & { key: string })[]): Promise<number[]> {
  const calls: Promise<number[]>[] = []
  let keys: string[] = []
  let args: (string | number)[] = [options.negativeTtlSeconds]
  let bytes = 0
  const flush = () => {
    if (keys.length === 0) return
    calls.push(redis.kvarcApplyMany(keys.length, ...keys, ...args))
    keys = []
    args = [options.negativeTtlSeconds]
    bytes = 0
  }
  for (const entry of entries) {
    const marker = tooLargeToCache(entry)
    const value = entry.deleted || marker ? '' : (entry.value ?? '')
    keys.push(options.prefix + entry.key)
    args.push(entry.version, marker ? 'm' : entry.deleted ? '1' : '0', value, entryTtl(options, entry), entry.deleted || marker || entry.expiresAt === null || entry.expiresAt === undefined ? '' : String(entry.expiresAt))
    bytes += value.length + entry.key.length
    if (keys.length >= APPLY_MANY_KEYS || bytes >= APPLY_MANY_BYTES) flush()
  }
  flush()
  return (await Promise.all(calls)).flat()
}

/** The version a reader caches for a key with no row: below every real version. */
export const ABSENT_VERSION = '0'
