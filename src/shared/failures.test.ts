/**
 * Failure classes against errors the real PostgreSQL sends: what a retry can
 * fix, what it cannot, and what only a repeat can tell.
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolate, type Isolated } from '../../test/support/isolated.js'
import { classifyFailure, failureReason, sqlState } from './failures.js'
import { openDatabase } from './postgres.js'

let iso: Isolated
let db: pg.Pool

beforeAll(async () => {
  iso = await isolate('failures')
  db = await openDatabase(iso.env.DATABASE_URL!, 1)
})

afterAll(async () => {
  await db?.end()
  await iso?.cleanup()
})

const failureOf = (sql: string) => db.query(sql).then(() => { throw new Error(`${sql} did not fail`) }, (error: unknown) => error)

describe('classifyFailure', () => {
  it('data, integrity and program-limit errors are permanent', async () => {
    for (const sql of [
      "SELECT 'x'::int",                                                          // 22P02 invalid text representation
      "INSERT INTO kv_store (key, value) VALUES ('k', 'v'), ('k', 'w')",          // 23505 unique violation
      `SELECT repeat('k', 3000)::text AS k INTO TEMP big; CREATE INDEX ON big (k); INSERT INTO big SELECT string_agg(md5(i::text), '') FROM generate_series(1, 200) i`, // 54000 index row size exceeds the btree maximum
    ]) {
      const error = await failureOf(sql)
      expect([sqlState(error)?.slice(0, 2), classifyFailure(error)], sql).toEqual([expect.stringMatching(/^(22|23|54)$/), 'permanent'])
    }
  })

  it('a statement cancelled by its timeout and a connection that is refused are transient', async () => {
    const cancelled = await failureOf("SET statement_timeout = 50; SELECT pg_sleep(5)")
    await db.query('SET statement_timeout = 0')
    expect([sqlState(cancelled), classifyFailure(cancelled)]).toEqual(['57014', 'transient'])
    const refused = await new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:1/none', connectionTimeoutMillis: 2000 }).connect().catch((error: unknown) => error)
    expect([sqlState(refused), classifyFailure(refused)]).toEqual([undefined, 'transient'])
    // A socket error whose code happens to have five letters is not a SQLSTATE.
    expect(classifyFailure(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))).toBe('transient')
  })

  it("a trigger's RAISE and a missing table are of no known class: only a repeat can tell", async () => {
    const raised = await failureOf("DO $$ BEGIN RAISE EXCEPTION 'no'; END $$")
    const missing = await failureOf('SELECT * FROM no_such_table')
    expect([sqlState(raised), classifyFailure(raised)]).toEqual(['P0001', 'unknown'])
    expect([sqlState(missing), classifyFailure(missing)]).toEqual(['42P01', 'unknown'])
    expect(failureReason(raised)).toBe('PostgreSQL refused the write (SQLSTATE P0001): no')
  })
})
