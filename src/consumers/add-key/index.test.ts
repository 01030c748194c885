/**
 * The add-key consumer with real `aws:rmq` events: a batch applies to
 * PostgreSQL, and to Redis write-around (a cached entry is refreshed, an uncached
 * key gets only a version marker), newest version wins, redelivery is harmless, poison goes
 * to `<queue>.dlq` with its reason while the rest of the batch applies, and the
 * tombstone horizon drops writes too old to trust.
 */
import { Redis } from 'ioredis'
import type pg from 'pg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { isolate, type Isolated, declareQueues } from '../../../test/support/isolated.js'
import { allRows, cachedEntry, rawMessage, takeMessages, writeMessage } from '../../../test/support/kv.js'
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from '../../shared/limits.js'
import { openDatabase } from '../../shared/postgres.js'
import { deadLetterQueueName, REASON_HEADER } from '../../shared/queue.js'
import { buildRmqEvent, type DeliveredMessage } from '../../../runtime/rmq/event.js'
import { applyWrites, purgeTombstones } from '../../shared/store.js'
import { versionAtMillis } from '../../shared/version.js'
import { handler } from './index.js'

let iso: Isolated
let db: pg.Pool
let redis: Redis
let next = versionAtMillis(Date.now())
const version = () => (next += 1024n)
let run = 0
let ns = ''

const consume = (messages: DeliveredMessage[]) => handler(buildRmqEvent(iso.config.addQueue, messages))

async function row(key: string) {
  const { rows } = await db.query('SELECT value, version::text AS version, deleted FROM kv_store WHERE key = $1', [key])
  return rows[0] as { value: string | null, version: string, deleted: boolean } | undefined
}

beforeAll(async () => {
  iso = await isolate('addkey')
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
  // Each test writes its own keys, so earlier tests' rows never interfere.
  ns = `t${++run}/`
})

