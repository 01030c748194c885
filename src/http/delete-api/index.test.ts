/**
 * DELETE /api?key=K through the handler: 200 only with the tombstone message on
 * the durable delete queue; 422 with exact bodies and nothing queued.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { httpEvent, isolate, type Isolated, declareQueues } from '../../../test/support/isolated.js'
import { bodyOf, queueDepth, takeMessages } from '../../../test/support/kv.js'
import { MAX_KEY_BYTES } from '../../shared/limits.js'
import { parseVersion } from '../../shared/version.js'
import { handler } from './index.js'

let iso: Isolated

const del = (query: string) => handler(httpEvent('DELETE', '/api', { query }))
const JSON_TYPE = 'application/json; charset=utf-8'

beforeAll(async () => {
  iso = await isolate('del')
  Object.assign(process.env, iso.env)
  await declareQueues(iso)
})

afterAll(async () => {
  await iso?.cleanup()
})

beforeEach(async () => {
  await takeMessages(iso.env.AMQP_URL!, iso.config.delQueue)
})

describe('DELETE /api 200', () => {
  it('answers queued with a version, after the tombstone message is on the delete queue', async () => {
    const result = await del('key=minha_chave')
    expect(result.statusCode).toBe(200)
    expect(result.headers).toEqual({ 'content-type': JSON_TYPE, 'cache-control': 'no-store' })
    const body = bodyOf(result)
    expect(body).toEqual({ status: 'queued', version: expect.stringMatching(/^[1-9][0-9]*$/) })
    expect(parseVersion(body.version)).toBeTypeOf('bigint')

    const messages = await takeMessages(iso.env.AMQP_URL!, iso.config.delQueue)
    expect(messages).toHaveLength(1)
    expect(JSON.parse(messages[0]!.content.toString())).toEqual({ key: 'minha_chave', version: body.version })
    expect(messages[0]!.properties.messageId).toBe(body.version)
    expect(messages[0]!.properties.deliveryMode).toBe(2)
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)).toBe(0)
  })

  it('deleting a key that was never written is still queued (a tombstone guards against older PUTs)', async () => {
    const result = await del('key=never-written')
    expect(result.statusCode).toBe(200)
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.delQueue)).toBe(1)
  })

  it('decodes a percent-encoded Unicode key exactly', async () => {
    const key = 'clé "😀" \\ 中文'
    const result = await del(`key=${encodeURIComponent(key)}`)
    expect(result.statusCode).toBe(200)
    const [message] = await takeMessages(iso.env.AMQP_URL!, iso.config.delQueue)
    expect(JSON.parse(message!.content.toString()).key).toBe(key)
  })

  it('versions of successive deletes strictly increase', async () => {
    const a = parseVersion(bodyOf(await del('key=x')).version)!
    const b = parseVersion(bodyOf(await del('key=x')).version)!
    expect(b > a).toBe(true)
  })
})

describe('DELETE /api 422', () => {
  const cases: [string, string, string][] = [
    ['no query', '', 'query parameter "key" is required, e.g. /api?key=my-key'],
    ['other parameter only', 'id=1', 'query parameter "key" is required, e.g. /api?key=my-key'],
    ['empty key', 'key=', 'key must not be empty'],
    ['repeated key', 'key=a&key=a', 'query parameter "key" given more than once'],
    ['bad percent-encoding', 'key=%C3', 'query parameter "key" is not valid percent-encoded UTF-8'],
    ['NUL in key', 'key=%00', 'key must not contain NUL characters'],
    ['key over 2048 bytes', `key=${'k'.repeat(MAX_KEY_BYTES + 1)}`, `key is larger than ${MAX_KEY_BYTES} bytes of UTF-8`],
  ]
  for (const [name, query, detail] of cases) {
    it(name, async () => {
      const result = await del(query)
      expect(result.statusCode).toBe(422)
      expect(result.headers['content-type']).toBe(JSON_TYPE)
      expect(JSON.parse(result.body)).toEqual({ detail })
    })
  }

  it('queues nothing for any of them', async () => {
    for (const [, query] of cases) await del(query)
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.delQueue)).toBe(0)
  })
})
