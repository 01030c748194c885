/**
 * DELETE /api with write outcomes, through the handler and a real consumer
 * (applyRmqEvent fed from this file's own queue): Prefer: wait answers once
 * the tombstone is applied, and If-Match deletes only the version it read.
 */
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { declareQueues, httpEvent, isolate, type Isolated } from '../../../test/support/isolated.js'
import { allRows, bodyOf, consumeQueued } from '../../../test/support/kv.js'
import { openConsumer } from '../../shared/open-consumer.js'
import { openDatabase } from '../../shared/postgres.js'
import { applyWrites } from '../../shared/store.js'
import { VersionClock } from '../../shared/version.js'
import { handler } from './index.js'

let iso: Isolated
let db: pg.Pool
let consumer: ReturnType<typeof openConsumer>
const clock = new VersionClock(7)

const del = (key: string, headers: Record<string, string> = {}) =>
  handler(httpEvent('DELETE', '/api', { query: `key=${encodeURIComponent(key)}`, headers }))

async function stored(key: string, value: string): Promise<string> {
  const version = clock.next()
  await applyWrites(db, [{ key, value, version, deleted: false }], 0n)
  return version.toString()
}

beforeAll(async () => {
  iso = await isolate('del_outcomes')
  Object.assign(process.env, iso.env)
  await declareQueues(iso)
  db = await openDatabase(iso.env.DATABASE_URL!, 2)
  consumer = openConsumer(iso.config)
})

afterAll(async () => {
  await db?.end()
  await iso?.cleanup()
})

describe('DELETE /api with outcomes', () => {
  it('Prefer: wait answers 200 applied once the tombstone is in the record', async () => {
    await stored('d/gone', 'x')
    const answer = del('d/gone', { prefer: 'wait=5' })
    await consumeQueued(iso, consumer, 'delete')
    expect(bodyOf(await answer)).toMatchObject({ status: 'applied' })
    expect((await allRows(db)).find(r => r.key === 'd/gone')).toMatchObject({ deleted: true })
  })

  it('If-Match deletes only the version it names: a stale one is rejected (412), the current one applies', async () => {
    const v1 = await stored('d/cas', 'one')
    const v2 = await stored('d/cas', 'two')
    const stale = del('d/cas', { 'if-match': `"${v1}"`, prefer: 'wait=5' })
    await consumeQueued(iso, consumer, 'delete')
    expect(await stale).toMatchObject({ statusCode: 412 })
    expect(bodyOf(await stale)).toMatchObject({ status: 'rejected', current: v2 })
    const current = del('d/cas', { 'if-match': `"${v2}"`, prefer: 'wait=5' })
    await consumeQueued(iso, consumer, 'delete')
    expect(bodyOf(await current)).toMatchObject({ status: 'applied' })
    expect((await allRows(db)).find(r => r.key === 'd/cas')).toMatchObject({ deleted: true })
  })
})
