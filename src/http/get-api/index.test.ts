/**
 * GET /api?key=K through the handler, with real API Gateway v2 events, against
 * real PostgreSQL and Redis (this file's own database and cache prefix).
 */
import { Redis } from 'ioredis'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpEvent, isolate, type Isolated } from '../../../test/support/isolated.js'
import { bodyOf, cachedEntry } from '../../../test/support/kv.js'
import { cacheApplyMany, createRedis } from '../../shared/cache.js'
import { openDatabase } from '../../shared/postgres.js'
import { applyWrites } from '../../shared/store.js'
import { versionAtMillis } from '../../shared/version.js'
import { handler } from './index.js'

let iso: Isolated
let db: pg.Pool
let redis: Redis
let nextVersion = versionAtMillis(Date.now())

const get = (query: string) => handler(httpEvent('GET', '/api', { query }))
const version = () => (nextVersion += 1024n)

async function put(key: string, value: string | null): Promise<string> {
  const v = version()
  await applyWrites(db, [{ key, value, version: v, deleted: value === null }], 0n)
  return v.toString()
}

beforeAll(async () => {
  iso = await isolate('get')
  Object.assign(process.env, iso.env)
  db = await openDatabase(iso.env.DATABASE_URL!, 2)
  redis = new Redis(iso.env.REDIS_URL!)
})

afterAll(async () => {
  redis?.disconnect()
  await db?.end()
  await iso?.cleanup()
})

const JSON_TYPE = 'application/json; charset=utf-8'

describe('GET /api 200', () => {
  it('answers from PostgreSQL on a miss, then from Redis', async () => {
    // Prepare
    const v = await put('alpha', 'one')
    // Act
    const first = await get('key=alpha')
    const second = await get('key=alpha')
    // Assess
    expect(first).toEqual({
      statusCode: 200,
      headers: { 'content-type': JSON_TYPE, 'cache-control': 'no-store', 'x-kvarc-source': 'postgres', etag: `"${v}"` },
      body: JSON.stringify({ data: { key: 'alpha', value: 'one' }, source: 'postgres', version: v }),
    })
    expect(bodyOf(second)).toEqual({ data: { key: 'alpha', value: 'one' }, source: 'redis', version: v })
    expect(second.headers['x-kvarc-source']).toBe('redis')
    expect(second.headers.etag).toBe(`"${v}"`)
    expect(await cachedEntry(redis, iso.config.cachePrefix, 'alpha')).toEqual({ ver: v, del: '0', val: 'one' })
    const ttl = await redis.ttl(iso.config.cachePrefix + 'alpha')
    expect(ttl).toBeGreaterThan(0)
    expect(ttl).toBeLessThanOrEqual(iso.config.cacheTtlSeconds)
  })

  it('serves an empty value', async () => {
    const v = await put('empty-value', '')
    expect(bodyOf(await get('key=empty-value'))).toEqual({ data: { key: 'empty-value', value: '' }, source: 'postgres', version: v })
    expect(bodyOf(await get('key=empty-value'))).toEqual({ data: { key: 'empty-value', value: '' }, source: 'redis', version: v })
  })

  it('decodes percent-encoding and "+" in the key', async () => {
    const key = 'a b/c?d&e=f%ção'
    const v = await put(key, 'x')
    const result = await get(`key=${encodeURIComponent(key).replace(/%20/g, '+')}`)
    expect(result.statusCode).toBe(200)
    expect(bodyOf(result)).toEqual({ data: { key, value: 'x' }, source: 'postgres', version: v })
  })

  it('ignores other query parameters next to key', async () => {
    await put('with-extra', 'v')
    const result = await get('key=with-extra&foo=bar')
    expect(result.statusCode).toBe(200)
    expect((bodyOf(result).data as { value: string }).value).toBe('v')
  })
})

describe('GET /api 404', () => {
  it('a key never written is 404, and the miss is cached as a short negative entry', async () => {
    const first = await get('key=never-written')
    expect(first).toEqual({
      statusCode: 404,
      headers: { 'content-type': JSON_TYPE, 'cache-control': 'no-store', 'x-kvarc-source': 'postgres' },
      body: '{"detail":"key not found"}',
    })
    expect(await cachedEntry(redis, iso.config.cachePrefix, 'never-written')).toEqual({ ver: '0', del: '1', val: '' })
    const ttl = await redis.ttl(iso.config.cachePrefix + 'never-written')
    expect(ttl).toBeGreaterThan(0)
    expect(ttl).toBeLessThanOrEqual(iso.config.negativeTtlSeconds)
    // The negative entry answers the next read: the same 404, from the cache.
    expect(await get('key=never-written')).toEqual({ ...first, headers: { ...first.headers, 'x-kvarc-source': 'redis' } })
  })

  it('a deleted key (tombstone) is 404 from PostgreSQL, then from the cache', async () => {
    await put('gone', 'soon')
    expect((await get('key=gone')).statusCode).toBe(200)
    const deletedAt = await put('gone', null)
    // The consumer updates the cache; here the test does what it does.
    await redis.del(iso.config.cachePrefix + 'gone')
    expect(await get('key=gone')).toMatchObject({ statusCode: 404, body: '{"detail":"key not found"}' })
    expect(await cachedEntry(redis, iso.config.cachePrefix, 'gone')).toEqual({ ver: deletedAt, del: '1', val: '' })
    expect(await get('key=gone')).toMatchObject({ statusCode: 404, body: '{"detail":"key not found"}' })
  })

  it('a negative entry is replaced by a newer write (set-if-newer), not kept until it expires', async () => {
    expect((await get('key=late')).statusCode).toBe(404)
    const v = await put('late', 'arrived')
    // What the consumer does after applying the write: the entry's version 0 is older, so it is replaced.
    const cache = createRedis(iso.env.REDIS_URL!)
    try {
      // 1: the cached negative entry was refreshed in place (not merely marked).
      const applied = await cacheApplyMany(cache, { prefix: iso.config.cachePrefix, ttlSeconds: 60, negativeTtlSeconds: 5 }, [{ key: 'late', value: 'arrived', version: v, deleted: false }])
      expect(applied).toEqual([1])
    } finally {
      cache.disconnect()
    }
    expect(bodyOf(await get('key=late'))).toEqual({ data: { key: 'late', value: 'arrived' }, source: 'redis', version: v })
  })
})

