/**
 * Cache entries the record has outrun. After a batch commits, the consumer
 * brings the cache to the same state; when Redis does not answer, holding the
 * batch until it does would stop the record too (the prefetch fills and nothing
 * newer applies for as long as Redis is away). Instead the consumer notes the
 * keys here, in PostgreSQL, acknowledges, and repairs those entries from the
 * record once Redis answers again. Until then readers cannot see the stale
 * entries anyway (Redis is away), and every entry's TTL bounds them besides.
 */
import { cacheApplyMany, type CacheClient, type CacheOptions } from './cache.js'
import type { Queryable } from './postgres.js'
import type { RowState } from './store.js'

/**
 * Notes keys whose cache entry may be older than `version`. A key noted twice
 * keeps the higher version. Key order: two consumers noting overlapping keys
 * lock them in the same order and cannot deadlock.
 */
export const NOTE_STALE = `
INSERT INTO kv_cache_repair AS r (key, version)
SELECT key, version FROM unnest($1::text[], $2::bigint[]) AS n(key, version) ORDER BY key
ON CONFLICT (key) DO UPDATE SET version = GREATEST(r.version, EXCLUDED.version), noted_at = now()
`

/** Noted keys with the record's current state (no row: purged since). */
export const STALE_ENTRIES = `
SELECT r.key, r.version::text AS noted, s.value, s.version::text AS version, s.deleted, s.expires_at::float8 AS "expiresAt"
FROM kv_cache_repair r LEFT JOIN kv_store s ON s.key = r.key
ORDER BY r.key LIMIT $1
`

/**
 * Forgets notes that a repair covered: only those not noted again with a newer
 * version meanwhile (another consumer may have failed to update it since).
 */
export const FORGET_REPAIRED = `
DELETE FROM kv_cache_repair r USING unnest($1::text[], $2::bigint[]) AS d(key, version)
WHERE r.key = d.key AND r.version <= d.version
`

/** How many cache entries wait for repair (npm run status, the fault checks). */
export async function countStale(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM kv_cache_repair')
  return Number(rows[0]?.n ?? 0)
}

/** Notes every key of a committed batch whose cache update failed. */
export async function noteStale(db: Queryable, rows: readonly RowState[]): Promise<void> {
  const newest = new Map<string, string>()
  for (const row of rows) newest.set(row.key, row.version)
  if (newest.size === 0) return
  await db.query({ name: 'kvarc-note-stale', text: NOTE_STALE, values: [[...newest.keys()], [...newest.values()]] })
}

interface StaleEntry { key: string, noted: string, value: string | null, version: string | null, deleted: boolean | null, expiresAt: number | null }

/**
 * Brings noted entries to the record's state, `slice` keys at a time, and
 * forgets the notes it covered. Set-if-newer, so a consumer or reader that got
 * there first with a newer version is kept. Returns how many it repaired.
 * Throws when Redis or PostgreSQL fails; the notes stay for the next try.
 *
 * @example await repairStale(pool, redis, cacheOptionsOf(config))
 */
export async function repairStale(db: Queryable, redis: CacheClient, options: CacheOptions, slice = 1000, maxSlices = Infinity): Promise<number> {
  let repaired = 0
  for (let slices = 0; ; slices++) {
    if (slices >= maxSlices) return repaired
    const { rows } = await db.query<StaleEntry>({ name: 'kvarc-stale-entries', text: STALE_ENTRIES, values: [slice] })
    if (rows.length === 0) return repaired
    const live = rows.filter(r => r.version !== null).map(r => ({ key: r.key, value: r.value, version: r.version as string, deleted: r.deleted as boolean, expiresAt: r.expiresAt }))
    // No row: the tombstone was purged, and its version with it; the entry can only go.
    const gone = rows.filter(r => r.version === null).map(r => options.prefix + r.key)
    await cacheApplyMany(redis, options, live)
    if (gone.length > 0) await redis.del(...gone)
    await db.query({
      name: 'kvarc-forget-repaired',
      text: FORGET_REPAIRED,
      values: [rows.map(r => r.key), rows.map(r => (r.version !== null && BigInt(r.version) > BigInt(r.noted) ? r.version : r.noted))],
    })
    repaired += rows.length
    if (rows.length < slice) return repaired
  }
}

/**
 * What one consumer process knows of the cache between invocations: whether
 * notes may be waiting (unknown at a cold start: another process may have left
 * some), and when Redis last failed. Within `retryMs` of a failure a batch
 * skips Redis and notes its keys at once, so a Redis that swallows commands
 * (each one waiting out the command timeout) does not slow the record.
 */
export class CacheHealth {
  private pending = true
  /** Counts failures and notes: a repair may clear `pending` only if none came since it started reading the notes. */
  private events = 0
  private failedAt = -Infinity
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor(private readonly retryMs = 1000, private readonly now: () => number = Date.now) {}

  /** False within `retryMs` of the last failure. */
  get available(): boolean {
    return this.now() - this.failedAt >= this.retryMs
  }

  /** Notes may be waiting in the record. */
  get repairPending(): boolean {
    return this.pending
  }

  failed(): void {
    this.failedAt = this.now()
    this.pending = true
    this.events++
  }

  /** A batch noted keys for repair. */
  noted(): void {
    this.pending = true
    this.events++
  }

  /** Taken before a repair reads the notes, handed to repaired() after. */
  get mark(): number {
    return this.events
  }

  /**
   * The notes a repair read are repaired. Notes written meanwhile (a batch
   * noted its keys while the repair ran) keep the repair pending: clearing it
   * would leave them waiting until the next failure.
   */
  repaired(since: number): void {
    if (this.events === since) this.pending = false
  }

  /**
   * Runs `repair` every `retryMs` while notes remain, so entries are repaired
   * soon after Redis answers again even when no batch follows (the last writes
   * before an idle spell). One timer at a time, unref'd: it never keeps a
   * process alive. Where the process is frozen between invocations (Lambda),
   * it fires at the next one; the entries' TTL bounds them meanwhile.
   */
  repairSoon(repair: () => Promise<void>): void {
    if (this.timer) return
    this.timer = setTimeout(() => {
      repair().finally(() => {
        this.timer = undefined
        if (this.pending) this.repairSoon(repair)
      })
    }, this.retryMs)
    this.timer.unref?.()
  }
}
