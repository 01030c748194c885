/**
 * PUT /api with a TTL, through the handler: `ttl` or `expiresAt` validated
 * (out of range, both, wrong types → 422 and nothing queued), the expiry
 * computed from the write's version time and carried in the message.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { declareQueues, httpEvent, isolate, type Isolated } from '../../../test/support/isolated.js'
import { bodyOf, queueDepth, takeMessages } from '../../../test/support/kv.js'
import { MAX_TTL_SECONDS } from '../../shared/validate.js'
import { versionMillis } from '../../shared/version.js'
import { handler } from './index.js'

let iso: Isolated
const put = (body: Record<string, unknown>) => handler(httpEvent('PUT', '/api', { body: JSON.stringify(body) }))

beforeAll(async () => {
  iso = await isolate('put_ttl')
  Object.assign(process.env, iso.env)
  await declareQueues(iso)
})

afterAll(async () => {
  await iso?.cleanup()
})

beforeEach(async () => {
  await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
})

describe('PUT /api with ttl / expiresAt', () => {
  it('ttl: the expiry is the version\'s second plus ttl, in the answer and the message', async () => {
    const result = await put({ key: 'k', value: 'v', ttl: 2 })
    const { version, expiresAt } = bodyOf(result) as { version: string, expiresAt: number }
    expect(expiresAt).toBe(Math.floor(versionMillis(BigInt(version)) / 1000) + 2)
    const [message] = await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
    expect(JSON.parse(message!.content.toString())).toEqual({ key: 'k', value: 'v', version, expiresAt })
  })

  it('expiresAt is taken as given', async () => {
    const at = Math.floor(Date.now() / 1000) + 60
    expect(bodyOf(await put({ key: 'k', value: 'v', expiresAt: at }))).toMatchObject({ status: 'queued', expiresAt: at })
  })

  it('422 for a life out of range, of the wrong type, or given twice; nothing is queued', async () => {
    const now = Math.floor(Date.now() / 1000)
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ttl: 0 }, /ttl must be whole seconds from 1 to 31536000/],
      [{ ttl: MAX_TTL_SECONDS + 1 }, /ttl must be/],
      [{ ttl: 1.5 }, /ttl must be/],
      [{ ttl: '5' }, /ttl must be/],
      [{ ttl: null }, /ttl must be/],
      [{ expiresAt: now - 1 }, /expiresAt must be epoch seconds after now/],
      [{ expiresAt: now + MAX_TTL_SECONDS + 60 }, /expiresAt must be/],
      [{ ttl: 5, expiresAt: now + 60 }, /not both/],
    ]
    for (const [extra, detail] of cases) {
      const result = await put({ key: 'k', value: 'v', ...extra })
      expect(result.statusCode, JSON.stringify(extra)).toBe(422)
      expect(bodyOf(result).detail, JSON.stringify(extra)).toMatch(detail)
    }
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)).toBe(0)
  })
})
