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
 *   npm run purge -- --before-version V
 *                                 only tombstones older than version V (a
 *                                 decimal version string), and never younger
 *                                 than the horizon: an explicit cut-off only
 *                                 narrows the purge, so it stays safe
 *
 * Uses DATABASE_URL (and the other variables of src/shared/config.ts).
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { loadConfig } from '../src/shared/config.js'
import { openDatabase } from '../src/shared/postgres.js'
import { purgeTombstones } from '../src/shared/store.js'
import { parseVersion, versionAtMillis, versionMillis } from '../src/shared/version.js'

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

/**
 * The cut: tombstones with a version below it go. The horizon is the limit
 * because the consumers drop a row-less write only when it is older than the
 * horizon: purging a younger tombstone would let its late PUT bring the key
 * back. `before` (a cut-off a person or a test derives from versions it knows)
 * can only move the cut earlier.
 */
export function purgeCut(nowMs: number, horizonMs: number, before?: bigint): { cut: bigint, byHorizon: boolean } {
  const horizon = versionAtMillis(nowMs - horizonMs)
  return before === undefined || before >= horizon ? { cut: horizon, byHorizon: true } : { cut: before, byHorizon: false }
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
  // The cut is taken once, before the first slice: every slice uses the same cut.
  const { cut, byHorizon } = purgeCut(Date.now(), config.tombstoneHorizonMs, before)
  const older = `older than ${new Date(versionMillis(cut)).toISOString()}` +
    (byHorizon ? ` (horizon ${config.tombstoneHorizonMs} ms${before === undefined ? '' : `; --before-version ${before} is younger than that`})` : ` (version ${cut})`)
  const db = await openDatabase(config.databaseUrl, 1)
  try {
    const started = Date.now()
    if (dryRun) {
      const { rows } = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM kv_store WHERE deleted AND version < $1', [cut.toString()])
      console.log(`purge (dry run): ${rows[0]?.n ?? 0} tombstones ${older} would be removed`)
    } else {
      const removed = await purgeTombstones(db, cut)
      console.log(`purge: removed ${removed} tombstones ${older} in ${Date.now() - started} ms`)
    }
  } finally {
    await db.end().catch(() => {})
  }
  return 0
}

// Run only as the entry point, so a test can import the cut.
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
