/**
 * GET /api/writes through the handler, against a real PostgreSQL: every status
 * a receipt can report, waiting until a write is decided, and bad parameters.
 */
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpEvent, isolate, type Isolated } from '../../../test/support/isolated.js'
import { bodyOf } from '../../../test/support/kv.js'
import { applyConditional } from '../../shared/conditional.js'
import { RECORD_DEAD_LETTERS } from '../../shared/consumer.js'
import { publishNotice } from '../../shared/notices.js'
import { openDatabase } from '../../shared/postgres.js'
import { createRedis } from '../../shared/cache.js'
import { applyWrites } from '../../shared/store.js'
import { VersionClock, versionAtMillis } from '../../shared/version.js'
import { handler } from './index.js'

let iso: Isolated
let db: pg.Pool
const clock = new VersionClock(3)

const receipt = (key: string, version: bigint | string, extra = '') =>
  handler(httpEvent('GET', '/api/writes', { query: `key=${encodeURIComponent(key)}&version=${version}${extra}` }))

beforeAll(async () => {
  iso = await isolate('receipts')
  Object.assign(process.env, iso.env)
  db = await openDatabase(iso.env.DATABASE_URL!, 2)
})

afterAll(async () => {
  await db?.end()
  await iso?.cleanup()
})

describe('GET /api/writes', () => {
  it('reports queued, then applied, then superseded, from the record', async () => {
    const v1 = clock.next()
    expect(bodyOf(await receipt('r/a', v1))).toEqual({ key: 'r/a', version: v1.toString(), status: 'queued', current: null })
    await applyWrites(db, [{ key: 'r/a', value: 'one', version: v1, deleted: false }], 0n)
    expect(bodyOf(await receipt('r/a', v1))).toEqual({ key: 'r/a', version: v1.toString(), status: 'applied', current: v1.toString() })
    const v2 = clock.next()
    await applyWrites(db, [{ key: 'r/a', value: null, version: v2, deleted: true }], 0n)
    expect(bodyOf(await receipt('r/a', v1))).toEqual({ key: 'r/a', version: v1.toString(), status: 'superseded', current: v2.toString() })
  })

  it('reports rejected with the reason; a conditional write not yet decided stays queued even behind a newer version', async () => {
    const v1 = clock.next()
    await applyWrites(db, [{ key: 'r/c', value: 'one', version: v1, deleted: false }], 0n)
    const pending = clock.next({ conditional: true })
    await applyWrites(db, [{ key: 'r/c', value: 'two', version: clock.next(), deleted: false }], 0n)
    expect(bodyOf(await receipt('r/c', pending))).toMatchObject({ status: 'queued' })
    await applyConditional(db, [{ key: 'r/c', value: 'x', version: pending, deleted: false, condition: { kind: 'match', version: v1 } }], 0n)
    expect(bodyOf(await receipt('r/c', pending))).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/^If-Match ".*" failed/) })
  })

  it('reports dead-lettered with the reason', async () => {
    const v = clock.next()
    await db.query(RECORD_DEAD_LETTERS, [['r/d'], [v.toString()], ['PostgreSQL refused the write (SQLSTATE 23514): check']])
    expect(bodyOf(await receipt('r/d', v))).toEqual({ key: 'r/d', version: v.toString(), status: 'dead-lettered', current: null, reason: 'PostgreSQL refused the write (SQLSTATE 23514): check' })
  })

  it('with wait, answers once the write is applied (woken by the notice, or its poll: notices.test.ts tests the waking)', async () => {
    const v = clock.next()
    const answer = receipt('r/w', v, '&wait=10')
    const redis = createRedis(iso.env.REDIS_URL!)
    try {
      await applyWrites(db, [{ key: 'r/w', value: 'now', version: v, deleted: false }], 0n)
      await publishNotice(redis, iso.config.cachePrefix, ['r/w'])
      expect(bodyOf(await answer)).toMatchObject({ status: 'applied' })
    } finally {
      redis.disconnect()
    }
  })

  it('410 for a write older than the horizon whose outcome is no longer kept; 422 for bad parameters', async () => {
    const old = versionAtMillis(Date.now() - iso.config.tombstoneHorizonMs - 60_000) | 1024n
    const gone = await receipt('r/old', old)
    expect(gone.statusCode).toBe(410)
    expect(bodyOf(gone).detail).toMatch(/older than the tombstone horizon/)
    for (const [query, detail] of [
      ['key=k', /"version" is required/],
      ['key=k&version=abc', /must be a version/],
      ['key=k&version=5&wait=11', /"wait" must be whole seconds from 0 to 10/],
      ['version=5', /"key" is required/],
    ] as const) {
      const result = await handler(httpEvent('GET', '/api/writes', { query }))
      expect(result.statusCode, query).toBe(422)
      expect(bodyOf(result).detail).toMatch(detail)
    }
  })
})
