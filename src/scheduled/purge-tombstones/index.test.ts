/**
 * purge-tombstones with the event EventBridge sends a scheduled rule's target:
 * it removes only tombstones older than the horizon, answers what it did, and
 * skips while another purger holds the lock (another host, `npm run purge`).
 */
import type pg from 'pg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { isolate, scheduledEvent, type Isolated } from '../../../test/support/isolated.js'
import { openDatabase } from '../../shared/postgres.js'
import { PURGE_LOCK } from '../../shared/purge.js'
import { applyWrites } from '../../shared/store.js'
import { versionAtMillis } from '../../shared/version.js'
import { handler } from './index.js'

const DAY = 86_400_000
const HORIZON_MS = 7 * DAY // the default of src/shared/config.ts, which this test leaves unset

let iso: Isolated
let db: pg.Pool

async function keys(): Promise<string[]> {
  const { rows } = await db.query<{ key: string }>('SELECT key FROM kv_store ORDER BY key')
  return rows.map(r => r.key)
}

beforeAll(async () => {
  iso = await isolate('purge')
  Object.assign(process.env, iso.env)
  db = await openDatabase(iso.config.databaseUrl, 2)
})

afterAll(async () => {
  await db?.end()
  await iso?.cleanup()
})

beforeEach(async () => {
  // Prepare: a tombstone past the horizon, a young tombstone, and a live row as old as the first.
  await db.query('TRUNCATE kv_store')
  const now = Date.now()
  await applyWrites(db, [
    { key: 'old-tombstone', value: null, version: versionAtMillis(now - HORIZON_MS - DAY), deleted: true },
    { key: 'young-tombstone', value: null, version: versionAtMillis(now - 60_000), deleted: true },
    { key: 'old-live', value: 'v', version: versionAtMillis(now - HORIZON_MS - DAY) + 1n, deleted: false },
  ], 0n)
})

describe('purge-tombstones (EventBridge Scheduled Event)', () => {
  it('removes only tombstones older than the horizon, and says up to which version', async () => {
    // Act
    const before = versionAtMillis(Date.now() - HORIZON_MS)
    const result = await handler(scheduledEvent())
    const after = versionAtMillis(Date.now() - HORIZON_MS)

    // Assess
    expect(result).toEqual({ purged: 1, expired: 0, horizonVersion: expect.stringMatching(/^\d+$/) })
    const cut = BigInt((result as { horizonVersion: string }).horizonVersion)
    expect(cut >= before && cut <= after).toBe(true)
    expect(await keys()).toEqual(['old-live', 'young-tombstone'])
  })

  it('finds nothing more to purge on the next run', async () => {
    await handler(scheduledEvent())
    expect(await handler(scheduledEvent())).toMatchObject({ purged: 0 })
    expect(await keys()).toEqual(['old-live', 'young-tombstone'])
  })

  it('skips while another purger holds the lock, and purges once it is free', async () => {
    // Prepare: another session takes the purge lock.
    const other = await db.connect()
    try {
      await other.query('SELECT pg_advisory_lock($1)', [PURGE_LOCK])

      // Act / Assess
      expect(await handler(scheduledEvent())).toEqual({ skipped: 'another purge holds the lock' })
      expect(await keys()).toHaveLength(3)
    } finally {
      await other.query('SELECT pg_advisory_unlock($1)', [PURGE_LOCK])
      other.release()
    }
    expect(await handler(scheduledEvent())).toMatchObject({ purged: 1 })
  })
})
