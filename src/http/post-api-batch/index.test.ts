/**
 * POST /api/batch through the handler and a real consumer (applyRmqEvent fed
 * from this file's own queues): non-atomic ops as ordinary writes, an atomic
 * batch as one message on the add queue applied whole, 409 naming the failed
 * ops, and nothing queued for a bad batch.
 */
import type pg from 'pg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { declareQueues, httpEvent, isolate, type Isolated } from '../../../test/support/isolated.js'
import { bodyOf, consumeQueued, queueDepth, takeMessages, valuesUnder } from '../../../test/support/kv.js'
import { openConsumer } from '../../shared/open-consumer.js'
import { openDatabase } from '../../shared/postgres.js'
import { applyWrites } from '../../shared/store.js'
import { VersionClock } from '../../shared/version.js'
import { handler } from './index.js'

let iso: Isolated
let db: pg.Pool
let consumer: ReturnType<typeof openConsumer>
const clock = new VersionClock(17)

const post = (body: unknown, headers: Record<string, string> = {}) => handler(httpEvent('POST', '/api/batch', { body: JSON.stringify(body), headers }))

const values = (prefix: string) => valuesUnder(db, prefix)

beforeAll(async () => {
  iso = await isolate('batch')
  Object.assign(process.env, iso.env)
  await declareQueues(iso)
  db = await openDatabase(iso.env.DATABASE_URL!, 2)
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

describe('POST /api/batch', () => {
  it('not atomic: each op an ordinary write with its own version, puts and deletes on their queues', async () => {
    const result = await post({ ops: [{ op: 'put', key: 'n/a', value: '1' }, { op: 'put', key: 'n/b', value: '2', ttl: 60 }, { op: 'delete', key: 'n/c' }] })
    expect(result.statusCode).toBe(200)
    const { results } = bodyOf(result) as { results: { key: string, version: string, status: string, expiresAt?: number }[] }
    expect(results.map(r => [r.key, r.status])).toEqual([['n/a', 'queued'], ['n/b', 'queued'], ['n/c', 'queued']])
    expect(new Set(results.map(r => r.version)).size).toBe(3)
    expect(results[1]!.expiresAt).toEqual(expect.any(Number))
    await consumeQueued(iso, consumer, 'put')
    await consumeQueued(iso, consumer, 'delete')
    expect(await values('n/')).toEqual({ 'n/a': '1', 'n/b': '2', 'n/c': null })
  })

  it('atomic: one message on the add queue at one version, applied whole; Prefer: wait answers applied', async () => {
    const answer = post({ atomic: true, ops: [{ op: 'put', key: 't/a', value: '1' }, { op: 'delete', key: 't/b' }] }, { prefer: 'wait=5' })
    await consumeQueued(iso, consumer, 'put')
    const result = await answer
    expect(result.statusCode).toBe(200)
    expect(bodyOf(result)).toEqual({ status: 'applied', version: expect.any(String) })
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.delQueue)).toBe(0)
    expect(await values('t/')).toEqual({ 't/a': '1', 't/b': null })
  })

  it('atomic with a failed condition: 409 naming the op, and nothing of the batch applied', async () => {
    const v = clock.next()
    await applyWrites(db, [{ key: 'f/a', value: 'old', version: v, deleted: false }, { key: 'f/b', value: 'there', version: clock.next(), deleted: false }], 0n)
    const answer = post({ atomic: true, ops: [{ op: 'put', key: 'f/a', value: 'new', ifMatch: `"${v}"` }, { op: 'put', key: 'f/b', value: 'new', ifNoneMatch: '*' }] }, { prefer: 'wait=5' })
    await consumeQueued(iso, consumer, 'put')
    const result = await answer
    expect(result.statusCode).toBe(409)
    expect(bodyOf(result)).toMatchObject({ status: 'rejected', failed: [{ index: 1, key: 'f/b', current: expect.any(String) }] })
    expect(await values('f/')).toEqual({ 'f/a': 'old', 'f/b': 'there' })
  })

  it('a bad batch is a 422 naming the op, and nothing is queued', async () => {
    for (const [body, detail] of [
      [{ ops: Array.from({ length: 129 }, (_, i) => ({ op: 'put', key: `k${i}`, value: 'v' })) }, /at most 128 ops/],
      [{ ops: [{ op: 'put', key: 'k', value: 'v' }, { op: 'delete', key: 'k' }] }, /^ops\[1\]: key "k" is already written by ops\[0\]/],
      [{ ops: [{ op: 'put', key: 'k1', value: 'v' }, { op: 'put', key: 'k2', value: 'v\u0000' }, { op: 'put', key: 'k3', value: 'v' }], atomic: true }, /^ops\[1\]: value must not contain NUL/],
    ] as const) {
      const result = await post(body)
      expect(result.statusCode).toBe(422)
      expect(bodyOf(result).detail).toMatch(detail)
    }
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)).toBe(0)
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.delQueue)).toBe(0)
  })
})
