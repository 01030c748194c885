/**
 * The write semantics end to end through the real handlers (both consumers and
 * GET) against real PostgreSQL, Redis and RabbitMQ: tombstones, last writer
 * wins in any delivery order (property test), and cache fills that can never
 * overwrite a newer entry.
 */
import fc from 'fast-check'
import { Redis } from 'ioredis'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpEvent, isolate, type Isolated, declareQueues } from '../../test/support/isolated.js'
import { allRows, bodyOf, cachedEntry, writeMessage } from '../../test/support/kv.js'
import { handler as addKey } from '../consumers/add-key/index.js'
import { handler as delKey } from '../consumers/del-key/index.js'
import { handler as getApi } from '../http/get-api/index.js'
import { ABSENT_VERSION, cacheGet, cacheSetIfNewer, createRedis, MAX_CACHED_VALUE_CHARS, type CacheOptions } from './cache.js'
import { openDatabase } from './postgres.js'
import { buildRmqEvent, type DeliveredMessage } from '../../runtime/rmq/event.js'
import { readKey } from './store.js'
import { versionAtMillis } from './version.js'

let iso: Isolated
let db: pg.Pool
let redis: Redis
let cache: ReturnType<typeof createRedis>
let cacheOptions: CacheOptions
let next = versionAtMillis(Date.now())
const version = () => (next += 1024n)

const puts = (messages: DeliveredMessage[]) => addKey(buildRmqEvent(iso.config.addQueue, messages))
const dels = (messages: DeliveredMessage[]) => delKey(buildRmqEvent(iso.config.delQueue, messages))
const get = (key: string) => getApi(httpEvent('GET', '/api', { query: `key=${encodeURIComponent(key)}` }))

beforeAll(async () => {
  iso = await isolate('sem')
  Object.assign(process.env, iso.env)
  db = await openDatabase(iso.env.DATABASE_URL!, 4)
  redis = new Redis(iso.env.REDIS_URL!)
  cache = createRedis(iso.env.REDIS_URL!)
  cacheOptions = { prefix: iso.config.cachePrefix, ttlSeconds: iso.config.cacheTtlSeconds, negativeTtlSeconds: iso.config.negativeTtlSeconds }
  await declareQueues(iso)
})

afterAll(async () => {
  redis?.disconnect()
  cache?.disconnect()
  await db?.end()
  await iso?.cleanup()
})

describe('tombstones', () => {
  it('an older PUT delivered after the DELETE does not resurrect the key', async () => {
    // Prepare: PUT v1 is accepted, then DELETE v2; the broker delivers the DELETE first.
    const [v1, v2] = [version(), version()]
    await puts([writeMessage('phoenix', 'before', v1 - 2048n)])
    // Act
    await dels([writeMessage('phoenix', null, v2)])
    const late = await puts([writeMessage('phoenix', 'resurrected?', v1)])
    // Assess
    expect(late).toMatchObject({ applied: 0, skipped: 1 })
    expect(await readKey(db, 'phoenix')).toEqual({ value: null, version: v2.toString(), deleted: true, expiresAt: null })
    expect(await get('phoenix')).toMatchObject({ statusCode: 404, body: '{"detail":"key not found"}' })
    await redis.del(iso.config.cachePrefix + 'phoenix')
    expect(await get('phoenix')).toMatchObject({ statusCode: 404 })
  })

  it('an older PUT for a key deleted before it ever existed does not create it', async () => {
    const [v1, v2] = [version(), version()]
    await dels([writeMessage('never', null, v2)])
    await puts([writeMessage('never', 'x', v1)])
    expect(await get('never')).toMatchObject({ statusCode: 404 })
  })

  it('a PUT newer than the DELETE brings the key back (last writer wins)', async () => {
    const [v1, v2, v3] = [version(), version(), version()]
    await puts([writeMessage('lazarus', 'one', v1)])
    await dels([writeMessage('lazarus', null, v2)])
    await puts([writeMessage('lazarus', 'three', v3)])
    expect(bodyOf(await get('lazarus'))).toEqual({ data: { key: 'lazarus', value: 'three' }, source: 'postgres', version: v3.toString() })
    expect(bodyOf(await get('lazarus'))).toEqual({ data: { key: 'lazarus', value: 'three' }, source: 'redis', version: v3.toString() })
  })
})

