/**
 * Conditional writes (If-Match / If-None-Match) applied under the row lock.
 * The condition is decided here, by the consumer, in one transaction that
 * locks the keys' rows: checking at the API against the record would let two
 * racing clients both succeed.
 *
 * Every decision is stored in `kv_write_outcomes` in the same transaction.
 * That is what makes a redelivered conditional write harmless: without it, a
 * write applied and then overwritten by a newer one would, on redelivery, find
 * its condition false and be reported rejected, and a client told "rejected"
 * would apply its change a second time. Unconditional writes store nothing:
 * their outcome follows from the record's version alone.
 */
import { inTransaction, type Queryable, type SessionPool } from './postgres.js'
import { applyWrites, isExpired, nowSeconds, type Condition, type RowState, type Write } from './store.js'

export type ConditionalStatus = 'applied' | 'rejected'

/** What became of one conditional write; `current` is the key's version after the decision (null: no row). */
export interface ConditionalOutcome { write: Write, status: ConditionalStatus, current: string | null, reason?: string }

export interface ConditionalApply {
  /** The new state of every key a conditional write changed, for the cache. */
  rows: RowState[]
  outcomes: ConditionalOutcome[]
}

/** Locks the keys' rows in key order, so two consumers' transactions cannot deadlock. */
export const LOCK_ROWS = 'SELECT key, version::text AS version, deleted, expires_at::float8 AS "expiresAt" FROM kv_store WHERE key = ANY($1::text[]) ORDER BY key FOR UPDATE'

/** Outcomes already decided for these writes (a redelivered message). */
export const DECIDED = `
SELECT o.key, o.version::text AS version, o.status, o.reason, o.current::text AS current
FROM unnest($1::text[], $2::bigint[]) AS i(key, version)
JOIN kv_write_outcomes o ON o.key = i.key AND o.version = i.version
`

/**
 * Creates for If-None-Match: * where no row was there to lock: a concurrent
 * writer may insert the key meanwhile, so the condition is repeated in the
 * conflict clause (the conflicting row is locked even when it is not updated).
 */
export const CREATE_IF_ABSENT = `
INSERT INTO kv_store AS t (key, value, version, deleted, expires_at, updated_at)
SELECT key, value, version, deleted, expires_at, now()
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::boolean[], $5::bigint[]) AS i(key, value, version, deleted, expires_at)
ORDER BY key
ON CONFLICT (key) DO UPDATE
  SET value = EXCLUDED.value, version = EXCLUDED.version, deleted = EXCLUDED.deleted, expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at
  WHERE (t.deleted OR t.expires_at <= $6) AND t.version < EXCLUDED.version
RETURNING t.key
`

/** Decisions are stored once: a second consumer deciding the same write again finds the first decision. */
export const RECORD_OUTCOMES = `
INSERT INTO kv_write_outcomes (key, version, status, reason, current)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[])
ON CONFLICT (key, version) DO NOTHING
`

/** A key's state as a condition sees it: an expired key counts as deleted (at its version). */
interface Current { version: string, deleted: boolean }

function currentOf(row: { version: string, deleted: boolean, expiresAt: number | null }): Current {
  return { version: row.version, deleted: row.deleted || isExpired(row.expiresAt) }
}

/**
 * Why `condition` does not hold for a write of `version` on a key in state
 * `current`, or undefined when it holds. The new version must also be newer
 * than the row's: an older write can never become the key's state.
 */
export function conditionFails(condition: Condition, version: bigint, current: Current | undefined): string | undefined {
  const newer = current === undefined || BigInt(current.version) < version
  switch (condition.kind) {
    case 'match':
      if (current === undefined) return `If-Match "${condition.version}" failed: the key does not exist`
      if (current.version !== condition.version.toString()) return `If-Match "${condition.version}" failed: the key's current version is "${current.version}"`
      return undefined
    case 'present':
      if (current === undefined || current.deleted) return 'If-Match * failed: the key does not exist'
      return newer ? undefined : `If-Match * failed: the key's current version "${current.version}" is newer than the write`
    case 'absent':
      if (current !== undefined && !current.deleted) return `If-None-Match * failed: the key exists (version "${current.version}")`
      return newer ? undefined : `If-None-Match * failed: the key was deleted at version "${current?.version}", after the write`
  }
}

