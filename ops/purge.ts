/**
 * `npm run purge`: removes tombstones older than the configured horizon
 * (KVARC_TOMBSTONE_HORIZON_MS, default 7 days) from the record, with the same
 * code as the `@scheduled purge-tombstones` function (src/shared/purge.ts):
 * under the same advisory lock, so it never runs beside a host's hourly purge.
 *
 * Safe to run at any time, from anywhere, as often as wanted: the consumers
 * drop any write older than the same horizon whose key has no row, so a
 * delayed PUT that predates a purged DELETE can never bring the key back.
 * That guarantee holds while the purging machine's clock is not ahead of the
 * consumers' by more than the horizon (one machine here: the same clock).
 *
 *   npm run purge                 purge once, print what was removed
 *   npm run purge -- --dry-run    count what would be removed
 *   npm run purge -- --before-version V
 *                                 only tombstones older than version V (a
 *                                 decimal version string), and never younger
 *                                 than the horizon: an explicit cut-off only
 *                                 narrows the purge, so it stays safe
 *
 * Exit status: 0 done, 2 bad arguments or configuration, 75 (EX_TEMPFAIL)
 * another purge holds the lock (try again later), 1 failed.
 * Uses DATABASE_URL (and the other variables of src/shared/config.ts).
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { loadConfig } from '../src/shared/config.js'
import { openDatabase } from '../src/shared/postgres.js'
import { countExpiredTombstones, purgeExpiredTombstones, type PurgeDeps } from '../src/shared/purge.js'
import { parseVersion, versionMillis } from '../src/shared/version.js'

const USAGE = 'usage: npm run purge [-- --dry-run] [-- --before-version V]'

class UsageError extends Error {
  override name = 'UsageError'
}

export function parseFlags(argv: string[]): { dryRun: boolean, before?: bigint } {
  const flags: { dryRun: boolean, before?: bigint } = { dryRun: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const [name, inline] = arg.includes('=') ? arg.split(/=(.*)/s) as [string, string] : [arg, undefined]
    if (name === '--dry-run' && inline === undefined) flags.dryRun = true
    else if (name === '--before-version') {
      const raw = inline ?? argv[++i]
      const version = parseVersion(raw)
      if (version === undefined) throw new UsageError(`--before-version needs a version (a decimal string of a positive 63-bit integer), got ${JSON.stringify(raw ?? '')}`)
      flags.before = version
    } else throw new UsageError(`unknown argument ${JSON.stringify(arg)}`)
  }
  return flags
}

async function main(argv: string[]): Promise<number> {
  let flags
  let config
  try {
    flags = parseFlags(argv)
    config = loadConfig(process.env)
  } catch (error) {
    console.error(error instanceof UsageError ? `${USAGE}   (${error.message})` : `purge: ${(error as Error).message}`)
    return 2
  }
  const { dryRun, before } = flags
  // One session, as the function has (src/shared/open-purger.ts); opened here so it is closed here.
  const pool = await openDatabase(config.databaseUrl, 1)
  const deps: PurgeDeps = { db: async () => pool, tombstoneHorizonMs: config.tombstoneHorizonMs }
  /** What the cut means, for a person: the horizon, or the narrower --before-version. */
  const older = (horizonVersion: string) => {
    const cut = BigInt(horizonVersion)
    const byHorizon = before === undefined || cut !== before
    return `older than ${new Date(versionMillis(cut)).toISOString()}` +
      (byHorizon ? ` (horizon ${config.tombstoneHorizonMs} ms${before === undefined ? '' : `; --before-version ${before} is younger than that`})` : ` (version ${cut})`)
  }
  try {
    const started = Date.now()
    if (dryRun) {
      const { purgeable, horizonVersion } = await countExpiredTombstones(deps, { before })
      console.log(`purge (dry run): ${purgeable} tombstones ${older(horizonVersion)} would be removed`)
      return 0
    }
    const result = await purgeExpiredTombstones(deps, { before })
    if ('skipped' in result) {
      console.error(`purge: skipped, ${result.skipped} (a host is purging now); run it again later`)
      return 75
    }
    console.log(`purge: ${result.expired} expired keys became tombstones; removed ${result.purged} tombstones ${older(result.horizonVersion)} in ${Date.now() - started} ms`)
    return 0
  } finally {
    await pool.end().catch(() => {})
  }
}

// Run only as the entry point, so a test can import the flags' parser.
const entry = process.argv[1]
if (entry && import.meta.url === pathToFileURL(resolve(entry)).href) {
  main(process.argv.slice(2)).then(
    code => { process.exitCode = code },
    (error: unknown) => {
      console.error(`purge failed: ${(error as Error).message}`)
      process.exitCode = 1
    },
  )
}
