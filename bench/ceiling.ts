/**
 * The record's ceiling on this machine: how fast PostgreSQL itself applies
 * the drain's rows (same keys and values, into the table as the drain found it:
 * the family's rows are removed first, and left applied after) with the consumer's own
 * statement (store.ts APPLY_WRITES), in batches of the size the consumer ran
 * and as many at once as it keeps in flight, driven directly from here with no
 * broker, cache or function in between. The consumer's drain rate divided by
 * this is a fraction that does not move with how fast the machine is today.
 */
import { openDatabase } from '../src/shared/postgres.js'
import { applyWrites, probeApply, type Write } from '../src/shared/store.js'
import { VersionClock } from '../src/shared/version.js'

export interface CeilingOptions {
  count: number
  valueBytes: number
  /** Writes per statement: the consumer's mean batch during the drain. */
  batch: number
  /** Statements in flight: the consumer's concurrency. */
  connections: number
  /** Keys `${family}<i>`: the drain's own, so the same rows land in the same place in the index. */
  family: string
}

export interface CeilingResult { rows: number, seconds: number, writesPerSecond: number, batch: number, connections: number }

export async function measureRecordCeiling(databaseUrl: string, options: CeilingOptions): Promise<CeilingResult> {
  const db = await openDatabase(databaseUrl, options.connections)
  try {
    await db.query('DELETE FROM kv_store WHERE key LIKE $1', [`${options.family}%`])
    await db.query('VACUUM ANALYZE kv_store')
    const clock = new VersionClock(1023)
    const value = 'd'.repeat(options.valueBytes)
    const writes: Write[] = Array.from({ length: options.count }, (_, i) => ({ key: `${options.family}${i}`, value, version: clock.next(), deleted: false }))
    const batch = Math.max(1, Math.round(options.batch))
    // The statement is prepared per connection: one call each on no rows keeps parse and plan out of the timing.
    await Promise.all(Array.from({ length: options.connections }, () => probeApply(db)))
    let next = 0
    const worker = async () => {
      for (let start = next; start < writes.length; start = next) {
        next += batch
        await applyWrites(db, writes.slice(start, start + batch), 0n)
      }
    }
    const started = performance.now()
    await Promise.all(Array.from({ length: options.connections }, worker))
    const seconds = (performance.now() - started) / 1000
    return { rows: writes.length, seconds, writesPerSecond: writes.length / seconds, batch, connections: options.connections }
  } finally {
    await db.end()
  }
}
