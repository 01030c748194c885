/**
 * Bad input through all four HTTP functions: each answer is a 4xx JSON body
 * with a `detail` string a person can act on — never a 5xx, never HTML — and
 * nothing bad reaches the queues.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpEvent, isolate, type Isolated, declareQueues } from '../../test/support/isolated.js'
import { queueDepth } from '../../test/support/kv.js'
import { handler as deleteApi } from '../http/delete-api/index.js'
import { handler as getApiAll } from '../http/get-api-all/index.js'
import { handler as getApi } from '../http/get-api/index.js'
import { handler as putApi } from '../http/put-api/index.js'
import type { HttpResult } from './http.js'
import { MAX_BODY_BYTES, MAX_KEY_BYTES, MAX_VALUE_BYTES } from './limits.js'

let iso: Isolated

beforeAll(async () => {
  iso = await isolate('bad')
  Object.assign(process.env, iso.env)
  await declareQueues(iso)
})

afterAll(async () => {
  await iso?.cleanup()
})

type Case = [name: string, status: 413 | 422, call: () => Promise<HttpResult>]

const put = (body: string | undefined, base64 = false) => () => putApi(httpEvent('PUT', '/api', { ...(body === undefined ? {} : { body }), base64 }))
const putJson = (payload: unknown) => put(JSON.stringify(payload))
const get = (query: string) => () => getApi(httpEvent('GET', '/api', { query }))
const del = (query: string) => () => deleteApi(httpEvent('DELETE', '/api', { query }))
const list = (query: string) => () => getApiAll(httpEvent('GET', '/api/all', { query }))
const b64 = (bytes: Buffer | string) => Buffer.from(bytes).toString('base64')

const cases: Case[] = [
  // PUT: the body as a whole
  ['PUT no body at all', 422, put(undefined)],
  ['PUT empty body', 422, put('')],
  ['PUT whitespace body', 422, put('  \n ')],
  ['PUT malformed JSON', 422, put('{"key": "a", "value": ')],
  ['PUT JSON with trailing garbage', 422, put('{"key":"a","value":"b"} trailing')],
  ['PUT single-quoted pseudo-JSON', 422, put("{'key':'a','value':'b'}")],
  ['PUT form-encoded body', 422, put('key=a&value=b')],
  ['PUT JSON array of the right object', 422, putJson([{ key: 'a', value: 'b' }])],
  ['PUT JSON null', 422, put('null')],
  ['PUT JSON number', 422, put('12')],
  ['PUT JSON boolean', 422, put('true')],
  ['PUT JSON string', 422, put('"a"')],
  ['PUT empty object', 422, putJson({})],
  // PUT: fields
  ['PUT missing key', 422, putJson({ value: 'v' })],
  ['PUT missing value', 422, putJson({ key: 'k' })],
  ['PUT key is a number', 422, putJson({ key: 1, value: 'v' })],
  ['PUT key is a boolean', 422, putJson({ key: false, value: 'v' })],
  ['PUT key is null', 422, putJson({ key: null, value: 'v' })],
  ['PUT key is an object', 422, putJson({ key: { k: 1 }, value: 'v' })],
  ['PUT value is a number', 422, putJson({ key: 'k', value: 123 })],
  ['PUT value is a boolean', 422, putJson({ key: 'k', value: true })],
  ['PUT value is an array', 422, putJson({ key: 'k', value: ['v'] })],
  ['PUT value is null', 422, putJson({ key: 'k', value: null })],
  ['PUT empty key', 422, putJson({ key: '', value: 'v' })],
  ['PUT NUL in key', 422, put('{"key":"a\\u0000","value":"v"}')],
  ['PUT NUL in value', 422, put('{"key":"k","value":"x\\u0000y"}')],
  ['PUT lone high surrogate in key', 422, put('{"key":"\\ud800","value":"v"}')],
  ['PUT lone low surrogate in value', 422, put('{"key":"k","value":"\\udfff"}')],
  ['PUT surrogates in the wrong order', 422, put('{"key":"k","value":"\\udc00\\ud800"}')],
  ['PUT high surrogate at the end of the key', 422, put('{"key":"abc\\ud83d","value":"v"}')],
  ['PUT key over 2048 bytes (ASCII)', 422, putJson({ key: 'k'.repeat(MAX_KEY_BYTES + 1), value: 'v' })],
  ['PUT key over 2048 bytes (CJK, 1366 characters)', 422, putJson({ key: '中'.repeat(Math.ceil((MAX_KEY_BYTES + 1) / 3)), value: 'v' })],
  ['PUT value over 1 MiB', 413, putJson({ key: 'k', value: 'v'.repeat(MAX_VALUE_BYTES + 1) })],
  ['PUT value over 1 MiB of UTF-8 in fewer characters', 413, putJson({ key: 'k', value: 'é'.repeat(MAX_VALUE_BYTES / 2 + 1) })],
  ['PUT body over the body limit', 413, put(' '.repeat(MAX_BODY_BYTES + 1))],
  // PUT: base64 bodies (API Gateway's binary bodies)
  ['PUT base64 body that is not UTF-8', 422, put(b64(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d])), true)],
  ['PUT invalid base64', 422, put('%%%not base64%%%', true)],
  ['PUT base64 of malformed JSON', 422, put(b64('{"key":'), true)],
  ['PUT base64 body with an overlong UTF-8 encoding', 422, put(b64(Buffer.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x7d])), true)],
  ['PUT base64 body over the body limit', 413, put('A'.repeat(MAX_BODY_BYTES * 2), true)],
  // GET /api
  ['GET without key', 422, get('')],
  ['GET with an empty key', 422, get('key=')],
  ['GET with the key twice', 422, get('key=a&key=a')],
  ['GET with bad percent-encoding', 422, get('key=%ZZ')],
  ['GET with a percent-encoded lone surrogate', 422, get('key=%ED%B0%80')],
  ['GET with NUL in the key', 422, get('key=%00')],
  ['GET with a key over 2048 bytes', 422, get(`key=${'x'.repeat(MAX_KEY_BYTES + 1)}`)],
  // DELETE /api
  ['DELETE without key', 422, del('')],
  ['DELETE with an empty key', 422, del('key=')],
  ['DELETE with bad percent-encoding', 422, del('key=%E2%82')],
  ['DELETE with NUL in the key', 422, del('key=a%00')],
  ['DELETE with the key twice', 422, del('key=a&key=b')],
  // GET /api/all
  ['list with limit 0', 422, list('limit=0')],
  ['list with a non-numeric limit', 422, list('limit=all')],
  ['list with a limit over the maximum', 422, list('limit=100000')],
  ['list with a forged cursor', 422, list('cursor=not*a*cursor')],
  ['list with an unknown parameter', 422, list('offset=10')],
  ['list with NUL in the prefix', 422, list('prefix=%00')],
]

describe(`${cases.length} bad inputs through HTTP`, () => {
  it('are at least 30 distinct cases', () => {
    expect(new Set(cases.map(([name]) => name)).size).toBe(cases.length)
    expect(cases.length).toBeGreaterThanOrEqual(30)
  })

  for (const [name, status, call] of cases) {
    it(`${name} → ${status} JSON with a detail`, async () => {
      const result = await call()
      expect(result.statusCode).toBe(status)
      expect(result.headers['content-type']).toMatch(/^application\/json\b/)
      const body = JSON.parse(result.body) as Record<string, unknown>
      expect(Object.keys(body)).toEqual(['detail'])
      expect(typeof body.detail).toBe('string')
      expect((body.detail as string).length).toBeGreaterThan(5)
      expect(result.body).not.toMatch(/<html|at \S+ \(|internal error/i)
    })
  }

  it('none of them queued anything', async () => {
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)).toBe(0)
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.delQueue)).toBe(0)
  })
})
