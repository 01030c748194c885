/**
 * PUT /api through the handler: 200 only with the message really on the
 * durable queue, 413 and 422 with exact bodies and nothing queued.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { httpEvent, isolate, type Isolated, declareQueues } from '../../../test/support/isolated.js'
import { bodyOf, queueDepth, takeMessages } from '../../../test/support/kv.js'
import { MAX_BODY_BYTES, MAX_KEY_BYTES, MAX_VALUE_BYTES } from '../../shared/limits.js'
import { parseVersion } from '../../shared/version.js'
import { handler } from './index.js'

let iso: Isolated

const put = (body: string, options: { base64?: boolean } = {}) => handler(httpEvent('PUT', '/api', { body, ...options }))
const putJson = (payload: unknown) => put(JSON.stringify(payload))
const JSON_TYPE = 'application/json; charset=utf-8'

beforeAll(async () => {
  iso = await isolate('put')
  Object.assign(process.env, iso.env)
  // Declared up front so "nothing was queued" can be checked before the first successful PUT.
  await declareQueues(iso)
})

afterAll(async () => {
  await iso?.cleanup()
})

beforeEach(async () => {
  await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
})

describe('PUT /api 200', () => {
  it('answers queued with a version, after the message is on the add queue', async () => {
    // Act
    const result = await putJson({ key: 'minha_chave', value: '123' })
    // Assess
    expect(result.statusCode).toBe(200)
    expect(result.headers).toEqual({ 'content-type': JSON_TYPE, 'cache-control': 'no-store' })
    const body = bodyOf(result)
    expect(Object.keys(body).sort()).toEqual(['status', 'version'])
    expect(body.status).toBe('queued')
    expect(parseVersion(body.version)).toBeTypeOf('bigint')

    const messages = await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
    expect(messages).toHaveLength(1)
    const [message] = messages
    expect(JSON.parse(message!.content.toString())).toEqual({ key: 'minha_chave', value: '123', version: body.version })
    expect(message!.properties.messageId).toBe(body.version)
    expect(message!.properties.deliveryMode).toBe(2)
    expect(message!.properties.contentType).toBe('application/json')
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.delQueue)).toBe(0)
  })

  it('versions of successive writes strictly increase, and each is queued once', async () => {
    const versions: bigint[] = []
    for (let i = 0; i < 20; i++) {
      const result = await putJson({ key: 'counter', value: String(i) })
      expect(result.statusCode).toBe(200)
      versions.push(parseVersion(bodyOf(result).version)!)
    }
    for (let i = 1; i < versions.length; i++) expect(versions[i]! > versions[i - 1]!).toBe(true)
    const messages = await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
    expect(messages.map(m => JSON.parse(m.content.toString()).version)).toEqual(versions.map(String))
  })

  it('accepts an empty value, a value of exactly 1 MiB, and a key of exactly 2048 bytes', async () => {
    const key = 'é'.repeat(MAX_KEY_BYTES / 2)
    const value = '€'.repeat((MAX_VALUE_BYTES - 1) / 3) + 'x' // 3-byte characters up to the limit
    expect(Buffer.byteLength(value)).toBe(MAX_VALUE_BYTES)
    expect((await putJson({ key: 'empty', value: '' })).statusCode).toBe(200)
    expect((await putJson({ key, value })).statusCode).toBe(200)
    const messages = await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
    expect(messages.map(m => JSON.parse(m.content.toString()).value)).toEqual(['', value])
    expect(JSON.parse(messages[1]!.content.toString()).key).toBe(key)
  })

  it('accepts a base64-encoded body (as API Gateway sends binary bodies)', async () => {
    const result = await put(Buffer.from(JSON.stringify({ key: 'b64', value: 'ünïcødé' })).toString('base64'), { base64: true })
    expect(result.statusCode).toBe(200)
    const [message] = await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
    expect(JSON.parse(message!.content.toString())).toMatchObject({ key: 'b64', value: 'ünïcødé' })
  })

  it('ignores fields other than key and value', async () => {
    const result = await putJson({ key: 'extra', value: 'v', version: '1', owner: 'me' })
    expect(result.statusCode).toBe(200)
    const [message] = await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
    expect(JSON.parse(message!.content.toString())).toEqual({ key: 'extra', value: 'v', version: bodyOf(result).version })
  })
})

describe('PUT /api 413', () => {
  it('a value one byte over 1 MiB', async () => {
    const result = await putJson({ key: 'big', value: 'x'.repeat(MAX_VALUE_BYTES + 1) })
    expect(result).toEqual({ statusCode: 413, headers: { 'content-type': JSON_TYPE, 'cache-control': 'no-store' }, body: JSON.stringify({ detail: `value is larger than ${MAX_VALUE_BYTES} bytes of UTF-8` }) })
  })

  it('a value of multi-byte characters over 1 MiB of UTF-8 (fewer than 1 Mi characters)', async () => {
    const result = await putJson({ key: 'big', value: '😀'.repeat(MAX_VALUE_BYTES / 4 + 1) })
    expect(result.statusCode).toBe(413)
    expect(bodyOf(result)).toEqual({ detail: `value is larger than ${MAX_VALUE_BYTES} bytes of UTF-8` })
  })

  it('a body over the body limit, plain and base64', async () => {
    const body = JSON.stringify({ key: 'big', value: 'x'.repeat(MAX_BODY_BYTES) })
    const detail = { detail: `request body is larger than ${MAX_BODY_BYTES} bytes` }
    const plain = await put(body)
    expect(plain.statusCode).toBe(413)
    expect(bodyOf(plain)).toEqual(detail)
    const base64 = await put(Buffer.from(body).toString('base64'), { base64: true })
    expect(base64.statusCode).toBe(413)
    expect(bodyOf(base64)).toEqual(detail)
  })

  it('queues nothing', async () => {
    await putJson({ key: 'big', value: 'x'.repeat(MAX_VALUE_BYTES + 1) })
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)).toBe(0)
  })
})

describe('PUT /api 422', () => {
  const cases: [string, string, string][] = [
    ['empty body', '', 'request body is empty: send a JSON object {"key": string, "value": string}'],
    ['malformed JSON', '{"key": "a", "value": ', 'request body is not valid JSON'],
    ['JSON array', '[]', 'request body must be a JSON object, got an array'],
    ['JSON null', 'null', 'request body must be a JSON object, got null'],
    ['JSON string', '"key"', 'request body must be a JSON object, got string'],
    ['JSON number', '42', 'request body must be a JSON object, got number'],
    ['missing key', '{"value":"v"}', 'field "key" is required'],
    ['missing value', '{"key":"k"}', 'field "value" is required'],
    ['numeric key', '{"key":1,"value":"v"}', 'key must be a string, got number'],
    ['boolean value', '{"key":"k","value":true}', 'value must be a string, got boolean'],
    ['null value', '{"key":"k","value":null}', 'value must be a string, got null'],
    ['object value', '{"key":"k","value":{"a":1}}', 'value must be a string, got object'],
    ['array key', '{"key":["k"],"value":"v"}', 'key must be a string, got array'],
    ['empty key', '{"key":"","value":"v"}', 'key must not be empty'],
    ['NUL in key', '{"key":"a\\u0000b","value":"v"}', 'key must not contain NUL characters'],
    ['NUL in value', '{"key":"k","value":"\\u0000"}', 'value must not contain NUL characters'],
    ['lone high surrogate in key', '{"key":"\\ud800","value":"v"}', 'key is not valid Unicode (it contains a lone surrogate)'],
    ['lone low surrogate in value', '{"key":"k","value":"a\\udc00b"}', 'value is not valid Unicode (it contains a lone surrogate)'],
    ['key over 2048 bytes', JSON.stringify({ key: 'k'.repeat(MAX_KEY_BYTES + 1), value: 'v' }), `key is larger than ${MAX_KEY_BYTES} bytes of UTF-8`],
  ]
  for (const [name, body, detail] of cases) {
    it(name, async () => {
      const result = await put(body)
      expect(result.statusCode).toBe(422)
      expect(result.headers['content-type']).toBe(JSON_TYPE)
      expect(JSON.parse(result.body)).toEqual({ detail })
    })
  }

  it('a base64 body that is not UTF-8', async () => {
    const result = await put(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('base64'), { base64: true })
    expect(result.statusCode).toBe(422)
    expect(bodyOf(result)).toEqual({ detail: 'request body is not valid UTF-8' })
  })

  it('queues nothing for any of them', async () => {
    for (const [, body] of cases) await put(body)
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)).toBe(0)
  })
})
