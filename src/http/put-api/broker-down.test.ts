/**
 * PUT /api with RabbitMQ unreachable (AMQP_URL points at a closed port): 503
 * with Retry-After, a JSON detail, and nothing claimed queued. Its own file,
 * because config is read once per process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpEvent, isolate, SERVICES, type Isolated, declareQueues } from '../../../test/support/isolated.js'
import { bodyOf, queueDepth } from '../../../test/support/kv.js'
import { handler } from './index.js'

let iso: Isolated

const put = (payload: unknown) => handler(httpEvent('PUT', '/api', { body: JSON.stringify(payload) }))

beforeAll(async () => {
  iso = await isolate('putdown')
  // Port 1 on loopback: nothing listens there, so every connect is refused at once.
  Object.assign(process.env, iso.env, { AMQP_URL: 'amqp://guest:guest@127.0.0.1:1' })
  // The real queues exist, so "nothing queued" can be checked on them.
  await declareQueues(iso)
})

afterAll(async () => {
  await iso?.cleanup()
})

describe('PUT /api with the broker unreachable', () => {
  it('answers 503 with Retry-After and a JSON detail', async () => {
    const result = await put({ key: 'k', value: 'v' })
    expect(result.statusCode).toBe(503)
    expect(result.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(Number(result.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect(bodyOf(result)).toEqual({ detail: 'the queue is unavailable; the write was not acknowledged, retry it' })
  })

  it('keeps answering 503 (failing fast between reconnect attempts), never "queued"', async () => {
    for (let i = 0; i < 5; i++) {
      const result = await put({ key: `k${i}`, value: 'v' })
      expect(result.statusCode).toBe(503)
      expect(result.headers['retry-after']).toMatch(/^[1-9][0-9]*$/)
      expect(result.body).not.toContain('queued')
    }
  })

  it('still answers 422 for invalid input: validation comes before the queue', async () => {
    const result = await put({ key: '', value: 'v' })
    expect(result.statusCode).toBe(422)
    expect(bodyOf(result)).toEqual({ detail: 'key must not be empty' })
  })

  it('queued nothing', async () => {
    expect(await queueDepth(SERVICES.amqp, iso.config.addQueue)).toBe(0)
    expect(await queueDepth(SERVICES.amqp, iso.config.delQueue)).toBe(0)
  })
})
