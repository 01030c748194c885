/**
 * Atomic batches (POST /api/batch with "atomic": true): every op at one
 * version, applied in one transaction that locks the batch's rows in key
 * order: all ops or none. With conditions, one that fails rejects the whole
 * batch, and the outcome names the ops that failed. The decision is stored per
 * key (kv_write_outcomes), in the same transaction, so a redelivered batch
 * keeps its first outcome and receipts answer for each of its keys.
 */
import { conditionFails, CREATE_IF_ABSENT, LOCK_ROWS, RECORD_OUTCOMES } from './conditional.js'
import type { AtomicBatch } from './messages.js'
import { inTransaction, type Queryable, type SessionPool } from './postgres.js'
import { applyWrites, isExpired, nowSeconds, type RowState } from './store.js'

/** One op whose condition failed: its place in the batch, its key, and the key's version then. */
export interface FailedOp { index: number, key: string, current: string | null, reason: string }

export type AtomicOutcome =
  | { status: 'applied', rows: RowState[] }
  | { status: 'rejected', failed: FailedOp[] }

/** The stored decision of a batch already decided (redelivered): one of its keys' outcome. */
const DECIDED_BATCH = `
SELECT status, detail FROM kv_write_outcomes WHERE key = $1 AND version = $2
`

/** Rejections carry which ops failed, for the 409 and the receipts. */
const RECORD_REJECTED_BATCH = `
INSERT INTO kv_write_outcomes (key, version, status, reason, current, detail)
SELECT key, $2, 'rejected', $3, current, $4::jsonb FROM unnest($1::text[], $5::bigint[]) AS r(key, current)
ON CONFLICT (key, version) DO NOTHING
`

class Rollback extends Error {
  constructor(readonly failed: FailedOp[]) { super('an op of the atomic batch failed its condition') }
}

/** Applies one atomic batch, or rejects it whole. Throws as PostgreSQL does (rolled back): the caller classifies. */
export async function applyAtomic(pool: SessionPool, batch: AtomicBatch, horizon: bigint): Promise<AtomicOutcome> {
  try {
    return await inTransaction(pool, tx => decide(tx, batch, horizon))
  } catch (error) {
    if (!(error instanceof Rollback)) throw error
    // A create lost its race inside the transaction, which undid what the batch did: record the rejection.
    await inTransaction(pool, tx => recordRejected(tx, batch, error.failed))
    return { status: 'rejected', failed: error.failed }
  }
}

async function decide(tx: Queryable, batch: AtomicBatch, horizon: bigint): Promise<AtomicOutcome> {
  const { writes, version } = batch
  const keys = writes.map(w => w.key)
  const locked = await tx.query<{ key: string, version: string, deleted: boolean, expiresAt: number | null }>({ name: 'kvarc-lock-rows', text: LOCK_ROWS, values: [keys] })
  const current = new Map(locked.rows.map(r => [r.key, { version: r.version, deleted: r.deleted || isExpired(r.expiresAt) }]))

  const earlier = await tx.query<{ status: string, detail: { failed?: FailedOp[] } | null }>(DECIDED_BATCH, [keys[0], version.toString()])
  if (earlier.rows[0]) {
    const { status, detail } = earlier.rows[0]
    if (status === 'rejected') return { status: 'rejected', failed: detail?.failed ?? [] }
    // Applied before (redelivered): the rows hold it or a newer write; the cache gets their state again.
    return { status: 'applied', rows: await applyWrites(tx, writes, horizon) }
  }

  const failed: FailedOp[] = []
  writes.forEach((write, index) => {
    if (!write.condition) return
    const row = current.get(write.key)
    const reason = conditionFails(write.condition, write.version, row)
    if (reason) failed.push({ index, key: write.key, current: row?.version ?? null, reason })
  })
  if (failed.length > 0) {
    await recordRejected(tx, batch, failed)
    return { status: 'rejected', failed }
  }

  // Keys with no row to lock, created under a condition: a concurrent writer may insert them
  // meanwhile, so the condition is repeated in the insert's conflict clause.
  const creates = writes.filter(w => w.condition?.kind === 'absent' && !current.has(w.key))
  const others = writes.filter(w => !creates.includes(w))
  const rows = await applyWrites(tx, others, horizon)
  if (creates.length > 0) {
    const created = await tx.query<{ key: string }>({
      name: 'kvarc-create-if-absent',
      text: CREATE_IF_ABSENT,
      values: [creates.map(w => w.key), creates.map(w => w.value), creates.map(w => w.version.toString()), creates.map(w => w.deleted), creates.map(w => w.expiresAt ?? null), nowSeconds()],
    })
    const won = new Set(created.rows.map(r => r.key))
    const lost = creates.filter(w => !won.has(w.key))
    if (lost.length > 0) {
      const now = await tx.query<{ key: string, version: string }>({ name: 'kvarc-lock-rows', text: LOCK_ROWS, values: [lost.map(w => w.key)] })
      const versions = new Map(now.rows.map(r => [r.key, r.version]))
      throw new Rollback(lost.map(w => ({ index: writes.indexOf(w), key: w.key, current: versions.get(w.key) ?? null, reason: `If-None-Match * failed: the key exists (version "${versions.get(w.key)}")` })))
    }
    for (const w of creates) rows.push({ key: w.key, value: w.value, version: w.version.toString(), deleted: w.deleted, expiresAt: w.expiresAt ?? null, applied: true })
  }
  await tx.query({
    name: 'kvarc-record-outcomes',
    text: RECORD_OUTCOMES,
    values: [keys, keys.map(() => version.toString()), keys.map(() => 'applied'), keys.map(() => null), keys.map(() => version.toString())],
  })
  return { status: 'applied', rows }
}

async function recordRejected(tx: Queryable, batch: AtomicBatch, failed: FailedOp[]): Promise<void> {
  const reason = `the atomic batch was rejected: ${failed.map(f => `op ${f.index} (${JSON.stringify(f.key)}): ${f.reason}`).join('; ')}`
  const keys = batch.writes.map(w => w.key)
  const currents = keys.map(k => failed.find(f => f.key === k)?.current ?? null)
  await tx.query(RECORD_REJECTED_BATCH, [keys, batch.version.toString(), reason, JSON.stringify({ failed }), currents])
}
