/**
 * The batch apply with isolation: one statement for the whole batch while it
 * succeeds; when PostgreSQL refuses it for a reason a retry cannot fix, the
 * batch is halved until the writes that fail on their own are found. Those are
 * returned as refused (the caller dead-letters them, alone); every other write
 * applies. One bad write costs about 2·log2(batch) extra statements, not the
 * pipeline. A transient failure (PostgreSQL away) is thrown: the caller retries
 * the whole batch, and what already applied re-applies as a no-op.
 *
 * Conditional writes are never collapsed with the other writes of their key:
 * per key, writes apply in version order, a run of plain writes as its newest
 * one (the others would be overwritten at once), each conditional write on its
 * own, deciding its condition against the state the writes before it left.
 */
import { applyConditional, type ConditionalOutcome } from './conditional.js'
import { classifyFailure, failureReason } from './failures.js'
import type { Queryable, SessionPool } from './postgres.js'
import { applyWrites, probeApply, type RowState, type Write } from './store.js'

export interface Refused { write: Write, reason: string }

export interface IsolatedApply {
  /** The final state of every key that was applied or found newer. */
  rows: RowState[]
  /** Writes PostgreSQL refuses for good, each with the error as its reason. */
  refused: Refused[]
  /** What became of each conditional write that was not refused. */
  decided: ConditionalOutcome[]
}

/**
 * One step of a key's writes, in version order: a run of plain writes (newest
 * first; the newest applies, the next is tried when it is refused), or one
 * conditional write.
 */
type Step = { plain: Write[] } | { conditional: Write }

/**
 * Applies `writes` (any number per key): per key the newest wins; when the
 * newest is refused, the next newest of the same batch is tried, so a refused
 * write never hides an older valid one that would otherwise be lost.
 *
 * @example const { rows, refused } = await applyIsolating(pool, writes, horizon)
 */
export async function applyIsolating(db: SessionPool, writes: readonly Write[], horizon: bigint): Promise<IsolatedApply> {
  const result: IsolatedApply = { rows: [], refused: [], decided: [] }
  const steps = stepsByKey(writes)
  while (steps.size > 0) {
    const plain: Write[][] = []
    const conditional: Write[] = []
    for (const [key, list] of steps) {
      const step = list.shift() as Step
      if (list.length === 0) steps.delete(key)
      if ('plain' in step) plain.push(step.plain)
      else conditional.push(step.conditional)
    }
    await applyPlain(db, plain, horizon, result)
    await applySplitting(conditional, batch => applyConditionalInto(db, batch, horizon, result), db, result)
  }
  return result
}

function byVersion(a: Write, b: Write): number {
  return a.version < b.version ? -1 : a.version > b.version ? 1 : 0
}

function stepsByKey(writes: readonly Write[]): Map<string, Step[]> {
  const byKey = new Map<string, Write[]>()
  for (const write of writes) {
    const list = byKey.get(write.key)
    if (list) list.push(write)
    else byKey.set(write.key, [write])
  }
  const steps = new Map<string, Step[]>()
  for (const [key, list] of byKey) {
    if (list.length > 1) list.sort(byVersion)
    const keySteps: Step[] = []
    for (const write of list) {
      const last = keySteps.at(-1)
      if (write.condition) keySteps.push({ conditional: write })
      else if (last && 'plain' in last) last.plain.unshift(write)
      else keySteps.push({ plain: [write] })
    }
    steps.set(key, keySteps)
  }
  return steps
}

/** Each run's newest write; a refused one gives way to the next newest of its run. */
async function applyPlain(db: Queryable, runs: Write[][], horizon: bigint, out: IsolatedApply): Promise<void> {
  const rest = new Map<string, Write[]>()
  let round: Write[] = []
  for (const run of runs) {
    round.push(run.shift() as Write)
    if (run.length > 0) rest.set(run[0]!.key, run)
  }
  while (round.length > 0) {
    const refusedBefore = out.refused.length
    await applySplitting(round, async batch => { out.rows.push(...await applyWrites(db, batch, horizon)) }, db, out)
    round = []
    for (const { write } of out.refused.slice(refusedBefore)) {
      const next = rest.get(write.key)?.shift()
      if (next) round.push(next)
    }
  }
}

async function applyConditionalInto(db: SessionPool, writes: readonly Write[], horizon: bigint, out: IsolatedApply): Promise<void> {
  const { rows, outcomes } = await applyConditional(db, writes, horizon)
  out.rows.push(...rows)
  out.decided.push(...outcomes)
}

/** Applies `writes` with `apply`; on a permanent failure, halves them until the writes that fail alone are found. */
async function applySplitting(writes: readonly Write[], apply: (writes: readonly Write[]) => Promise<void>, db: Queryable, out: IsolatedApply): Promise<void> {
  if (writes.length === 0) return
  try {
    await apply(writes)
    return
  } catch (error) {
    await throwUnlessPermanent(db, error)
    if (writes.length === 1) return refuseIfRepeats(writes[0] as Write, apply, db, error, out)
  }
  const middle = writes.length >>> 1
  await applySplitting(writes.slice(0, middle), apply, db, out)
  await applySplitting(writes.slice(middle), apply, db, out)
}

/**
 * An error of unknown class counts as permanent only when it repeats while
 * the statement itself still works: the single write is tried once more.
 */
async function refuseIfRepeats(write: Write, apply: (writes: readonly Write[]) => Promise<void>, db: Queryable, error: unknown, out: IsolatedApply): Promise<void> {
  if (classifyFailure(error) === 'unknown') {
    try {
      await apply([write])
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

/**
 * Runs one indivisible apply (an atomic batch): its result, or why PostgreSQL
 * refuses it for good; a transient failure is thrown (the batch is retried).
 * An error of unknown class is tried once more, as for a single write.
 */
export async function applyOrRefuse<T>(db: Queryable, attempt: () => Promise<T>): Promise<{ done: T } | { refused: string }> {
  for (let tries = 0; ; tries++) {
    try {
      return { done: await attempt() }
    } catch (error) {
      await throwUnlessPermanent(db, error)
      if (classifyFailure(error) === 'permanent' || tries > 0) return { refused: failureReason(error) }
    }
  }
}
