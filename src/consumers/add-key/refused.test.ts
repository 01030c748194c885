/**
 * Writes that pass every check but that PostgreSQL refuses for good, forced in
 * this test's own database with a CHECK constraint (SQLSTATE 23514, a class a
 * retry can never fix) and a trigger that RAISEs (P0001, a class that says
 * nothing: permanent only because it repeats while PostgreSQL answers). Each
 * refused write is found inside its batch, dead-lettered alone with the error,
 * and every other write applies; the invocation succeeds, so the batch is
 * acknowledged and nothing loops. A failure of the table itself is not blamed
 * on the writes: the batch is retried, nothing is dead-lettered.
 */
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { declareQueues, isolate, type Isolated } from '../../../test/support/isolated.js'
import { allRows, rawMessage, takeMessages, writeMessage } from '../../../test/support/kv.js'
import { installRefusals } from '../../../test/support/refusals.js'
import { openDatabase } from '../../shared/postgres.js'
import { deadLetterQueueName, REASON_HEADER, SOURCE_QUEUE_HEADER } from '../../shared/queue.js'
import { buildRmqEvent, type DeliveredMessage } from '../../../runtime/rmq/event.js'
import { versionAtMillis } from '../../shared/version.js'
import { handler } from './index.js'

let iso: Isolated
let db: pg.Pool
let next = versionAtMillis(Date.now())
const version = () => (next += 1024n)

const consume = (messages: DeliveredMessage[]) => handler(buildRmqEvent(iso.config.addQueue, messages))
const coalesced = (writes: { key: string, value: string, version: bigint }[], messageId?: string) =>
  rawMessage(JSON.stringify(writes.map(w => ({ key: w.key, value: w.value, version: w.version.toString() }))), messageId)

beforeAll(async () => {
  iso = await isolate('refused')
  Object.assign(process.env, iso.env)
  db = await openDatabase(iso.env.DATABASE_URL!, 2)
  await declareQueues(iso)
  await installRefusals(iso.env.DATABASE_URL!)
})

afterAll(async () => {
  await db?.end()
  await iso?.cleanup()
})

describe('add-key: writes PostgreSQL refuses for good', () => {
  it('are isolated in a large coalesced batch and dead-lettered alone, with the error; every other write applies', async () => {
    // Prepare: 400 valid writes in 40 coalesced messages, three refused writes hidden among them.
    const writes = Array.from({ length: 400 }, (_, i) => ({ key: `a/${String(i).padStart(3, '0')}`, value: `v${i}`, version: version() }))
    writes[17]!.value = 'refuse-check 17'
    writes[211]!.value = 'refuse-trigger 211'
    writes[399]!.value = 'refuse-check 399'
    const refused = [writes[17]!, writes[211]!, writes[399]!]
    const messages = Array.from({ length: 40 }, (_, m) => coalesced(writes.slice(m * 10, m * 10 + 10), `m${m}`))

    // Act
    const result = await consume(messages)

    // Assess: the batch completed (so it is acknowledged) with exactly the refused writes dead-lettered.
    expect(result).toEqual({ received: 40, applied: 397, skipped: 0, deadLettered: 3, rejected: 0, cacheDeferred: 0 })
    const rows = new Map((await allRows(db)).filter(r => r.key.startsWith('a/')).map(r => [r.key, r.value]))
    expect(rows.size).toBe(397)
    for (const w of writes) expect(rows.get(w.key), w.key).toBe(refused.includes(w) ? undefined : w.value)

    const dead = await takeMessages(iso.env.AMQP_URL!, deadLetterQueueName(iso.config.addQueue))
    expect(dead.map(d => JSON.parse(d.content.toString())).sort((a, b) => a.key.localeCompare(b.key)))
      .toEqual(refused.map(w => ({ key: w.key, value: w.value, version: w.version.toString() })))
    const reasons = new Map(dead.map(d => [JSON.parse(d.content.toString()).key, String(d.properties.headers?.[REASON_HEADER])]))
    expect(reasons.get('a/017')).toMatch(/SQLSTATE 23514.*test_refuse_check/)
    expect(reasons.get('a/211')).toMatch(/SQLSTATE P0001.*test trigger refuses a\/211/)
    for (const d of dead) {
      expect(d.properties.headers?.[SOURCE_QUEUE_HEADER]?.toString()).toBe(iso.config.addQueue)
      expect(typeof d.properties.timestamp).toBe('number')
    }
  })

  it('a refused newest write of a key lets the older write of the same batch apply (it is not silently lost)', async () => {
    const [older, newer] = [version(), version()]
    const result = await consume([writeMessage('b/k', 'older, valid', older), writeMessage('b/k', 'refuse-check newer', newer)])
    expect(result).toEqual({ received: 2, applied: 1, skipped: 0, deadLettered: 1, rejected: 0, cacheDeferred: 0 })
    expect((await allRows(db)).find(r => r.key === 'b/k')).toEqual({ key: 'b/k', value: 'older, valid', version: older.toString(), deleted: false })
    const dead = await takeMessages(iso.env.AMQP_URL!, deadLetterQueueName(iso.config.addQueue))
    expect(dead.map(d => JSON.parse(d.content.toString()))).toEqual([{ key: 'b/k', value: 'refuse-check newer', version: newer.toString() }])
  })

  it('a refused write redelivered is dead-lettered again, never applied, and never loops', async () => {
    const v = version()
    for (let round = 0; round < 2; round++) {
      expect(await consume([{ ...writeMessage('c/k', 'refuse-trigger again', v), redelivered: round > 0 }])).toMatchObject({ applied: 0, deadLettered: 1 })
    }
    expect(await takeMessages(iso.env.AMQP_URL!, deadLetterQueueName(iso.config.addQueue))).toHaveLength(2)
    expect((await allRows(db)).find(r => r.key === 'c/k')).toBeUndefined()
  })

  it('when the statement itself cannot run (the table is gone), the batch fails to be retried and nothing is dead-lettered', async () => {
    const v = version()
    const event = [writeMessage('d/k', 'valid', v)]
    await db.query('ALTER TABLE kv_store RENAME TO kv_store_away')
    try {
      await expect(consume(event)).rejects.toThrow(/kv_store/)
    } finally {
      await db.query('ALTER TABLE kv_store_away RENAME TO kv_store')
    }
    expect(await takeMessages(iso.env.AMQP_URL!, deadLetterQueueName(iso.config.addQueue))).toEqual([])
    // The retry, with the table back, applies it.
    expect(await consume(event)).toMatchObject({ applied: 1, deadLettered: 0 })
  })
})