describe('order-free apply (property)', () => {
  interface Op { key: string, deleted: boolean, value: string }
  let run = 0

  it('any permutation, split into batches, with duplicates, reads between batches and either consumer first, ends in the same state in PostgreSQL and Redis', async () => {
    const op = fc.record({
      key: fc.constantFrom('a', 'b', 'c', 'd'),
      deleted: fc.boolean(),
      value: fc.string({ unit: 'grapheme', maxLength: 6 }),
    })
    const scenario = fc.array(op, { minLength: 1, maxLength: 24 }).chain(ops => fc.record({
      ops: fc.constant(ops),
      order: fc.shuffledSubarray(ops.map((_, i) => i), { minLength: ops.length, maxLength: ops.length }),
      cutAfter: fc.array(fc.boolean(), { minLength: ops.length, maxLength: ops.length }),
      duplicate: fc.array(fc.boolean(), { minLength: ops.length, maxLength: ops.length }),
      deletesFirst: fc.array(fc.boolean(), { minLength: ops.length, maxLength: ops.length }),
      // After a batch, a reader may GET one key (caching a value, or a negative entry).
      readAfter: fc.array(fc.option(fc.constantFrom('a', 'b', 'c', 'd'), { nil: undefined }), { minLength: ops.length, maxLength: ops.length }),
      parallel: fc.boolean(),
    }))

    await fc.assert(fc.asyncProperty(scenario, async ({ ops, order, cutAfter, duplicate, deletesFirst, readAfter, parallel }) => {
      const ns = `p${++run}/`
      // Versions in acceptance order: op i was accepted before op i+1.
      const base = version()
      next += BigInt(ops.length) * 1024n
      const messages = ops.map((o: Op, i) => ({ op: o, message: writeMessage(ns + o.key, o.deleted ? null : o.value, base + BigInt(i) * 1024n) }))

      // Deliver in the shuffled order, cut into batches; duplicated messages come again, redelivered.
      let batch: typeof messages = []
      const deliver = async (index: number) => {
        const addBatch = batch.filter(m => !m.op.deleted).map(m => m.message)
        const delBatch = batch.filter(m => m.op.deleted).map(m => m.message)
        batch = []
        const calls = [() => addBatch.length ? puts(addBatch) : undefined, () => delBatch.length ? dels(delBatch) : undefined]
        if (deletesFirst[index]) calls.reverse()
        if (parallel) await Promise.all(calls.map(call => call()))
        else for (const call of calls) await call()
        const read = readAfter[index]
        if (read !== undefined) expect([200, 404]).toContain((await get(ns + read)).statusCode)
      }
      for (const [position, i] of order.entries()) {
        batch.push(messages[i]!)
        if (duplicate[position]) batch.push({ ...messages[i]!, message: { ...messages[i]!.message, redelivered: true } })
        if (cutAfter[position] || position === order.length - 1) await deliver(position)
      }

      // The expected state: per key, the op accepted last.
      const newest = new Map<string, { op: Op, version: bigint }>()
      ops.forEach((o, i) => newest.set(ns + o.key, { op: o, version: base + BigInt(i) * 1024n }))
      const expectedRows = [...newest.entries()]
        .sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
        .map(([key, { op: o, version: v }]) => ({ key, value: o.deleted ? null : o.value, version: v.toString(), deleted: o.deleted }))
      expect((await allRows(db)).filter(r => r.key.startsWith(ns))).toEqual(expectedRows)
      for (const row of expectedRows) {
        // The cache holds the newest version: as a value/negative entry where a reader cached the key, else as a marker.
        const entry = await cachedEntry(redis, iso.config.cachePrefix, row.key)
        expect(entry?.ver).toBe(row.version)
        if (entry?.del !== 'm') expect(entry).toEqual({ ver: row.version, del: row.deleted ? '1' : '0', val: row.value ?? '' })
        // And every reader, from whichever source, sees the newest write.
        for (let i = 0; i < 2; i++) {
          const answer = await get(row.key)
          if (row.deleted) expect(answer.statusCode).toBe(404)
          else expect(bodyOf(answer)).toMatchObject({ data: { key: row.key, value: row.value }, version: row.version })
        }
      }
    }), { numRuns: 40 })
  }, 60_000)
})

describe('scale-out: consumers of the same queue in parallel', () => {
  it('concurrent batches over the same keys in different orders neither deadlock nor lose the newest write', async () => {
    const keys = Array.from({ length: 300 }, (_, i) => `par/${String(i).padStart(3, '0')}`)
    const base = version()
    next += 4n * 300n * 1024n
    // Four consumers, each holding one version of every key, in its own random order (a deterministic shuffle).
    const batches = [0, 1, 2, 3].map(c => {
      const order = keys.map((key, i) => ({ key, i, sort: (i * 7919 + c * 104729) % 997 }))
      order.sort((a, b) => a.sort - b.sort)
      return order.map(({ key, i }) => writeMessage(key, `c${c}`, base + BigInt((i * 4 + ((i + c) % 4)) * 1024)))
    })
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(batches.map(batch => puts(batch)))
      expect(results.reduce((n, r) => n + r.received, 0)).toBe(4 * keys.length)
    }
    // The newest version of key i came from consumer c with (i + c) % 4 === 3.
    const rows = (await allRows(db)).filter(r => r.key.startsWith('par/'))
    expect(rows).toHaveLength(keys.length)
    for (const [i, row] of rows.entries()) {
      const c = (3 - (i % 4) + 4) % 4
      expect(row).toEqual({ key: keys[i], value: `c${c}`, version: (base + BigInt((i * 4 + 3) * 1024)).toString(), deleted: false })
    }
  })
})

