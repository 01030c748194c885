/**
 * PUT /api with write outcomes, through the handler and a real
 * consumer (applyRmqEvent fed from this file's own queues): If-Match and
 * If-None-Match travel as conditional messages, Prefer: wait answers the
 * outcome (200 applied, 412 rejected, 422 dead-lettered, 202 + Location when
 * the wait runs out), and the cache's early 412.
 */
import type pg from 'pg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { declareQueues, eventually, httpEvent, isolate, type Isolated } from '../../../test/support/isolated.js'
import { allRows, bodyOf, consumeQueued, queueDepth, takeMessages } from '../../../test/support/kv.js'
import { installRefusals } from '../../../test/support/refusals.js'
import { createRedis } from '../../shared/cache.js'
import { openConsumer } from '../../shared/open-consumer.js'
import { openDatabase } from '../../shared/postgres.js'
import { applyWrites } from '../../shared/store.js'
import { isConditional, parseVersion } from '../../shared/version.js'
import { handler } from './index.js'

let iso: Isolated
let db: pg.Pool
let consumer: ReturnType<typeof openConsumer>

const put = (key: string, value: string, headers: Record<string, string> = {}) =>
  handler(httpEvent('PUT', '/api', { body: JSON.stringify({ key, value }), headers }))

const consume = () => consumeQueued(iso, consumer, 'put')

/** A write the consumer applied, and its version. */
async function applied(key: string, value: string): Promise<string> {
  const answer = put(key, value, { prefer: 'wait=5' })
  await consume()
  const result = await answer
  expect(bodyOf(result)).toMatchObject({ status: 'applied' })
  return bodyOf(result).version as string
}

beforeAll(async () => {
  iso = await isolate('outcomes')
  Object.assign(process.env, iso.env)
  await declareQueues(iso)
  db = await openDatabase(iso.env.DATABASE_URL!, 2)
  await installRefusals(iso.env.DATABASE_URL!)
  consumer = openConsumer(iso.config)
})

afterAll(async () => {
  await db?.end()
  await iso?.cleanup()
})

beforeEach(async () => {
  await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
  await takeMessages(iso.env.AMQP_URL!, iso.config.delQueue)
})

describe('Prefer: wait', () => {
  it('answers 200 applied once the consumer applied the write, and says how long it waited', async () => {
    const answer = put('w/a', 'one', { prefer: 'wait=5' })
    await consume()
    const result = await answer
    expect(result.statusCode).toBe(200)
    expect(result.headers['preference-applied']).toBe('wait=5')
    expect(bodyOf(result)).toEqual({ status: 'applied', version: expect.any(String) })
  })

  it('answers 202 with the receipt\'s Location when nothing applied it in time', async () => {
    const result = await put('w/slow key', 'x', { prefer: 'wait=1' })
    expect(result.statusCode).toBe(202)
    const { version } = bodyOf(result) as { version: string }
    expect(bodyOf(result)).toEqual({ status: 'queued', version })
    expect(result.headers.location).toBe(`/api/writes?key=w%2Fslow%20key&version=${version}`)
  })

  it('shortens a wait above 10 s, and refuses a wait that is not whole seconds', async () => {
    const answer = put('w/long', 'x', { prefer: 'respond-async, wait=3600' })
    await consume()
    expect((await answer).headers['preference-applied']).toBe('wait=10')
    const bad = await put('w/bad', 'x', { prefer: 'wait=1.5' })
    expect(bad.statusCode).toBe(422)
    expect(bodyOf(bad).detail).toMatch(/Prefer: wait must be whole seconds/)
  })

  it('answers 422 dead-lettered when the record refuses the write for good', async () => {
    const answer = put('w/refused', 'refuse-check this', { prefer: 'wait=5' })
    await consume()
    const result = await answer
    expect(result.statusCode).toBe(422)
    expect(bodyOf(result)).toMatchObject({ status: 'dead-lettered', detail: expect.stringMatching(/^the record refused this write: PostgreSQL refused the write \(SQLSTATE 23514\)/) })
    await takeMessages(iso.env.AMQP_URL!, `${iso.config.addQueue}.dlq`)
  })

  it('an "applied" answer leaves no older cached value behind, even when the consumer has not updated the cache yet', async () => {
    const v1 = await applied('w/cached', 'one')
    const redis = createRedis(iso.env.REDIS_URL!)
    try {
      await redis.hset(iso.config.cachePrefix + 'w/cached', 'ver', v1, 'del', '0', 'val', 'one')
      const answer = put('w/cached', 'two', { prefer: 'wait=5' })
      await eventually(async () => (await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)) > 0, 'the PUT queued')
      // Applied to the record only: the consumer's cache update has not happened (a commit the wait saw first).
      const [message] = await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
      const { key, value, version } = JSON.parse(message!.content.toString())
      await applyWrites(db, [{ key, value, version: BigInt(version), deleted: false }], 0n)
      expect(bodyOf(await answer)).toEqual({ status: 'applied', version })
      expect(await redis.hgetall(iso.config.cachePrefix + 'w/cached')).toEqual({ ver: version, del: '0', val: 'two', exp: '' })
    } finally {
      redis.disconnect()
    }
  })
})

