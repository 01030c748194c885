/** GET /api/all with PostgreSQL unreachable: 503 with Retry-After, JSON; bad input still 422. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpEvent, isolate, type Isolated } from '../../../test/support/isolated.js'
import { bodyOf } from '../../../test/support/kv.js'
import { handler } from './index.js'

let iso: Isolated

beforeAll(async () => {
  iso = await isolate('allpgdown')
  Object.assign(process.env, iso.env, { DATABASE_URL: `postgres://postgres@127.0.0.1:1/${iso.id}` })
})

afterAll(async () => {
  await iso?.cleanup()
})

describe('GET /api/all with PostgreSQL down', () => {
  it('is 503 with Retry-After, twice (the failed connection is not cached)', async () => {
    for (let i = 0; i < 2; i++) {
      const result = await handler(httpEvent('GET', '/api/all'))
      expect(result.statusCode).toBe(503)
      expect(result.headers['retry-after']).toMatch(/^[1-9][0-9]*$/)
      expect(bodyOf(result)).toEqual({ detail: 'the database is unavailable; retry shortly' })
    }
  })

  it('bad input is still 422', async () => {
    expect((await handler(httpEvent('GET', '/api/all', { query: 'limit=0' }))).statusCode).toBe(422)
  })
})
