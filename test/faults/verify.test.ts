/**
 * The verifier must catch what it claims to catch: if it could not fail, the
 * all-zero fault tables would prove nothing. Pure function, synthetic histories.
 */
import { describe, expect, it } from 'vitest'
import type { WriteRecord } from './harness/load.js'
import { clean, verify, type CacheHash, type StoredRow } from './harness/verify.js'
import { versionAtMillis } from '../../src/shared/version.js'

const T = 1_795_000_000_000
const v = (ms: number, n = 0) => (versionAtMillis(T + ms) + BigInt(n)).toString()

function put(key: string, value: string, at: number, version?: string, status = 200, client = 0): WriteRecord {
  return { client, key, kind: 'put', value, status, sentAt: T + at, doneAt: T + at + 5, ...(version ? { version } : {}) }
}
function del(key: string, at: number, version?: string, status = 200, client = 0): WriteRecord {
  return { client, key, kind: 'delete', value: null, status, sentAt: T + at, doneAt: T + at + 5, ...(version ? { version } : {}) }
}
const row = (value: string | null, version: string, deleted = false): StoredRow => ({ value, version, deleted })
const rows = (entries: [string, StoredRow][]) => new Map(entries)
const cache = (entries: [string, CacheHash][] = []) => new Map(entries)

describe('verify', () => {
  it('accepts a history whose record holds each key\'s newest acknowledged write', () => {
    const records = [put('a', 'a1', 0, v(1)), put('a', 'a2', 10, v(11)), put('b', 'b1', 0, v(2)), del('b', 20, v(21))]
    const verdict = verify(records, rows([['a', row('a2', v(11))], ['b', row(null, v(21), true)]]),
      cache([['a', { ver: v(11), del: '0', val: 'a2', ttlMs: 1000 }], ['b', { ver: v(21), del: 'm', val: '', ttlMs: 1000 }]]))
    expect(clean(verdict)).toBe(true)
    expect(verdict).toMatchObject({ acknowledged: 4, lost: 0, cacheEntries: 2 })
  })

  it('counts a lost write: the record holds an older version than an acknowledged one', () => {
    const verdict = verify([put('a', 'a1', 0, v(1)), put('a', 'a2', 10, v(11))], rows([['a', row('a1', v(1))]]), cache())
    expect(verdict.lost).toBe(1)
    expect(clean(verdict)).toBe(false)
  })

  it('counts a missing row for an acknowledged write as lost', () => {
    expect(verify([put('a', 'a1', 0, v(1))], rows([]), cache()).lost).toBe(1)
  })

  it('counts a resurrection: deleted by the newest acknowledged write, live with no write to explain it', () => {
    const verdict = verify([put('a', 'a1', 0, v(1)), del('a', 10, v(11))], rows([['a', row('zombie', v(30))]]), cache())
    expect(verdict.resurrections).toBe(1)
  })

  it('accepts a newer unknown-outcome PUT as the final state (it may have been queued)', () => {
    const records = [del('a', 0, v(1)), put('a', 'maybe', 10, undefined, 503)]
    const verdict = verify(records, rows([['a', row('maybe', v(12))]]), cache())
    expect(clean(verdict)).toBe(true)
    expect(verdict.appliedUnknown).toBe(1)
  })

  it('counts a row no write explains (wrong value for an acknowledged version) as a mismatch', () => {
    const verdict = verify([put('a', 'a1', 0, v(1))], rows([['a', row('other', v(1))]]), cache())
    expect(verdict.mismatches).toBe(1)
  })

  it('counts a client whose later acknowledged write got a lower version as reordered', () => {
    const verdict = verify([put('a', 'first', 0, v(5)), put('a', 'second', 10, v(3))], rows([['a', row('first', v(5))]]), cache())
    expect(verdict.reordered).toBe(1)
    expect(clean(verdict)).toBe(false)
  })

  it('counts stale cache entries: older value, live entry for a deleted key, marker with another version, no TTL', () => {
    const records = [put('a', 'a1', 0, v(1)), put('a', 'a2', 10, v(11)), put('b', 'b1', 0, v(2)), del('b', 10, v(12)), put('c', 'c1', 0, v(3)), put('d', 'd1', 0, v(4))]
    const record = rows([['a', row('a2', v(11))], ['b', row(null, v(12), true)], ['c', row('c1', v(3))], ['d', row('d1', v(4))]])
    const verdict = verify(records, record, cache([
      ['a', { ver: v(1), del: '0', val: 'a1', ttlMs: 1000 }],
      ['b', { ver: v(2), del: '0', val: 'b1', ttlMs: 1000 }],
      ['c', { ver: v(1), del: 'm', val: '', ttlMs: 1000 }],
      ['d', { ver: v(4), del: '0', val: 'd1', ttlMs: -1 }],
    ]))
    expect(verdict.staleCache).toBe(4)
  })

  it('accepts a negative cache entry for a key with no row', () => {
    const verdict = verify([put('a', 'x', 0, undefined, 503)], rows([]), cache([['a', { ver: '0', del: '1', val: '', ttlMs: 1000 }]]))
    expect(clean(verdict)).toBe(true)
  })
})
