/**
 * Atomic batches against a real PostgreSQL (this file's own database): all ops
 * or none, a failed condition rejecting the whole batch with the failing ops
 * named, redelivery keeping the first outcome, and receipts for every key.
 */
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolate, type Isolated } from '../../test/support/isolated.js'
import { valuesUnder } from '../../test/support/kv.js'
import { applyAtomic } from './atomic.js'
import { decodeMessage, encodeAtomic, type AtomicBatch } from './messages.js'
import { openDatabase } from './postgres.js'
import { readReceipt } from './receipts.js'
import { applyWrites, type Condition } from './store.js'
import { VersionClock } from './version.js'

let iso: Isolated
let db: pg.Pool
const clock = new VersionClock(13)

function batch(ops: { key: string, value: string | null, condition?: Condition }[], conditional = ops.some(o => o.condition)): AtomicBatch {
  const version = clock.next({ conditional })
  // Through the message format, as a consumer gets it.
  const body = encodeAtomic(version, ops.map(o => ({ ...o, version })))
  return decodeMessage(body, 'put').atomic[0]!
}

const values = (prefix: string) => valuesUnder(db, prefix)

beforeAll(async () => {
  iso = await isolate('atomic')
  db = await openDatabase(iso.env.DATABASE_URL!, 4)
})

afterAll(async () => {
  await db?.end()
  await iso?.cleanup()
})

describe('applyAtomic', () => {
  it('applies puts and deletes together at one version', async () => {
    await applyWrites(db, [{ key: 'a/gone', value: 'x', version: clock.next(), deleted: false }], 0n)
    const b = batch([{ key: 'a/one', value: '1' }, { key: 'a/two', value: '2' }, { key: 'a/gone', value: null }])
    expect(await applyAtomic(db, b, 0n)).toMatchObject({ status: 'applied' })
    expect(await values('a/')).toEqual({ 'a/one': '1', 'a/two': '2', 'a/gone': null })
    for (const key of ['a/one', 'a/two', 'a/gone']) expect((await readReceipt(db, key, b.version, 0n)).status, key).toBe('applied')
  })

  it('one failed condition rejects the whole batch, naming the ops that failed; nothing changes', async () => {
    const v1 = clock.next()
    await applyWrites(db, [{ key: 'r/x', value: 'x1', version: v1, deleted: false }, { key: 'r/y', value: 'y1', version: clock.next(), deleted: false }], 0n)
    const b = batch([
      { key: 'r/x', value: 'x2', condition: { kind: 'match', version: v1 } },
      { key: 'r/y', value: 'y2', condition: { kind: 'absent' } },
      { key: 'r/z', value: 'z2' },
    ])
    const outcome = await applyAtomic(db, b, 0n)
    expect(outcome).toEqual({ status: 'rejected', failed: [{ index: 1, key: 'r/y', current: expect.any(String), reason: expect.stringMatching(/^If-None-Match \* failed/) }] })
    expect(await values('r/')).toEqual({ 'r/x': 'x1', 'r/y': 'y1' })
    const receipt = await readReceipt(db, 'r/z', b.version, 0n)
    expect(receipt).toMatchObject({ status: 'rejected', failed: [{ index: 1, key: 'r/y' }], reason: expect.stringMatching(/^the atomic batch was rejected: op 1 \("r\/y"\)/) })
  })

  it('a redelivered batch keeps its first outcome, even once a later write changed its keys', async () => {
    const b = batch([{ key: 'd/a', value: 'a', condition: { kind: 'absent' } }, { key: 'd/b', value: 'b', condition: { kind: 'absent' } }])
    expect((await applyAtomic(db, b, 0n)).status).toBe('applied')
    await applyWrites(db, [{ key: 'd/a', value: 'later', version: clock.next(), deleted: false }], 0n)
    expect((await applyAtomic(db, b, 0n)).status).toBe('applied')
    expect(await values('d/')).toEqual({ 'd/a': 'later', 'd/b': 'b' })
  })

  it('of concurrent create-only batches over the same keys, exactly one applies, whole', async () => {
    const batches = Array.from({ length: 20 }, (_, i) => batch([{ key: 'c/a', value: `a${i}`, condition: { kind: 'absent' } }, { key: 'c/b', value: `b${i}`, condition: { kind: 'absent' } }]))
    const outcomes = await Promise.all(batches.map(b => applyAtomic(db, b, 0n)))
    const winners = outcomes.flatMap((o, i) => (o.status === 'applied' ? [i] : []))
    expect(winners).toHaveLength(1)
    expect(await values('c/')).toEqual({ 'c/a': `a${winners[0]}`, 'c/b': `b${winners[0]}` })
  })
})
