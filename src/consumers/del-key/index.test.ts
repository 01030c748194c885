/**
 * The del-key consumer with real `aws:rmq` events: deletes leave tombstones in
 * PostgreSQL and short negative entries (or version markers) in Redis, older deletes change nothing,
 * redelivery is harmless, poison goes to `<queue>.dlq` with its reason.
 */
import { Redis } from 'ioredis'
import type pg from 'pg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { isolate, type Isolated, declareQueues } from '../../../test/support/isolated.js'
import { allRows, cachedEntry, rawMessage, takeMessages, writeMessage } from '../../../test/support/kv.js'
import { openDatabase } from '../../shared/postgres.js'
import { deadLetterQueueName, REASON_HEADER } from '../../shared/queue.js'
import { buildRmqEvent, type DeliveredMessage } from '../../../runtime/rmq/event.js'
import { applyWrites } from '../../shared/store.js'
import { versionAtMillis } from '../../shared/version.js'
import { handler } from './index.js'

let iso: Isolated
let db: pg.Pool
let redis: Redis
let next = versionAtMillis(Date.now())
const version = () => (next += 1024n)
let run = 0
let ns = ''

const consume = (messages: DeliveredMessage[]) => handler(buildRmqEvent(iso.config.delQueue, messages))
const rowsOf = async () => (await allRows(db)).filter(r => r.key.startsWith(ns))

beforeAll(async () => {
  iso = await isolate('delkey')
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

beforeEach(() => {
  ns = `t${++run}/`
})

describe('del-key: a batch', () => {
  it('turns live rows into tombstones; a cached value becomes a negative entry, an uncached key a marker', async () => {
    const [p1, p2] = [version(), version()]
    await applyWrites(db, [{ key: `${ns}a`, value: 'A', version: p1, deleted: false }, { key: `${ns}b`, value: 'B', version: p2, deleted: false }], 0n)
    const [d1, d2] = [version(), version()]
    // A reader cached a's value; b was never read.
    await redis.hset(iso.config.cachePrefix + `${ns}a`, 'ver', p1.toString(), 'del', '0', 'val', 'A')
    await redis.expire(iso.config.cachePrefix + `${ns}a`, 300)

    const result = await consume([writeMessage(`${ns}a`, null, d1), writeMessage(`${ns}b`, null, d2)])

    expect(result).toEqual({ received: 2, applied: 2, skipped: 0, deadLettered: 0, rejected: 0, cacheDeferred: 0 })
    expect(await rowsOf()).toEqual([
      { key: `${ns}a`, value: null, version: d1.toString(), deleted: true },
      { key: `${ns}b`, value: null, version: d2.toString(), deleted: true },
    ])
    for (const [key, v, del] of [[`${ns}a`, d1, '1'], [`${ns}b`, d2, 'm']] as const) {
      expect(await cachedEntry(redis, iso.config.cachePrefix, key)).toEqual({ ver: v.toString(), del, val: '' })
      const ttl = await redis.ttl(iso.config.cachePrefix + key)
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(iso.config.negativeTtlSeconds)
    }
  })

  it('deleting a key that has no row leaves a tombstone', async () => {
    const d = version()
    expect(await consume([writeMessage(`${ns}ghost`, null, d)])).toMatchObject({ applied: 1 })
    expect(await rowsOf()).toEqual([{ key: `${ns}ghost`, value: null, version: d.toString(), deleted: true }])
  })

  it('a delete older than the stored PUT changes nothing, in PostgreSQL or the cache', async () => {
    const [d, p] = [version(), version()]
    await applyWrites(db, [{ key: `${ns}live`, value: 'stays', version: p, deleted: false }], 0n)
    await redis.hset(iso.config.cachePrefix + `${ns}live`, 'ver', p.toString(), 'del', '0', 'val', 'stays')
    expect(await consume([writeMessage(`${ns}live`, null, d)])).toEqual({ received: 1, applied: 0, skipped: 1, deadLettered: 0, rejected: 0, cacheDeferred: 0 })
    expect(await rowsOf()).toEqual([{ key: `${ns}live`, value: 'stays', version: p.toString(), deleted: false }])
    expect(await cachedEntry(redis, iso.config.cachePrefix, `${ns}live`)).toEqual({ ver: p.toString(), del: '0', val: 'stays' })
  })

  it('redelivered and duplicated deletes are harmless', async () => {
    const message = writeMessage(`${ns}twice`, null, version())
    await consume([message])
    const before = await rowsOf()
    const again = { ...message, redelivered: true }
    expect(await consume([again, again, message])).toEqual({ received: 3, applied: 0, skipped: 3, deadLettered: 0, rejected: 0, cacheDeferred: 0 })
    expect(await rowsOf()).toEqual(before)
  })

  it('a value field in a delete message is ignored', async () => {
    const d = version()
    await consume([rawMessage(JSON.stringify({ key: `${ns}v`, value: 'ignored', version: d.toString() }))])
    expect(await rowsOf()).toEqual([{ key: `${ns}v`, value: null, version: d.toString(), deleted: true }])
  })
})

describe('del-key: poison', () => {
  it('goes to <queue>.dlq with its reason; the valid deletes in the batch apply', async () => {
    const poison: [string, string, RegExp][] = [
      ['not JSON', 'DELETE k', /not UTF-8 JSON/],
      ['missing version', JSON.stringify({ key: `${ns}k` }), /version must be/],
      ['missing key', JSON.stringify({ version: version().toString() }), /key must be a string/],
      ['NUL in key', JSON.stringify({ key: `${ns}\u0000`, version: version().toString() }), /NUL/],
      ['version with a fraction', JSON.stringify({ key: `${ns}k`, version: '12.5' }), /version must be/],
    ]
    const good = writeMessage(`${ns}ok`, null, version())
    const result = await consume([...poison.map(([, body], i) => rawMessage(body, `p${i}`)), good])
    expect(result).toEqual({ received: poison.length + 1, applied: 1, skipped: 0, deadLettered: poison.length, rejected: 0, cacheDeferred: 0 })
    expect((await rowsOf()).map(r => r.key)).toEqual([`${ns}ok`])
    const dead = await takeMessages(iso.env.AMQP_URL!, deadLetterQueueName(iso.config.delQueue))
    expect(dead).toHaveLength(poison.length)
    for (const [i, [name, body, reason]] of poison.entries()) {
      const letter = dead.find(m => m.properties.messageId === `p${i}`)
      expect(letter?.content.toString(), name).toBe(body)
      expect(String(letter?.properties.headers?.[REASON_HEADER]), name).toMatch(reason)
    }
    expect(await takeMessages(iso.env.AMQP_URL!, deadLetterQueueName(iso.config.addQueue))).toEqual([])
  })
})
