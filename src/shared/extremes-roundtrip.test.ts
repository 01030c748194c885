/**
 * The extremes the API accepts, through the whole write path: PUT handler →
 * the real queue → add-key consumer → PostgreSQL → GET, and DELETE the same
 * way. The largest key (2,048 bytes, of 1-byte and of 4-byte characters) and
 * the largest value (1 MiB) of random characters must apply and round-trip
 * byte for byte; one byte more is a 422 at the API, never a write that fails
 * later in PostgreSQL (whose btree entries cannot exceed 2,704 bytes).
 * The same for this round's inputs: a conditional PUT with the longest TTL,
 * a conditional DELETE, and batches of 128 ops at the largest keys (atomic
 * ones carrying 1 MiB values), through the real consumer and read back.
 */
import { randomInt } from 'node:crypto'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { declareQueues, httpEvent, isolate, type Isolated } from '../../test/support/isolated.js'
import { bodyOf, queueDepth, takeMessages } from '../../test/support/kv.js'
import { handler as addKey } from '../consumers/add-key/index.js'
import { handler as delKey } from '../consumers/del-key/index.js'
import { handler as deleteApi } from '../http/delete-api/index.js'
import { handler as getApi } from '../http/get-api/index.js'
import { handler as putApi } from '../http/put-api/index.js'
import { handler as postBatch } from '../http/post-api-batch/index.js'
import { MAX_BATCH_OPS } from './batch.js'
import { MAX_CACHED_VALUE_CHARS } from './cache.js'
import { MAX_TTL_SECONDS } from './validate.js'
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from './limits.js'
import { openDatabase } from './postgres.js'
import { deadLetterQueueName } from './queue.js'
import { buildRmqEvent } from '../../runtime/rmq/event.js'

let iso: Isolated
let db: pg.Pool

/** Ranges of code points by UTF-8 width, without NUL and without surrogates (neither can be stored). */
const WIDTHS: [number, number][] = [[0x01, 0x7f], [0x80, 0x7ff], [0x800, 0xd7ff], [0x10000, 0x10ffff]]

function randomChar(width: 1 | 2 | 3 | 4): string {
  const [low, high] = WIDTHS[width - 1]!
  return String.fromCodePoint(randomInt(low, high + 1))
}

/** Random characters of the given widths filling exactly `bytes` bytes of UTF-8. */
function randomText(bytes: number, widths: readonly (1 | 2 | 3 | 4)[]): string {
  const parts: string[] = []
  let left = bytes
  while (left > 0) {
    const fitting = widths.filter(w => w <= left)
    const width = fitting.length > 0 ? fitting[randomInt(fitting.length)]! : 1
    parts.push(randomChar(width))
    left -= width
  }
  return parts.join('')
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const randomAlnum = (n: number) => Array.from({ length: n }, () => ALNUM[randomInt(ALNUM.length)]).join('')

beforeAll(async () => {
  iso = await isolate('extremes')
  Object.assign(process.env, iso.env)
  db = await openDatabase(iso.env.DATABASE_URL!, 2)
  await declareQueues(iso)
})

afterAll(async () => {
  await db?.end()
  await iso?.cleanup()
})

async function deliver(queue: string, consumer: typeof addKey) {
  return consumer(buildRmqEvent(queue, await takeMessages(iso.env.AMQP_URL!, queue)))
}

describe('the largest key and value, of random characters, through the real consumer', () => {
  const cases: [string, string, string][] = [
    ['2,048-byte key of random letters and digits (the reported key, at the new limit)', randomAlnum(MAX_KEY_BYTES), 'v'],
    ['2,048-byte key of random ASCII', randomText(MAX_KEY_BYTES, [1]), 'v'],
    ['2,048-byte key of random 4-byte characters', randomText(MAX_KEY_BYTES, [4]), 'v'],
    ['2,048-byte key of random mixed-width characters', randomText(MAX_KEY_BYTES, [1, 2, 3, 4]), 'v'],
    ['1 MiB value of random mixed-width characters', `value/${randomAlnum(8)}`, randomText(MAX_VALUE_BYTES, [1, 2, 3, 4])],
    ['largest key and largest value together', randomText(MAX_KEY_BYTES, [3, 4]), randomText(MAX_VALUE_BYTES, [4])],
  ]
  const versions = new Map<string, string>()

  it('PUT accepts each one, and the consumer applies them all: nothing dead-lettered', async () => {
    for (const [name, key, value] of cases) {
      expect(Buffer.byteLength(key) <= MAX_KEY_BYTES && Buffer.byteLength(value) <= MAX_VALUE_BYTES, name).toBe(true)
      const result = await putApi(httpEvent('PUT', '/api', { body: JSON.stringify({ key, value }) }))
      expect(result.statusCode, `${name}: ${result.body.slice(0, 200)}`).toBe(200)
      versions.set(name, bodyOf(result).version as string)
    }
    expect(await deliver(iso.config.addQueue, addKey)).toMatchObject({ applied: cases.length, deadLettered: 0 })
    expect(await queueDepth(iso.env.AMQP_URL!, deadLetterQueueName(iso.config.addQueue))).toBe(0)
  })

  for (const [name, key, value] of cases) {
    // A value above the cache's limit is read from the record every time (cache.ts MAX_CACHED_VALUE_CHARS).
    const cached = value.length <= MAX_CACHED_VALUE_CHARS
    it(`${name}: stored and read back byte for byte, from PostgreSQL then ${cached ? 'Redis' : 'PostgreSQL again'}`, async () => {
      const { rows } = await db.query<{ k: Buffer, v: Buffer }>("SELECT convert_to(key, 'UTF8') AS k, convert_to(value, 'UTF8') AS v FROM kv_store WHERE key = $1", [key])
      expect(rows).toHaveLength(1)
      expect(rows[0]!.k.equals(Buffer.from(key))).toBe(true)
      expect(rows[0]!.v.equals(Buffer.from(value))).toBe(true)
      const query = `key=${encodeURIComponent(key)}`
      for (const source of ['postgres', cached ? 'redis' : 'postgres']) {
        const result = await getApi(httpEvent('GET', '/api', { query }))
        expect(result.statusCode).toBe(200)
        expect(bodyOf(result)).toEqual({ data: { key, value }, source, version: versions.get(name) })
      }
    })
  }

  it('DELETE of each key applies through del-key: every one is 404 afterwards', async () => {
    for (const [name, key] of cases) {
      expect((await deleteApi(httpEvent('DELETE', '/api', { query: `key=${encodeURIComponent(key)}` }))).statusCode, name).toBe(200)
    }
    expect(await deliver(iso.config.delQueue, delKey)).toMatchObject({ applied: cases.length, deadLettered: 0 })
    for (const [name, key] of cases) {
      expect((await getApi(httpEvent('GET', '/api', { query: `key=${encodeURIComponent(key)}` }))).statusCode, name).toBe(404)
    }
  })

  it('one byte over the key limit is a 422 at the API, for PUT, GET and DELETE, and nothing is queued', async () => {
    const key = randomText(MAX_KEY_BYTES - 3, [1]) + randomChar(4) // 2,049 bytes
    const put = await putApi(httpEvent('PUT', '/api', { body: JSON.stringify({ key, value: 'v' }) }))
    expect([put.statusCode, bodyOf(put).detail]).toEqual([422, `key is larger than ${MAX_KEY_BYTES} bytes of UTF-8`])
    for (const [handler, method] of [[getApi, 'GET'], [deleteApi, 'DELETE']] as const) {
      const result = await handler(httpEvent(method, '/api', { query: `key=${encodeURIComponent(key)}` }))
      expect([result.statusCode, bodyOf(result).detail], method).toEqual([422, `key is larger than ${MAX_KEY_BYTES} bytes of UTF-8`])
    }
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)).toBe(0)
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.delQueue)).toBe(0)
  })
})