describe('GET /api 422', () => {
  const cases: [string, string, string][] = [
    ['no query at all', '', 'query parameter "key" is required, e.g. /api?key=my-key'],
    ['no key parameter', 'k=alpha', 'query parameter "key" is required, e.g. /api?key=my-key'],
    ['empty key', 'key=', 'key must not be empty'],
    ['bare key name', 'key', 'key must not be empty'],
    ['bad percent-encoding', 'key=%E0%A4%A', 'query parameter "key" is not valid percent-encoded UTF-8'],
    ['truncated escape', 'key=abc%', 'query parameter "key" is not valid percent-encoded UTF-8'],
    ['percent-encoded lone surrogate', 'key=%ED%A0%80', 'query parameter "key" is not valid percent-encoded UTF-8'],
    ['repeated key', 'key=a&key=b', 'query parameter "key" given more than once'],
    ['NUL in key', 'key=a%00b', 'key must not contain NUL characters'],
    ['key over 2048 bytes', `key=${'%C3%A9'.repeat(1025)}`, 'key is larger than 2048 bytes of UTF-8'],
  ]
  for (const [name, query, detail] of cases) {
    it(name, async () => {
      const result = await get(query)
      expect(result.statusCode).toBe(422)
      expect(result.headers['content-type']).toBe(JSON_TYPE)
      expect(JSON.parse(result.body)).toEqual({ detail })
    })
  }

  it('a key of exactly 2048 bytes is valid (404, not 422)', async () => {
    const result = await get(`key=${'%C3%A9'.repeat(1024)}`)
    expect(result.statusCode).toBe(404)
  })
})

describe('GET /api after a consumer left a version marker', () => {
  it('a marker is a miss: the first read fills from PostgreSQL, the next is served by Redis', async () => {
    const v = await put('marked', 'value')
    await redis.hset(iso.config.cachePrefix + 'marked', 'ver', v, 'del', 'm', 'val', '')
    expect(bodyOf(await get('key=marked'))).toEqual({ data: { key: 'marked', value: 'value' }, source: 'postgres', version: v })
    expect(bodyOf(await get('key=marked'))).toEqual({ data: { key: 'marked', value: 'value' }, source: 'redis', version: v })
  })

  it('a marker newer than the row a reader saw is not overwritten by its fill', async () => {
    const v = await put('ahead', 'old row')
    const newer = (BigInt(v) + 1024n).toString()
    await redis.hset(iso.config.cachePrefix + 'ahead', 'ver', newer, 'del', 'm', 'val', '')
    // PostgreSQL still holds the older row (the consumer's update is "in flight" here): the answer is the row, the marker stays.
    expect(bodyOf(await get('key=ahead'))).toMatchObject({ source: 'postgres', version: v })
    expect(await cachedEntry(redis, iso.config.cachePrefix, 'ahead')).toEqual({ ver: newer, del: 'm', val: '' })
  })
})

describe('GET /api with minVersion (read your writes)', () => {
  it('passes over a cached entry older than minVersion for the record', async () => {
    const v1 = await put('ryw', 'one')
    expect(bodyOf(await get('key=ryw'))).toMatchObject({ version: v1 })
    // The record moves on without the cache hearing of it (a consumer whose cache update is still due).
    const v2 = await put('ryw', 'two')
    expect(bodyOf(await get('key=ryw'))).toMatchObject({ source: 'redis', version: v1 })
    const fresh = await get(`key=ryw&minVersion=${v2}`)
    expect(bodyOf(fresh)).toEqual({ data: { key: 'ryw', value: 'two' }, source: 'postgres', version: v2 })
    expect(fresh.headers.etag).toBe(`"${v2}"`)
    // An older minVersion is served by the cache, which the read just refreshed.
    expect(bodyOf(await get(`key=ryw&minVersion=${v1}`))).toMatchObject({ source: 'redis', version: v2 })
  })

  it('503 with Retry-After when the key has not reached it, after waiting at most `wait` seconds', async () => {
    const v = await put('ryw-later', 'one')
    const later = (BigInt(v) + 1024n * 1024n).toString()
    const result = await get(`key=ryw-later&minVersion=${later}&wait=1`)
    expect(result.statusCode).toBe(503)
    expect(result.headers['retry-after']).toBe('1')
    expect(bodyOf(result).detail).toBe(`the key has not reached version ${later} yet after waiting 1 s; retry shortly, or ask its receipt (GET /api/writes)`)
  })

  it('waits for the write, and a tombstone at least that new is a 404 with its ETag', async () => {
    const pending = get(`key=ryw-del&minVersion=${nextVersion + 1024n}&wait=10`)
    const v = await put('ryw-del', null)
    const result = await pending
    expect(result.statusCode).toBe(404)
    expect(result.headers.etag).toBe(`"${v}"`)
  })

  it('422 for a minVersion that is not a version, or a wait above 10 s', async () => {
    expect(bodyOf(await get('key=k&minVersion=-3')).detail).toMatch(/"minVersion" must be a version/)
    expect((await get('key=k&minVersion=5&wait=60')).statusCode).toBe(422)
  })
})
