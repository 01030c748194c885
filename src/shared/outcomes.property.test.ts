/**
 * Property: conditional and plain writes, in any interleaving, split into
 * batches in any way, each batch possibly delivered twice, end in the same
 * record and the same outcomes (receipts) as a model that applies the writes
 * one at a time. Against the real PostgreSQL, through applyIsolating (the
 * consumer's apply) and readReceipt.
 *
 * Two properties, because a consumer can only decide a condition against the
 * state it sees:
 * - delivered in version order per key (one queue, in order), any batch split
 *   gives exactly what applying every write one at a time in version order gives;
 * - in any delivery order, the result is that of applying the writes one at a
 *   time in the order the consumer applies them: batch after batch, each batch in
 *   version order. A write that arrives after a newer one lost to it (a plain
 *   write is superseded, a conditional one rejected), and batching, splitting,
 *   collapsing and redelivery change nothing.
 */
import fc from 'fast-check'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolate, type Isolated } from '../../test/support/isolated.js'
import { applyIsolating } from './isolate.js'
import { openDatabase } from './postgres.js'
import { readReceipt, type WriteStatus } from './receipts.js'
import type { Condition, Write } from './store.js'
import { VersionClock } from './version.js'

let iso: Isolated
let db: pg.Pool
let run = 0

beforeAll(async () => {
  iso = await isolate('outcomes_prop')
  db = await openDatabase(iso.env.DATABASE_URL!, 4)
})

afterAll(async () => {
  await db?.end()
  await iso?.cleanup()
})

/** A generated write: which key, put or delete, and its condition (`match` names an earlier write of the key, by index). */
interface Spec { key: number, deleted: boolean, condition: 'none' | 'absent' | 'present' | { match: number } }

const specs = fc.array(fc.record({
  key: fc.integer({ min: 0, max: 2 }),
  deleted: fc.boolean(),
  condition: fc.oneof(
    { weight: 3, arbitrary: fc.constant('none' as const) },
    { weight: 1, arbitrary: fc.constant('absent' as const) },
    { weight: 1, arbitrary: fc.constant('present' as const) },
    { weight: 3, arbitrary: fc.record({ match: fc.nat() }) },
  ),
}), { minLength: 1, maxLength: 14 })

/** Writes with real versions, in version order; a match names an earlier version of the same key (or a version no write has). */
function toWrites(list: Spec[], prefix: string): Write[] {
  const clock = new VersionClock(9, () => 1_800_000_000_000 + Math.floor(run / 10))
  const writes: Write[] = []
  for (const [i, spec] of list.entries()) {
    const key = `${prefix}/${spec.key}`
    let condition: Condition | undefined
    if (spec.condition === 'absent' || spec.condition === 'present') condition = { kind: spec.condition }
    else if (spec.condition !== 'none') {
      const earlier = writes.filter(w => w.key === key)
      const named = earlier[spec.condition.match % (earlier.length + 1)]
      // No earlier write to name: name a version older than every write (it never matches).
      condition = { kind: 'match', version: named?.version ?? 1n }
    }
    const version = clock.next({ conditional: condition !== undefined })
    writes.push({ key, value: spec.deleted ? null : `v${i}`, version, deleted: spec.deleted, ...(condition ? { condition } : {}) })
  }
  return writes
}

interface ModelState { version: bigint, deleted: boolean, value: string | null }

/** The reference: writes applied one at a time, in the given order; a decision is made once. */
function model(order: Write[]): { state: Map<string, ModelState>, decided: Map<Write, 'applied' | 'rejected'> } {
  const state = new Map<string, ModelState>()
  const decided = new Map<Write, 'applied' | 'rejected'>()
  for (const w of order) {
    if (w.condition && decided.has(w)) continue
    const s = state.get(w.key)
    const newer = s === undefined || s.version < w.version
    let ok: boolean
    switch (w.condition?.kind) {
      case undefined: ok = newer; break
      case 'match': ok = s !== undefined && s.version === w.condition.version; break
      case 'present': ok = s !== undefined && !s.deleted && newer; break
      case 'absent': ok = (s === undefined || s.deleted) && newer; break
    }
    if (w.condition) decided.set(w, ok ? 'applied' : 'rejected')
    if (ok) state.set(w.key, { version: w.version, deleted: w.deleted, value: w.value })
  }
  return { state, decided }
}

function expectedStatus(w: Write, final: Map<string, ModelState>, decided: Map<Write, 'applied' | 'rejected'>): WriteStatus {
  if (final.get(w.key)?.version === w.version) return 'applied'
  if (decided.get(w) === 'rejected') return 'rejected'
  return 'superseded'
}

/** Delivers `batches` (each maybe twice) through the consumer's apply, then compares record and receipts with the model. */
async function check(writes: Write[], batches: Write[][], reference: Write[]): Promise<void> {
  for (const batch of batches) {
    await applyIsolating(db, batch, 0n)
  }
  const { state, decided } = model(reference)
  const keys = [...new Set(writes.map(w => w.key))]
  const { rows } = await db.query<{ key: string, value: string | null, version: string, deleted: boolean }>(
    'SELECT key, value, version::text AS version, deleted FROM kv_store WHERE key = ANY($1)', [keys])
  const record = new Map(rows.map(r => [r.key, { version: BigInt(r.version), deleted: r.deleted, value: r.deleted ? null : r.value }]))
  expect(record).toEqual(state)
  for (const w of writes) {
    const receipt = await readReceipt(db, w.key, w.version, 0n)
    expect({ write: `${w.key}@${w.value}`, status: receipt.status }).toEqual({ write: `${w.key}@${w.value}`, status: expectedStatus(w, state, decided) })
  }
}

/** Cuts `list` into consecutive batches at the given points; with `twice`, a batch is delivered a second time. */
function cut<T>(list: T[], points: number[], twice: boolean[]): T[][] {
  const at = [...new Set(points.map(p => p % (list.length + 1)))].sort((a, b) => a - b)
  const out: T[][] = []
  let start = 0
  for (const end of [...at, list.length]) {
    if (end > start) {
      out.push(list.slice(start, end))
      if (twice[out.length % twice.length]) out.push(list.slice(start, end))
    }
    start = Math.max(start, end)
  }
  return out
}

const byVersion = (a: Write, b: Write) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0)

describe('conditional and plain writes, any batch split and delivery', () => {
  it('in version order, any batch split (and redelivery) equals one write at a time in version order', async () => {
    await fc.assert(fc.asyncProperty(specs, fc.array(fc.nat(), { maxLength: 6 }), fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }), async (list, points, twice) => {
      const writes = toWrites(list, `in-order-${run++}`)
      await check(writes, cut(writes, points, twice), writes)
    }), { numRuns: 60 })
  })

  it('in any delivery order, the result is one write at a time in the order applied (each batch in version order)', async () => {
    await fc.assert(fc.asyncProperty(specs.chain(list => fc.tuple(
      fc.constant(list),
      fc.shuffledSubarray(list.map((_, i) => i), { minLength: list.length, maxLength: list.length }),
      fc.array(fc.nat(), { maxLength: 6 }),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }),
    )), async ([list, order, points, twice]) => {
      const writes = toWrites(list, `any-order-${run++}`)
      const batches = cut(order.map(i => writes[i]!), points, twice)
      await check(writes, batches, batches.flatMap(batch => [...batch].sort(byVersion)))
    }), { numRuns: 60 })
  })
})
