import type pg from 'pg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { eventually, isolate, type Isolated } from '../test/support/isolated.js'
import { openDatabase } from '../src/shared/postgres.js'
import { applyWrites } from '../src/shared/store.js'
import { versionAtMillis } from '../src/shared/version.js'
import { PURGE_LOCK, purgeOnce, startTombstonePurger } from './tombstone-purger.js'

const HOUR = 3600_000
let iso: Isolated
let pool: pg.Pool

async function keys(): Promise<string[]> {
  const { rows } = await pool.query<{ key: string }>('SELECT key FROM kv_store ORDER BY key')
  return rows.map(r => r.key)
}

beforeAll(async () => {
  iso = await isolate('purger')
  pool = await openDatabase(iso.config.databaseUrl, 3)
})
afterAll(async () => {
  await pool?.end()
  await iso?.cleanup()
})
beforeEach(async () => {
  // Prepare: an old tombstone, a young tombstone, an old live row.
  await pool.query('TRUNCATE kv_store')
  const now = Date.now()
  await applyWrites(pool, [
    { key: 'old-tombstone', value: null, version: versionAtMillis(now - 3 * HOUR), deleted: true },
    { key: 'young-tombstone', value: null, version: versionAtMillis(now - 60_000), deleted: true },
    { key: 'old-live', value: 'v', version: versionAtMillis(now - 3 * HOUR) + 1n, deleted: false },
  ], 0n)
})

describe('tombstone purger', () => {
  it('removes only tombstones older than the horizon', async () => {
    expect(await purgeOnce(pool, HOUR)).toBe(1)
    expect(await keys()).toEqual(['old-live', 'young-tombstone'])
  })

  it('skips while another host holds the purge lock', async () => {
    const other = await pool.connect()
    try {
      await other.query('SELECT pg_advisory_lock($1)', [PURGE_LOCK])
      expect(await purgeOnce(pool, HOUR)).toBeNull()
      expect(await keys()).toHaveLength(3)
    } finally {
      await other.query('SELECT pg_advisory_unlock($1)', [PURGE_LOCK])
      other.release()
    }
  })

  it('runs periodically and stops on close', async () => {
    const purged: number[] = []
    const purger = startTombstonePurger({ db: async () => pool, horizonMs: HOUR, intervalMs: 50, onPurged: n => purged.push(n) })
    try {
      await eventually(async () => purged.length >= 2, 'two purge rounds')
      expect(purged[0]).toBe(1)
      expect(await keys()).toEqual(['old-live', 'young-tombstone'])
    } finally {
      await purger.close()
    }
    const rounds = purged.length
    await new Promise(resolve => setTimeout(resolve, 200))
    expect(purged.length).toBe(rounds)
  })
})
