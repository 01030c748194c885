/**
 * PUT /api when PostgreSQL is unreachable at the writer's cold start (it draws
 * its writer id there): 503 with Retry-After, nothing queued.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpEvent, isolate, type Isolated, declareQueues } from '../../../test/support/isolated.js'
import { bodyOf, queueDepth } from '../../../test/support/kv.js'
import { handler } from './index.js'

let iso: Isolated

beforeAll(async () => {
  iso = await isolate('putpgdown')
  Object.assign(process.env, iso.env, { DATABASE_URL: `postgres://postgres@127.0.0.1:1/${iso.id}` })
  await declareQueues(iso)
})

afterAll(async () => {
  await iso?.cleanup()
})

describe('PUT /api with PostgreSQL down at cold start', () => {
  it('is 503 with Retry-After, and the next request tries again (also 503)', async () => {
    for (let i = 0; i < 2; i++) {
      const result = await handler(httpEvent('PUT', '/api', { body: '{"key":"k","value":"v"}' }))
      expect(result.statusCode).toBe(503)
      expect(result.headers['retry-after']).toMatch(/^[1-9][0-9]*$/)
      expect(bodyOf(result)).toEqual({ detail: 'the database is unavailable, so this writer cannot lease a writer id; retry shortly' })
    }
  })

  it('queued nothing', async () => {
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)).toBe(0)
  })
})
