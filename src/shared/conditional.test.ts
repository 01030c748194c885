/**
 * Conditional writes against a real PostgreSQL (this file's own database):
 * each condition passing and failing, tombstones counting for If-Match,
 * redelivery keeping the first decision, racing creators, and the batch path
 * that never collapses a conditional write with the other writes of its key.
 */
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolate, type Isolated } from '../../test/support/isolated.js'
import { allRows } from '../../test/support/kv.js'
import { applyConditional } from './conditional.js'
import { applyIsolating } from './isolate.js'
import { openDatabase } from './postgres.js'
import { applyWrites, type Condition, type Write } from './store.js'
import { VersionClock } from './version.js'

let iso: Isolated
let db: pg.Pool
const clock = new VersionClock(5)
const plain = () => clock.next()
const conditional = () => clock.next({ conditional: true })

const put = (key: string, value: string, version: bigint, condition?: Condition): Write =>
  ({ key, value, version, deleted: false, ...(condition ? { condition } : {}) })
const del = (key: string, version: bigint, condition?: Condition): Write =>
  ({ key, value: null, version, deleted: true, ...(condition ? { condition } : {}) })

async function row(key: string) {
  return (await allRows(db)).find(r => r.key === key)
}

async function storedOutcome(key: string, version: bigint) {
  const { rows } = await db.query('SELECT status, reason, current::text AS current FROM kv_write_outcomes WHERE key = $1 AND version = $2', [key, version.toString()])
  return rows[0]
}

beforeAll(async () => {
  iso = await isolate('conditional')
  db = await openDatabase(iso.env.DATABASE_URL!, 12)
})

afterAll(async () => {
  await db?.end()
  await iso?.cleanup()
})

describe('If-Match', () => {
  it('applies when the key holds exactly that version, and stores the decision', async () => {
    const v1 = plain()
    await applyWrites(db, [put('m/a', 'one', v1)], 0n)
    const v2 = conditional()
    const { outcomes, rows } = await applyConditional(db, [put('m/a', 'two', v2, { kind: 'match', version: v1 })], 0n)
    expect(outcomes.map(o => [o.status, o.current])).toEqual([['applied', v2.toString()]])
    expect(rows).toMatchObject([{ key: 'm/a', value: 'two', version: v2.toString(), applied: true }])
    expect(await row('m/a')).toMatchObject({ value: 'two', version: v2.toString() })
    expect(await storedOutcome('m/a', v2)).toMatchObject({ status: 'applied' })
  })

  it('is rejected when the key moved on, or has no row; nothing changes', async () => {
    const v1 = plain()
    const v2 = plain()
    await applyWrites(db, [put('m/b', 'one', v1)], 0n)
    await applyWrites(db, [put('m/b', 'two', v2)], 0n)
    const v3 = conditional()
    const v4 = conditional()
    const { outcomes } = await applyConditional(db, [
      put('m/b', 'stale', v3, { kind: 'match', version: v1 }),
      put('m/none', 'x', v4, { kind: 'match', version: v1 }),
    ], 0n)
    expect(outcomes.map(o => [o.write.key, o.status, o.current])).toEqual([
      ['m/b', 'rejected', v2.toString()],
      ['m/none', 'rejected', null],
    ])
    expect(outcomes[0]!.reason).toBe(`If-Match "${v1}" failed: the key's current version is "${v2}"`)
    expect(await row('m/b')).toMatchObject({ value: 'two' })
    expect(await row('m/none')).toBeUndefined()
    expect(await storedOutcome('m/b', v3)).toMatchObject({ status: 'rejected', current: v2.toString() })
  })

  it('counts a tombstone\'s version', async () => {
    const v1 = plain()
    await applyWrites(db, [del('m/t', v1)], 0n)
    const v2 = conditional()
    const { outcomes } = await applyConditional(db, [put('m/t', 'back', v2, { kind: 'match', version: v1 })], 0n)
    expect(outcomes[0]!.status).toBe('applied')
    expect(await row('m/t')).toMatchObject({ value: 'back', deleted: false })
  })
})

