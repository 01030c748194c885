/**
 * Purges tombstones older than the horizon, periodically, from the consumer
 * host. Without it every deleted key would keep its row forever. Several hosts
 * may run it: an advisory lock lets one purge at a time and the others skip,
 * and the jitter keeps hosts started together from trying at the same moment.
 * Safe at any time: the apply statement drops writes older than the same
 * horizon whose key has no row, so purging cannot resurrect a key.
 */
import type pg from 'pg'
import { purgeTombstones } from '../src/shared/store.js'
import { versionAtMillis } from '../src/shared/version.js'

/** Advisory lock id of the purge ("kvpurge"), distinct from the migration's. */
export const PURGE_LOCK = 0x6b7670757267

export interface PurgerOptions {
  db: () => Promise<pg.Pool>
  horizonMs: number
  intervalMs: number
  onPurged?: (removed: number) => void
  onError?: (error: unknown) => void
  now?: () => number
}

/** One purge under the lock; resolves with the rows removed, or null when another host holds the lock. */
export async function purgeOnce(pool: pg.Pool, horizonMs: number, now = Date.now()): Promise<number | null> {
  const client = await pool.connect()
  try {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [PURGE_LOCK])
    if (!rows[0]?.locked) return null
    try {
      return await purgeTombstones(client, versionAtMillis(now - horizonMs))
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [PURGE_LOCK])
    }
  } finally {
    client.release()
  }
}

export function startTombstonePurger(options: PurgerOptions): { close(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined
  let closed = false
  const schedule = () => {
    if (closed) return
    const delay = options.intervalMs * (0.75 + Math.random() * 0.5)
    timer = setTimeout(() => {
      running = options.db()
        .then(pool => purgeOnce(pool, options.horizonMs, (options.now ?? Date.now)()))
        .then(removed => { if (removed !== null) options.onPurged?.(removed) }, options.onError)
        .finally(() => { running = undefined; schedule() })
    }, delay)
    timer.unref()
  }
  schedule()
  return {
    async close() {
      closed = true
      clearTimeout(timer)
      await running
    },
  }
}
