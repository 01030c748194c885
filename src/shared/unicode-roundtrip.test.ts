/**
 * Unicode keys and values round-trip byte for byte through the whole write
 * path: PUT handler → the real queue → add-key consumer → PostgreSQL → GET
 * (from PostgreSQL, then from Redis), and out of /api/all; DELETE the same way.
 */
import { Redis } from 'ioredis'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpEvent, isolate, type Isolated } from '../../test/support/isolated.js'
import { bodyOf, takeMessages } from '../../test/support/kv.js'
import { handler as addKey } from '../consumers/add-key/index.js'
import { handler as delKey } from '../consumers/del-key/index.js'
import { handler as deleteApi } from '../http/delete-api/index.js'
import { handler as getApiAll } from '../http/get-api-all/index.js'
import { handler as getApi } from '../http/get-api/index.js'
import { handler as putApi } from '../http/put-api/index.js'
import { openDatabase } from './postgres.js'
import { buildRmqEvent } from '../../runtime/rmq/event.js'

let iso: Isolated
let db: pg.Pool
let redis: Redis

const SAMPLES: [string, string][] = [
  ['double quotes', 'say "hello"'],
  ['single quotes and backticks', "it's `fine`"],
  ['backslashes', 'C:\\path\\to\\file \\n \\u0000 \\\\'],
  ['emoji', '😀 👍🏽 👨‍👩‍👧‍👦 🇧🇷'],
  ['CJK', '中文鍵 日本語のキー 한국어'],
  ['combining mark (decomposed é)', 'cafe\u0301'],
  ['precomposed é', 'caf\u00e9'],
  ['Hebrew (RTL)', 'שלום עולם'],
  ['Arabic with RLM', 'مرحبا\u200f بالعالم'],
  ['zero-width joiner and BOM character', 'a\u200db\ufeffc'],
  ['control characters', '\u0001\u001f\u007f\t\r\n'],
  ['URL-significant characters', ' %20+&=?#/'],
  ['HTML', '<script>alert("x")</script>&amp;'],
  ['JSON text', '{"key":"value","n":[1,2]}'],
  ['highest code point and a noncharacter', '\u{10FFFF}\uFFFE\uFFFF'],
  ['only whitespace', '   '],
  ['mixed scripts', 'Ελληνικά Кириллица देवनागरी ไทย'],
]

const keyOf = (name: string, text: string) => `uni/${name}/${text}`

beforeAll(async () => {
  iso = await isolate('uni')
  Object.assign(process.env, iso.env)
  db = await openDatabase(iso.env.DATABASE_URL!, 2)
  redis = new Redis(iso.env.REDIS_URL!)
})

afterAll(async () => {
  redis?.disconnect()
  await db?.end()
  await iso?.cleanup()
})

/** What the broker holds for `queue`, fed to a consumer as the event source would. */
async function deliver(queue: string, consumer: typeof addKey, expected: number) {
  const messages = await takeMessages(iso.env.AMQP_URL!, queue)
  expect(messages).toHaveLength(expected)
  return consumer(buildRmqEvent(queue, messages))
}

describe('unicode round trip', () => {
  const versions = new Map<string, string>()

  it('PUT queues every sample, and the consumer applies them all', async () => {
    for (const [name, text] of SAMPLES) {
      const result = await putApi(httpEvent('PUT', '/api', { body: JSON.stringify({ key: keyOf(name, text), value: text }) }))
      expect(result.statusCode, name).toBe(200)
      versions.set(name, bodyOf(result).version as string)
    }
    expect(await deliver(iso.config.addQueue, addKey, SAMPLES.length)).toMatchObject({ applied: SAMPLES.length, deadLettered: 0, cacheDeferred: 0 })
  })

  for (const [name, text] of SAMPLES) {
    it(`${name}: stored byte for byte, and served from PostgreSQL then Redis unchanged`, async () => {
      const key = keyOf(name, text)
      const { rows } = await db.query<{ k: Buffer, v: Buffer }>("SELECT convert_to(key, 'UTF8') AS k, convert_to(value, 'UTF8') AS v FROM kv_store WHERE key = $1", [key])
      expect(rows).toHaveLength(1)
      expect(rows[0]!.k.equals(Buffer.from(key))).toBe(true)
      expect(rows[0]!.v.equals(Buffer.from(text))).toBe(true)

      // The consumer left a version marker: the first GET reads PostgreSQL and fills the cache, the next reads Redis.
      const query = `key=${encodeURIComponent(key)}`
      const fromPostgres = await getApi(httpEvent('GET', '/api', { query }))
      const fromRedis = await getApi(httpEvent('GET', '/api', { query }))
      const expected = (source: string) => JSON.stringify({ data: { key, value: text }, source, version: versions.get(name) })
      expect(fromPostgres.body).toBe(expected('postgres'))
      expect(fromRedis.body).toBe(expected('redis'))
      expect((bodyOf(fromRedis).data as { value: string }).value).toBe(text)
      expect((await redis.hgetBuffer(iso.config.cachePrefix + key, 'val'))?.equals(Buffer.from(text))).toBe(true)
    })
  }

  it('the decomposed and precomposed é are two different keys (no normalization)', async () => {
    const decomposed = bodyOf(await getApi(httpEvent('GET', '/api', { query: `key=${encodeURIComponent(keyOf('combining mark (decomposed é)', 'cafe\u0301'))}` })))
    const precomposed = bodyOf(await getApi(httpEvent('GET', '/api', { query: `key=${encodeURIComponent(keyOf('precomposed é', 'caf\u00e9'))}` })))
    expect((decomposed.data as { value: string }).value).toBe('cafe\u0301')
    expect((precomposed.data as { value: string }).value).toBe('caf\u00e9')
  })

  it('/api/all returns every sample exactly, in UTF-8 byte order', async () => {
    const result = await getApiAll(httpEvent('GET', '/api/all', { query: 'prefix=uni%2F&limit=1000' }))
    expect(result.statusCode).toBe(200)
    const expected = SAMPLES.map(([name, text]) => ({ key: keyOf(name, text), value: text }))
      .sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)))
    expect(bodyOf(result)).toEqual({ data: expected, next: null })
  })

  it('DELETE of every sample key, through the queue and del-key, leaves each one 404', async () => {
    for (const [name, text] of SAMPLES) {
      const result = await deleteApi(httpEvent('DELETE', '/api', { query: `key=${encodeURIComponent(keyOf(name, text))}` }))
      expect(result.statusCode, name).toBe(200)
    }
    expect(await deliver(iso.config.delQueue, delKey, SAMPLES.length)).toMatchObject({ applied: SAMPLES.length, deadLettered: 0, cacheDeferred: 0 })
    for (const [name, text] of SAMPLES) {
      const result = await getApi(httpEvent('GET', '/api', { query: `key=${encodeURIComponent(keyOf(name, text))}` }))
      expect(result.statusCode, name).toBe(404)
    }
    expect(bodyOf(await getApiAll(httpEvent('GET', '/api/all', { query: 'prefix=uni%2F' })))).toEqual({ data: [], next: null })
  })
})