describe('add-key: a batch', () => {
  it('applies every write to PostgreSQL, leaves version markers in the cache, and reports it', async () => {
    const writes = [[`${ns}a`, '1'], [`${ns}b`, 'two'], [`${ns}c`, '']] as const
    const versions = writes.map(() => version())
    const result = await consume(writes.map(([k, v], i) => writeMessage(k, v, versions[i]!)))
    expect(result).toEqual({ received: 3, applied: 3, skipped: 0, deadLettered: 0, rejected: 0, cacheDeferred: 0 })
    const rows = (await allRows(db)).filter(r => r.key.startsWith(ns))
    expect(rows).toEqual(writes.map(([key, value], i) => ({ key, value, version: versions[i]!.toString(), deleted: false })))
    for (const [i, [key, value]] of writes.entries()) {
      expect(await cachedEntry(redis, iso.config.cachePrefix, key), value).toEqual({ ver: versions[i]!.toString(), del: 'm', val: '' })
      const ttl = await redis.ttl(iso.config.cachePrefix + key)
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(iso.config.negativeTtlSeconds)
    }
  })

  it('refreshes in place the entries readers cached (values and negative entries)', async () => {
    const [old, v1, v2] = [version(), version(), version()]
    await redis.hset(iso.config.cachePrefix + `${ns}read`, 'ver', old.toString(), 'del', '0', 'val', 'stale')
    await redis.hset(iso.config.cachePrefix + `${ns}missing`, 'ver', '0', 'del', '1', 'val', '')
    await consume([writeMessage(`${ns}read`, 'fresh', v1), writeMessage(`${ns}missing`, 'now here', v2)])
    expect(await cachedEntry(redis, iso.config.cachePrefix, `${ns}read`)).toEqual({ ver: v1.toString(), del: '0', val: 'fresh' })
    expect(await cachedEntry(redis, iso.config.cachePrefix, `${ns}missing`)).toEqual({ ver: v2.toString(), del: '0', val: 'now here' })
    expect(await redis.ttl(iso.config.cachePrefix + `${ns}read`)).toBeGreaterThan(iso.config.negativeTtlSeconds)
  })

  it('keeps only the newest version of a key, whatever its position in the batch', async () => {
    const [v1, v2, v3] = [version(), version(), version()]
    const result = await consume([writeMessage(`${ns}k`, 'middle', v2), writeMessage(`${ns}k`, 'newest', v3), writeMessage(`${ns}k`, 'oldest', v1)])
    expect(result).toEqual({ received: 3, applied: 1, skipped: 2, deadLettered: 0, rejected: 0, cacheDeferred: 0 })
    expect(await row(`${ns}k`)).toEqual({ value: 'newest', version: v3.toString(), deleted: false })
    expect(await cachedEntry(redis, iso.config.cachePrefix, `${ns}k`)).toEqual({ ver: v3.toString(), del: 'm', val: '' })
  })

  it('an older write after a newer one changes nothing, in PostgreSQL or the cache', async () => {
    const [old, newer] = [version(), version()]
    await consume([writeMessage(`${ns}k`, 'new', newer)])
    // A reader cached the newer value.
    await redis.hset(iso.config.cachePrefix + `${ns}k`, 'del', '0', 'val', 'new')
    const result = await consume([writeMessage(`${ns}k`, 'old', old)])
    expect(result).toEqual({ received: 1, applied: 0, skipped: 1, deadLettered: 0, rejected: 0, cacheDeferred: 0 })
    expect(await row(`${ns}k`)).toEqual({ value: 'new', version: newer.toString(), deleted: false })
    expect(await cachedEntry(redis, iso.config.cachePrefix, `${ns}k`)).toEqual({ ver: newer.toString(), del: '0', val: 'new' })
  })

  it('a redelivered batch and duplicated messages are harmless', async () => {
    const messages = [writeMessage(`${ns}x`, 'X', version()), writeMessage(`${ns}y`, 'Y', version())]
    await consume(messages)
    const before = (await allRows(db)).filter(r => r.key.startsWith(ns))
    const redelivered = messages.map(m => ({ ...m, redelivered: true }))
    expect(await consume([...redelivered, ...redelivered])).toEqual({ received: 4, applied: 0, skipped: 4, deadLettered: 0, rejected: 0, cacheDeferred: 0 })
    expect((await allRows(db)).filter(r => r.key.startsWith(ns))).toEqual(before)
  })

  it('a redelivered batch repairs a cache that missed the first apply', async () => {
    const [old, v] = [version(), version()]
    // A reader cached an older value; the first apply's cache update was lost (Redis blipped).
    await applyWrites(db, [{ key: `${ns}r`, value: 'R', version: v, deleted: false }], 0n)
    await redis.hset(iso.config.cachePrefix + `${ns}r`, 'ver', old.toString(), 'del', '0', 'val', 'old')
    await consume([{ ...writeMessage(`${ns}r`, 'R', v), redelivered: true }])
    expect(await cachedEntry(redis, iso.config.cachePrefix, `${ns}r`)).toEqual({ ver: v.toString(), del: '0', val: 'R' })
  })

  it('applies a batch larger than the declared batch size (1000 keys) in one invocation', async () => {
    const base = version()
    next += 1000n * 1024n
    const messages = Array.from({ length: 1000 }, (_, i) => writeMessage(`${ns}${String(i).padStart(4, '0')}`, `v${i}`, base + BigInt(i) * 1024n))
    expect(await consume(messages)).toEqual({ received: 1000, applied: 1000, skipped: 0, deadLettered: 0, rejected: 0, cacheDeferred: 0 })
    const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM kv_store WHERE key LIKE $1', [`${ns}%`])
    expect(rows[0]!.n).toBe('1000')
  })

  it('applies every write of a coalesced message (an array of writes), newest per key across messages', async () => {
    const [v1, v2, v3, v4] = [version(), version(), version(), version()]
    const coalesced = rawMessage(JSON.stringify([
      { key: `${ns}x`, value: 'x-old', version: v1.toString() },
      { key: `${ns}y`, value: 'y', version: v2.toString() },
      { key: `${ns}x`, value: 'x-new', version: v4.toString() },
    ]))
    const result = await consume([coalesced, writeMessage(`${ns}y`, 'y-newer', v3)])
    expect(result).toEqual({ received: 2, applied: 2, skipped: 2, deadLettered: 0, rejected: 0, cacheDeferred: 0 })
    expect(await row(`${ns}x`)).toEqual({ value: 'x-new', version: v4.toString(), deleted: false })
    expect(await row(`${ns}y`)).toEqual({ value: 'y-newer', version: v3.toString(), deleted: false })
  })

  it('an empty batch is a no-op', async () => {
    expect(await consume([])).toEqual({ received: 0, applied: 0, skipped: 0, deadLettered: 0, rejected: 0, cacheDeferred: 0 })
  })

  it('an event that is not aws:rmq fails the invocation (the event source retries; nothing is acknowledged)', async () => {
    await expect(handler({} as never)).rejects.toThrow(/rmqMessagesByQueue/)
  })
})

