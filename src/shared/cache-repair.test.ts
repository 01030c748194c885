/**
 * Cache repair against the real PostgreSQL and Redis: a consumer whose cache
 * update fails notes the keys and completes; once Redis answers, the next
 * batch repairs the noted entries from the record (newer-only), and the notes
 * go. A note re-noted with a newer version meanwhile survives a repair that
 * covered only the older one.
 */
import { Redis } from 'ioredis'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { declareQueues, isolate, type Isolated } from '../../test/support/isolated.js'
import { cachedEntry, writeMessage } from '../../test/support/kv.js'
import { cacheOptionsOf, createRedis, type CacheClient } from './cache.js'
import { CacheHealth, noteStale, repairStale } from './cache-repair.js'
import { applyRmqEvent, type ConsumerDeps } from './consumer.js'
import { openConsumer } from './open-consumer.js'
import { openDatabase } from './postgres.js'
import { buildRmqEvent } from '../../runtime/rmq/event.js'
import { applyWrites } from './store.js'
import { versionAtMillis } from './version.js'

let iso: Isolated
let db: pg.Pool
let redis: Redis
let next = versionAtMillis(Date.now())
const version = () => (next += 1024n)
const notes = async () => (await db.query('SELECT key, version::text AS version FROM kv_cache_repair ORDER BY key')).rows

beforeAll(async () => {
  iso = await isolate('repair')
  Object.assign(process.env, iso.env)
  db = await openDatabase(iso.env.DATABASE_URL!, 2)
  redis = new Redis(iso.env.REDIS_URL!)
  await declareQueues(iso)
})

afterAll(async () => {
  redis?.disconnect()
  await db?.end()
  await iso?.cleanup()
})

describe('a consumer while Redis is away, and after', () => {
  it('notes the keys of a committed batch, completes, and repairs them with the first batch after Redis answers', async () => {
    // Prepare: readers cached old values of a and b; then Redis goes away for this consumer.
    const prefix = iso.config.cachePrefix
    const [old, va, vb, vc] = [version(), version(), version(), version()]
    await redis.hset(`${prefix}a`, 'ver', old.toString(), 'del', '0', 'val', 'stale a')
    await redis.hset(`${prefix}b`, 'ver', old.toString(), 'del', '0', 'val', 'stale b')
    const away = createRedis('redis://127.0.0.1:1')
    let now = 1_000_000
    const deps: ConsumerDeps = { ...openConsumer(iso.config), redis: away, cacheHealth: new CacheHealth(1000, () => now) }
    const back = createRedis(iso.env.REDIS_URL!)
    const consume = (key: string, value: string | null, v: bigint) => applyRmqEvent(deps, buildRmqEvent(iso.config.addQueue, [writeMessage(key, value, v)]), 'put')

    // Act 1: two batches while Redis is away.
    expect(await consume('a', 'new a', va)).toMatchObject({ applied: 1, cacheDeferred: 1 })
    expect(await consume('b', 'new b', vb)).toMatchObject({ applied: 1, cacheDeferred: 1 })
    // Assess 1: the record moved on; the stale entries are noted, and still stale in Redis.
    expect(await notes()).toEqual([{ key: 'a', version: va.toString() }, { key: 'b', version: vb.toString() }])
    expect(await cachedEntry(redis, prefix, 'a')).toMatchObject({ val: 'stale a' })

    // Act 2: Redis answers again; a later batch (of another key) runs once the retry delay passed.
    away.disconnect()
    deps.redis = back
    now += 1000
    expect(await consume('c', 'c', vc)).toMatchObject({ applied: 1, cacheDeferred: 0 })

    // Assess 2: every noted entry holds the record's state, and the notes are gone.
    expect(await cachedEntry(redis, prefix, 'a')).toEqual({ ver: va.toString(), del: '0', val: 'new a' })
    expect(await cachedEntry(redis, prefix, 'b')).toEqual({ ver: vb.toString(), del: '0', val: 'new b' })
    expect(await notes()).toEqual([])
    expect(deps.cacheHealth.repairPending).toBe(false)
    back.disconnect()
  })

  it('within the retry delay after a failure, a batch does not wait on Redis: it notes its keys at once', () => {
    let now = 0
    const health = new CacheHealth(1000, () => now)
    expect(health.available).toBe(true)
    health.failed()
    now = 999
    expect(health.available).toBe(false)
    now = 1000
    expect(health.available).toBe(true)
    expect(health.repairPending).toBe(true)
    health.repaired(health.mark)
    expect(health.repairPending).toBe(false)
  })

  it('stays pending when keys were noted, or Redis failed, while a repair was running', () => {
    // A repair reads the notes; meanwhile a batch notes its keys: the repair's success does not cover them.
    const health = new CacheHealth(1000, () => 0)
    let since = health.mark
    health.noted()
    health.repaired(since)
    expect(health.repairPending).toBe(true)
    since = health.mark
    health.failed()
    health.repaired(since)
    expect(health.repairPending).toBe(true)
    // A repair with nothing new since it started clears it.
    since = health.mark
    health.repaired(since)
    expect(health.repairPending).toBe(false)
  })
})

describe('repairStale', () => {
  it('removes the entry of a key whose row was purged, and keeps a note re-noted with a newer version', async () => {
    const prefix = iso.config.cachePrefix
    const [v1, v2] = [version(), version()]
    await redis.hset(`${prefix}purged`, 'ver', v1.toString(), 'del', '0', 'val', 'ghost')
    await applyWrites(db, [{ key: 'kept', value: 'k1', version: v1, deleted: false }], 0n)
    await noteStale(db, [{ key: 'purged', value: null, version: v1.toString(), deleted: true, applied: true }, { key: 'kept', value: 'k1', version: v1.toString(), deleted: false, applied: true }])

    // A repair that reads the notes, while another consumer notes `kept` again at v2 before the repair forgets.
    const cache = createRedis(iso.env.REDIS_URL!)
    const racing: CacheClient = {
      hmget: (key, ...fields) => cache.hmget(key, ...fields),
      kvarcFill: (...args) => cache.kvarcFill(...args),
      kvarcApplyMany: (...args) => cache.kvarcApplyMany(...args),
      del: async (...keys) => {
        await applyWrites(db, [{ key: 'kept', value: 'k2', version: v2, deleted: false }], 0n)
        await noteStale(db, [{ key: 'kept', value: 'k2', version: v2.toString(), deleted: false, applied: true }])
        return cache.del(...keys)
      },
    }
    const options = cacheOptionsOf(iso.config)
    expect(await repairStale(db, racing, options)).toBe(2)

    expect(await redis.exists(`${prefix}purged`)).toBe(0)
    expect(await notes()).toEqual([{ key: 'kept', version: v2.toString() }])
    // The next repair covers it.
    try {
      await repairStale(db, cache, options)
      expect(await cachedEntry(redis, prefix, 'kept')).toEqual({ ver: v2.toString(), del: 'm', val: '' })
      expect(await notes()).toEqual([])
    } finally {
      cache.disconnect()
    }
  })
})
