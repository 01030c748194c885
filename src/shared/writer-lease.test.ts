import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolate, type Isolated } from '../../test/support/isolated.js'
import { ServiceUnavailableError } from './errors.js'
import { openDatabase } from './postgres.js'
import { MAX_WRITER_ID, versionMillis } from './version.js'
import { LeasedVersionClock } from './writer-lease.js'

const WRITER_BITS_MASK = BigInt(MAX_WRITER_ID)
const writerOf = (version: bigint) => Number(version & WRITER_BITS_MASK)

let iso: Isolated
let pool: pg.Pool

beforeAll(async () => {
  iso = await isolate('lease')
  pool = await openDatabase(iso.config.databaseUrl, 4)
})
afterAll(async () => {
  await pool?.end()
  await iso?.cleanup()
})

describe('leased writer ids', () => {
  it('gives writers that start together different ids', async () => {
    // Prepare
    const clocks = Array.from({ length: 8 }, () => new LeasedVersionClock(async () => pool))
    // Act
    const versions = await Promise.all(clocks.map(c => c.next()))
    // Assess
    expect(new Set(versions.map(writerOf)).size).toBe(8)
    expect(new Set(clocks.map(c => c.id)).size).toBe(8)
  })

  it('is synchronous while the lease is valid', async () => {
    const clock = new LeasedVersionClock(async () => pool)
    await clock.next()
    expect(typeof clock.next()).toBe('bigint')
  })

  it('takes a new id when its lease was lost, and its versions keep increasing', async () => {
    // Prepare: a clock whose own time runs ahead past its lease
    let now = Date.now()
    const clock = new LeasedVersionClock(async () => pool, { leaseMs: 60_000, safetyMs: 1_000, now: () => now })
    const first = await clock.next()
    const firstId = clock.id
    // Another process took the id after the lease expired (simulated in the record).
    await pool.query("UPDATE kv_writer_leases SET holder = 'someone else', expires_at = now() + interval '1 hour' WHERE id = $1", [firstId])
    now += 70_000
    // Act
    const second = await clock.next()
    // Assess
    expect(clock.id).not.toBe(firstId)
    expect(second).toBeGreaterThan(first)
    expect(versionMillis(second)).toBeGreaterThanOrEqual(versionMillis(first))
  })

  it('renews its own lease ahead of time and keeps its id', async () => {
    let now = Date.now()
    const clock = new LeasedVersionClock(async () => pool, { leaseMs: 60_000, safetyMs: 1_000, now: () => now })
    await clock.next()
    const id = clock.id
    const before = await pool.query<{ expires_at: Date }>('SELECT expires_at FROM kv_writer_leases WHERE id = $1', [id])
    now += 31_000 // past renewAt (half the lease), still valid
    await new Promise(resolve => setTimeout(resolve, 20))
    expect(typeof clock.next()).toBe('bigint')
    await expect.poll(async () => (await pool.query<{ expires_at: Date }>('SELECT expires_at FROM kv_writer_leases WHERE id = $1', [id])).rows[0]!.expires_at.getTime(), { timeout: 5000 })
      .toBeGreaterThan(before.rows[0]!.expires_at.getTime())
    expect(clock.id).toBe(id)
  })

  it('answers 503 when every id is leased', async () => {
    await pool.query("UPDATE kv_writer_leases SET holder = 'busy', expires_at = now() + interval '1 hour'")
    try {
      const clock = new LeasedVersionClock(async () => pool)
      await expect(Promise.resolve().then(() => clock.next())).rejects.toBeInstanceOf(ServiceUnavailableError)
    } finally {
      await pool.query("UPDATE kv_writer_leases SET holder = NULL, expires_at = '-infinity'")
    }
  })

  it('answers 503 when PostgreSQL is unreachable and it holds no lease', async () => {
    const clock = new LeasedVersionClock(async () => { throw new Error('connect ECONNREFUSED') })
    await expect(Promise.resolve().then(() => clock.next())).rejects.toMatchObject({ statusCode: 503 })
  })
})
