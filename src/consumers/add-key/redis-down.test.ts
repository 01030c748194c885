/**
 * The add-key consumer with Redis unreachable: the write is durable in
 * PostgreSQL and the invocation succeeds (so the batch is acknowledged and the
 * record keeps moving); the keys whose cache entry may be stale are noted in
 * the record for repair; poison is still dead-lettered.
 */
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolate, type Isolated, declareQueues } from '../../../test/support/isolated.js'
import { queueDepth, rawMessage, writeMessage } from '../../../test/support/kv.js'
import { openDatabase } from '../../shared/postgres.js'
import { deadLetterQueueName } from '../../shared/queue.js'
import { buildRmqEvent } from '../../../runtime/rmq/event.js'
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
  it('applies to PostgreSQL, notes the key for cache repair, and completes; the next batch too', async () => {
    const v = versionAtMillis(Date.now())
    const result = await handler(buildRmqEvent(iso.config.addQueue, [writeMessage('k', 'v', v), rawMessage('not json')]))
    expect(result).toEqual({ received: 2, applied: 1, skipped: 0, deadLettered: 1, rejected: 0, cacheDeferred: 1 })
    expect(await readKey(db, 'k')).toEqual({ value: 'v', version: v.toString(), deleted: false, expiresAt: null })
    expect(await queueDepth(iso.env.AMQP_URL!, deadLetterQueueName(iso.config.addQueue))).toBe(1)

    const v2 = v + 1024n
    expect(await handler(buildRmqEvent(iso.config.addQueue, [writeMessage('k', 'v2', v2), writeMessage('other', 'o', v2)]))).toMatchObject({ applied: 2, cacheDeferred: 2 })
    expect(await readKey(db, 'k')).toEqual({ value: 'v2', version: v2.toString(), deleted: false, expiresAt: null })
    const { rows } = await db.query('SELECT key, version::text AS version FROM kv_cache_repair ORDER BY key')
    expect(rows).toEqual([{ key: 'k', version: v2.toString() }, { key: 'other', version: v2.toString() }])
  })
})