describe('keys', () => {
  it('keys that differ only in case, whitespace or normalization are distinct', async () => {
    const keys = ['Key', 'key', 'KEY', 'key ', ' key', 'ke\u0301y', 'k\u00e9y', 'k\u00e9y\u200b']
    const v = version()
    await puts(keys.map((key, i) => writeMessage(key, `v${i}`, v + BigInt(i) * 1024n)))
    next += BigInt(keys.length) * 1024n
    for (const [i, key] of keys.entries()) expect(bodyOf(await get(key)), JSON.stringify(key)).toMatchObject({ data: { key, value: `v${i}` } })
  })
})

describe('cache coherence', () => {
  it('a slow reader cannot overwrite a newer entry with the older row it read', async () => {
    const [v1, v2] = [version(), version()]
    await puts([writeMessage('race', 'old', v1)])
    await redis.del(iso.config.cachePrefix + 'race')
    // A reader misses and reads row v1 from PostgreSQL...
    const stale = await readKey(db, 'race')
    expect(stale).toEqual({ value: 'old', version: v1.toString(), deleted: false, expiresAt: null })
    // ...meanwhile the consumer applies v2 and sets the cache...
    await puts([writeMessage('race', 'new', v2)])
    // ...then the reader's fill arrives, late: it is rejected.
    expect(await cacheSetIfNewer(cache, cacheOptions, 'race', stale!)).toBe(0)
    // The consumer left a marker of v2: a miss, and the next reader fills v2.
    expect(await cacheGet(cache, cacheOptions.prefix, 'race')).toBeUndefined()
    expect(bodyOf(await get('race'))).toEqual({ data: { key: 'race', value: 'new' }, source: 'postgres', version: v2.toString() })
    expect(bodyOf(await get('race'))).toEqual({ data: { key: 'race', value: 'new' }, source: 'redis', version: v2.toString() })
  })

  it('a late "missing" fill cannot hide a key that was written since', async () => {
    const v = version()
    await puts([writeMessage('appeared', 'here', v)])
    expect(await cacheSetIfNewer(cache, cacheOptions, 'appeared', { value: null, version: ABSENT_VERSION, deleted: true })).toBe(0)
    expect(bodyOf(await get('appeared'))).toMatchObject({ data: { value: 'here' }, source: 'postgres' })
    expect(bodyOf(await get('appeared'))).toMatchObject({ data: { value: 'here' }, source: 'redis' })
  })

  it('a late fill of a live row cannot undo a newer delete in the cache', async () => {
    const [v1, v2] = [version(), version()]
    await puts([writeMessage('undead', 'alive', v1)])
    await dels([writeMessage('undead', null, v2)])
    expect(await cacheSetIfNewer(cache, cacheOptions, 'undead', { value: 'alive', version: v1.toString(), deleted: false })).toBe(0)
    expect(await get('undead')).toMatchObject({ statusCode: 404 })
  })

  it('never holds a value above MAX_CACHED_VALUE_CHARS: a large write replaces a cached smaller value with a marker, and reads come from the record', async () => {
    // Prepare: a small value, read twice so the second read is a hit.
    const [v1, v2, v3] = [version(), version(), version()]
    const large = 'L'.repeat(MAX_CACHED_VALUE_CHARS + 1)
    const atLimit = 'l'.repeat(MAX_CACHED_VALUE_CHARS)
    await puts([writeMessage('big', 'small', v1)])
    await get('big')
    expect(bodyOf(await get('big'))).toMatchObject({ data: { value: 'small' }, source: 'redis' })

    // Act: a value one character over the limit is applied.
    await puts([writeMessage('big', large, v2)])

    // Assess: the stale small value is gone from the cache; every read of the large one comes from the record, byte for byte.
    expect(await cacheGet(cache, cacheOptions.prefix, 'big')).toBeUndefined()
    for (let i = 0; i < 2; i++) expect(bodyOf(await get('big'))).toEqual({ data: { key: 'big', value: large }, source: 'postgres', version: v2.toString() })
    expect(await redis.hget(iso.config.cachePrefix + 'big', 'val')).toBe('')
    // A value at the limit is cached again by the next reader.
    await puts([writeMessage('big', atLimit, v3)])
    expect(bodyOf(await get('big'))).toMatchObject({ data: { value: atLimit }, source: 'postgres' })
    expect(bodyOf(await get('big'))).toMatchObject({ data: { value: atLimit }, source: 'redis', version: v3.toString() })
  })

  it('compares versions as 63-bit numbers, not as strings or Lua doubles', async () => {
    const set = (v: string, value: string) => cacheSetIfNewer(cache, cacheOptions, 'cmp', { value, version: v, deleted: false })
    expect(await set('999', 'a')).toBe(1)
    expect(await set('1000', 'b')).toBe(1) // longer is larger, though "1000" < "999" as strings
    expect(await set('999', 'c')).toBe(0)
    expect(await set('1000', 'd')).toBe(0) // equal versions are a no-op
    // Adjacent 19-digit versions differ below a double's precision (2^53).
    expect(await set('9223372036854775806', 'e')).toBe(1)
    expect(await set('9223372036854775807', 'f')).toBe(1)
    expect(await set('9223372036854775806', 'g')).toBe(0)
    expect(await cacheGet(cache, cacheOptions.prefix, 'cmp')).toEqual({ value: 'f', version: '9223372036854775807', deleted: false, expiresAt: null })
  })
})
