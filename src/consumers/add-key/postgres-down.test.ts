/**
 * The add-key consumer with PostgreSQL unreachable: the invocation fails (so the
 * event source retries the batch and acknowledges nothing), and nothing is
 * dead-lettered — not even the poison in the batch, which goes once the batch applies.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolate, type Isolated, declareQueues } from '../../../test/support/isolated.js'
import { cachedEntry, queueDepth, rawMessage, writeMessage } from '../../../test/support/kv.js'
import { deadLetterQueueName } from '../../shared/queue.js'
import { buildRmqEvent } from '../../../runtime/rmq/event.js'
import { versionAtMillis } from '../../shared/version.js'
import { handler } from './index.js'

let iso: Isolated
let redis: Redis

beforeAll(async () => {
  iso = await isolate('addpgdown')
  Object.assign(process.env, iso.env, { DATABASE_URL: `postgres://postgres@127.0.0.1:1/${iso.id}` })
  redis = new Redis(iso.env.REDIS_URL!)
  await declareQueues(iso)
})

afterAll(async () => {
  redis?.disconnect()
  await iso?.cleanup()
})

describe('add-key with PostgreSQL down', () => {
  it('fails the invocation, touches no cache entry and dead-letters nothing', async () => {
    const event = buildRmqEvent(iso.config.addQueue, [writeMessage('k', 'v', versionAtMillis(Date.now())), rawMessage('not json')])
    for (let attempt = 0; attempt < 2; attempt++) await expect(handler(event)).rejects.toThrow()
    expect(await cachedEntry(redis, iso.config.cachePrefix, 'k')).toBeUndefined()
    expect(await queueDepth(iso.env.AMQP_URL!, deadLetterQueueName(iso.config.addQueue))).toBe(0)
  })
})
