/**
 * Tombstone purge: turns expired keys (TTL) into tombstones, and removes
 * deleted keys' rows older than the horizon, one purger at a time. Run by the `@scheduled purge-tombstones` function (hourly:
 * EventBridge on AWS, the warm platform's scheduler locally) and by
 * `npm run purge`. Without it every deleted key would keep its row forever.
 *
 * Safe at any time: the apply statement drops a write older than the same
 * horizon whose key has no row, so purging cannot resurrect a key. That holds
 * while the purger's clock is not ahead of the consumers' by more than the horizon.
 */
import type { SessionPool } from './postgres.js'
import { countTombstones, purgeOutcomes, purgeTombstones, tombstoneExpired } from './store.js'
import { versionAtMillis } from './version.js'

/** Advisory lock id of the purge ("kvpurge"), distinct from the migration's. */
export const PURGE_LOCK = 0x6b7670757267

export interface PurgeDeps {
  /** A pool to take one session from: it holds the lock. */
  db: () => Promise<SessionPool>
  tombstoneHorizonMs: number
  now?: () => number
}

export const SKIPPED = 'another purge holds the lock'

/** `horizonVersion`: the cut; tombstones with a lower version were removed (a decimal string, as versions travel). */
export type PurgeResult = { purged: number, expired: number, horizonVersion: string } | { skipped: typeof SKIPPED }

/**
 * The cut: tombstones with a version below it go. The horizon is the limit
 * because the consumers drop a row-less write only when it is older than the
 * horizon: purging a younger tombstone would let its late PUT bring the key
 * back. `before` (a cut-off a person or a test derives from versions it knows)
 * can only move the cut earlier.
 *
 * @example purgeCut(Date.now(), config.tombstoneHorizonMs) // { cut: <version 7 days ago>, byHorizon: true }
 */
export function purgeCut(nowMs: number, horizonMs: number, before?: bigint): { cut: bigint, byHorizon: boolean } {
  const horizon = versionAtMillis(nowMs - horizonMs)
  return before === undefined || before >= horizon ? { cut: horizon, byHorizon: true } : { cut: before, byHorizon: false }
}

/**
 * One purge under the advisory lock: a second purger (another host, the
 * function on AWS, `npm run purge`) skips instead of deleting the same slices.
 * The cut is taken once, before the first slice: every slice uses it.
 *
 * @example await purgeExpiredTombstones({ db, tombstoneHorizonMs: 7 * 86_400_000 }) // { purged: 12, horizonVersion: '…' }
 */
export async function purgeExpiredTombstones(deps: PurgeDeps, options: { before?: bigint } = {}): Promise<PurgeResult> {
  const { cut } = purgeCut((deps.now ?? Date.now)(), deps.tombstoneHorizonMs, options.before)
  const pool = await deps.db()
  // A session lock needs one session: the lock, every slice and the unlock go through this client.
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [PURGE_LOCK])
    if (!rows[0]?.locked) return { skipped: SKIPPED }
    try {
      // Expired keys first: they become tombstones, which a later purge removes past the horizon.
      const expired = await tombstoneExpired(client, (deps.now ?? Date.now)())
      const purged = await purgeTombstones(client, cut)
      await purgeOutcomes(client, cut)
      return { purged, expired, horizonVersion: cut.toString() }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [PURGE_LOCK])
    }
  } catch (error) {
    broken = error as Error
    throw error
  } finally {
    // After a failure the session may still hold the lock: destroy it rather than pool it, which ends the session and frees the lock.
    client.release(broken ?? false)
  }
}

/** How many tombstones a purge would remove now (no lock: it only counts). */
export async function countExpiredTombstones(deps: PurgeDeps, options: { before?: bigint } = {}): Promise<{ purgeable: number, horizonVersion: string }> {
  const { cut } = purgeCut((deps.now ?? Date.now)(), deps.tombstoneHorizonMs, options.before)
  return { purgeable: await countTombstones(await deps.db(), cut), horizonVersion: cut.toString() }
}
