/**
 * The batch apply with isolation: one statement for the whole batch while it
 * succeeds; when PostgreSQL refuses it for a reason a retry cannot fix, the
 * batch is halved until the writes that fail on their own are found. Those are
 * returned as refused (the caller dead-letters them, alone); every other write
 * applies. One bad write costs about 2·log2(batch) extra statements, not the
 * pipeline. A transient failure (PostgreSQL away) is thrown: the caller retries
 * the whole batch, and what already applied re-applies as a no-op.
 */
import { classifyFailure, failureReason } from './failures.js'
import type { Queryable } from './postgres.js'
import { applyWrites, probeApply, type RowState, type Write } from './store.js'

export interface Refused { write: Write, reason: string }

export interface IsolatedApply {
  /** The final state of every key that was applied or found newer. */
  rows: RowState[]
  /** Writes PostgreSQL refuses for good, each with the error as its reason. */
  refused: Refused[]
}

/**
 * Applies `writes` (any number per key): per key the newest wins; when the
 * newest is refused, the next newest of the same batch is tried, so a refused
 * write never hides an older valid one that would otherwise be lost.
 *
 * @example const { rows, refused } = await applyIsolating(pool, writes, horizon)
 */
export async function applyIsolating(db: Queryable, writes: readonly Write[], horizon: bigint): Promise<IsolatedApply> {
  const candidates = new Map<string, Write[]>()
  for (const write of writes) {
    const list = candidates.get(write.key)
    if (list) list.push(write)
    else candidates.set(write.key, [write])
  }
  let round: Write[] = []
  for (const list of candidates.values()) {
    if (list.length > 1) list.sort((a, b) => (a.version < b.version ? 1 : a.version > b.version ? -1 : 0))
    round.push(list.shift() as Write)
  }
  const result: IsolatedApply = { rows: [], refused: [] }
  while (round.length > 0) {
    const refusedBefore = result.refused.length
    await applySplitting(db, round, horizon, result)
    round = []
    for (const { write } of result.refused.slice(refusedBefore)) {
      const next = candidates.get(write.key)?.shift()
      if (next) round.push(next)
    }
  }
  return result
}

async function applySplitting(db: Queryable, writes: readonly Write[], horizon: bigint, out: IsolatedApply): Promise<void> {
  try {
    out.rows.push(...await applyWrites(db, writes, horizon))
    return
  } catch (error) {
    await throwUnlessPermanent(db, error)
    if (writes.length === 1) return refuseIfRepeats(db, writes[0] as Write, horizon, error, out)
  }
  const middle = writes.length >>> 1
  await applySplitting(db, writes.slice(0, middle), horizon, out)
  await applySplitting(db, writes.slice(middle), horizon, out)
}

/**
 * An error of unknown class counts as permanent only when it repeats while
 * the statement itself still works: the single write is tried once more.
 */
async function refuseIfRepeats(db: Queryable, write: Write, horizon: bigint, error: unknown, out: IsolatedApply): Promise<void> {
  if (classifyFailure(error) === 'unknown') {
    try {
      out.rows.push(...await applyWrites(db, [write], horizon))
      return
    } catch (again) {
      await throwUnlessPermanent(db, again)
      error = again
    }
  }
  out.refused.push({ write, reason: failureReason(error) })
}

/**
 * Throws `error` when a retry may fix it. An error of unknown class (a
 * trigger's RAISE, an internal error) is blamed on the writes only if the
 * apply statement still runs with no rows: that probe fails too when the
 * cause is the table, the schema or the server, and then the batch waits.
 */
async function throwUnlessPermanent(db: Queryable, error: unknown): Promise<void> {
  const failure = classifyFailure(error)
  if (failure === 'transient') throw error
  if (failure === 'permanent') return
  try {
    await probeApply(db)
  } catch {
    throw error
  }
}