describe('If-Match / If-None-Match', () => {
  it('queue a conditional message that a consumer without conditions would dead-letter, never apply', async () => {
    const v1 = await applied('c/msg', 'one')
    const result = await put('c/msg', 'two', { 'if-match': `"${v1}"` })
    expect(bodyOf(result)).toMatchObject({ status: 'queued' })
    const version = bodyOf(result).version as string
    expect(isConditional(parseVersion(version)!)).toBe(true)
    const [message] = await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
    // No top-level version: an older consumer finds none and dead-letters the message.
    expect(JSON.parse(message!.content.toString())).toEqual({ key: 'c/msg', value: 'two', conditional: { version, ifMatch: v1 } })
  })

  it('If-Match with the current ETag applies; with an older one is rejected by the consumer (412)', async () => {
    const v1 = await applied('c/cas', 'one')
    const first = put('c/cas', 'two', { 'if-match': `"${v1}"`, prefer: 'wait=5' })
    const second = put('c/cas', 'three', { 'if-match': `"${v1}"`, prefer: 'wait=5' })
    await consume()
    const answers = await Promise.all([first, second])
    // Both were queued (the cache could not prove either hopeless); the consumer let exactly one win.
    expect(answers.map(a => a.statusCode).sort()).toEqual([200, 412])
    const lost = answers.find(a => a.statusCode === 412)!
    const won = answers.find(a => a.statusCode === 200)!
    expect(bodyOf(lost)).toMatchObject({ status: 'rejected', current: bodyOf(won).version, detail: `If-Match "${v1}" failed: the key's current version is "${bodyOf(won).version}"` })
  })

  it('answers 412 at once, queueing nothing, when the cache already holds a newer version', async () => {
    const v1 = await applied('c/early', 'one')
    const v2 = await applied('c/early', 'two')
    const result = await put('c/early', 'three', { 'if-match': `"${v1}"`, prefer: 'wait=5' })
    expect(result.statusCode).toBe(412)
    expect(bodyOf(result)).toEqual({ detail: `If-Match "${v1}" failed: the key's current version is "${v2}"`, current: v2 })
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)).toBe(0)
  })

  it('If-None-Match: * creates once', async () => {
    const created = put('c/create', 'mine', { 'if-none-match': '*', prefer: 'wait=5' })
    await consume()
    expect(bodyOf(await created)).toMatchObject({ status: 'applied' })
    const again = put('c/create', 'theirs', { 'if-none-match': '*', prefer: 'wait=5' })
    await consume()
    expect((await again).statusCode).toBe(412)
    expect((await allRows(db)).find(r => r.key === 'c/create')).toMatchObject({ value: 'mine' })
  })

  it('refuses malformed conditions with 422 and queues nothing', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ 'if-match': '"1", "2"' }, /If-Match takes one ETag/],
      [{ 'if-match': 'W/"5"' }, /strong ETag/],
      [{ 'if-match': '"abc"' }, /If-Match must be \* or an ETag/],
      [{ 'if-none-match': '"5"' }, /If-None-Match on a write must be \*/],
      [{ 'if-match': '"5"', 'if-none-match': '*' }, /not both/],
    ]
    for (const [headers, detail] of cases) {
      const result = await put('c/bad', 'x', headers)
      expect(result.statusCode, JSON.stringify(headers)).toBe(422)
      expect(bodyOf(result).detail).toMatch(detail)
    }
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)).toBe(0)
  })
})