describe('add-key: poison', () => {
  it('each malformed message goes to <queue>.dlq with its reason, and the valid ones in the batch apply', async () => {
    const v = version().toString()
    const poison: [string, string | Buffer, RegExp][] = [
      ['not JSON', '{"key":', /not UTF-8 JSON/],
      ['empty body', '', /not UTF-8 JSON/],
      ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), /not UTF-8 JSON/],
      ['JSON null', 'null', /not a JSON object/],
      ['missing key', JSON.stringify({ value: 'v', version: v }), /key must be a string, got undefined/],
      ['missing value', JSON.stringify({ key: `${ns}nv`, version: v }), /value must be a string, got undefined/],
      ['missing version', JSON.stringify({ key: `${ns}nv`, value: 'v' }), /version must be/],
      ['numeric key', JSON.stringify({ key: 7, value: 'v', version: v }), /key must be a string, got number/],
      ['boolean value', JSON.stringify({ key: `${ns}b`, value: false, version: v }), /value must be a string, got boolean/],
      ['numeric version', `{"key":"${ns}n","value":"v","version":${v}}`, /version must be/],
      ['version zero', JSON.stringify({ key: `${ns}z`, value: 'v', version: '0' }), /version must be/],
      ['negative version', JSON.stringify({ key: `${ns}z`, value: 'v', version: '-5' }), /version must be/],
      ['version beyond 63 bits', JSON.stringify({ key: `${ns}z`, value: 'v', version: '9223372036854775808' }), /version must be/],
      ['version not decimal', JSON.stringify({ key: `${ns}z`, value: 'v', version: '0x10' }), /version must be/],
      ['NUL in key', JSON.stringify({ key: `${ns}a\u0000b`, value: 'v', version: v }), /key must not contain NUL/],
      ['NUL in value', JSON.stringify({ key: `${ns}nul`, value: '\u0000', version: v }), /value must not contain NUL/],
      ['lone surrogate in key', `{"key":"${ns}\\ud800","value":"v","version":"${v}"}`, /key is not valid Unicode/],
      ['empty key', JSON.stringify({ key: '', value: 'v', version: v }), /key must not be empty/],
      ['key too long', JSON.stringify({ key: 'k'.repeat(MAX_KEY_BYTES + 1), value: 'v', version: v }), /key is larger than/],
      ['value too long', JSON.stringify({ key: `${ns}big`, value: 'v'.repeat(MAX_VALUE_BYTES + 1), version: v }), /value is larger than/],
      ['empty array', '[]', /empty array/],
    ]
    const good = [writeMessage(`${ns}good1`, 'g1', version()), writeMessage(`${ns}good2`, 'g2', version())]
    const batch = [good[0]!, ...poison.map(([, body], i) => rawMessage(body, `poison-${i}`)), good[1]!]

    const result = await consume(batch)

    expect(result).toEqual({ received: poison.length + 2, applied: 2, skipped: 0, deadLettered: poison.length, rejected: 0, cacheDeferred: 0 })
    expect((await allRows(db)).filter(r => r.key.startsWith(ns)).map(r => [r.key, r.value])).toEqual([[`${ns}good1`, 'g1'], [`${ns}good2`, 'g2']])
    const dead = await takeMessages(iso.env.AMQP_URL!, deadLetterQueueName(iso.config.addQueue))
    expect(dead).toHaveLength(poison.length)
    const byId = new Map(dead.map(m => [m.properties.messageId, m]))
    for (const [i, [name, body, reason]] of poison.entries()) {
      const letter = byId.get(`poison-${i}`)
      expect(letter, name).toBeDefined()
      expect(letter!.content.equals(Buffer.isBuffer(body) ? body : Buffer.from(body)), name).toBe(true)
      expect(String(letter!.properties.headers?.[REASON_HEADER]), name).toMatch(reason)
      expect(String(letter!.properties.headers?.['x-kvarc-source-queue']), name).toBe(iso.config.addQueue)
    }
    // Nothing is left to loop: the write queue holds nothing, and a second look at the DLQ is empty.
    expect(await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)).toEqual([])
  })

  it('a batch of only poison still completes (so the event source acknowledges it)', async () => {
    const result = await consume([rawMessage('nope'), rawMessage('[]')])
    expect(result).toEqual({ received: 2, applied: 0, skipped: 0, deadLettered: 2, rejected: 0, cacheDeferred: 0 })
    const dead = await takeMessages(iso.env.AMQP_URL!, deadLetterQueueName(iso.config.addQueue))
    expect(dead.map(m => m.content.toString()).sort()).toEqual(['[]', 'nope'])
  })
})