/**
 * Decides and applies conditional writes, at most one per key, in one
 * transaction. Throws as PostgreSQL does (the transaction rolled back): the
 * caller classifies the error and isolates or retries.
 */
export async function applyConditional(pool: SessionPool, writes: readonly Write[], horizon: bigint): Promise<ConditionalApply> {
  if (writes.length === 0) return { rows: [], outcomes: [] }
  return inTransaction(pool, tx => decide(tx, writes, horizon))
}

async function decide(tx: Queryable, writes: readonly Write[], horizon: bigint): Promise<ConditionalApply> {
  const keys = writes.map(w => w.key)
  const locked = await tx.query<{ key: string, version: string, deleted: boolean, expiresAt: number | null }>({ name: 'kvarc-lock-rows', text: LOCK_ROWS, values: [keys] })
  const current = new Map(locked.rows.map(r => [r.key, currentOf(r)]))
  const decided = await tx.query<{ key: string, version: string, status: ConditionalStatus, reason: string | null, current: string | null }>({
    name: 'kvarc-decided', text: DECIDED, values: [keys, writes.map(w => w.version.toString())],
  })
  const earlier = new Map(decided.rows.map(r => [`${r.version}/${r.key}`, r]))

  const outcomes: ConditionalOutcome[] = []
  const update: Write[] = []
  const create: Write[] = []
  for (const write of writes) {
    const before = earlier.get(`${write.version}/${write.key}`)
    if (before) {
      outcomes.push({ write, status: before.status, current: before.current, ...(before.reason ? { reason: before.reason } : {}) })
      // Redelivered after its commit, maybe before its cache update: the cache gets it again.
      if (before.status === 'applied' && current.get(write.key)?.version === write.version.toString()) {
        update.push(write)
      }
      continue
    }
    const row = current.get(write.key)
    const reason = row === undefined && write.version < horizon
      ? 'the write is older than the tombstone horizon'
      : conditionFails(write.condition as Condition, write.version, row)
    if (reason) outcomes.push({ write, status: 'rejected', current: row?.version ?? null, reason })
    else if (row) update.push(write)
    else create.push(write)
  }

  // Rows are locked and older than these writes (or hold them already, when redelivered): the
  // ordinary newer-wins apply takes them all, and returns each key's state for the cache.
  const rows = await applyWrites(tx, update, horizon)
  for (const write of update) {
    if (!earlier.has(`${write.version}/${write.key}`)) outcomes.push({ write, status: 'applied', current: write.version.toString() })
  }
  if (create.length > 0) {
    const created = await tx.query<{ key: string }>({
      name: 'kvarc-create-if-absent',
      text: CREATE_IF_ABSENT,
      values: [create.map(w => w.key), create.map(w => w.value), create.map(w => w.version.toString()), create.map(w => w.deleted), create.map(w => w.expiresAt ?? null), nowSeconds()],
    })
    const won = new Set(created.rows.map(r => r.key))
    const lost = create.filter(w => !won.has(w.key))
    // A concurrent writer inserted these keys after the lock was taken; the conflict locked its row.
    const now = lost.length === 0 ? new Map<string, Current>() : new Map((await tx.query<{ key: string, version: string, deleted: boolean, expiresAt: number | null }>({ name: 'kvarc-lock-rows', text: LOCK_ROWS, values: [lost.map(w => w.key)] })).rows.map(r => [r.key, currentOf(r)]))
    for (const write of create) {
      if (won.has(write.key)) {
        outcomes.push({ write, status: 'applied', current: write.version.toString() })
        rows.push({ key: write.key, value: write.value, version: write.version.toString(), deleted: write.deleted, expiresAt: write.expiresAt ?? null, applied: true })
      } else {
        const row = now.get(write.key)
        outcomes.push({ write, status: 'rejected', current: row?.version ?? null, reason: conditionFails(write.condition as Condition, write.version, row) ?? 'the condition failed' })
      }
    }
  }

  const fresh = outcomes.filter(o => !earlier.has(`${o.write.version}/${o.write.key}`))
  if (fresh.length > 0) {
    await tx.query({
      name: 'kvarc-record-outcomes',
      text: RECORD_OUTCOMES,
      values: [
        fresh.map(o => o.write.key),
        fresh.map(o => o.write.version.toString()),
        fresh.map(o => o.status),
        fresh.map(o => o.reason ?? null),
        fresh.map(o => o.current),
      ],
    })
  }
  return { rows, outcomes }
}