describe('conditions, TTLs and batches at their extremes, through the real consumer', () => {
  const get = async (key: string) => bodyOf(await getApi(httpEvent('GET', '/api', { query: `key=${encodeURIComponent(key)}` })))

  it('If-None-Match with the largest key, a 1 MiB random value and the longest TTL applies; If-Match DELETE of it too', async () => {
    const key = randomText(MAX_KEY_BYTES, [1, 2, 3, 4])
    const value = randomText(MAX_VALUE_BYTES, [2, 3, 4])
    const put = await putApi(httpEvent('PUT', '/api', { body: JSON.stringify({ key, value, ttl: MAX_TTL_SECONDS }), headers: { 'if-none-match': '*' } }))
    expect(put.statusCode).toBe(200)
    const { version, expiresAt } = bodyOf(put) as { version: string, expiresAt: number }
    expect(await deliver(iso.config.addQueue, addKey)).toMatchObject({ applied: 1, rejected: 0, deadLettered: 0 })
    expect(await get(key)).toEqual({ data: { key, value }, source: 'postgres', version, expiresAt })
    const del = await deleteApi(httpEvent('DELETE', '/api', { query: `key=${encodeURIComponent(key)}`, headers: { 'if-match': `"${version}"` } }))
    expect(del.statusCode).toBe(200)
    expect(await deliver(iso.config.delQueue, delKey)).toMatchObject({ applied: 1, rejected: 0, deadLettered: 0 })
    expect((await getApi(httpEvent('GET', '/api', { query: `key=${encodeURIComponent(key)}` }))).statusCode).toBe(404)
  })

  for (const atomic of [false, true]) {
    it(`${atomic ? 'an atomic' : 'a non-atomic'} batch of ${MAX_BATCH_OPS} ops at the largest keys${atomic ? ', four with 1 MiB values,' : ''} applies and reads back`, async () => {
      const ops = Array.from({ length: MAX_BATCH_OPS }, (_, i) => ({
        op: 'put', key: `${i}/` + randomText(MAX_KEY_BYTES - Buffer.byteLength(`${i}/`), [1, 2, 3, 4]),
        value: atomic && i < 4 ? randomText(MAX_VALUE_BYTES, [2, 3, 4]) : randomText(64, [1, 2, 3, 4]),
        ...(i % 2 === 0 ? { ifNoneMatch: '*' } : { ttl: MAX_TTL_SECONDS }),
      }))
      const result = await postBatch(httpEvent('POST', '/api/batch', { body: JSON.stringify({ ops, atomic }) }))
      expect(result.statusCode, result.body.slice(0, 200)).toBe(200)
      expect(await deliver(iso.config.addQueue, addKey)).toMatchObject({ applied: MAX_BATCH_OPS, rejected: 0, deadLettered: 0 })
      for (const op of ops) expect((await get(op.key)).data).toEqual({ key: op.key, value: op.value })
    })
  }
})
