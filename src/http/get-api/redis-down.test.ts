/**
 * GET /api with Redis unreachable: reads fall back to PostgreSQL (200 and 404
 * with source "postgres"), nothing fails. Its own file: config is read once per process.
 */
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpEvent, isolate, type Isolated } from '../../../test/support/isolated.js'
import { bodyOf } from '../../../test/support/kv.js'
import { openDatabase } from '../../shared/postgres.js'
import { applyWrites } from '../../shared/store.js'
import { versionAtMillis } from '../../shared/version.js'
import { handler } from './index.js'

let iso: Isolated
let db: pg.Pool

const get = (query: string) => handler(httpEvent('GET', '/api', { query }))

beforeAll(async () => {
  iso = await isolate('getredisdown')
  Object.assign(process.env, iso.env, { REDIS_URL: 'redis://127.0.0.1:1' })
  db = await openDatabase(iso.env.DATABASE_URL!, 1)
})

afterAll(async () => {
  await db?.end()
  await iso?.cleanup()
})

describe('GET /api with Redis down', () => {
  it('answers 200 from PostgreSQL, every time', async () => {
    const v = versionAtMillis(Date.now())
    await applyWrites(db, [{ key: 'k', value: 'from the record', version: v, deleted: false }], 0n)
    for (let i = 0; i < 3; i++) {
      const result = await get('key=k')
      expect(result.statusCode).toBe(200)
      expect(bodyOf(result)).toEqual({ data: { key: 'k', value: 'from the record' }, source: 'postgres', version: v.toString() })
    }
  })

  it('answers 404 for a missing key', async () => {
    expect(await get('key=missing')).toMatchObject({ statusCode: 404, body: '{"detail":"key not found"}' })
  })
})