describe('If-None-Match: * and If-Match: *', () => {
  it('creates an absent key, revives a tombstone, and refuses a live key', async () => {
    const t = plain()
    await applyWrites(db, [del('n/dead', t), put('n/live', 'here', plain())], 0n)
    const [a, b, c] = [conditional(), conditional(), conditional()]
    const { outcomes } = await applyConditional(db, [
      put('n/new', 'created', a, { kind: 'absent' }),
      put('n/dead', 'revived', b, { kind: 'absent' }),
      put('n/live', 'clobber', c, { kind: 'absent' }),
    ], 0n)
    expect(Object.fromEntries(outcomes.map(o => [o.write.key, o.status]))).toEqual({ 'n/new': 'applied', 'n/dead': 'applied', 'n/live': 'rejected' })
    expect(await row('n/live')).toMatchObject({ value: 'here' })
    expect(await row('n/new')).toMatchObject({ value: 'created' })
  })

  it('If-Match: * needs a live key', async () => {
    await applyWrites(db, [put('p/live', 'x', plain()), del('p/dead', plain())], 0n)
    const { outcomes } = await applyConditional(db, [
      put('p/live', 'y', conditional(), { kind: 'present' }),
      put('p/dead', 'y', conditional(), { kind: 'present' }),
      del('p/none', conditional(), { kind: 'present' }),
    ], 0n)
    expect(Object.fromEntries(outcomes.map(o => [o.write.key, o.status]))).toEqual({ 'p/live': 'applied', 'p/dead': 'rejected', 'p/none': 'rejected' })
  })

  it('of 50 concurrent creators of one key, exactly one wins', async () => {
    const writes = Array.from({ length: 50 }, (_, i) => put('n/race', `creator ${i}`, conditional(), { kind: 'absent' }))
    const results = await Promise.all(writes.map(w => applyConditional(db, [w], 0n)))
    const applied = results.flatMap(r => r.outcomes).filter(o => o.status === 'applied')
    expect(applied).toHaveLength(1)
    expect(await row('n/race')).toMatchObject({ value: applied[0]!.write.value })
  })
})

describe('redelivery', () => {
  it('keeps the first decision: a write applied and then overwritten is not reported rejected', async () => {
    const v1 = plain()
    await applyWrites(db, [put('r/a', 'one', v1)], 0n)
    const cas = put('r/a', 'two', conditional(), { kind: 'match', version: v1 })
    expect((await applyConditional(db, [cas], 0n)).outcomes[0]!.status).toBe('applied')
    await applyWrites(db, [put('r/a', 'three', plain())], 0n)
    // The same message again (the consumer died before its acknowledgement).
    const again = await applyConditional(db, [cas], 0n)
    expect(again.outcomes.map(o => o.status)).toEqual(['applied'])
    expect(await row('r/a')).toMatchObject({ value: 'three' })
  })

  it('a rejected write stays rejected even if its condition would now hold', async () => {
    const v1 = plain()
    const v2 = plain()
    await applyWrites(db, [put('r/b', 'one', v1)], 0n)
    const cas = put('r/b', 'x', conditional(), { kind: 'absent' })
    expect((await applyConditional(db, [cas], 0n)).outcomes[0]!.status).toBe('rejected')
    await applyWrites(db, [del('r/b', v2)], 0n)
    expect((await applyConditional(db, [cas], 0n)).outcomes[0]!.status).toBe('rejected')
    expect(await row('r/b')).toMatchObject({ deleted: true })
  })

  it('gives the cache the state again when a conditional write is redelivered before the row moved on', async () => {
    const cas = put('r/c', 'made', conditional(), { kind: 'absent' })
    await applyConditional(db, [cas], 0n)
    const again = await applyConditional(db, [cas], 0n)
    expect(again.rows).toMatchObject([{ key: 'r/c', value: 'made', version: cas.version.toString() }])
  })
})

describe('in a batch (applyIsolating)', () => {
  it('applies a key\'s writes in version order, never collapsing a conditional write with plain ones', async () => {
    const v1 = plain()
    const c2 = conditional()
    const v3 = plain()
    const c4 = conditional()
    // Delivered out of order in one batch: c2 names v1, so it passes only if v1 applies first;
    // c4 names v1 too, and fails because v3 came in between.
    const batch = [
      put('b/k', 'c4', c4, { kind: 'match', version: v1 }),
      put('b/k', 'v3', v3),
      put('b/k', 'c2', c2, { kind: 'match', version: v1 }),
      put('b/k', 'v1', v1),
    ]
    const { decided, refused } = await applyIsolating(db, batch, 0n)
    expect(refused).toEqual([])
    expect(Object.fromEntries(decided.map(d => [d.write.value, d.status]))).toEqual({ c2: 'applied', c4: 'rejected' })
    expect(await row('b/k')).toMatchObject({ value: 'v3', version: v3.toString() })
  })

  it('a batch without conditions runs as one statement per round, as before', async () => {
    const writes = Array.from({ length: 20 }, (_, i) => put(`b/plain/${i % 5}`, `v${i}`, plain()))
    const { rows, decided } = await applyIsolating(db, writes, 0n)
    expect(decided).toEqual([])
    expect(rows.filter(r => r.applied).map(r => r.value).sort()).toEqual(['v15', 'v16', 'v17', 'v18', 'v19'])
  })
})
