/**
 * The purge's clients, built from the config: the record only (database created
 * and migrated on first use). Used by the purge-tombstones function and `npm run purge`.
 */
import type { Config } from './config.js'
import { lazy } from './lazy.js'
import { openDatabase } from './postgres.js'
import type { PurgeDeps } from './purge.js'

export function openPurger(config: Config): PurgeDeps {
  // One connection: the purge runs on a single session, which holds the advisory lock.
  return { db: lazy(() => openDatabase(config.databaseUrl, 1)), tombstoneHorizonMs: config.tombstoneHorizonMs }
}
