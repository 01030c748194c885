/**
 * The add-key consumer with Redis unreachable: the write is durable in
 * PostgreSQL, but the invocation fails so the batch is retried until the cache
 * can be brought to the same state; nothing is dead-lettered meanwhile.
 */
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolate, type Isolated, declareQueues } from '../../../test/support/isolated.js'
import { queueDepth, rawMessage, writeMessage } from '../../../test/support/kv.js'
import { openDatabase } from '../../shared/postgres.js'
import { deadLetterQueueName } from '../../shared/queue.js'
import { buildRmqEvent } from '../../shared/rmq-event.js'
import { readKey } from '../../shared/store.js'
import { versionAtMillis } from '../../shared/version.js'
import { handler } from './index.js'

let iso: Isolated
let db: pg.Pool

beforeAll(async () => {
  iso = await isolate('addredisdown')
  Object.assign(process.env, iso.env, { REDIS_URL: 'redis://127.0.0.1:1' })
  db = await openDatabase(iso.env.DATABASE_URL!, 1)
  await declareQueues(iso)
})

afterAll(async () => {
  await db?.end()
  await iso?.cleanup()
})

describe('add-key with Redis down', () => {
  it('applies to PostgreSQL, fails the invocation, dead-letters nothing; a retry re-applies as a no-op', async () => {
    const v = versionAtMillis(Date.now())
    const event = buildRmqEvent(iso.config.addQueue, [writeMessage('k', 'v', v), rawMessage('not json')])
    await expect(handler(event)).rejects.toThrow()
    expect(await readKey(db, 'k')).toEqual({ value: 'v', version: v.toString(), deleted: false })
    await expect(handler(event)).rejects.toThrow()
    expect(await readKey(db, 'k')).toEqual({ value: 'v', version: v.toString(), deleted: false })
    expect(await queueDepth(iso.env.AMQP_URL!, deadLetterQueueName(iso.config.addQueue))).toBe(0)
  })
})
