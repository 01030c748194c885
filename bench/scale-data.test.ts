/**
 * The scale bench's set-up against the real PostgreSQL and Redis: rows grown in
 * families, the sizes measured, the measured writes removed, the cache's bytes
 * per key, the ceiling applying exactly the rows it was asked for.
 */
import { Redis } from 'ioredis'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolate, type Isolated } from '../test/support/isolated.js'
import { openDatabase } from '../src/shared/postgres.js'
import { measureRecordCeiling } from './ceiling.js'
import { cacheHitKeys, clearCache, growTable, recordSize, removeWritten, spreadingStride } from './scale-data.js'

let iso: Isolated
let db: pg.Pool

beforeAll(async () => {
  iso = await isolate('scaledata')
  db = await openDatabase(iso.config.databaseUrl, 4)
})

afterAll(async () => {
  await db?.end()
  await iso?.cleanup()
})

const count = async (like: string) => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM kv_store WHERE key LIKE $1', [like])).rows[0]!.n)

describe('bench:scale data', () => {
  it('grows the record in steps, measures it, and removes every family but the seeded ones', async () => {
    // Act: 0 → 1,200 → 3,000 rows, crossing no chunk boundary twice.
    const seen: number[] = []
    await growTable(db, 'miss-', 0, 1200, 100, done => seen.push(done))
    await growTable(db, 'miss-', 1200, 3000, 100)
    await db.query(`INSERT INTO kv_store (key, value, version) VALUES ('put-1', 'x', 1), ('drain-7', 'y', 1)`)
    const size = await recordSize(db)
    const removed = await removeWritten(db, ['miss-', 'hit-'])

    // Assess
    expect(seen).toEqual([1200])
    expect(size.rows).toBe(3002)
    expect(size.tableBytes / size.rows).toBeGreaterThan(100) // each row holds its 100 B value
    expect(size.indexBytes).toBeGreaterThan(0)
    expect(removed).toBe(2)
    expect(await count('miss-%')).toBe(3000)
    expect((await db.query(`SELECT value FROM kv_store WHERE key = 'miss-2999'`)).rows[0].value).toBe('v'.repeat(100))
  })

  it('caches hit keys in kvarc\'s layout and counts what each costs Redis, then clears the prefix', async () => {
    const { bytesPerKey } = await cacheHitKeys(db, iso.config, 500, 100)
    const redis = new Redis(iso.config.redisUrl)
    try {
      expect(await redis.hget(`${iso.config.cachePrefix}hit-499`, 'val')).toBe('v'.repeat(100))
      // At least the value itself; far less than a KiB of overhead.
      expect(bytesPerKey).toBeGreaterThan(100)
      expect(bytesPerKey).toBeLessThan(2000)
      expect(await clearCache(iso.config)).toBe(500)
      expect(await redis.exists(`${iso.config.cachePrefix}hit-499`)).toBe(0)
    } finally {
      redis.disconnect()
    }
  })

  it('applies exactly the ceiling\'s rows with the consumer\'s statement, into the table as the drain found it', async () => {
    // A row of the family left by an earlier run is removed first: every row is inserted, as the drain's were.
    await db.query(`INSERT INTO kv_store (key, value, version) VALUES ('ceil-99999', 'old', 1)`)
    const result = await measureRecordCeiling(iso.config.databaseUrl, { count: 2500, valueBytes: 10, batch: 300, connections: 3, family: 'ceil-' })
    expect(result).toMatchObject({ rows: 2500, batch: 300, connections: 3 })
    expect(result.writesPerSecond).toBeGreaterThan(0)
    expect(await count('ceil-%')).toBe(2500)
    await removeWritten(db, ['miss-', 'hit-'])
  })

  it('spreads reads with a stride that visits every key once', () => {
    for (const span of [1, 2, 10, 100_000, 1_000_000, 10_000_000]) {
      const stride = spreadingStride(span)
      if (span <= 100_000) {
        const visited = new Set(Array.from({ length: span }, (_, k) => (k * stride) % span))
        expect(visited.size).toBe(span)
      }
      if (span > 10) expect(stride).toBeGreaterThan(span / 2)
    }
  })
})