describe('add-key: tombstone horizon', () => {
  const DAY = 24 * 3600 * 1000
  const horizonMs = () => Number(iso.config.tombstoneHorizonMs)

  it('a write older than the horizon, for a key with no row, is dropped', async () => {
    const ancient = versionAtMillis(Date.now() - horizonMs() - DAY)
    const result = await consume([writeMessage(`${ns}ancient`, 'zombie', ancient)])
    expect(result).toEqual({ received: 1, applied: 0, skipped: 1, deadLettered: 0, rejected: 0, cacheDeferred: 0 })
    expect(await row(`${ns}ancient`)).toBeUndefined()
    expect(await cachedEntry(redis, iso.config.cachePrefix, `${ns}ancient`)).toBeUndefined()
  })

  it('a write older than the horizon still applies over an existing, older row', async () => {
    const older = versionAtMillis(Date.now() - horizonMs() - 3 * DAY)
    const old = versionAtMillis(Date.now() - horizonMs() - DAY)
    await applyWrites(db, [{ key: `${ns}kept`, value: 'first', version: older, deleted: false }], 0n)
    expect(await consume([writeMessage(`${ns}kept`, 'second', old)])).toMatchObject({ applied: 1 })
    expect(await row(`${ns}kept`)).toEqual({ value: 'second', version: old.toString(), deleted: false })
  })

  it('purgeTombstones removes old tombstones only, and an old PUT afterwards does not resurrect the key', async () => {
    // Prepare: a PUT at t-10d, its DELETE at t-9d (tombstone past the horizon), and a recent tombstone.
    const put = versionAtMillis(Date.now() - horizonMs() - 10 * DAY)
    const deletedAt = versionAtMillis(Date.now() - horizonMs() - 9 * DAY)
    await applyWrites(db, [{ key: `${ns}purged`, value: null, version: deletedAt, deleted: true }, { key: `${ns}recent`, value: null, version: version(), deleted: true }], 0n)
    // Act
    const purged = await purgeTombstones(db, versionAtMillis(Date.now() - horizonMs()))
    // Assess: the old tombstone is gone, the recent one stays.
    expect(purged).toBeGreaterThanOrEqual(1)
    expect(await row(`${ns}purged`)).toBeUndefined()
    expect(await row(`${ns}recent`)).toMatchObject({ deleted: true })
    // The delayed PUT, older than the purged tombstone, arrives now: it must not bring the key back.
    expect(await consume([writeMessage(`${ns}purged`, 'resurrected?', put)])).toMatchObject({ applied: 0 })
    expect(await row(`${ns}purged`)).toBeUndefined()
  })
})
