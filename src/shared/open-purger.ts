/**
 * The purge's clients, built from the config: the record only (database created
 * and migrated on first use), on the service URLs (secrets.ts). Used by the
 * purge-tombstones function and `npm run purge`.
 */
import type { Config } from './config.js'
import { followDatabase } from './open-services.js'
import type { PurgeDeps } from './purge.js'
import { serviceUrlSource, type ServiceUrlSource } from './secrets.js'

export function openPurger(config: Config, urls: ServiceUrlSource = serviceUrlSource(config)): PurgeDeps {
  // One connection: the purge runs on a single session, which holds the advisory lock.
  return { db: followDatabase(urls, 1), tombstoneHorizonMs: config.tombstoneHorizonMs }
}
