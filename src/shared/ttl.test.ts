/**
 * Keys that expire, against the real PostgreSQL and Redis: reads from the
 * record and from the cache answer an expired key as missing (at its version,
 * as its ETag), listings leave it out, a cache entry never outlives the key, a
 * later plain PUT removes the expiry, redelivery cannot revive a key, and the
 * purge turns expired rows into tombstones without touching a newer PUT.
 * Expiries in the past are written directly, so nothing here waits on a clock.
 */
import { Redis } from 'ioredis'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolate, type Isolated } from '../../test/support/isolated.js'
import { cacheApplyMany, cacheOptionsOf, createRedis, entryTtl } from './cache.js'
import { openDatabase } from './postgres.js'
import { purgeExpiredTombstones } from './purge.js'
import { readThrough } from './reads.js'
import { readReceipt } from './receipts.js'
import { applyWrites, listKeys, nowSeconds, type Write } from './store.js'
import { VersionClock } from './version.js'

let iso: Isolated
let db: pg.Pool
let redis: ReturnType<typeof createRedis>
let raw: Redis
const clock = new VersionClock(11)
const past = () => nowSeconds() - 10
const future = () => nowSeconds() + 3600

const put = (key: string, value: string, expiresAt?: number | null): Write => ({ key, value, version: clock.next(), deleted: false, expiresAt })
const deps = () => ({ db: async () => db, redis, cache: cacheOptionsOf(iso.config) })

beforeAll(async () => {
  iso = await isolate('ttl')
  db = await openDatabase(iso.env.DATABASE_URL!, 2)
  redis = createRedis(iso.env.REDIS_URL!)
  raw = new Redis(iso.env.REDIS_URL!)
})

afterAll(async () => {
  redis?.disconnect()
  raw?.disconnect()
  await db?.end()
  await iso?.cleanup()
})

describe('reads', () => {
  it('a live key with a TTL answers its expiry; an expired one is missing from the record, then from the cache, at its version', async () => {
    const live = put('t/live', 'v', future())
    const dead = put('t/dead', 'v', past())
    await applyWrites(db, [live, dead], 0n)
    expect(await readThrough(deps(), 't/live')).toEqual({ found: true, value: 'v', version: live.version.toString(), expiresAt: live.expiresAt, source: 'postgres' })
    expect(await readThrough(deps(), 't/live')).toMatchObject({ found: true, expiresAt: live.expiresAt, source: 'redis' })
    expect(await readThrough(deps(), 't/dead')).toEqual({ found: false, version: dead.version.toString(), source: 'postgres' })
    expect(await readThrough(deps(), 't/dead')).toEqual({ found: false, version: dead.version.toString(), source: 'redis' })
  })

  it('a cached value whose key has expired since is never served', async () => {
    const w = put('t/cached', 'v', past())
    await applyWrites(db, [w], 0n)
    // As a consumer would have cached it while the key lived.
    await raw.hset(iso.config.cachePrefix + 't/cached', 'ver', w.version.toString(), 'del', '0', 'val', 'v', 'exp', String(w.expiresAt))
    expect(await readThrough(deps(), 't/cached')).toEqual({ found: false, version: w.version.toString(), source: 'redis' })
  })

  it('an entry\'s TTL never reaches past the key\'s expiry', async () => {
    const options = cacheOptionsOf(iso.config)
    const now = Date.now()
    expect(entryTtl(options, { value: 'v', version: '1', deleted: false, expiresAt: nowSeconds(now) + 7 }, now)).toBe(7)
    expect(entryTtl(options, { value: 'v', version: '1', deleted: false, expiresAt: null }, now)).toBe(options.ttlSeconds)
    const w = put('t/short', 'v', nowSeconds() + 5)
    await raw.hset(iso.config.cachePrefix + 't/short', 'ver', '1', 'del', '0', 'val', 'old')
    await cacheApplyMany(redis, options, [{ ...w, version: w.version.toString() }])
    const ttl = await raw.ttl(iso.config.cachePrefix + 't/short')
    expect(ttl).toBeGreaterThan(0)
    expect(ttl).toBeLessThanOrEqual(5)
  })

  it('a plain PUT after a TTL\'d one keeps the key forever; redelivering the old write changes nothing', async () => {
    const first = put('t/keep', 'first', past())
    const second = put('t/keep', 'second', null)
    await applyWrites(db, [first], 0n)
    await applyWrites(db, [second], 0n)
    await applyWrites(db, [first], 0n)
    expect(await readThrough(deps(), 't/keep')).toMatchObject({ found: true, value: 'second', expiresAt: null })
  })
})

describe('listings and receipts', () => {
  it('/api/all never lists an expired key; a receipt says the applied write has expired', async () => {
    const live = put('t/list/a', 'a', future())
    const dead = put('t/list/b', 'b', past())
    await applyWrites(db, [live, dead, put('t/list/c', 'c')], 0n)
    expect((await listKeys(db, { prefix: 't/list/', after: '', limit: 10 })).rows.map(r => r.key)).toEqual(['t/list/a', 't/list/c'])
    expect(await readReceipt(db, 't/list/b', dead.version, 0n)).toMatchObject({ status: 'applied', expiresAt: dead.expiresAt, expired: true })
    expect(await readReceipt(db, 't/list/a', live.version, 0n)).toMatchObject({ status: 'applied', expiresAt: live.expiresAt, expired: false })
  })
})

describe('the purge', () => {
  it('turns expired keys into tombstones, and leaves a key a newer PUT replaced', async () => {
    const expired = put('t/purge/old', 'v', past())
    await applyWrites(db, [expired, put('t/purge/live', 'v', future())], 0n)
    const result = await purgeExpiredTombstones({ db: async () => db, tombstoneHorizonMs: iso.config.tombstoneHorizonMs })
    expect(result).toMatchObject({ expired: expect.any(Number) })
    const { rows } = await db.query('SELECT key, deleted, version::text AS version FROM kv_store WHERE key LIKE $1 ORDER BY key', ['t/purge/%'])
    expect(rows).toEqual([
      { key: 't/purge/live', deleted: false, version: expect.any(String) },
      { key: 't/purge/old', deleted: true, version: expired.version.toString() },
    ])
  })
})
