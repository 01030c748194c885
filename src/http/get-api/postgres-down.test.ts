/**
 * GET /api with PostgreSQL unreachable: a cached key is still served from
 * Redis; a miss is 503 with Retry-After and a JSON detail (transient, retry),
 * never a 500. Its own file: config is read once per process.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpEvent, isolate, type Isolated } from '../../../test/support/isolated.js'
import { bodyOf } from '../../../test/support/kv.js'
import { handler } from './index.js'

let iso: Isolated
let redis: Redis

const get = (query: string) => handler(httpEvent('GET', '/api', { query }))

beforeAll(async () => {
  iso = await isolate('getpgdown')
  // Port 1: connections are refused at once.
  Object.assign(process.env, iso.env, { DATABASE_URL: `postgres://postgres@127.0.0.1:1/${iso.id}` })
  redis = new Redis(iso.env.REDIS_URL!)
})

afterAll(async () => {
  redis?.disconnect()
  await iso?.cleanup()
})

describe('GET /api with PostgreSQL down', () => {
  it('a miss is 503 with Retry-After', async () => {
    const result = await get('key=uncached')
    expect(result.statusCode).toBe(503)
    expect(result.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(result.headers['retry-after']).toMatch(/^[1-9][0-9]*$/)
    expect(bodyOf(result)).toEqual({ detail: 'the database is unavailable; retry shortly' })
  })

  it('a cached key is still served, from Redis', async () => {
    await redis.hset(`${iso.config.cachePrefix}cached`, 'ver', '123456789', 'del', '0', 'val', 'still here')
    await redis.expire(`${iso.config.cachePrefix}cached`, 60)
    expect(bodyOf(await get('key=cached'))).toEqual({ data: { key: 'cached', value: 'still here' }, source: 'redis', version: '123456789' })
  })

  it('a cached negative entry is still a 404', async () => {
    await redis.hset(`${iso.config.cachePrefix}negative`, 'ver', '0', 'del', '1', 'val', '')
    await redis.expire(`${iso.config.cachePrefix}negative`, 60)
    expect(await get('key=negative')).toMatchObject({ statusCode: 404, body: '{"detail":"key not found"}' })
  })

  it('a version marker is a miss, so 503', async () => {
    await redis.hset(`${iso.config.cachePrefix}marked`, 'ver', '5', 'del', 'm', 'val', '')
    await redis.expire(`${iso.config.cachePrefix}marked`, 60)
    expect((await get('key=marked')).statusCode).toBe(503)
  })

  it('bad input is still 422', async () => {
    expect((await get('')).statusCode).toBe(422)
  })
})
