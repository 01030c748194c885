/**
 * `npm run purge`: removes tombstones older than the configured horizon
 * (KVARC_TOMBSTONE_HORIZON_MS, default 7 days) from the record.
 *
 * Safe to run at any time, from anywhere, as often as wanted: the consumers
 * drop any write older than the same horizon whose key has no row, so a
 * delayed PUT that predates a purged DELETE can never bring the key back.
 * That guarantee holds while the purging machine's clock is not ahead of the
 * consumers' by more than the horizon (one machine here: the same clock).
 *
 *   npm run purge                 purge once, print what was removed
 *   npm run purge -- --dry-run    count what would be removed
 *
 * Uses DATABASE_URL (and the other variables of src/shared/config.ts).
 */
import { loadConfig } from '../src/shared/config.js'
import { openDatabase } from '../src/shared/postgres.js'
import { purgeTombstones } from '../src/shared/store.js'
import { versionAtMillis } from '../src/shared/version.js'

async function main(argv: string[]): Promise<void> {
  const unknown = argv.filter(a => a !== '--dry-run')
  if (unknown.length > 0) {
    console.error(`usage: npm run purge [-- --dry-run]   (unknown argument ${JSON.stringify(unknown[0])})`)
    process.exit(2)
  }
  const dryRun = argv.includes('--dry-run')
  let config
  try {
    config = loadConfig(process.env)
  } catch (error) {
    console.error(`purge: ${(error as Error).message}`)
    process.exit(2)
  }
  // The horizon is taken once, before the first slice: every slice uses the same cut.
  const cutMs = Date.now() - config.tombstoneHorizonMs
  const horizon = versionAtMillis(cutMs)
  const db = await openDatabase(config.databaseUrl, 1)
  try {
    const started = Date.now()
    if (dryRun) {
      const { rows } = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM kv_store WHERE deleted AND version < $1', [horizon.toString()])
      console.log(`purge (dry run): ${rows[0]?.n ?? 0} tombstones older than ${new Date(cutMs).toISOString()} would be removed`)
    } else {
      const removed = await purgeTombstones(db, horizon)
      console.log(`purge: removed ${removed} tombstones older than ${new Date(cutMs).toISOString()} (horizon ${config.tombstoneHorizonMs} ms) in ${Date.now() - started} ms`)
    }
  } finally {
    await db.end().catch(() => {})
  }
}

main(process.argv.slice(2)).catch(error => {
  console.error(`purge failed: ${(error as Error).message}`)
  process.exit(1)
})
